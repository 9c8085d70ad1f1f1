package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
)

// poolInfo is one warm pool as `pool` shows it: the pods of one pool name and pod spec hash (the
// replicas of one deployment share a row; during a rolling update old and new specs get a row
// each, as they never share pods).
type poolInfo struct {
	Pool string `json:"pool"`
	Spec string `json:"spec"` // the podsandbox.io/pool-spec label: a hash of the pod spec and mode
	Mode string `json:"mode"`
	// Image is the first container's image of the pool's pods.
	Image string `json:"image"`
	// Warm pods are running, ready and unclaimed: a session can claim one now.
	Warm int `json:"warm"`
	// Starting pods are unclaimed and not ready yet.
	Starting int `json:"starting"`
	// Claimed pods belong to a session (they keep their pool labels, with state "claimed").
	Claimed int `json:"claimed"`
	// Failed pods are unclaimed pods whose container ended; the reaper or the pool deletes them.
	Failed int `json:"failed"`
	// Terminating pods are being deleted; no other count includes them.
	Terminating int `json:"terminating"`
	// Oldest is the creation time of the pool's oldest pod that is not terminating.
	Oldest time.Time `json:"oldest,omitzero"`
}

// poolRows groups the pool pods among pods by pool name and spec hash, sorted by both; pods
// without a pool label are left out.
func poolRows(pods []corev1.Pod) []poolInfo {
	type key struct{ pool, spec string }
	rows := map[key]*poolInfo{}
	for i := range pods {
		p := &pods[i]
		name, ok := p.Labels[podsandbox.LabelPool]
		if !ok {
			continue
		}
		k := key{name, p.Labels[podsandbox.LabelPoolSpec]}
		r := rows[k]
		if r == nil {
			r = &poolInfo{Pool: k.pool, Spec: k.spec, Mode: p.Annotations[podsandbox.AnnotationMode]}
			if len(p.Spec.Containers) > 0 {
				r.Image = p.Spec.Containers[0].Image
			}
			rows[k] = r
		}
		state := p.Labels[podsandbox.LabelPoolState]
		switch {
		case p.DeletionTimestamp != nil:
			r.Terminating++
			continue
		case state == "claimed":
			r.Claimed++
		case state != "warm":
			continue // a state this CLI does not know
		case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
			r.Failed++
		case p.Status.Phase == corev1.PodRunning && podReady(p):
			r.Warm++
		default:
			r.Starting++
		}
		if t := p.CreationTimestamp.Time; r.Oldest.IsZero() || t.Before(r.Oldest) {
			r.Oldest = t
		}
	}
	out := make([]poolInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b poolInfo) int { return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(a.Spec, b.Spec)) })
	return out
}

// podReady reports whether the pod's Ready condition is true.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *cli) poolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pool",
		Aliases: []string{"pools"},
		Short:   "Show the namespace's warm pools: warm (ready, unclaimed), starting and claimed pods per pool and pod spec",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect()
			if err != nil {
				return err
			}
			l, err := cl.Clientset().CoreV1().Pods(c.namespace).List(cmd.Context(), metav1.ListOptions{
				LabelSelector: podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue + "," + podsandbox.LabelPool})
			if err != nil {
				return fmt.Errorf("listing pool pods in %s: %w", c.namespace, err)
			}
			rows := poolRows(l.Items)
			if done, err := c.print(rows); done {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintf(c.stderr, "No warm pools in namespace %s.\n", c.namespace)
				return nil
			}
			tw := c.table()
			for _, cells := range poolTable(rows, c.output == "wide", time.Now()) {
				for i, cell := range cells {
					if i > 0 {
						fmt.Fprint(tw, "\t")
					}
					fmt.Fprint(tw, cell)
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, c, "json, yaml or wide")
	return cmd
}

// poolTable returns the table `pool` prints, header first; wide adds the mode, image, failed and
// terminating pods.
func poolTable(rows []poolInfo, wide bool, now time.Time) [][]string {
	head := []string{"POOL", "SPEC", "WARM", "STARTING", "CLAIMED", "OLDEST"}
	if wide {
		head = append(head, "MODE", "IMAGE", "FAILED", "TERMINATING")
	}
	out := [][]string{head}
	for _, r := range rows {
		oldest := "-"
		if !r.Oldest.IsZero() {
			oldest = age(now.Sub(r.Oldest))
		}
		row := []string{r.Pool, r.Spec, fmt.Sprint(r.Warm), fmt.Sprint(r.Starting), fmt.Sprint(r.Claimed), oldest}
		if wide {
			row = append(row, r.Mode, r.Image, fmt.Sprint(r.Failed), fmt.Sprint(r.Terminating))
		}
		out = append(out, row)
	}
	return out
}

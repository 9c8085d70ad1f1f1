package e2e

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// logTail is how many log lines of each container a dump shows.
const logTail = 50

// DumpOnFailure registers a cleanup that, when the test has failed, logs the status, events and
// container logs of the named pods in c.Namespace (of every pod there when no name is given).
//
// Cleanups run last-in first-out: register DumpOnFailure after the cleanup that deletes the pod, or
// the pod may be gone by the time it runs (its events are still shown then).
func DumpOnFailure(t testing.TB, c *Cluster, pods ...string) {
	t.Helper()
	DumpNamespaceOnFailure(t, c.Client, c.Namespace, pods...)
}

// DumpNamespaceOnFailure is DumpOnFailure for any namespace (for example one from CreateNamespace).
func DumpNamespaceOnFailure(t testing.TB, client kubernetes.Interface, namespace string, pods ...string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var b strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		Dump(ctx, &b, client, namespace, pods...)
		t.Log("\n" + b.String())
	})
}

// Dump writes the status, events and container logs (last lines) of the named pods in namespace,
// of every pod there when no name is given.
func Dump(ctx context.Context, w io.Writer, client kubernetes.Interface, namespace string, pods ...string) {
	if len(pods) == 0 {
		list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			fmt.Fprintf(w, "=== pods in %s: %v\n", namespace, err)
			return
		}
		if len(list.Items) == 0 {
			fmt.Fprintf(w, "=== no pods in namespace %s\n", namespace)
		}
		for i := range list.Items {
			dumpPod(ctx, w, client, &list.Items[i])
		}
		return
	}
	for _, name := range pods {
		pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			fmt.Fprintf(w, "=== pod %s/%s: already deleted\n", namespace, name)
			dumpEvents(ctx, w, client, namespace, name)
			continue
		}
		if err != nil {
			fmt.Fprintf(w, "=== pod %s/%s: %v\n", namespace, name, err)
			continue
		}
		dumpPod(ctx, w, client, pod)
	}
}

func dumpPod(ctx context.Context, w io.Writer, client kubernetes.Interface, pod *corev1.Pod) {
	s := pod.Status
	fmt.Fprintf(w, "=== pod %s/%s: phase %s", pod.Namespace, pod.Name, s.Phase)
	if s.Reason != "" || s.Message != "" {
		fmt.Fprintf(w, ", %s: %s", s.Reason, s.Message)
	}
	fmt.Fprintf(w, ", node %q, pod IP %q", pod.Spec.NodeName, s.PodIP)
	if pod.DeletionTimestamp != nil {
		fmt.Fprintf(w, ", being deleted")
	}
	fmt.Fprintln(w)
	for _, c := range s.Conditions {
		fmt.Fprintf(w, "  condition %s=%s", c.Type, c.Status)
		if c.Reason != "" || c.Message != "" {
			fmt.Fprintf(w, " %s: %s", c.Reason, c.Message)
		}
		fmt.Fprintln(w)
	}
	statuses := slices.Concat(s.InitContainerStatuses, s.ContainerStatuses, s.EphemeralContainerStatuses)
	for _, cs := range statuses {
		fmt.Fprintf(w, "  container %s: %s, ready=%t, restarts=%d, image %s\n",
			cs.Name, stateString(cs.State), cs.Ready, cs.RestartCount, cs.Image)
		if cs.LastTerminationState.Terminated != nil {
			fmt.Fprintf(w, "    last: %s\n", stateString(cs.LastTerminationState))
		}
	}
	dumpEvents(ctx, w, client, pod.Namespace, pod.Name)
	for _, cs := range statuses {
		if cs.State.Waiting != nil && cs.RestartCount == 0 {
			continue // never started: no logs
		}
		tail := int64(logTail)
		logs, err := client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
			Container: cs.Name, TailLines: &tail,
		}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(w, "  logs of %s: %v\n", cs.Name, err)
			continue
		}
		fmt.Fprintf(w, "  logs of %s (last %d lines):\n", cs.Name, logTail)
		for _, l := range strings.Split(strings.TrimRight(string(logs), "\n"), "\n") {
			fmt.Fprintf(w, "    | %s\n", l)
		}
	}
}

func dumpEvents(ctx context.Context, w io.Writer, client kubernetes.Interface, namespace, pod string) {
	evs, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": pod}.String(),
	})
	if err != nil {
		fmt.Fprintf(w, "  events: %v\n", err)
		return
	}
	items := evs.Items
	slices.SortFunc(items, func(a, b corev1.Event) int { return cmp.Compare(eventTime(a).UnixNano(), eventTime(b).UnixNano()) })
	fmt.Fprintf(w, "  events (%d):\n", len(items))
	for _, e := range items {
		fmt.Fprintf(w, "    %s %s %s: %s", eventTime(e).Format("15:04:05"), e.Type, e.Reason, strings.TrimSpace(e.Message))
		if e.Count > 1 {
			fmt.Fprintf(w, " (x%d)", e.Count)
		}
		fmt.Fprintln(w)
	}
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.Format("15:04:05")
	case s.Waiting != nil:
		return strings.TrimSpace(fmt.Sprintf("waiting %s %s", s.Waiting.Reason, s.Waiting.Message))
	case s.Terminated != nil:
		return strings.TrimSpace(fmt.Sprintf("terminated exit %d %s %s", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message))
	}
	return "unknown state"
}

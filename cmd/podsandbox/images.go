package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// nodeImage is one image on one node, as the kubelet reports it in the node's status.
type nodeImage struct {
	Node string `json:"node"`
	// Image is the name the table shows: the first tagged name, else the first (a digest); ""
	// for an image the node reports no name for.
	Image string   `json:"image"`
	Names []string `json:"names"` // every name the node knows the image by, tags and digests
	Size  int64    `json:"size_bytes"`
}

// imageName picks the name to show for an image: the first without a digest, else the first.
func imageName(names []string) string {
	for _, n := range names {
		if !strings.Contains(n, "@") {
			return n
		}
	}
	if len(names) > 0 {
		return names[0]
	}
	return ""
}

// imageRows lists the images of nodes, one per image per node, sorted by node and name; with
// match, only images one of whose names contains it.
func imageRows(nodes []corev1.Node, match string) []nodeImage {
	out := []nodeImage{}
	for _, n := range nodes {
		for _, im := range n.Status.Images {
			if match != "" && !slices.ContainsFunc(im.Names, func(s string) bool { return strings.Contains(s, match) }) {
				continue
			}
			names := append([]string{}, im.Names...) // [] in JSON, not null
			out = append(out, nodeImage{Node: n.Name, Image: imageName(names), Names: names, Size: im.SizeBytes})
		}
	}
	slices.SortFunc(out, func(a, b nodeImage) int { return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Image, b.Image)) })
	return out
}

// listNodes lists the cluster's nodes; a refusal by RBAC says which permission is missing.
func listNodes(ctx context.Context, cs kubernetes.Interface) ([]corev1.Node, error) {
	l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("listing nodes: %w: this needs the cluster-scoped `list nodes` permission (a ClusterRole; "+
			"deploy/rbac.yaml's namespaced Role does not grant it); check with `kubectl auth can-i list nodes`", err)
	case err != nil:
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	return l.Items, nil
}

func (c *cli) imagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images [SUBSTRING]",
		Short: "List the images the cluster's nodes hold (what runs without a pull), one row per image per node",
		Long: "List the images the cluster's nodes hold, from each node's status (the kubelet reports them; a node may\n" +
			"leave out some when it holds many): one row per image per node, with SUBSTRING only those a name of which\n" +
			"contains it. An image a node holds starts there with --image-pull-policy Never or IfNotPresent. Needs the\n" +
			"cluster-scoped list nodes permission.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect()
			if err != nil {
				return err
			}
			nodes, err := listNodes(cmd.Context(), cl.Clientset())
			if err != nil {
				return err
			}
			match := ""
			if len(args) == 1 {
				match = args[0]
			}
			rows := imageRows(nodes, match)
			if done, err := c.print(rows); done {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintf(c.stderr, "No images reported by %d nodes.\n", len(nodes))
				return nil
			}
			tw := c.table()
			fmt.Fprintln(tw, "NODE\tIMAGE\tSIZE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Node, cmp.Or(r.Image, "<none>"), humanBytes(r.Size))
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, c, "json or yaml")
	return cmd
}

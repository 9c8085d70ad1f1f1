package main

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestImageRows(t *testing.T) {
	node := func(name string, imgs ...corev1.ContainerImage) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Images: imgs}}
	}
	bb := corev1.ContainerImage{Names: []string{"docker.io/library/busybox@sha256:ab", "docker.io/library/busybox:1.37"}, SizeBytes: 2 << 20}
	py := corev1.ContainerImage{Names: []string{"python:3-slim"}, SizeBytes: 47 << 20}
	anon := corev1.ContainerImage{SizeBytes: 5}
	digest := corev1.ContainerImage{Names: []string{"x@sha256:cd"}, SizeBytes: 7}
	tests := []struct {
		name  string
		nodes []corev1.Node
		match string
		want  []nodeImage
	}{
		{"no nodes", nil, "", []nodeImage{}},
		{"per node, sorted", []corev1.Node{node("n2", bb), node("n1", py, bb)}, "", []nodeImage{
			{Node: "n1", Image: "docker.io/library/busybox:1.37", Names: bb.Names, Size: 2 << 20},
			{Node: "n1", Image: "python:3-slim", Names: py.Names, Size: 47 << 20},
			{Node: "n2", Image: "docker.io/library/busybox:1.37", Names: bb.Names, Size: 2 << 20},
		}},
		{"a digest only, no name", []corev1.Node{node("n", digest, anon)}, "", []nodeImage{
			{Node: "n", Image: "", Names: []string{}, Size: 5},
			{Node: "n", Image: "x@sha256:cd", Names: digest.Names, Size: 7},
		}},
		{"match any name", []corev1.Node{node("n", bb, py, anon)}, "sha256:ab", []nodeImage{
			{Node: "n", Image: "docker.io/library/busybox:1.37", Names: bb.Names, Size: 2 << 20},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := imageRows(tt.nodes, tt.match); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestListNodes(t *testing.T) {
	forbidden := fake.NewClientset()
	forbidden.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("nodes"), "", errors.New(`User "system:serviceaccount:ns:sa" cannot list resource "nodes"`))
	})
	tests := []struct {
		name  string
		cs    *fake.Clientset
		nodes int
		err   string
	}{
		{"listed", fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}), 1, ""},
		{"forbidden", forbidden, 0, "needs the cluster-scoped `list nodes` permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes, err := listNodes(context.Background(), tt.cs)
			switch {
			case tt.err == "" && err != nil, len(nodes) != tt.nodes:
				t.Errorf("%d nodes, %v; want %d", len(nodes), err, tt.nodes)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") || !apierrors.IsForbidden(err)):
				t.Errorf("err %v: want one line containing %q that is still IsForbidden", err, tt.err)
			}
		})
	}
}

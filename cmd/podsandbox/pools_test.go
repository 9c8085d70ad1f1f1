package main

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
)

// poolPod returns a pool pod of pool name and spec hash in state, made at created.
func poolPod(name, spec, state string, phase corev1.PodPhase, ready bool, created time.Time) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{podsandbox.LabelManagedBy: podsandbox.ManagedByValue,
				podsandbox.LabelPool: name, podsandbox.LabelPoolSpec: spec, podsandbox.LabelPoolState: state},
			Annotations:       map[string]string{podsandbox.AnnotationMode: "api"},
			CreationTimestamp: metav1.NewTime(created),
		},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: phase},
	}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func TestPoolRows(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	run, pend, fail := corev1.PodRunning, corev1.PodPending, corev1.PodFailed
	gone := poolPod("a", "h1", "warm", run, true, t0.Add(-time.Hour))
	gone.DeletionTimestamp = &metav1.Time{Time: t0}
	notReady := poolPod("a", "h1", "warm", run, false, t0)
	notReady.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	cold := poolPod("", "", "", run, true, t0)
	delete(cold.Labels, podsandbox.LabelPool)

	tests := []struct {
		name string
		pods []corev1.Pod
		want []poolInfo
	}{
		{"none", nil, []poolInfo{}},
		{"a pod without a pool", []corev1.Pod{cold}, []poolInfo{}},
		{"one warm", []corev1.Pod{poolPod("a", "h1", "warm", run, true, t0)},
			[]poolInfo{{Pool: "a", Spec: "h1", Mode: "api", Image: "busybox", Warm: 1, Oldest: t0}}},
		{"every state", []corev1.Pod{
			poolPod("a", "h1", "warm", run, true, t0),
			poolPod("a", "h1", "warm", pend, false, t0.Add(time.Second)),
			notReady,
			poolPod("a", "h1", "claimed", run, true, t0.Add(-time.Minute)),
			poolPod("a", "h1", "warm", fail, false, t0),
			gone, // terminating: counted apart, and not the oldest
		}, []poolInfo{{Pool: "a", Spec: "h1", Mode: "api", Image: "busybox", Warm: 1, Starting: 2, Claimed: 1, Failed: 1,
			Terminating: 1, Oldest: t0.Add(-time.Minute)}}},
		{"pools and specs apart, sorted", []corev1.Pod{
			poolPod("b", "h1", "warm", run, true, t0),
			poolPod("a", "h2", "claimed", run, true, t0),
			poolPod("a", "h1", "warm", run, true, t0),
		}, []poolInfo{
			{Pool: "a", Spec: "h1", Mode: "api", Image: "busybox", Warm: 1, Oldest: t0},
			{Pool: "a", Spec: "h2", Mode: "api", Image: "busybox", Claimed: 1, Oldest: t0},
			{Pool: "b", Spec: "h1", Mode: "api", Image: "busybox", Warm: 1, Oldest: t0},
		}},
		{"only terminating", []corev1.Pod{gone}, []poolInfo{{Pool: "a", Spec: "h1", Mode: "api", Image: "busybox", Terminating: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := poolRows(tt.pods); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestPoolTable(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rows := []poolInfo{
		{Pool: "a", Spec: "h1", Mode: "api", Image: "busybox", Warm: 2, Starting: 1, Claimed: 3, Failed: 1, Terminating: 4, Oldest: now.Add(-90 * time.Second)},
		{Pool: "b", Spec: "h2", Mode: "http", Image: "server", Terminating: 1},
	}
	tests := []struct {
		name string
		wide bool
		want [][]string
	}{
		{"narrow", false, [][]string{
			{"POOL", "SPEC", "WARM", "STARTING", "CLAIMED", "OLDEST"},
			{"a", "h1", "2", "1", "3", "1m30s"},
			{"b", "h2", "0", "0", "0", "-"},
		}},
		{"wide", true, [][]string{
			{"POOL", "SPEC", "WARM", "STARTING", "CLAIMED", "OLDEST", "MODE", "IMAGE", "FAILED", "TERMINATING"},
			{"a", "h1", "2", "1", "3", "1m30s", "api", "busybox", "1", "4"},
			{"b", "h2", "0", "0", "0", "-", "http", "server", "0", "1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := poolTable(rows, tt.wide, now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func mkdirs(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckoutRoot(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "checkout")
	mkdirs(t, root+"/go.mod", root+"/hack/cluster/", root+"/adapters/go.mod", root+"/adapters/x/y/",
		tmp+"/other/go.mod", tmp+"/other/pkg/")
	for dir, want := range map[string]string{
		root:                   root,
		root + "/hack/cluster": root,
		root + "/adapters/x/y": root, // a nested module finds the checkout, not adapters/
		tmp + "/other/pkg":     tmp + "/other",
		tmp + "/other":         tmp + "/other",
	} {
		got, err := checkoutRoot(dir)
		if err != nil || got != want {
			t.Errorf("checkoutRoot(%s) = %q, %v; want %q", dir, got, err, want)
		}
	}
	if _, err := checkoutRoot(tmp); err == nil {
		t.Error("checkoutRoot found a go.mod where there is none")
	}
}

func TestKubeconfigPath(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root+"/go.mod", root+"/hack/cluster/", root+"/pkg/")
	t.Chdir(root + "/pkg")

	t.Setenv("KUBECONFIG", "")
	_, err := kubeconfigPath()
	if err == nil || !strings.Contains(err.Error(), "make cluster-up") || !strings.Contains(err.Error(), filepath.Join(root, ".cluster", "kubeconfig")) {
		t.Errorf("missing kubeconfig: got %v, want an error naming the path and make cluster-up", err)
	}

	mkdirs(t, root+"/.cluster/kubeconfig")
	if p, err := kubeconfigPath(); err != nil || p != filepath.Join(root, ".cluster", "kubeconfig") {
		t.Errorf("got %q, %v", p, err)
	}

	t.Setenv("KUBECONFIG", "/some/where")
	if p, err := kubeconfigPath(); err != nil || p != "/some/where" {
		t.Errorf("KUBECONFIG set: got %q, %v", p, err)
	}
}

// TestSetupUnreachable: a kubeconfig whose server does not answer fails setup with a message
// saying what to do (the suite then exits 1: it never skips).
func TestSetupUnreachable(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	// 127.0.0.1:1 is loopback and refuses connections.
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	t.Setenv("KUBECONFIG", kc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := setup(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "make cluster-up") {
		t.Errorf("got %v", err)
	}
}

func TestPackageName(t *testing.T) {
	defer func(a string) { os.Args[0] = a }(os.Args[0])
	for in, want := range map[string]string{
		"/tmp/go-build1/b001/podsandbox.test":     "podsandbox",
		"/x/E2E_Things.test":                      "e2e-things",
		"/x/a-very-long-package-name-indeed.test": "a-very-long-package",
		"/x/___.test":                             "test",
	} {
		os.Args[0] = in
		if got := packageName(); got != want {
			t.Errorf("packageName(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestDump(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec:       corev1.PodSpec{NodeName: "localhost"},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      "10.244.0.9",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "main", Image: ImageBusybox, RestartCount: 2,
					State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}},
				{Name: "side", Image: ImageNoShell,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull"}}},
			},
		},
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "ns"},
		Type:           "Warning", Reason: "BackOff", Message: "Back-off restarting", Count: 4, LastTimestamp: now,
	}
	client := fake.NewClientset(pod, ev)
	var b strings.Builder
	Dump(context.Background(), &b, client, "ns")
	Dump(context.Background(), &b, client, "ns", "gone")
	out := b.String()
	for _, want := range []string{
		"=== pod ns/p: phase Running", `pod IP "10.244.0.9"`, "condition Ready=False ContainersNotReady",
		"container main: running since", "restarts=2", "last: terminated exit 3 Error",
		"container side: waiting ErrImageNeverPull", "BackOff: Back-off restarting (x4)",
		"logs of main (last 50 lines):", "| fake logs", "=== pod ns/gone: already deleted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "logs of side") {
		t.Errorf("dump asked for logs of a container that never started:\n%s", out)
	}
}

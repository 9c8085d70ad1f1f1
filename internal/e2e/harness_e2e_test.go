//go:build e2e

package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// TestHarness checks what Main and Env provide.
func TestHarness(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	if env.Config.QPS != e2e.QPS || env.Config.Burst != e2e.Burst {
		t.Errorf("client QPS/Burst %v/%d, want %v/%d", env.Config.QPS, env.Config.Burst, e2e.QPS, e2e.Burst)
	}
	ns, err := env.Client.CoreV1().Namespaces().Get(ctx(t), env.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ns.Name, e2e.NamespacePrefix) || ns.Labels[e2e.LabelE2E] != "true" || ns.Labels[e2e.LabelRun] != env.RunID {
		t.Errorf("run namespace %s, labels %v", ns.Name, ns.Labels)
	}

	extra := e2e.CreateNamespace(t, "psbx-e2e-extra")
	if !strings.HasPrefix(extra, "psbx-e2e-extra-") {
		t.Errorf("CreateNamespace gave %q", extra)
	}
	if _, err := env.Client.CoreV1().ServiceAccounts(extra).Get(ctx(t), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("the new namespace has no default ServiceAccount yet: %v", err)
	}
}

// TestDumpAndExec runs a pod, execs into it, and checks that a dump shows its status, events and
// logs.
func TestDumpAndExec(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	pod := env.RunPod(t, e2e.Pod("dump", e2e.ImageBusybox, "sh", "-c", "echo hello-from-the-log; exec sleep 600"))

	out, _, err := env.Exec(ctx(t), pod.Namespace, pod.Name, "main", strings.NewReader("in"), "sh", "-c", "cat; echo; echo err >&2; exit 3")
	if code, ok := e2e.ExitCode(err); !ok || code != 3 || string(out) != "in\n" {
		t.Errorf("exec: out %q, err %v (exit %d, %t); want out \"in\\n\" and exit 3", out, err, code, ok)
	}

	var b strings.Builder
	e2e.Dump(ctx(t), &b, env.Client, pod.Namespace, pod.Name)
	for _, want := range []string{"=== pod " + pod.Namespace + "/dump: phase Running", "condition Ready=True",
		"container main: running", "Started", "| hello-from-the-log"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("dump lacks %q:\n%s", want, b.String())
		}
	}
}

//go:build e2e

package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox/examples/internal/cli"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// TestRBACAndQuickstartAsServiceAccount runs the walk-through's last two steps, which need no
// kind, on the local cluster: apply deploy/rbac.yaml (twice: the second apply updates), then the
// quickstart flow as the podsandbox ServiceAccount.
func TestRBACAndQuickstartAsServiceAccount(t *testing.T) {
	env := e2e.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buf cli.Buffer
	step := stepper(&buf)
	rbac := filepath.Join("..", "..", "deploy", "rbac.yaml")
	for range 2 {
		if err := applyRBAC(ctx, env.Config, rbac, env.Namespace, step); err != nil {
			t.Fatal(err)
		}
	}
	asSA := rest.CopyConfig(env.Config)
	asSA.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + env.Namespace + ":podsandbox",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + env.Namespace, "system:authenticated"},
	}
	err := quickstart(ctx, asSA, Config{Namespace: env.Namespace, PythonImage: e2e.ImagePython}, &buf)
	out := buf.String()
	t.Logf("output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rbac: ServiceAccount/podsandbox applied in namespace " + env.Namespace,
		"rbac: Role/podsandbox applied",
		"rbac: RoleBinding/podsandbox applied",
		"rbac: ServiceAccount/podsandbox exists",
		"  $ python3 -c 'print(1+1)'\n    2    (exit 0)",
		"hello from pab-sandbox-",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(out, "stopped: pod "); n != 2 {
		t.Errorf("%d pods stopped, want 2", n)
	}
}

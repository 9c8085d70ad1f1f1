//go:build e2e

package podsandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// denseResources keep the suite's ~50 parallel pods schedulable on a 2-core node (upstream's
// 100m CPU request fits about 19); TestPodSpec checks the real defaults.
var denseResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
	Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
}

// modeImage is the image each transport mode runs in the tests.
var modeImage = map[podsandbox.Mode]string{podsandbox.ModeHTTP: e2e.ImageServer, podsandbox.ModeAPI: e2e.ImageBusybox}

// testAgent is the agent the "api-agent" transports inject, built once by TestMain.
var testAgent *podsandbox.Agent

func TestMain(m *testing.M) {
	if ns := os.Getenv("PODSANDBOX_REAPER_CHILD"); ns != "" {
		reaperChild(ns) // the child process of TestReaperAfterSIGKILL; never returns
	}
	if ns := os.Getenv("PODSANDBOX_CALLER_CHILD"); ns != "" {
		callerChild(ns) // the child process of TestDrillCallerKilled; never returns
	}
	bin, err := e2e.BuildAgent()
	if err == nil {
		testAgent, err = podsandbox.NewAgent(bin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e2e.Main(m)
}

// testClient returns a Client for cfg that the test closes when it ends, checking that Close
// succeeds (no watch left running).
func testClient(t *testing.T, cfg *rest.Config) *podsandbox.Client {
	t.Helper()
	c, err := podsandbox.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Client.Close: %v", err)
		}
	})
	return c
}

var (
	restrictedOnce sync.Once
	restrictedCfg  *rest.Config
	restrictedErr  error
)

// restrictedConfig returns a client configuration for the ServiceAccount of deploy/rbac.yaml,
// applied in the test namespace: the conformance suite runs with exactly the verbs it grants.
func restrictedConfig(t *testing.T) *rest.Config {
	t.Helper()
	env := e2e.Env(t)
	restrictedOnce.Do(func() { restrictedCfg, restrictedErr = applyRBAC(env) })
	if restrictedErr != nil {
		t.Fatalf("applying deploy/rbac.yaml: %v", restrictedErr)
	}
	return restrictedCfg
}

func applyRBAC(env *e2e.Cluster) (*rest.Config, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := os.ReadFile("deploy/rbac.yaml")
	if err != nil {
		return nil, err
	}
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, err
		}
		switch meta.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return nil, err
			}
			_, err = env.Client.CoreV1().ServiceAccounts(env.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		case "Role":
			var o rbacv1.Role
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return nil, err
			}
			_, err = env.Client.RbacV1().Roles(env.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		case "RoleBinding":
			var o rbacv1.RoleBinding
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return nil, err
			}
			for i := range o.Subjects {
				o.Subjects[i].Namespace = env.Namespace
			}
			_, err = env.Client.RbacV1().RoleBindings(env.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	exp := int64(7200)
	tok, err := env.Client.CoreV1().ServiceAccounts(env.Namespace).CreateToken(ctx, "podsandbox",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tok.Status.Token
	cfg.QPS, cfg.Burst = env.Config.QPS, env.Config.Burst
	return cfg, nil
}

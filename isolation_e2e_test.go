//go:build e2e

package podsandbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// TestNetworkPolicyLifecycle: on both transports, as the ServiceAccount of deploy/rbac.yaml, a
// sandbox's NetworkPolicy exists before its first command, selects its pod and only it, is owned
// by the pod, and is gone after Stop; WithOpenNetwork makes none.
func TestNetworkPolicyLifecycle(t *testing.T) {
	cases := []struct {
		name  string
		image string
		opts  []podsandbox.Option
		open  bool
	}{
		{"http", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithEgressAllow("10.244.0.0/24", 8080)}, false},
		{"api", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}, false},
		{"api-open", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithOpenNetwork()}, true},
	}
	env := e2e.Env(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testClient(t, restrictedConfig(t))
			sb := startSandboxWith(t, c, tc.image, tc.opts...)
			mustExec(t, sb, "true")
			ctx := ctxT(t, time.Minute)
			policies := env.Client.NetworkingV1().NetworkPolicies(env.Namespace)
			np, err := policies.Get(ctx, sb.PodName(), metav1.GetOptions{})
			if tc.open {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("WithOpenNetwork: policy %v, err %v; want none", np, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the sandbox's NetworkPolicy: %v", err)
			}
			pod, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, sb.PodName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
				t.Errorf("selector %v (%v) does not select the pod (labels %v)", sel, err, pod.Labels)
			}
			all, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err != nil || len(all.Items) != 1 {
				t.Errorf("the selector %s selects %d pods (%v), want 1", sel, len(all.Items), err)
			}
			if len(np.OwnerReferences) != 1 || np.OwnerReferences[0].UID != pod.UID {
				t.Errorf("owners %+v, want the pod %s", np.OwnerReferences, pod.UID)
			}
			if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Egress) == 0 {
				t.Errorf("spec %+v: want ingress and egress governed, with the DNS rule", np.Spec)
			}
			if err := sb.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := policies.Get(ctx, sb.PodName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after Stop the policy is still there (%v)", err)
			}
		})
	}
}

// TestNetworkPolicyGoesWithThePod: without Stop (the caller died), the garbage collector removes
// the policy with its pod.
func TestNetworkPolicyGoesWithThePod(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	c := testClient(t, restrictedConfig(t))
	sb := startSandboxWith(t, c, e2e.ImageBusybox, podsandbox.WithMode(podsandbox.ModeAPI))
	ctx := ctxT(t, 2*time.Minute)
	zero := int64(0)
	if err := env.Client.CoreV1().Pods(env.Namespace).Delete(ctx, sb.PodName(), metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := env.Client.NetworkingV1().NetworkPolicies(env.Namespace).Get(ctx, sb.PodName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the policy outlived its pod: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRuntimeClassFailsFast: a RuntimeClass that does not exist, and one whose handler the node
// lacks, end Start at once with a *StartupError naming the reason; nothing is left behind.
func TestRuntimeClassFailsFast(t *testing.T) {
	env := e2e.Env(t)
	ctx := ctxT(t, 2*time.Minute)
	missing := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{GenerateName: "psbx-e2e-nohandler-"}, Handler: "psbx-not-installed"}
	rc, err := env.Client.NodeV1().RuntimeClasses().Create(ctx, missing, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.NodeV1().RuntimeClasses().Delete(context.Background(), rc.Name, metav1.DeleteOptions{})
	})
	cases := []struct {
		class, reason, says string
	}{
		{"psbx-no-such-class", "RuntimeClassNotFound", "not found"},
		{rc.Name, "RuntimeHandlerUnavailable", "psbx-not-installed"},
	}
	for _, tc := range cases {
		for _, mode := range []podsandbox.Mode{podsandbox.ModeHTTP, podsandbox.ModeAPI} {
			t.Run(tc.reason+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				image := e2e.ImageBusybox
				if mode == podsandbox.ModeHTTP {
					image = e2e.ImageServer
				}
				c := testClient(t, restrictedConfig(t))
				sb, err := c.NewSandbox(image, podsandbox.WithNamespace(env.Namespace), podsandbox.WithImagePullPolicy("Never"),
					podsandbox.WithMode(mode), podsandbox.WithRuntimeClass(tc.class), podsandbox.WithStartupTimeout(50*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				err = sb.Start(ctxT(t, time.Minute))
				took := time.Since(t0)
				var se *podsandbox.StartupError
				if !errors.As(err, &se) || se.Reason != tc.reason || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("Start: %v; want a StartupError %s mentioning %q", err, tc.reason, tc.says)
				}
				if took > 40*time.Second {
					t.Errorf("Start took %s: the startup timeout ended it, not the reason", took)
				}
				t.Logf("failed in %s: %v", took.Round(time.Millisecond), err)
				waitNoneLeft(t, env, sb.PodName())
			})
		}
	}
}

// waitNoneLeft waits until no pod, Secret or NetworkPolicy of the sandbox's pod name is left.
func waitNoneLeft(t *testing.T, env *e2e.Cluster, pod string) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	for {
		var left []string
		if _, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, pod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "pod")
		}
		if _, err := env.Client.NetworkingV1().NetworkPolicies(env.Namespace).Get(ctx, pod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "network policy")
		}
		ss, err := env.Client.CoreV1().Secrets(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss.Items {
			if strings.HasPrefix(s.Name, pod+"-token-") {
				left = append(left, "secret "+s.Name)
			}
		}
		if len(left) == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("left behind: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

//go:build e2e

package podsandbox_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
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

// target is an address a sandbox tries to connect to, and what its listener says first.
type target struct {
	name     string
	host     string
	port     int
	httpPath string // "": a raw TCP listener with a banner; else an HTTP server, asked for this path
	says     string
}

// reach reports whether sb can open a TCP connection to tg: whether tg's first words come back.
// The target's address comes in the environment, never in the script.
func reach(t *testing.T, sb podsandbox.Sandbox, tg target) (bool, string) {
	t.Helper()
	cmd := `timeout 3 nc "$H" "$P" </dev/null 2>&1`
	if tg.httpPath != "" { // busybox's wget crashes in these images; speak HTTP/1.0 through nc
		cmd = `printf 'GET %s HTTP/1.0\r\n\r\n' "$U" | timeout 3 nc "$H" "$P" 2>&1 | head -n 1`
	}
	r := mustExec(t, sb, cmd, podsandbox.WithExecEnv(map[string]string{"H": tg.host, "P": strconv.Itoa(tg.port), "U": tg.httpPath}))
	out := strings.TrimSpace(r.Output)
	return strings.HasPrefix(out, tg.says), out
}

// waitEnforced waits until sb can no longer reach tg, which its policy denies. The enforcer writes
// a pod's rules when it sees the pod's IP, which may be after Start returns: the wait is bounded,
// and the log says whether the first command already met the rules.
func waitEnforced(t *testing.T, sb podsandbox.Sandbox, tg target) {
	t.Helper()
	t0 := time.Now()
	for attempt := 1; ; attempt++ {
		if ok, _ := reach(t, sb, tg); !ok {
			t.Logf("the policy was in force at command %d after Start (%s)", attempt, time.Since(t0).Round(time.Millisecond))
			return
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("after 30s the sandbox still reaches %s: no enforcer applied its policy", tg.name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeAddressFor returns the address this machine has on the pod network of podIP: the node as
// its pods see it (the local cluster runs its node on this machine).
func nodeAddressFor(t *testing.T, podIP string) string {
	t.Helper()
	ip := net.ParseIP(podIP)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.Contains(ip) {
			return n.IP.String()
		}
	}
	t.Fatalf("no address of this machine is on the network of pod IP %s: the enforcement test needs the local cluster", podIP)
	return ""
}

func podIP(t *testing.T, sb podsandbox.Sandbox) string {
	t.Helper()
	env := e2e.Env(t)
	p, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctxT(t, 30*time.Second), sb.(*podsandbox.KubernetesPodSandbox).PodName(), metav1.GetOptions{})
	if err != nil || p.Status.PodIP == "" {
		t.Fatalf("pod IP: %v", err)
	}
	return p.Status.PodIP
}

// TestEgressEnforced proves the default NetworkPolicy with the cluster's enforcer, on both
// transports. Every target is an address of this machine: a pod that listens (its network open),
// a listener of this test on the node's address on the pod network, standing for the API server
// (port 6443) of a node, and a sandbox of another session. An open-network sandbox reaches each
// (so each check can fail), a default sandbox reaches none, and an allow-listed pod:port is
// reachable while the rest stays closed.
func TestEgressEnforced(t *testing.T) {
	e2e.RequireEnforcer(t)
	env := e2e.Env(t)
	c := testClient(t, restrictedConfig(t))

	// the open pod: listens on 9000 and may reach everything
	open := startSandboxWith(t, c, e2e.ImageBusybox, podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithOpenNetwork())
	if _, err := open.StartProcess(ctxT(t, time.Minute), `while true; do echo hello-pod | nc -l -p 9000; done`); err != nil {
		t.Fatal(err)
	}
	openIP := podIP(t, open)

	// the node's listener
	node := nodeAddressFor(t, openIP)
	ln, err := net.Listen("tcp", net.JoinHostPort(node, "6443"))
	if err != nil {
		t.Fatalf("listening on the node's pod-network address as the API server would: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("hello-node\n"))
			conn.Close()
		}
	}()

	// another session's sandbox, and this test's sessions
	f := newFactory(t, e2e.ImageServer, managerOpts(env.Namespace, podsandbox.WithMode(podsandbox.ModeHTTP))...)
	m := newManager(t, f)
	other, err := m.GetOrCreate(ctxT(t, 2*time.Minute), "other-session")
	if err != nil {
		t.Fatal(err)
	}
	otherIP := podIP(t, other)

	targets := []target{
		{"another pod's port", openIP, 9000, "", "hello-pod"},
		{"the node (API server port)", node, 6443, "", "hello-node"},
		{"another session's sandbox", otherIP, 8080, "/health", "HTTP/1."},
	}
	for _, tg := range targets {
		if ok, out := reach(t, open, tg); !ok {
			t.Fatalf("control: the open-network pod cannot reach %s (%s:%d): %q; the check below could not fail", tg.name, tg.host, tg.port, out)
		}
	}

	for _, tc := range []transportCase{
		{"http", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachProxy)}},
		{"api", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mine := startSandboxWith(t, c, tc.image, tc.opts...)
			waitEnforced(t, mine, targets[1])
			for _, tg := range targets {
				if ok, out := reach(t, mine, tg); ok {
					t.Errorf("the default sandbox reached %s (%s:%d): %q", tg.name, tg.host, tg.port, out)
				}
			}
			t.Run("DNS", func(t *testing.T) {
				t.Skip("the local cluster runs no DNS server (the kubelet has no clusterDNS), so a lookup cannot succeed with or without the policy; the DNS rule itself is checked in TestNetworkPolicyBody")
			})

			allowed := startSandboxWith(t, c, tc.image, append(slices.Clone(tc.opts), podsandbox.WithEgressAllow(openIP+"/32", 9000))...)
			waitEnforced(t, allowed, targets[1])
			if ok, out := reach(t, allowed, targets[0]); !ok {
				t.Errorf("the allow-listed pod:port is not reachable: %q", out)
			}
			for _, tg := range targets[1:] {
				if ok, out := reach(t, allowed, tg); ok {
					t.Errorf("the allow-listed sandbox reached %s, which is not on its list: %q", tg.name, out)
				}
			}
		})
	}
}

//go:build e2e

package e2e_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsandbox/podsandbox/internal/e2e"
)

// The local cluster of `make cluster-up` (hack/cluster): its run directory and API server.
const (
	localRun    = "/run/podsandbox-cluster"
	localServer = "https://127.0.0.1:6443"
	podCIDR     = "10.244.0.0/24"
)

func isLocal(env *e2e.Cluster) bool {
	_, err := os.Stat(localRun + "/ip_forward.at-start")
	return err == nil && env.Config.Host == localServer
}

// TestNetworkRule checks the local cluster's network rule: pods must never be able to send traffic
// off this machine. IP forwarding is off on the host (as it was when the cluster started), and a
// pod has only the route to the pod network: no default route.
func TestNetworkRule(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	if !isLocal(env) {
		t.Skipf("the network rule is a property of the local cluster (%s), not of %s", localServer, env.Config.Host)
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(fwd)); got != "0" {
		t.Errorf("net.ipv4.ip_forward is %s on the host, must be 0", got)
	}
	if start, err := os.ReadFile(localRun + "/ip_forward.at-start"); err != nil || strings.TrimSpace(string(start)) != "0" {
		t.Errorf("ip_forward at cluster start: %q, %v (want 0)", start, err)
	}

	pod := env.RunPod(t, e2e.Pod("netrule", e2e.ImageBusybox, "sleep", "600"))
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil || !netip.MustParsePrefix(podCIDR).Contains(ip) {
		t.Errorf("pod IP %q is not in %s", pod.Status.PodIP, podCIDR)
	}
	out, _, err := env.Exec(ctx(t), pod.Namespace, pod.Name, "main", nil, "cat", "/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	// /proc/net/route: Iface Destination Gateway Flags ... Mask, addresses in little-endian hex.
	var routes []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		routes = append(routes, f[1]+"/"+f[7]+" via "+f[2])
		if f[1] == "00000000" {
			t.Errorf("the pod has a default route: %s", l)
		}
		if f[2] != "00000000" {
			t.Errorf("the pod has a route through a gateway: %s", l)
		}
	}
	if len(routes) != 1 || routes[0] != "0000F40A/00FFFFFF via 00000000" {
		t.Errorf("pod routes %v, want only the connected %s", routes, podCIDR)
	}
	if out, _, err := env.Exec(ctx(t), pod.Namespace, pod.Name, "main", nil, "ip", "route"); err != nil || strings.Contains(string(out), "default") {
		t.Errorf("ip route in the pod: %q, %v", out, err)
	}
}

// TestImages checks the local images the tests rely on.
func TestImages(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	uid := int64(1000)
	yes, no := true, false

	t.Run("busybox as 1000 with a read-only root", func(t *testing.T) {
		t.Parallel()
		p := e2e.Pod("bb-ro", e2e.ImageBusybox, "sleep", "600")
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid}
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no}
		pod := env.RunPod(t, p)
		out, stderr, err := env.Exec(ctx(t), pod.Namespace, pod.Name, "main", nil, "sh", "-c",
			`id -u; whoami; echo $HOME; stat -c %a /tmp; touch /x 2>&1 || echo ro; for a in timeout find grep awk base64 stat mkfifo cat; do command -v $a >/dev/null || echo missing $a; done`)
		want := "1000\nsandbox\n/workspace\n1777\n"
		if err != nil || !strings.HasPrefix(string(out), want) || !strings.HasSuffix(string(out), "ro\n") || strings.Contains(string(out), "missing") {
			t.Errorf("got %q (stderr %q, err %v), want %q... and a read-only root and all applets", out, stderr, err, want)
		}
	})
	t.Run("python", func(t *testing.T) {
		t.Parallel()
		p := e2e.Pod("py", e2e.ImagePython, "sleep", "600")
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid}
		pod := env.RunPod(t, p)
		out, stderr, err := env.Exec(ctx(t), pod.Namespace, pod.Name, "main", nil, "sh", "-c",
			`python3 -c 'print(1+1)'; whoami; ls --version | head -n1`)
		if err != nil || string(out) != "2\nsandbox\nls (GNU coreutils) 9.1\n" {
			t.Errorf("got %q (stderr %q, err %v)", out, stderr, err)
		}
	})
	t.Run("noshell has no shell", func(t *testing.T) {
		t.Parallel()
		pod := env.RunPod(t, e2e.Pod("noshell", e2e.ImageNoShell))
		if _, _, err := env.Exec(ctx(t), pod.Namespace, pod.Name, "main", nil, "/bin/sh", "-c", "true"); err == nil {
			t.Error("exec of /bin/sh succeeded in the noshell image")
		}
	})
}

//go:build e2e

package upstreamclient_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsandbox/podsandbox/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// pythonEnv names the Python interpreter to use instead of Debian's /usr/bin/python3.
const pythonEnv = "PODSANDBOX_PYTHON"

// port is the server's port in the pod (upstream's default).
const port = 8080

// upstreamPod is the pod pydantic-ai-backend's G1 client creates in mode="http" with its default
// body (non-root 1000, read-only root, /workspace and /tmp as emptyDirs, the token as a plain env
// value, a /health readiness probe), with the server image, pull policy Never (the image is
// side-loaded) and a 1 s grace period.
func upstreamPod(name, token string) *corev1.Pod {
	uid, grace := int64(1000), int64(1)
	yes, no := true, false
	size := func(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "pab-sandbox"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &grace,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "sandbox",
				Image:           e2e.ImageServer,
				ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{
					{Name: "SANDBOX_EXEC_TOKEN", Value: token},
					{Name: "SANDBOX_PORT", Value: strconv.Itoa(port)},
					{Name: "PYTHONUNBUFFERED", Value: "1"},
				},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
					RunAsUser: &uid, RunAsGroup: &uid,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("100m")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("768Mi"), corev1.ResourceCPU: resource.MustParse("1")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "workspace", MountPath: "/workspace"}, {Name: "tmp", MountPath: "/tmp"}},
				Ports:        []corev1.ContainerPort{{ContainerPort: port, Name: "exec"}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(port)}},
					InitialDelaySeconds: 1, PeriodSeconds: 2, FailureThreshold: 5,
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: size("1Gi")}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: size("256Mi")}}},
			},
		},
	}
}

// python returns Debian's python3 (or $PODSANDBOX_PYTHON), failing the test when it cannot import
// httpx.
func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv(pythonEnv)
	if py == "" {
		py = "/usr/bin/python3"
	}
	if out, err := exec.Command(py, "-c", "import httpx").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import httpx (%v: %s): run hack/cluster/packages.sh as root (it installs python3-httpx), or set %s",
			py, err, bytes.TrimSpace(out), pythonEnv)
	}
	return py
}

// line is one line of g1client.py's output: a check, or the bytes a file must hold.
type line struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	File   string `json:"file"`
	B64    string `json:"b64"`
}

// TestUpstreamHTTPClient runs testdata/g1client.py, which sends the requests of
// pydantic-ai-backend's G1 client (mode="http") for every method to a pod of the server image
// started with that client's pod body, and checks that client's results: write -> edit ->
// read_bytes round-trips byte for byte, grep_raw runs with GNU grep. Each check is a subtest; the
// files it wrote are then fetched through pods/exec (not the sandbox server) and compared.
func TestUpstreamHTTPClient(t *testing.T) {
	py := python(t)
	env := e2e.Env(t)
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(tok)

	start := time.Now()
	pod := env.RunPod(t, upstreamPod("pab-sandbox-g1-http", token))
	t.Logf("pod %s Ready at %s in %v", pod.Name, pod.Status.PodIP, time.Since(start).Round(time.Millisecond))
	if pod.Status.PodIP == "" {
		t.Fatal("the Ready pod has no IP")
	}
	base := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/g1client.py", "--base", base, "--token", token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start = time.Now()
	out, err := cmd.Output()
	t.Logf("g1client.py ran in %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("g1client.py: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), out)
	}

	var checks, files []line
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("g1client.py printed %q: %v", sc.Text(), err)
		}
		switch {
		case l.Check != "":
			if seen[l.Check] {
				t.Errorf("check %q given twice", l.Check)
			}
			seen[l.Check] = true
			checks = append(checks, l)
		case l.File != "":
			files = append(files, l)
		default:
			t.Fatalf("g1client.py printed %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Every method, at least: a run that stopped early must not pass.
	for _, prefix := range []string{"execute:", "write:", "read:", "read_bytes:", "edit:", "ls_info:", "glob_info:", "grep_raw:", "exists:", "health:"} {
		n := 0
		for _, c := range checks {
			if strings.HasPrefix(c.Check, prefix) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no %s checks in the output of g1client.py", strings.TrimSuffix(prefix, ":"))
		}
	}
	t.Logf("%d checks, %d files", len(checks), len(files))
	for _, c := range checks {
		t.Run(c.Check, func(t *testing.T) {
			if !c.OK {
				t.Error(c.Detail)
			}
		})
	}

	// The files, as the pod's file system holds them, in one tar stream through pods/exec.
	args := []string{"tar", "-C", "/", "-cf", "-", "--"}
	for _, f := range files {
		args = append(args, strings.TrimPrefix(f.File, "/"))
	}
	tarball, tarErr, err := env.Exec(ctx, pod.Namespace, pod.Name, "sandbox", nil, args...)
	if err != nil {
		t.Fatalf("%s: %v (%s)", strings.Join(args, " "), err, tarErr)
	}
	disk := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the tar stream: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		disk["/"+h.Name] = b
	}
	for _, f := range files {
		t.Run("on disk: "+f.File, func(t *testing.T) {
			want, err := base64.StdEncoding.DecodeString(f.B64)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := disk[f.File]
			if !ok {
				t.Fatalf("%s is not in the pod", f.File)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s holds %q, want %q", f.File, trim(got), trim(want))
			}
		})
	}
}

// trim shortens b for a message.
func trim(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "..."...)
	}
	return b
}

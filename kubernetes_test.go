package podsandbox

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podsandbox/podsandbox/internal/wire"
)

func fakeClient(objs ...runtime.Object) *fake.Clientset { return fake.NewClientset(objs...) }

// fakeSandbox makes a sandbox on a Client whose API requests go to cs (the REST configuration
// points nowhere: only the fake's requests are made).
func fakeSandbox(t testing.TB, cs kubernetes.Interface, image string, opts ...Option) (*KubernetesPodSandbox, error) {
	t.Helper()
	c := fakeClientFor(t, cs)
	return c.NewSandbox(image, opts...)
}

func fakeClientFor(t testing.TB, cs kubernetes.Interface) *Client {
	t.Helper()
	c, err := NewClient(&rest.Config{Host: "https://127.0.0.1:1"}, WithClientset(cs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(t.Context()); err != nil {
			t.Error(err)
		}
	})
	return c
}

// kubelet makes every created pod come up with the given container state, as a kubelet would.
func kubelet(cs *fake.Clientset, state corev1.ContainerState, phase corev1.PodPhase) {
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		p.UID = types.UID("uid-" + p.Name)
		p.Status = corev1.PodStatus{Phase: phase, PodIP: "127.0.0.1",
			ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, State: state}}}
		if state.Running != nil {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		return false, nil, nil
	})
}

// healthServer is a stand-in in-pod server on loopback answering /health and checking the token.
func healthServer(t *testing.T) (port int, tokens chan string) {
	tokens = make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.RouteHealth {
			w.Write([]byte(`{"ready":true}`))
			return
		}
		tokens <- r.Header.Get(wire.TokenHeader)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"exists":true}`))
	}))
	return serverPort(t, srv), tokens
}

// serverPort is the loopback port of srv, which the test closes when it ends.
func serverPort(t *testing.T, srv *httptest.Server) int {
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

// startFakeHTTP starts an HTTP-mode sandbox (by pod IP) on the fake clientset cs whose in-pod
// server is the loopback one on port; the test stops it when it ends.
func startFakeHTTP(ctx context.Context, t *testing.T, cs kubernetes.Interface, port int, id string) *KubernetesPodSandbox {
	t.Helper()
	sb, err := fakeSandbox(t, cs, "img", WithPort(port), WithReach(ReachPodIP), WithSandboxID(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

func deletes(cs *fake.Clientset, resource string) []k8stesting.DeleteAction {
	var out []k8stesting.DeleteAction
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetVerb() == "delete" && a.GetResource().Resource == resource {
			out = append(out, d)
		}
	}
	return out
}

func TestStartStopHTTPFake(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	port, tokens := healthServer(t)
	sb, err := fakeSandbox(t, cs, "img", WithPort(port), WithReach(ReachPodIP), WithSandboxID("fake-1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sb.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !sb.IsAlive(ctx) {
		t.Error("not alive after Start")
	}
	pod, _ := cs.CoreV1().Pods("default").Get(ctx, sb.PodName(), metav1.GetOptions{})
	if tokenSecretOf(pod) != sb.secretName() || !strings.HasPrefix(sb.secretName(), sb.PodName()+"-token-") {
		t.Fatalf("pod reads its token from %q, the sandbox made %q", tokenSecretOf(pod), sb.secretName())
	}
	sec, err := cs.CoreV1().Secrets("default").Get(ctx, sb.secretName(), metav1.GetOptions{})
	if err != nil || string(sec.Data["token"]) != sb.token || len(sec.OwnerReferences) != 1 {
		t.Fatalf("secret %+v %v", sec, err)
	}
	if ok, err := sb.Exists(ctx, "x"); !ok || err != nil {
		t.Fatalf("Exists: %v %v", ok, err)
	}
	if got := <-tokens; got != sb.token {
		t.Errorf("token header %q", got)
	}
	n := len(cs.Actions())
	for range 100 {
		sb.IsAlive(ctx)
	}
	if len(cs.Actions()) != n {
		t.Errorf("IsAlive made API requests")
	}
	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ds := deletes(cs, "pods")
	if len(ds) != 1 || ds[0].GetDeleteOptions().Preconditions == nil || string(*ds[0].GetDeleteOptions().Preconditions.UID) != "uid-"+sb.PodName() {
		t.Errorf("pod deletes %+v", ds)
	}
	if len(deletes(cs, "secrets")) != 1 {
		t.Errorf("secret not deleted")
	}
	if _, err := sb.Execute(ctx, "true"); !errors.Is(err, ErrStopped) {
		t.Errorf("Execute after Stop: %v", err)
	}
}

func TestStartFailureDeletesOnlyOwnPodFake(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "not present"}}, corev1.PodPending)
	sb, err := fakeSandbox(t, cs, "img", WithSandboxID("fail"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = sb.Start(context.Background())
	var se *StartupError
	if !errors.As(err, &se) || se.Reason != "ErrImageNeverPull" || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
	ds := deletes(cs, "pods")
	if len(ds) != 1 || string(*ds[0].GetDeleteOptions().Preconditions.UID) != "uid-"+sb.PodName() {
		t.Errorf("deletes %+v", ds)
	}
}

func TestConflictFake(t *testing.T) {
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName("taken"), Namespace: "default", UID: "theirs"}}
	cs := fakeClient(foreign)
	sb, err := fakeSandbox(t, cs, "img", WithSandboxID("taken"), WithMode(ModeHTTP))
	if err != nil {
		t.Fatal(err)
	}
	err = sb.Start(context.Background())
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v", err)
	}
	if len(deletes(cs, "pods")) != 0 {
		t.Error("a foreign pod was deleted")
	}
}

func TestAdoptFake(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	port, _ := healthServer(t)
	mk := func() *KubernetesPodSandbox {
		sb, err := fakeSandbox(t, cs, "img", WithPort(port), WithReach(ReachPodIP), WithSandboxID("same"))
		if err != nil {
			t.Fatal(err)
		}
		return sb
	}
	ctx := context.Background()
	a, b := mk(), mk()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatalf("adopt: %v", err)
	}
	if a.uid != b.uid || b.token != a.token {
		t.Errorf("b did not adopt a's pod and token")
	}
	creates := 0
	for _, act := range cs.Actions() {
		if act.GetVerb() == "create" && act.GetResource().Resource == "pods" {
			creates++
		}
	}
	if creates != 2 { // the second create got 409 and adopted
		t.Errorf("%d pod creates", creates)
	}
	a.Stop(ctx)
	b.Stop(ctx)
}

// TestTextNoTransportCarries: a NUL byte or bytes that are not UTF-8 in a path, command, pattern or
// env value, and a command longer than one exec argument can be, are refused with
// ErrInvalidArgument before any request, on every operation.
func TestTextNoTransportCarries(t *testing.T) {
	sb, err := fakeSandbox(t, fakeClient(), "img", WithMode(ModeAPI))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, bad := range []string{"a\x00b", "caf\xe9", "\xff"} {
		for name, call := range map[string]func() error{
			"Execute":   func() error { _, err := sb.Execute(ctx, "echo "+bad); return err },
			"WithDir":   func() error { _, err := sb.Execute(ctx, "true", WithDir(bad)); return err },
			"env":       func() error { _, err := sb.Execute(ctx, "true", WithExecEnv(map[string]string{"V": bad})); return err },
			"Read":      func() error { _, err := sb.Read(ctx, bad, 0, 10); return err },
			"ReadBytes": func() error { _, err := sb.ReadBytes(ctx, bad); return err },
			"Write":     func() error { _, err := sb.Write(ctx, bad, []byte("x")); return err },
			"Edit":      func() error { _, err := sb.Edit(ctx, "f", "x", bad, false); return err },
			"LsInfo":    func() error { _, err := sb.LsInfo(ctx, bad); return err },
			"GlobInfo":  func() error { _, err := sb.GlobInfo(ctx, "*", bad); return err },
			"GrepRaw":   func() error { _, err := sb.GrepRaw(ctx, "x", GrepOptions{Glob: bad}); return err },
			"Exists":    func() error { _, err := sb.Exists(ctx, bad); return err },
		} {
			if err := call(); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s with %q: %v, want ErrInvalidArgument", name, bad, err)
			}
		}
	}
	for _, n := range []int{MaxCommandBytes + 1, 200 << 10, 1 << 20} {
		_, err := sb.Execute(ctx, strings.Repeat(" ", n-4)+"true")
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), strconv.Itoa(MaxCommandBytes)) {
			t.Errorf("a %d-byte command: %v, want ErrInvalidArgument naming the limit", n, err)
		}
	}
	if _, err := sb.Execute(ctx, strings.Repeat(" ", MaxCommandBytes-4)+"true"); !errors.Is(err, ErrNotStarted) {
		t.Errorf("a command of exactly MaxCommandBytes: %v, want ErrNotStarted (the limit itself is allowed)", err)
	}
}

// A container that ended in a pod that never restarts it makes transport errors ErrSandboxGone at
// once, before the kubelet marks the pod Failed.
func TestGoneWhenTheContainerEnded(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	port, _ := healthServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sb := startFakeHTTP(ctx, t, cs, port, "fake-ended")
	refused := errors.New("dial tcp: connection refused")
	if err := sb.wrapErr(ctx, refused); errors.Is(err, ErrSandboxGone) {
		t.Fatalf("running pod: %v", err)
	}
	pod, err := cs.CoreV1().Pods("default").Get(ctx, sb.PodName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137}}
	pod.Status.Conditions = nil // phase stays Running for now, as the kubelet leaves it for a moment
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sb.IsAlive(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("the watch never saw the update")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := sb.wrapErr(ctx, refused); !errors.Is(err, ErrSandboxGone) {
		t.Errorf("ended container: %v, want ErrSandboxGone", err)
	}
}

// TestExecEndsWhenThePodGoes: a call whose in-pod server never sends its last answer (a dying
// pod's packets dropped on the way) ends with ErrSandboxGone about goneGrace after the watch shows
// the pod deleted, not at the call's deadline: Execute, and the file operations.
func TestExecEndsWhenThePodGoes(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, sb *KubernetesPodSandbox) error
	}{
		{"Execute", func(ctx context.Context, sb *KubernetesPodSandbox) error {
			_, err := sb.Execute(ctx, "sleep 60", WithTimeout(time.Minute))
			return err
		}},
		{"Read", func(ctx context.Context, sb *KubernetesPodSandbox) error {
			_, err := sb.Read(ctx, "f.txt", 0, 10)
			return err
		}},
		{"LsInfo", func(ctx context.Context, sb *KubernetesPodSandbox) error {
			_, err := sb.LsInfo(ctx, ".")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fakeClient()
			kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
			started := make(chan struct{})
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == wire.RouteHealth {
					w.Write([]byte(`{"ready":true}`))
					return
				}
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				close(started)
				select { // the answer never comes
				case <-release:
				case <-r.Context().Done():
				}
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sb := startFakeHTTP(ctx, t, cs, serverPort(t, srv), "fake-goes")
			done := make(chan error, 1)
			go func() { done <- tc.call(ctx, sb) }()
			<-started
			pod, err := cs.CoreV1().Pods("default").Get(ctx, sb.PodName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			now := metav1.Now()
			pod.DeletionTimestamp = &now
			if _, err := cs.CoreV1().Pods("default").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if err := <-done; !errors.Is(err, ErrSandboxGone) {
				t.Fatalf("%s = %v; want ErrSandboxGone", tc.name, err)
			}
			if d := time.Since(t0); d < goneGrace/2 || d > goneGrace+10*time.Second {
				t.Errorf("ended %s after the delete; want about %s (the grace for the server's own answer)", d, goneGrace)
			}
		})
	}
}

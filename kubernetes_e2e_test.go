//go:build e2e

package podsandbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
	"github.com/podsandbox/podsandbox/internal/wire"
)

// newSandbox builds (but does not start) a sandbox in the test namespace as the admin.
func newSandbox(t *testing.T, image string, opts ...podsandbox.Option) *podsandbox.KubernetesPodSandbox {
	t.Helper()
	env := e2e.Env(t)
	sb, err := podsandbox.NewKubernetesPodSandbox(image, append([]podsandbox.Option{
		podsandbox.WithRESTConfig(env.Config), podsandbox.WithNamespace(env.Namespace), podsandbox.WithImagePullPolicy("Never"),
		podsandbox.WithResources(denseResources),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

func podGone(t *testing.T, name string) bool {
	env := e2e.Env(t)
	_, err := env.Client.CoreV1().Pods(env.Namespace).Get(context.Background(), name, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

// TestPodSpec checks the hardened default pod: upstream's settings plus G3's fixes, the token from
// a Secret owned by the pod, and admission under Pod Security "restricted".
func TestPodSpec(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ns := e2e.CreateNamespace(t, "psbx-restricted")
	ctx := ctxT(t, 2*time.Minute)
	nsObj, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if _, err := env.Client.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []podsandbox.Mode{podsandbox.ModeHTTP, podsandbox.ModeAPI} {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, modeImage[mode], podsandbox.WithMode(mode), podsandbox.WithNamespace(ns), podsandbox.WithSandboxID("Spec_Test "+string(mode)),
				podsandbox.WithResources(podsandbox.DefaultResources()),
				podsandbox.WithLabels(map[string]string{"team": "a"}), podsandbox.WithEnv(map[string]string{"EXTRA": "1"}))
			if err := sb.Start(ctx); err != nil {
				t.Fatalf("Start in a restricted namespace: %v", err)
			}
			pod, err := env.Client.CoreV1().Pods(ns).Get(ctx, sb.PodName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(pod.Name, "pab-sandbox-spec-test-") || len(pod.Name) > 63 {
				t.Errorf("name %q", pod.Name)
			}
			for k, v := range map[string]string{"app": "pab-sandbox", podsandbox.LabelManagedBy: "podsandbox", "team": "a"} {
				if pod.Labels[k] != v {
					t.Errorf("label %s = %q", k, pod.Labels[k])
				}
			}
			if pod.Annotations[podsandbox.AnnotationSandboxID] != "Spec_Test "+string(mode) {
				t.Errorf("annotation %v", pod.Annotations)
			}
			s, c := pod.Spec, pod.Spec.Containers[0]
			sc := c.SecurityContext
			switch {
			case s.RestartPolicy != corev1.RestartPolicyNever, *s.AutomountServiceAccountToken, *s.EnableServiceLinks,
				*s.SecurityContext.RunAsUser != 1000, *s.SecurityContext.RunAsGroup != 1000, !*s.SecurityContext.RunAsNonRoot,
				s.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault,
				*sc.AllowPrivilegeEscalation, !*sc.ReadOnlyRootFilesystem, sc.Capabilities.Drop[0] != "ALL",
				*s.TerminationGracePeriodSeconds > 5, c.WorkingDir != "/workspace":
				t.Errorf("hardening missing: %+v", s)
			}
			if c.Resources.Limits.Memory().Cmp(resource.MustParse("768Mi")) != 0 || c.Resources.Requests.Cpu().Cmp(resource.MustParse("100m")) != 0 {
				t.Errorf("resources %+v", c.Resources)
			}
			for _, e := range c.Env {
				if e.Name == wire.EnvToken && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					t.Errorf("token must come from a Secret, got %+v", e)
				}
			}
			if mode == podsandbox.ModeHTTP {
				secretName := ""
				for _, e := range c.Env {
					if e.Name == wire.EnvToken && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						secretName = e.ValueFrom.SecretKeyRef.Name
					}
				}
				sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
				if err != nil || len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != pod.UID {
					t.Errorf("token Secret not owned by the pod: %+v %v", sec.OwnerReferences, err)
				}
			} else if len(c.Command) == 0 {
				t.Errorf("API mode needs a long-running command of its own")
			}
			r := mustExec(t, sb, `id -u; echo "$EXTRA"; touch /not-writable 2>/dev/null || echo ro`)
			if r.Stdout != "1000\n1\nro\n" {
				t.Errorf("in the pod: %q", r.Stdout)
			}
			// Stop deletes the pod quickly (short grace, SIGTERM handled) and is idempotent.
			start := time.Now()
			if err := sb.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if err := sb.Stop(ctx); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if sb.IsAlive(ctx) {
				t.Errorf("alive after Stop")
			}
			if _, err := sb.Execute(ctx, "true"); !errors.Is(err, podsandbox.ErrStopped) {
				t.Errorf("Execute after Stop: %v", err)
			}
			for !podGone(t, sb.PodName()) {
				if time.Since(start) > 20*time.Second {
					t.Fatalf("pod still there after %s", time.Since(start))
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s pod deleted in %s", mode, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestStartFailsEarly: pods that cannot start fail within seconds with the reason, and the pod is
// deleted.
func TestStartFailsEarly(t *testing.T) {
	t.Parallel()
	oom := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
		Command: []string{"python3", "-c", "x = bytearray(512 << 20); import time; time.sleep(60)"},
	}}}}
	// The template leaves resources empty, so WithResources fills them (WithPodTemplate's rule).
	tiny := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}}
	exits := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Command: []string{"true"}}}}}
	huge := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500")}}
	cases := []struct {
		name, image string
		opts        []podsandbox.Option
		reason      string
		is          error
	}{
		{"never pull", "podsandbox.local/not-there:1", nil, "ErrImageNeverPull", nil},
		{"pull fails", "podsandbox.local/not-there:2", []podsandbox.Option{podsandbox.WithImagePullPolicy(corev1.PullIfNotPresent)}, "ImagePull", nil},
		{"invalid name", "UPPER/Case::bad", nil, "InvalidImageName", nil},
		{"no shell in API mode", e2e.ImageNoShell, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}, "", podsandbox.ErrUnsupportedImage},
		{"exits at once", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithPodTemplate(exits)}, "", nil},
		{"OOMKilled", e2e.ImagePython, []podsandbox.Option{podsandbox.WithPodTemplate(oom), podsandbox.WithResources(tiny)}, "OOMKilled", nil},
		{"unschedulable", e2e.ImageServer, []podsandbox.Option{podsandbox.WithResources(huge), podsandbox.WithUnschedulableGrace(2 * time.Second)}, "Unschedulable", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t, c.image, append([]podsandbox.Option{podsandbox.WithStartupTimeout(60 * time.Second)}, c.opts...)...)
			start := time.Now()
			err := sb.Start(ctxT(t, 2*time.Minute))
			el := time.Since(start)
			var se *podsandbox.StartupError
			if !errors.As(err, &se) || !errors.Is(err, podsandbox.ErrStartup) {
				t.Fatalf("err = %v, want *StartupError", err)
			}
			if !strings.Contains(se.Reason, c.reason) {
				t.Errorf("reason %q, want %q (%v)", se.Reason, c.reason, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, c.is)
			}
			if el > 20*time.Second {
				t.Errorf("took %s: should fail early, not wait out the startup timeout", el)
			}
			t.Logf("%s after %s: %v", c.name, el.Round(time.Millisecond), err)
			deadline := time.Now().Add(30 * time.Second)
			for !podGone(t, sb.PodName()) {
				if time.Now().After(deadline) {
					t.Fatalf("failed pod was not deleted")
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

// TestConflictAndAdoption: a 409 never deletes someone else's pod; our own is adopted.
func TestConflictAndAdoption(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ctx := ctxT(t, 2*time.Minute)

	a := newSandbox(t, e2e.ImageServer, podsandbox.WithSandboxID("shared-session"))
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, "mark.txt", []byte("from a"))
	pa, _ := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, a.PodName(), metav1.GetOptions{})

	b := newSandbox(t, e2e.ImageServer, podsandbox.WithSandboxID("shared-session"))
	if err := b.Start(ctx); err != nil {
		t.Fatalf("adopting: %v", err)
	}
	pb, _ := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, b.PodName(), metav1.GetOptions{})
	if pa.UID != pb.UID {
		t.Errorf("a second pod was made instead of adopting")
	}
	if got, err := b.ReadBytes(ctx, "mark.txt"); string(got) != "from a" || err != nil {
		t.Errorf("adopted sandbox sees %q, %v", got, err)
	}

	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podsandbox.PodName("foreign"), Namespace: env.Namespace},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(0)), Containers: []corev1.Container{{Name: "c", Image: e2e.ImageBusybox, ImagePullPolicy: "Never", Command: []string{"sleep", "600"}}}}}
	fp, err := env.Client.CoreV1().Pods(env.Namespace).Create(ctx, foreign, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := newSandbox(t, e2e.ImageServer, podsandbox.WithSandboxID("foreign"))
	err = c.Start(ctx)
	var ce *podsandbox.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, podsandbox.ErrConflict) {
		t.Fatalf("err = %v, want *ConflictError", err)
	}
	_ = c.Stop(ctx)
	still, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, fp.Name, metav1.GetOptions{})
	if err != nil || still.UID != fp.UID || still.DeletionTimestamp != nil {
		t.Errorf("the foreign pod was touched: %v", err)
	}
}

// TestPodGoneBehindOurBack: deleting the pod makes IsAlive false (from the watch) and operations
// return ErrSandboxGone.
func TestPodGoneBehindOurBack(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	for _, mode := range []podsandbox.Mode{podsandbox.ModeHTTP, podsandbox.ModeAPI} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			image := modeImage[mode]
			sb := newSandbox(t, image, podsandbox.WithMode(mode))
			ctx := ctxT(t, 2*time.Minute)
			if err := sb.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if !sb.IsAlive(ctx) {
				t.Fatal("not alive after Start")
			}
			zero := int64(0)
			if err := env.Client.CoreV1().Pods(env.Namespace).Delete(ctx, sb.PodName(), metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for sb.IsAlive(ctx) {
				if time.Now().After(deadline) {
					t.Fatal("still alive 10s after the pod was deleted")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := sb.Execute(ctx, "true"); !errors.Is(err, podsandbox.ErrSandboxGone) {
				t.Errorf("Execute on a deleted pod: %v, want ErrSandboxGone", err)
			}
		})
	}
}

// TestTokenRequired: the in-pod server refuses a wrong token, and /health needs none.
func TestTokenRequired(t *testing.T) {
	t.Parallel()
	env := e2e.Env(t)
	ctx := ctxT(t, time.Minute)
	sb := newSandbox(t, e2e.ImageServer, podsandbox.WithSandboxID("token-check"))
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A second client with the same id but another token adopts the pod and keeps its own token:
	// the server refuses it.
	bad := newSandbox(t, e2e.ImageServer, podsandbox.WithSandboxID("token-check"), podsandbox.WithExecToken("wrong"), podsandbox.WithDeleteOnStop(false))
	if err := bad.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Execute(ctx, "true"); !errors.Is(err, podsandbox.ErrUnauthorized) {
		t.Errorf("wrong token: %v, want ErrUnauthorized", err)
	}
	raw, err := env.Client.CoreV1().Pods(env.Namespace).ProxyGet("http", sb.PodName(), "8080", wire.RouteHealth, nil).DoRaw(ctx)
	if err != nil || !strings.Contains(string(raw), "true") {
		t.Errorf("/health without token: %s %v", raw, err)
	}
}

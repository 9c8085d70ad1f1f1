package podsandbox

import (
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/podsandbox/podsandbox/internal/wire"
)

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestPodName(t *testing.T) {
	long := "My_Session.ID" + strings.Repeat("x", 80)
	cases := []struct {
		id, want, prefix string
	}{
		{id: "abc-123", want: "pab-sandbox-abc-123"},
		{id: "Sess_With_UPPER_and_underscores", prefix: "pab-sandbox-sess-with-upper-and-underscores-"},
		{id: "", prefix: "pab-sandbox-"},
		{id: long, prefix: "pab-sandbox-my-session-id"},
		{id: "ünï", prefix: "pab-sandbox-n-"},
		{id: "---", prefix: "pab-sandbox-"},
		{id: "a.b", prefix: "pab-sandbox-a-b-"},
	}
	for _, c := range cases {
		got := PodName(c.id)
		if c.want != "" && got != c.want {
			t.Errorf("PodName(%q) = %q, want %q", c.id, got, c.want)
		}
		if !strings.HasPrefix(got, c.prefix) || len(got) > 63 || !dns1123.MatchString(got) || len(validation.IsDNS1123Label(got)) > 0 {
			t.Errorf("PodName(%q) = %q: not a valid name with prefix %q", c.id, got, c.prefix)
		}
	}
	// ids that sanitise alike must not collide
	seen := map[string]string{}
	for _, id := range []string{"a-b", "A_b", "a.b", "a_b", "A-B", long, long + "y", strings.Repeat("z", 51), strings.Repeat("z", 52)} {
		n := PodName(id)
		if other, ok := seen[n]; ok {
			t.Errorf("%q and %q both map to %q", id, other, n)
		}
		seen[n] = id
	}
	if PodName("x") != PodName("x") {
		t.Error("not deterministic")
	}
}

func newTestSandbox(t *testing.T, opts ...Option) *KubernetesPodSandbox {
	t.Helper()
	sb, err := fakeSandbox(t, fakeClient(), "img:1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := m[e.Name]; dup {
			panic("duplicate env " + e.Name)
		}
		m[e.Name] = e
	}
	return m
}

// TestWorkspaceSize: /workspace's size limit is 1Gi, or WithWorkspaceSize's.
func TestWorkspaceSize(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{nil, "1Gi"},
		{[]Option{WithWorkspaceSize(resource.MustParse("64Mi"))}, "64Mi"},
	} {
		pod := newTestSandbox(t, tc.opts...).buildPod()
		var got string
		for _, v := range pod.Spec.Volumes {
			if v.Name == workspaceVol {
				got = v.EmptyDir.SizeLimit.String()
			}
		}
		if got != tc.want {
			t.Errorf("workspace size limit %q, want %q", got, tc.want)
		}
	}
}

func TestBuildPodDefaults(t *testing.T) {
	for _, mode := range []Mode{ModeHTTP, ModeAPI} {
		sb := newTestSandbox(t, WithMode(mode), WithSandboxID("s1"), WithEnv(map[string]string{"B": "2", "A": "1"}), WithLabels(map[string]string{"app": "mine"}))
		pod := sb.buildPod()
		c := pod.Spec.Containers[0]
		if pod.Name != "pab-sandbox-s1" || pod.Namespace != "default" || c.Name != "sandbox" || c.WorkingDir != "/workspace" {
			t.Errorf("%s: metadata %v %v", mode, pod.ObjectMeta, c.Name)
		}
		if pod.Labels["app"] != "mine" || pod.Labels[LabelManagedBy] != ManagedByValue || pod.Labels[LabelSandboxID] != "s1" {
			t.Errorf("%s: labels %v", mode, pod.Labels)
		}
		env := envOf(c)
		if env["HOME"].Value != "/workspace" || env["PYTHONUNBUFFERED"].Value != "1" || env["A"].Value != "1" {
			t.Errorf("%s: env %v", mode, c.Env)
		}
		tok, hasTok := env[wire.EnvToken]
		switch mode {
		case ModeHTTP:
			if !hasTok || tok.Value != "" || tok.ValueFrom.SecretKeyRef.Name != sb.secretName() || len(c.Ports) != 1 || c.ReadinessProbe == nil || c.Command != nil {
				t.Errorf("http: token %+v ports %v probe %v", tok, c.Ports, c.ReadinessProbe)
			}
		case ModeAPI:
			if hasTok || len(c.Ports) != 0 || c.ReadinessProbe != nil || len(c.Command) == 0 {
				t.Errorf("api: %+v", c)
			}
		}
		if strings.Contains(pod.String(), sb.token) {
			t.Errorf("%s: the token appears in the pod spec", mode)
		}
		if *pod.Spec.TerminationGracePeriodSeconds > 5 || *pod.Spec.AutomountServiceAccountToken || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: spec %+v", mode, pod.Spec)
		}
	}
}

func TestTemplateMerge(t *testing.T) {
	tmpl := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "mine", Env: []corev1.EnvVar{{Name: "A", Value: "template"}}, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
	}}}}
	tmpl.Labels = map[string]string{"app": "tmpl", LabelManagedBy: "spoof"}
	sb := newTestSandbox(t, WithPodTemplate(tmpl), WithEnv(map[string]string{"B": "extra"}), WithNamespace("ns1"))
	pod := sb.buildPod()
	c := pod.Spec.Containers[0]
	env := envOf(c)
	if c.Name != "mine" || c.Image != "img:1" || env["A"].Value != "template" || env["B"].Value != "extra" || len(c.Ports) != 1 {
		t.Errorf("merge: %+v", c)
	}
	if pod.Labels["app"] != "tmpl" || pod.Labels[LabelManagedBy] != ManagedByValue || pod.Namespace != "ns1" {
		t.Errorf("labels %v ns %s", pod.Labels, pod.Namespace)
	}
	if tmpl.Name != "" || len(tmpl.Spec.Containers[0].Env) != 1 {
		t.Error("the caller's template was modified")
	}
}

func TestTemplateToken(t *testing.T) {
	withTok := func(e corev1.EnvVar) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{e}}}}}
	}
	plain := withTok(corev1.EnvVar{Name: wire.EnvToken, Value: "preset"})
	sb := newTestSandbox(t, WithPodTemplate(plain))
	if sb.token != "preset" {
		t.Errorf("the client must use the template's token, got %q", sb.token)
	}
	if _, err := fakeSandbox(t, fakeClient(), "i", WithPodTemplate(plain), WithExecToken("other")); err == nil {
		t.Error("conflicting tokens accepted")
	}
	ref := withTok(corev1.EnvVar{Name: wire.EnvToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}})
	if _, err := fakeSandbox(t, fakeClient(), "i", WithPodTemplate(ref)); err == nil {
		t.Error("a token reference without WithExecToken accepted")
	}
}

package podsandbox

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// TestSpecRefuses: every contradiction or bad value is an ErrInvalidArgument whose text says what
// to change, before any pod exists.
func TestSpecRefuses(t *testing.T) {
	tmpl := func(mod func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
		mod(p)
		return p
	}
	small := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m")}}
	cases := []struct {
		name string
		opts []Option
		want string // a part of the message
	}{
		{"bad mode", []Option{WithMode("ssh")}, "use ModeHTTP or ModeAPI"},
		{"bad port", []Option{WithPort(0)}, "1-65535"},
		{"namespace", []Option{WithNamespace("Not_Valid")}, "namespace"},
		{"label key", []Option{WithLabels(map[string]string{"bad key!": "v"})}, "label"},
		{"own label", []Option{WithLabels(map[string]string{LabelManagedBy: "evil"})}, "podsandbox's own"},
		{"pool label", []Option{WithLabels(map[string]string{LabelPool: "x"})}, "podsandbox's own"},
		{"env name", []Option{WithEnv(map[string]string{"1X": "v"})}, "env name"},
		{"work dir", []Option{WithWorkDir("relative")}, "absolute"},
		{"startup timeout", []Option{WithStartupTimeout(0)}, "positive"},
		{"idle timeout zero", []Option{WithIdleTimeout(0)}, "reaper"},
		{"idle timeout negative", []Option{WithIdleTimeout(-time.Second)}, "positive"},
		{"reach", []Option{WithReach("carrier-pigeon")}, "reach"},
		{"active deadline", []Option{WithActiveDeadline(time.Millisecond)}, "at least 1s"},
		{"unschedulable grace", []Option{WithUnschedulableGrace(-1)}, "negative"},
		{"max file bytes", []Option{WithMaxFileBytes(0)}, "positive"},
		{"empty token", []Option{WithExecToken("")}, "generated token"},
		{"empty runtime class", []Option{WithRuntimeClass("")}, "default runtime"},
		{"pull policy", []Option{WithImagePullPolicy("Sometimes")}, "IfNotPresent"},
		{"nil template", []Option{WithPodTemplate(nil)}, "nil"},
		{"workspace size zero", []Option{WithWorkspaceSize(resource.MustParse("0"))}, "at least 1Mi"},
		{"workspace size and template", []Option{WithWorkspaceSize(resource.MustParse("2Gi")), WithPodTemplate(tmpl(func(*corev1.Pod) {}))}, "set the size in the template"},
		{"node selector", []Option{WithNodeSelector(map[string]string{"a b": "c"})}, "node selector"},
		{"nil option", []Option{nil}, "nil Option"},
		{"egress not a cidr", []Option{WithEgressAllow("example.com", 443)}, "not a CIDR"},
		{"egress host bits", []Option{WithEgressAllow("10.1.2.3/8")}, "did you mean 10.0.0.0/8"},
		{"egress port", []Option{WithEgressAllow("10.0.0.0/8", 70000)}, "outside 1-65535"},
		{"ingress from nobody", []Option{WithIngressFrom()}, "at least one peer"},
		{"open network and an allow-list", []Option{WithOpenNetwork(), WithEgressAllow("10.0.0.1/32")}, "keep one"},
		{"open network and ingress peers", []Option{WithOpenNetwork(), WithIngressFrom(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}})}, "keep one"},
		{"api with ingress peers", []Option{WithMode(ModeAPI), WithIngressFrom(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}})}, "ModeAPI accepts no connection"},
		{"network policy label", []Option{WithLabels(map[string]string{LabelNetworkPolicy: "x"})}, "podsandbox's own"},
		{"ids differ", []Option{WithSandboxID("a"), WithSessionID("b")}, "keep one"},
		{"api with port", []Option{WithMode(ModeAPI), WithPort(9000)}, "WithPort is a ModeHTTP setting"},
		{"api with token", []Option{WithMode(ModeAPI), WithExecToken("t")}, "WithExecToken is a ModeHTTP setting"},
		{"api with reach", []Option{WithMode(ModeAPI), WithReach(ReachProxy)}, "WithReach is a ModeHTTP setting"},
		{"http with exec channels", []Option{WithExecChannels(2)}, "WithExecChannels is a ModeAPI setting"},
		{"negative exec channels", []Option{WithMode(ModeAPI), WithExecChannels(-1)}, "0 or more"},
		{"http with the agent", []Option{WithAgent(&Agent{})}, "WithAgent is a ModeAPI setting"},
		{"nil agent", []Option{WithMode(ModeAPI), WithAgent(nil)}, "needs an agent from NewAgent"},
		{"connection on a client", []Option{WithKubeconfig("/x")}, "pass the configuration to NewClient"},
		{"rest config on a client", []Option{WithRESTConfig(&rest.Config{})}, "pass the configuration to NewClient"},
		{"in-cluster on a client", []Option{WithInCluster(true)}, "pass the configuration to NewClient"},
		// WithPodTemplate's rule, field by field: an option that contradicts the template.
		{"template namespace", []Option{WithNamespace("a"), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Namespace = "b" }))}, "namespace"},
		{"template label", []Option{WithLabels(map[string]string{"k": "opt"}), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Labels = map[string]string{"k": "tmpl"} }))}, "label k"},
		{"template env", []Option{WithEnv(map[string]string{"A": "opt"}), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "tmpl"}} }))}, "env A"},
		{"template node selector", []Option{WithNodeSelector(map[string]string{"k": "opt"}), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"k": "tmpl"} }))}, "nodeSelector k"},
		{"template service account", []Option{WithServiceAccount("opt"), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.ServiceAccountName = "tmpl" }))}, "serviceAccountName"},
		{"template runtime class", []Option{WithRuntimeClass("gvisor"), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.RuntimeClassName = new("kata") }))}, "runtimeClassName"},
		{"template deadline", []Option{WithActiveDeadline(time.Minute), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(5)) }))}, "activeDeadlineSeconds"},
		{"template pull policy", []Option{WithImagePullPolicy(corev1.PullNever), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways }))}, "imagePullPolicy"},
		{"template work dir", []Option{WithWorkDir("/w"), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.Containers[0].WorkingDir = "/other" }))}, "workingDir"},
		{"template resources", []Option{WithResources(small), WithPodTemplate(tmpl(func(p *corev1.Pod) { p.Spec.Containers[0].Resources = DefaultResources() }))}, "resources"},
		{"template token in api mode", []Option{WithMode(ModeAPI), WithPodTemplate(tmpl(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: wire.EnvToken, Value: "x"}}
		}))}, "ModeHTTP setting"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fakeSandbox(t, fakeClient(), "img", tc.opts...)
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidArgument mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := fakeSandbox(t, fakeClient(), ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty image: %v", err)
	}
}

// TestSpecStandalone: the connection options belong to NewKubernetesPodSandbox alone, and a
// factory names its sandboxes itself.
func TestSpecUses(t *testing.T) {
	if _, err := NewKubernetesPodSandbox("img", WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}), WithKubeconfig("/x")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("two connection options: %v", err)
	}
	sb, err := NewKubernetesPodSandbox("img", WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}), WithMode(ModeAPI))
	if err != nil || sb.kc == nil || sb.rest == nil {
		t.Fatalf("standalone sandbox: %v", err)
	}
	c := fakeClientFor(t, fakeClient())
	for _, o := range []Option{WithSandboxID("x"), WithSessionID("x")} {
		if _, err := c.Factory("img", o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("factory with an id: %v", err)
		}
	}
	bare, err := NewClient(nil, WithClientset(fakeClient()))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close(t.Context())
	for _, opts := range [][]Option{{WithMode(ModeAPI)}, {WithReach(ReachProxy)}, {WithReach(ReachPortForward)}} {
		if _, err := bare.NewSandbox("img", opts...); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v without a REST configuration: %v", opts, err)
		}
	}
	if _, err := bare.NewSandbox("img", WithReach(ReachPodIP)); err != nil {
		t.Errorf("pod IP needs no REST configuration: %v", err)
	}
}

// TestSpecMerges: maps and lists add up across calls; ids and defaults.
func TestSpecMerges(t *testing.T) {
	sb := newTestSandbox(t,
		WithLabels(map[string]string{"a": "1", "b": "1"}), WithLabels(map[string]string{"b": "2"}),
		WithEnv(map[string]string{"A": "1"}), WithEnv(map[string]string{"B": "2"}),
		WithNodeSelector(map[string]string{"pool": "sandboxes"}), WithNodeSelector(map[string]string{"zone": "z1"}),
		WithTolerations(corev1.Toleration{Key: "k1", Operator: corev1.TolerationOpExists}),
		WithTolerations(corev1.Toleration{Key: "k2", Operator: corev1.TolerationOpExists}),
	)
	pod := sb.buildPod()
	if pod.Labels["a"] != "1" || pod.Labels["b"] != "2" {
		t.Errorf("labels %v", pod.Labels)
	}
	env := envOf(pod.Spec.Containers[0])
	if env["A"].Value != "1" || env["B"].Value != "2" {
		t.Errorf("env %v", env)
	}
	if len(pod.Spec.NodeSelector) != 2 || len(pod.Spec.Tolerations) != 2 {
		t.Errorf("node selector %v tolerations %v", pod.Spec.NodeSelector, pod.Spec.Tolerations)
	}
	if newTestSandbox(t, WithSessionID("sess")).ID() != "sess" {
		t.Error("session id alias ignored")
	}
	if newTestSandbox(t, WithSessionID("same"), WithSandboxID("same")).ID() != "same" {
		t.Error("equal ids refused")
	}
	if id := newTestSandbox(t).ID(); len(id) != 32 || !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(id) {
		t.Errorf("generated id %q", id)
	}
}

// TestTemplateFieldRule: each option fills its field when the template leaves it empty, and an
// equal value on both sides is no contradiction.
func TestTemplateFieldRule(t *testing.T) {
	small := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}
	empty := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	sb := newTestSandbox(t, WithPodTemplate(empty), WithServiceAccount("sa"), WithRuntimeClass("gvisor"),
		WithActiveDeadline(time.Minute), WithImagePullPolicy(corev1.PullNever), WithWorkDir("/w"), WithResources(small),
		WithNodeSelector(map[string]string{"n": "1"}), WithTolerations(corev1.Toleration{Key: "t", Operator: corev1.TolerationOpExists}),
		WithLabels(map[string]string{"l": "1"}), WithEnv(map[string]string{"E": "1"}))
	pod := sb.buildPod()
	c := pod.Spec.Containers[0]
	switch {
	case pod.Spec.ServiceAccountName != "sa":
		t.Error("service account not filled")
	case pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName != "gvisor":
		t.Error("runtime class not filled")
	case pod.Spec.ActiveDeadlineSeconds == nil || *pod.Spec.ActiveDeadlineSeconds != 60:
		t.Error("active deadline not filled")
	case c.ImagePullPolicy != corev1.PullNever:
		t.Error("pull policy not filled")
	case c.WorkingDir != "/w":
		t.Error("work dir not filled")
	case !resourcesEqual(c.Resources, small):
		t.Errorf("resources not filled: %v", c.Resources)
	case pod.Spec.NodeSelector["n"] != "1" || len(pod.Spec.Tolerations) != 1:
		t.Error("node selector or tolerations not merged")
	case pod.Labels["l"] != "1" || envOf(c)["E"].Value != "1":
		t.Error("labels or env not merged")
	case c.SecurityContext != nil || len(pod.Spec.Volumes) != 0:
		t.Error("the hardened default leaked into a template")
	}
	// Unset options leave the template alone, and equal values agree.
	same := &corev1.Pod{Spec: corev1.PodSpec{ServiceAccountName: "sa", Containers: []corev1.Container{{Name: "c", Resources: small}}}}
	pod = newTestSandbox(t, WithPodTemplate(same), WithServiceAccount("sa"), WithResources(small)).buildPod()
	if pod.Spec.ServiceAccountName != "sa" || pod.Spec.RuntimeClassName != nil || pod.Spec.Containers[0].ImagePullPolicy != "" {
		t.Errorf("template changed by unset options: %+v", pod.Spec)
	}
}

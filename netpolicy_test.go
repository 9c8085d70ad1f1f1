package podsandbox

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// rule is a NetworkPolicy rule flattened for comparison: its peers and ports as text.
func peersText(peers []networkingv1.NetworkPolicyPeer) []string {
	var out []string
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			out = append(out, "cidr "+p.IPBlock.CIDR)
		case p.PodSelector != nil && p.NamespaceSelector != nil:
			out = append(out, "pods "+metav1.FormatLabelSelector(p.PodSelector)+" in namespaces "+metav1.FormatLabelSelector(p.NamespaceSelector))
		case p.PodSelector != nil:
			out = append(out, "pods "+metav1.FormatLabelSelector(p.PodSelector))
		default:
			out = append(out, "namespaces "+metav1.FormatLabelSelector(p.NamespaceSelector))
		}
	}
	return out
}

func portsText(ports []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ports {
		out = append(out, string(*p.Protocol)+"/"+p.Port.String())
	}
	return out
}

func TestNetworkPolicyBody(t *testing.T) {
	self := "podsandbox.io/network-policy=np"
	dns := []string{"pods k8s-app=kube-dns in namespaces <none>"}
	cases := []struct {
		name        string
		opts        []Option
		wantEgress  [][2][]string // per rule: peers, ports
		wantIngress [][2][]string
	}{
		{"http default", nil,
			[][2][]string{{dns, {"TCP/53", "UDP/53"}}},
			[][2][]string{{nil, {"TCP/8080"}}}},
		{"api default: no ingress at all", []Option{WithMode(ModeAPI)},
			[][2][]string{{dns, {"TCP/53", "UDP/53"}}},
			nil},
		{"allow-list and ingress peers", []Option{WithPort(9000), WithEgressAllow("10.244.0.7/32", 8443, 53), WithEgressAllow("fd00::/64"), WithEgressAllow("192.0.2.1"),
			WithIngressFrom(networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "agents"}}})},
			[][2][]string{{dns, {"TCP/53", "UDP/53"}}, {{"cidr 10.244.0.7/32"}, {"TCP/8443", "UDP/8443", "TCP/53", "UDP/53"}}, {{"cidr fd00::/64"}, nil}, {{"cidr 192.0.2.1/32"}, nil}},
			[][2][]string{{{"namespaces team=agents"}, {"TCP/9000"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb, err := fakeSandbox(t, fakeClient(), "img", append([]Option{WithSandboxID("np")}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			np := sb.buildNetworkPolicy()
			if np.Name != sb.PodName() || metav1.FormatLabelSelector(&np.Spec.PodSelector) != self {
				t.Errorf("name %s selector %s, want %s and %s", np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), sb.PodName(), self)
			}
			if pod := sb.buildPod(); pod.Labels[LabelNetworkPolicy] != "np" {
				t.Errorf("the pod's labels %v lack %s", pod.Labels, self)
			}
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
				t.Errorf("policy types %v: both directions must be governed", np.Spec.PolicyTypes)
			}
			var egress, ingress [][2][]string
			for _, r := range np.Spec.Egress {
				egress = append(egress, [2][]string{peersText(r.To), portsText(r.Ports)})
			}
			for _, r := range np.Spec.Ingress {
				ingress = append(ingress, [2][]string{peersText(r.From), portsText(r.Ports)})
			}
			if !equalRules(egress, tc.wantEgress) || !equalRules(ingress, tc.wantIngress) {
				t.Errorf("egress %q ingress %q\nwant egress %q ingress %q", egress, ingress, tc.wantEgress, tc.wantIngress)
			}
		})
	}
	sb, err := fakeSandbox(t, fakeClient(), "img", WithOpenNetwork())
	if err != nil || sb.buildNetworkPolicy() != nil {
		t.Errorf("WithOpenNetwork: %v, policy %v", err, sb.buildNetworkPolicy())
	}
}

func equalRules(a, b [][2][]string) bool {
	return slices.EqualFunc(a, b, func(x, y [2][]string) bool { return slices.Equal(x[0], y[0]) && slices.Equal(x[1], y[1]) })
}

// TestNetworkPolicyLifecycleFake: the policy exists before the pod, is owned by it, goes with Stop,
// and is taken over from an earlier pod of the same sandbox.
func TestNetworkPolicyLifecycleFake(t *testing.T) {
	cs := fakeClient(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PodName("np"), Namespace: "default",
		Labels:          map[string]string{LabelManagedBy: ManagedByValue},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: PodName("np"), UID: "old-pod"}}}})
	kubelet(cs, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, corev1.PodRunning)
	var policyAtPodCreate bool
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// through the tracker: the fake holds its lock while a reactor runs
		o, err := cs.Tracker().Get(networkingv1.SchemeGroupVersion.WithResource("networkpolicies"), "default", PodName("np"))
		np, _ := o.(*networkingv1.NetworkPolicy)
		policyAtPodCreate = err == nil && len(np.OwnerReferences) == 0 && len(np.Spec.Egress) > 0
		return false, nil, nil
	})
	sb, err := fakeSandbox(t, cs, "img", WithMode(ModeAPI), WithSandboxID("np"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !policyAtPodCreate {
		t.Error("the pod was created before its policy was in place (taken over from the old pod, without its owner)")
	}
	np, err := cs.NetworkingV1().NetworkPolicies("default").Get(ctx, sb.PodName(), metav1.GetOptions{})
	if err != nil || len(np.OwnerReferences) != 1 || string(np.OwnerReferences[0].UID) != "uid-"+sb.PodName() {
		t.Fatalf("policy %+v %v: want it owned by the new pod", np, err)
	}
	if err := sb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("default").Get(ctx, sb.PodName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("policy after Stop: %v", err)
	}
}

func TestNetworkPolicyRefusals(t *testing.T) {
	forbidden := func(res string) func(*k8stesting.Fake) {
		return func(f *k8stesting.Fake) {
			f.PrependReactor("create", res, func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "networking.k8s.io", Resource: res}, "np", errors.New("RBAC"))
			})
		}
	}
	cases := []struct {
		name  string
		setup func(*k8stesting.Fake)
		objs  []runtime.Object
		check func(t *testing.T, err error)
	}{
		{"no RBAC for policies", forbidden("networkpolicies"), nil, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "deploy/rbac.yaml") || !strings.Contains(err.Error(), "WithOpenNetwork") {
				t.Errorf("err = %v, want the RBAC hint and the way out", err)
			}
		}},
		{"a foreign policy of the same name", nil, []runtime.Object{&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PodName("np"), Namespace: "default"}}},
			func(t *testing.T, err error) {
				if !errors.Is(err, ErrConflict) {
					t.Errorf("err = %v, want ErrConflict", err)
				}
			}},
		{"a live pod of the same id in the other mode keeps its policy", nil, []runtime.Object{
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName("np"), Namespace: "default", UID: "live",
				Labels:      map[string]string{LabelManagedBy: ManagedByValue},
				Annotations: map[string]string{AnnotationSandboxID: "np", AnnotationMode: string(ModeAPI)}}},
			&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: PodName("np"), Namespace: "default",
				Labels:          map[string]string{LabelManagedBy: ManagedByValue},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: PodName("np"), UID: "live"}}}},
		}, func(t *testing.T, err error) {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("err = %v, want ErrConflict (the pod was made for mode api)", err)
			}
		}},
		{"missing RuntimeClass", func(f *k8stesting.Fake) {
			f.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p", errors.New(`pod rejected: RuntimeClass "gvisor" not found`))
			})
		}, nil, func(t *testing.T, err error) {
			var se *StartupError
			if !errors.As(err, &se) || se.Reason != "RuntimeClassNotFound" || !strings.Contains(se.Message, "kubectl get runtimeclass") {
				t.Errorf("err = %v, want a RuntimeClassNotFound StartupError", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fakeClient(tc.objs...)
			if tc.setup != nil {
				tc.setup(&cs.Fake)
			}
			sb, err := fakeSandbox(t, cs, "img", WithSandboxID("np"), WithRuntimeClass("gvisor"))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, sb.Start(t.Context()))
			if n := len(cs.Actions()); n == 0 {
				t.Fatal("no API request made")
			}
			ps, _ := cs.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{})
			for _, p := range ps.Items {
				if p.UID != "live" {
					t.Errorf("pod left: %s", p.Name)
				}
			}
			for _, o := range tc.objs {
				if np, ok := o.(*networkingv1.NetworkPolicy); ok && len(np.OwnerReferences) > 0 {
					got, err := cs.NetworkingV1().NetworkPolicies("default").Get(t.Context(), np.Name, metav1.GetOptions{})
					if err != nil || len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != np.OwnerReferences[0].UID {
						t.Errorf("the live pod's policy was changed: %+v %v", got, err)
					}
				}
			}
			if ss, _ := cs.CoreV1().Secrets("default").List(t.Context(), metav1.ListOptions{}); len(ss.Items) != 0 {
				t.Errorf("secrets left: %d", len(ss.Items))
			}
		})
	}
}

// TestHandlerMissingFake: a pod whose RuntimeClass handler the node lacks stays ContainerCreating
// for ever; Start reads the kubelet's event and fails at once.
func TestHandlerMissingFake(t *testing.T) {
	cs := fakeClient()
	kubelet(cs, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}, corev1.PodPending)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		p.Spec.NodeName = "node-1"
		_ = cs.Tracker().Create(corev1.SchemeGroupVersion.WithResource("events"), &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "ev", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{UID: types.UID("uid-" + p.Name)}, Reason: "FailedCreatePodSandBox",
			Message: `Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for "gvisor" is configured`,
		}, "default")
		return false, nil, nil
	})
	sb, err := fakeSandbox(t, cs, "img", WithMode(ModeAPI), WithSandboxID("h"), WithRuntimeClass("gvisor"), WithStartupTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = sb.Start(t.Context())
	var se *StartupError
	if !errors.As(err, &se) || se.Reason != "RuntimeHandlerUnavailable" || !strings.Contains(se.Message, `no runtime for "gvisor"`) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Errorf("took %s: the startup timeout, not the event, ended the wait", d)
	}
}

package podsandbox

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/json"
)

// A sandbox's NetworkPolicy. Code in a sandbox is untrusted, so by default it may open no
// connection except DNS lookups, and accept none except, in HTTP mode, on the in-pod server's
// port. The policy is created before the pod (an enforcer sees it before the first packet), named
// after the pod, selects it by LabelNetworkPolicy, and is owned by it once the pod exists, so the
// garbage collector removes it with the pod; Stop deletes it too, and the reaper deletes one that
// no pod owns. WithOpenNetwork drops it; WithEgressAllow and WithIngressFrom widen it.
//
// A NetworkPolicy only does something where the cluster runs an enforcer (a CNI such as Calico or
// Cilium, or a standalone controller); on a cluster without one the object is inert.

// egressAllow is one WithEgressAllow entry.
type egressAllow struct {
	cidr  netip.Prefix
	ports []int32 // TCP and UDP; none means every port
}

// dnsPeer is where DNS lookups may go: the cluster's resolver pods, in any namespace, under the
// label CoreDNS and kube-dns carry in kubeadm, kind, GKE and EKS clusters.
func dnsPeer() networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
	}
}

// policyName is the name of the sandbox's NetworkPolicy: its pod's.
func (s *KubernetesPodSandbox) policyName() string { return s.podName }

// buildNetworkPolicy returns the sandbox's NetworkPolicy, or nil with WithOpenNetwork.
func (s *KubernetesPodSandbox) buildNetworkPolicy() *networkingv1.NetworkPolicy {
	c := &s.cfg
	if c.openNetwork {
		return nil
	}
	both := func(ports []int32) []networkingv1.NetworkPolicyPort {
		var out []networkingv1.NetworkPolicyPort
		for _, p := range ports {
			for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
				port := intstr.FromInt32(p)
				out = append(out, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port})
			}
		}
		return out
	}
	egress := []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{dnsPeer()},
		Ports: both([]int32{53}),
	}}
	for _, e := range c.egressAllow {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: e.cidr.String()}}},
			Ports: both(e.ports),
		})
	}
	var ingress []networkingv1.NetworkPolicyIngressRule
	if c.mode == ModeHTTP {
		port := intstr.FromInt(c.port)
		tcp := corev1.ProtocolTCP
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			From:  c.ingressFrom,
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
		})
	}
	label := strings.TrimPrefix(s.podName, PodNamePrefix)
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:        s.policyName(),
			Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelSandboxID: label},
			Annotations: map[string]string{AnnotationSandboxID: s.ID()},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelNetworkPolicy: label}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     ingress,
			Egress:      egress,
		},
	}
}

// ensurePolicy creates the sandbox's NetworkPolicy, or takes over the one of the same name left
// by an earlier pod of this sandbox (gone or terminating, and the garbage collector has not removed
// its policy yet): its spec becomes ours and its owner is dropped until ownPolicy names the new
// pod. The policy of a live pod of that name is left as it is. mine reports whether the policy is
// now this sandbox's (made or taken over).
func (s *KubernetesPodSandbox) ensurePolicy(ctx context.Context) (mine bool, err error) {
	want := s.buildNetworkPolicy()
	if want == nil {
		return false, nil
	}
	api := s.client.NetworkingV1().NetworkPolicies(s.cfg.namespace)
	for attempt := 0; ; attempt++ {
		_, err := api.Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			return true, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return false, s.policyError("create", err)
		}
		old, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return false, s.policyError("read", err)
		}
		if old.Labels[LabelManagedBy] != ManagedByValue {
			return false, &ConflictError{Pod: s.podName, Reason: "a NetworkPolicy of its name exists that podsandbox does not manage"}
		}
		if s.ownerLives(ctx, old) {
			return false, nil // a live pod's: the caller adopts that pod or reports the conflict, and it keeps its policy
		}
		upd := old.DeepCopy()
		upd.Labels, upd.Annotations, upd.Spec, upd.OwnerReferences = want.Labels, want.Annotations, want.Spec, nil
		_, err = api.Update(ctx, upd, metav1.UpdateOptions{})
		if (apierrors.IsConflict(err) || apierrors.IsNotFound(err)) && attempt < 3 {
			continue
		}
		if err != nil {
			return false, s.policyError("update", err)
		}
		return true, nil
	}
}

// ownerLives reports whether np's owning pod still exists and is not terminating.
func (s *KubernetesPodSandbox) ownerLives(ctx context.Context, np *networkingv1.NetworkPolicy) bool {
	for _, o := range np.OwnerReferences {
		if o.Kind != "Pod" {
			continue
		}
		p, err := s.client.CoreV1().Pods(s.cfg.namespace).Get(ctx, o.Name, metav1.GetOptions{})
		if err == nil && p.UID == o.UID && p.DeletionTimestamp == nil {
			return true
		}
	}
	return false
}

// ownPolicy makes pod the owner of the sandbox's NetworkPolicy.
func (s *KubernetesPodSandbox) ownPolicy(ctx context.Context, pod *corev1.Pod) {
	if s.cfg.openNetwork {
		return
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
	}}}})
	_, err := s.client.NetworkingV1().NetworkPolicies(s.cfg.namespace).Patch(ctx, s.policyName(), types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		s.log.Warn("could not set the NetworkPolicy's owner; it will be deleted by Stop or the reaper", "err", err)
	}
}

// deletePolicy deletes the sandbox's NetworkPolicy; NotFound is success.
func (s *KubernetesPodSandbox) deletePolicy(ctx context.Context) error {
	if s.cfg.openNetwork {
		return nil
	}
	err := s.client.NetworkingV1().NetworkPolicies(s.cfg.namespace).Delete(ctx, s.policyName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete network policy %s: %w", s.policyName(), err)
	}
	return nil
}

func (s *KubernetesPodSandbox) policyError(verb string, err error) error {
	hint := ""
	if apierrors.IsForbidden(err) {
		hint = " (grant networkpolicies create/get/update/patch/delete/list in the sandbox namespace, see deploy/rbac.yaml; or use WithOpenNetwork() to run without a policy)"
	}
	return fmt.Errorf("podsandbox: %s the NetworkPolicy of sandbox pod %s: %w%s", verb, s.podName, err, hint)
}

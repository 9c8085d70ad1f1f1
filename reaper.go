package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Reaper deletes expired podsandbox pods in one namespace. It needs no controller and no state:
// every managed pod carries the managed-by label and an expires-at annotation (last activity plus
// the idle timeout, moved forward by activity), so a fresh process can clean up after one that was
// killed. It never touches a pod without podsandbox's managed-by label.
type Reaper struct {
	client    kubernetes.Interface
	namespace string
	log       *slog.Logger
	// FinishedGrace is how long a pod that has finished (Failed or Succeeded, for example after
	// activeDeadlineSeconds) is kept for inspection before it is deleted. Default 1 min.
	FinishedGrace time.Duration
	// OrphanGrace is how long a token Secret or NetworkPolicy that no pod owns is kept (a create in
	// progress) before it is deleted; those owned by a pod go with it through the garbage
	// collector. Default 5 min.
	OrphanGrace time.Duration
	// DryRun makes Reap delete nothing: its result says what it would have deleted.
	DryRun bool
	now    func() time.Time
	tel    *telemetry // the Client's (Client.Reaper), else the global providers'
}

// ReapResult counts what a Reap deleted (or, with DryRun, would have deleted).
type ReapResult struct {
	Pods     int
	Secrets  int
	Policies int // NetworkPolicies
	// Reaped lists the pods, with why each was (or would be) deleted.
	Reaped []ReapedPod
}

// ReapedPod is one pod a Reap deleted.
type ReapedPod struct {
	ID  string // its sandbox id
	Pod string
	Why string // "idle since <expires-at>", or "finished (Failed)"
}

// NewReaper returns a reaper for namespace.
func NewReaper(client kubernetes.Interface, namespace string, log *slog.Logger) *Reaper {
	if log == nil {
		log = slog.Default()
	}
	tel, _ := newTelemetry(nil, nil) // fails only for invalid instrument names, which are constants
	return &Reaper{client: client, namespace: namespace, log: log.With("namespace", namespace),
		FinishedGrace: time.Minute, OrphanGrace: 5 * time.Minute, now: time.Now, tel: tel}
}

// Reap deletes managed pods whose expiry has passed (or that finished more than FinishedGrace
// ago), each with a UID precondition, and token Secrets that no pod owns (their creator died
// between making the Secret and the pod).
func (r *Reaper) Reap(ctx context.Context) (ReapResult, error) {
	var res ReapResult
	sel := metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedByValue}
	pods, err := r.client.CoreV1().Pods(r.namespace).List(ctx, sel)
	if err != nil {
		return res, fmt.Errorf("podsandbox: reap: list pods: %w", err)
	}
	now := r.now()
	var errs []error
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Labels[LabelManagedBy] != ManagedByValue {
			continue // defensive: a selector that was not applied must not widen the sweep
		}
		why := r.expired(p, now)
		if why == "" {
			continue
		}
		uid := p.UID
		var err error
		if !r.DryRun {
			err = r.client.CoreV1().Pods(r.namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		}
		switch {
		case err == nil:
			res.Pods++
			res.Reaped = append(res.Reaped, ReapedPod{ID: p.Annotations[AnnotationSandboxID], Pod: p.Name, Why: why})
			if !r.DryRun {
				reason := "idle"
				if strings.HasPrefix(why, "finished") {
					reason = "finished"
				}
				if r.tel != nil {
					r.tel.reaped.Add(ctx, 1, metric.WithAttributes(attrReapReason.String(reason)))
				}
				r.log.Info("reaped pod", "pod", p.Name, "sandbox", p.Annotations[AnnotationSandboxID], "why", why)
			}
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		default:
			errs = append(errs, fmt.Errorf("delete pod %s: %w", p.Name, err))
		}
	}
	secrets, err := r.client.CoreV1().Secrets(r.namespace).List(ctx, sel)
	if err != nil {
		errs = append(errs, fmt.Errorf("list secrets: %w", err))
		return res, errors.Join(errs...)
	}
	objs := make([]metav1.Object, len(secrets.Items))
	for i := range secrets.Items {
		objs[i] = &secrets.Items[i]
	}
	var serr, perr error
	res.Secrets, serr = r.reapOrphans(ctx, "secret", objs, now, r.client.CoreV1().Secrets(r.namespace).Delete)
	res.Policies, perr = r.reapPolicies(ctx, sel, now)
	errs = append(errs, serr, perr)
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("podsandbox: reap: %w", err)
	}
	return res, nil
}

// reapPolicies deletes the NetworkPolicies that no pod owns after OrphanGrace (their creator died
// between making the policy and the pod). Without RBAC for policies (every sandbox of this
// namespace uses WithOpenNetwork) there is nothing to do.
func (r *Reaper) reapPolicies(ctx context.Context, sel metav1.ListOptions, now time.Time) (int, error) {
	api := r.client.NetworkingV1().NetworkPolicies(r.namespace)
	list, err := api.List(ctx, sel)
	if apierrors.IsForbidden(err) {
		r.log.Debug("not allowed to list NetworkPolicies; orphaned ones are not reaped", "err", err)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list network policies: %w", err)
	}
	objs := make([]metav1.Object, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	return r.reapOrphans(ctx, "network policy", objs, now, api.Delete)
}

// reapOrphans deletes the podsandbox objects that no pod owns and that are older than
// OrphanGrace, each with a UID precondition; it counts what it deleted (or would, with DryRun).
func (r *Reaper) reapOrphans(ctx context.Context, kind string, objs []metav1.Object, now time.Time,
	del func(context.Context, string, metav1.DeleteOptions) error) (int, error) {
	n := 0
	var errs []error
	for _, o := range objs {
		if len(o.GetOwnerReferences()) > 0 || o.GetLabels()[LabelManagedBy] != ManagedByValue || now.Sub(o.GetCreationTimestamp().Time) < r.OrphanGrace {
			continue
		}
		uid := o.GetUID()
		var err error
		if !r.DryRun {
			err = del(ctx, o.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		}
		if err == nil {
			n++
		} else if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", kind, o.GetName(), err))
		}
	}
	return n, errors.Join(errs...)
}

// expired says why p should be reaped, or "" when it should stay.
func (r *Reaper) expired(p *corev1.Pod, now time.Time) string {
	if p.DeletionTimestamp != nil {
		return ""
	}
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		finished := p.CreationTimestamp.Time
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.LastTransitionTime.After(finished) {
				finished = c.LastTransitionTime.Time
			}
		}
		if now.Sub(finished) >= r.FinishedGrace {
			return "finished (" + string(p.Status.Phase) + ")"
		}
	}
	v, ok := p.Annotations[AnnotationExpiresAt]
	if !ok {
		return "" // not ours to judge: made by an older version or by hand
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || now.Before(t) {
		return ""
	}
	return "idle since " + v
}

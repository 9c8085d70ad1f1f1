package podsandbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// ErrPoolEmpty: no warm pod was ready; the caller should start a cold sandbox.
var ErrPoolEmpty = errors.New("warm pool has no ready pod")

// WarmPool keeps Size pods of one sandbox spec started and ready, so a session can claim one in
// milliseconds instead of waiting for a cold start. A SessionManager owns it (WithWarmPool): the
// pool is made from the manager's KubernetesFactory, so a warm session and a cold one are the same
// pod. A claim is a label patch with a resourceVersion precondition (two replicas can never claim
// the same pod), then late binding: the session's env, and in HTTP mode a fresh token, are given to
// the running in-pod server, so warm pods need no restart to be personalised. The pool refills in
// the background. Pool pods are ordinary managed pods (kubectl get pods -l podsandbox.io/pool=NAME)
// with an expiry the pool keeps moving forward, so Reap removes them if the process that made them
// dies.
//
// Replicas share a pool: every replica keeps Size warm pods of its own started, and when its own
// are all claimed it claims a warm pod another replica's pool of the same name, namespace and spec
// started (read from the client's watch, so looking costs no request). The resourceVersion
// precondition decides every race, and a pool deletes a pod only while it is still warm, so a pod
// one replica claimed is never handed out or deleted by another.
type WarmPool struct {
	f    *KubernetesFactory
	name string
	size int
	log  *slog.Logger
	ttl  time.Duration
	bg   background // the refill loop, pod starts and stops; Close waits for them
	hash string     // LabelPoolSpec of this pool's pods

	mu       sync.Mutex
	sub      *podSubscription // keeps the namespace's watch while the pool runs; lists shared pods
	members  map[string]bool  // pod names this pool started and has not given up
	handed   map[string]bool  // pods this pool's claims took, until the watch shows them claimed
	ready    []*KubernetesPodSandbox
	starting int
	running  bool
	closed   bool
	refill   chan struct{}
	failures int

	refillDelay time.Duration // WithPoolRefillDelay
	settleUntil time.Time     // replacements of claimed pods start no earlier, while pods are ready
	emptied     chan struct{} // closed (and replaced) when a claim takes the last ready pod
}

// PoolOption configures a WarmPool.
type PoolOption func(*WarmPool) error

// WithPoolName names the pool (label podsandbox.io/pool; default "default").
func WithPoolName(name string) PoolOption {
	return func(p *WarmPool) error {
		if errs := validation.IsValidLabelValue(name); len(errs) > 0 || name == "" {
			return fmt.Errorf("%w: pool name %q: it must be a label value", ErrInvalidArgument, name)
		}
		p.name = name
		return nil
	}
}

// WithPoolTTL sets how long an unclaimed pod may outlive the pool's process before Reap removes
// it (default 10 min); the pool moves the expiry forward while it runs.
func WithPoolTTL(d time.Duration) PoolOption {
	return func(p *WarmPool) error {
		if d < 3*time.Second {
			return fmt.Errorf("%w: pool TTL %s must be at least 3s", ErrInvalidArgument, d)
		}
		p.ttl = d
		return nil
	}
}

// WithPoolRefillDelay sets how long the pool waits after a claim before it starts the claimed
// pod's replacement, as long as it still has a warm pod ready (default 1s; 0 starts it at once).
// Starting a pod keeps the API server, the scheduler and a node busy for a moment: on a small
// cluster the claimed session's first commands would pay for it, and they are the ones a user
// waits for. A claim that takes the pool's last ready pod starts the refill at once, and so does a
// claim while the delay runs that empties the pool.
func WithPoolRefillDelay(d time.Duration) PoolOption {
	return func(p *WarmPool) error {
		if d < 0 || d > time.Minute {
			return fmt.Errorf("%w: pool refill delay %s must be between 0 and 1m", ErrInvalidArgument, d)
		}
		p.refillDelay = d
		return nil
	}
}

// newWarmPool returns a pool of size pods made by f; start fills it.
func newWarmPool(f *KubernetesFactory, size int, popts []PoolOption, log *slog.Logger) (*WarmPool, error) {
	p := &WarmPool{f: f, name: "default", size: size, ttl: 10 * time.Minute, refill: make(chan struct{}, 1),
		refillDelay: time.Second, emptied: make(chan struct{})}
	if size < 1 {
		return nil, fmt.Errorf("%w: warm pool size %d must be at least 1", ErrInvalidArgument, size)
	}
	for _, o := range popts {
		if err := o(p); err != nil {
			return nil, err
		}
	}
	p.log = log.With("pool", p.name)
	p.members, p.handed = map[string]bool{}, map[string]bool{}
	h, err := specHash(f)
	if err != nil {
		return nil, err
	}
	p.hash = h
	return p, nil
}

// specHash hashes the pod spec f makes (for a fixed sandbox id), its NetworkPolicy and its mode:
// equal hashes mean interchangeable warm pods.
func specHash(f *KubernetesFactory) (string, error) {
	spec := f.spec
	spec.sandboxID = "pool-spec"
	sb, err := f.c.newSandbox(spec)
	if err != nil {
		return "", err
	}
	sb.secret = "pool-spec-token" // a fixed name: a member's own has a random suffix
	b, err := json.Marshal(sb.buildPod().Spec)
	if err != nil {
		return "", fmt.Errorf("podsandbox: warm pool: hashing the pod spec: %w", err)
	}
	np, err := json.Marshal(sb.buildNetworkPolicy()) // "null" with WithOpenNetwork
	if err != nil {
		return "", fmt.Errorf("podsandbox: warm pool: hashing the network policy: %w", err)
	}
	sum := sha256.Sum256(slices.Concat(b, np, []byte(spec.mode)))
	return hex.EncodeToString(sum[:8]), nil
}

func (p *WarmPool) newMember() (*KubernetesPodSandbox, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	spec := p.f.spec
	spec.sandboxID = "pool-" + p.name + "-" + hex.EncodeToString(b)
	return p.member(spec.sandboxID)
}

// member returns a sandbox of the pool's spec for the pod of sandbox id.
func (p *WarmPool) member(id string) (*KubernetesPodSandbox, error) {
	spec := p.f.spec
	spec.sandboxID = id
	spec.labels = mergeInto(spec.labels, map[string]string{LabelPool: p.name, LabelPoolState: "warm", LabelPoolSpec: p.hash})
	sb, err := p.f.c.newSandbox(spec)
	if err != nil {
		return nil, err
	}
	sb.expiryTTL.Store(int64(p.ttl))
	return sb, nil
}

// Name returns the pool's name.
func (p *WarmPool) Name() string { return p.name }

// Size returns how many warm pods the pool keeps.
func (p *WarmPool) Size() int { return p.size }

// start fills the pool in the background and keeps it full until ctx is done or close.
func (p *WarmPool) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running || p.closed {
		return nil
	}
	sub, err := p.f.c.subscribe(p.f.spec.namespace, "")
	if err != nil {
		return err
	}
	if err := p.f.c.tel.addPool(p); err != nil {
		sub.close()
		return err
	}
	p.sub = sub
	p.running = true
	p.bg.start()
	p.bg.do(func(bctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(bctx, cancel)
		defer stop()
		p.run(ctx)
	})
	p.kick()
	return nil
}

func (p *WarmPool) kick() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

// run keeps the pool full and the warm pods' expiry fresh.
func (p *WarmPool) run(ctx context.Context) {
	keepFresh := time.NewTicker(max(p.ttl/3, time.Second))
	defer keepFresh.Stop()
	for {
		p.fill(ctx)
		select {
		case <-ctx.Done():
			return
		case <-p.refill:
		case <-keepFresh.C:
			p.mu.Lock()
			warm := append([]*KubernetesPodSandbox(nil), p.ready...)
			p.mu.Unlock()
			for _, sb := range warm {
				if !sb.stillWarm() {
					p.dropClaimed(sb) // another replica claimed it: its expiry is no longer ours to move
					continue
				}
				sb.Touch()
				sb.extendExpiryAsync()
			}
		}
	}
}

// fill starts pods until ready+starting reaches the size; failures back off.
func (p *WarmPool) fill(ctx context.Context) {
	p.mu.Lock()
	need := p.size - len(p.ready) - p.starting
	if p.closed || need <= 0 {
		p.mu.Unlock()
		return
	}
	p.starting += need
	backoff := time.Duration(min(p.failures, 6)) * time.Second
	var settle time.Duration
	if len(p.ready) > 0 {
		settle = time.Until(p.settleUntil)
	}
	hurry := p.emptied
	p.mu.Unlock()
	for range need {
		if !p.bg.do(func(context.Context) { p.startMember(ctx, backoff, settle, hurry) }) {
			p.mu.Lock()
			p.starting--
			p.mu.Unlock()
		}
	}
}

// startMember starts one warm pod and adds it to the ready list: after backoff (failures before),
// then after settle (a claim's refill delay), which hurry cuts short (the pool ran empty).
func (p *WarmPool) startMember(ctx context.Context, backoff, settle time.Duration, hurry <-chan struct{}) {
	if backoff > 0 {
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
	}
	if settle > 0 {
		t := time.NewTimer(settle)
		select {
		case <-t.C:
		case <-hurry:
		case <-ctx.Done():
		}
		t.Stop()
	}
	sb, err := p.newMember()
	if err == nil {
		p.mu.Lock()
		p.members[sb.podName] = true
		p.mu.Unlock()
		err = sb.Start(ctx)
	}
	p.mu.Lock()
	p.starting--
	if err != nil {
		p.failures++
		p.mu.Unlock()
		if sb != nil {
			p.stopMember(ctx, sb)
		}
		if ctx.Err() == nil {
			p.log.Warn("warm pod did not start", "err", err)
			p.kick()
		}
		return
	}
	p.failures = 0
	if p.closed {
		p.mu.Unlock()
		p.stopMember(ctx, sb)
		return
	}
	p.ready = append(p.ready, sb)
	p.mu.Unlock()
}

// stopMember deletes a pool pod that is still warm, also when ctx is already cancelled (the pool
// is closing). A pod another replica has claimed is left to it.
func (p *WarmPool) stopMember(ctx context.Context, sb *KubernetesPodSandbox) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	p.mu.Lock()
	delete(p.members, sb.podName)
	p.mu.Unlock()
	if err := sb.stopWarm(ctx); err != nil {
		p.log.Warn("could not delete a warm pod", "pod", sb.PodName(), "err", err)
	}
}

// forget drops a member another replica claimed, which the caller has taken off the ready list,
// without deleting its pod.
func (p *WarmPool) forget(sb *KubernetesPodSandbox) {
	p.mu.Lock()
	delete(p.members, sb.podName)
	p.mu.Unlock()
	p.log.Debug("warm pod was claimed by another replica", "pod", sb.podName)
	sb.release()
	p.kick()
}

// dropClaimed forgets a ready member whose pod the watch shows claimed. If it is no longer on the
// ready list, a claim of this pool took it (perhaps that very claim is what the watch shows), and
// that claim decides its fate.
func (p *WarmPool) dropClaimed(sb *KubernetesPodSandbox) {
	p.mu.Lock()
	i := slices.Index(p.ready, sb)
	if i >= 0 {
		p.ready = slices.Delete(p.ready, i, i+1)
	}
	p.mu.Unlock()
	if i >= 0 {
		p.forget(sb)
	}
}

// stopLater deletes a pool pod off the caller's path (in the pool's background), or now when the
// pool is closed.
func (p *WarmPool) stopLater(ctx context.Context, sb *KubernetesPodSandbox) {
	if !p.bg.do(func(bctx context.Context) { p.stopMember(bctx, sb) }) {
		p.stopMember(ctx, sb)
	}
}

// Ready returns how many warm pods can be claimed now.
func (p *WarmPool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// Claim binds a warm pod to sessionID: it relabels the pod (precondition: its resourceVersion, so
// no other replica can claim it too), sets env for every later command and, in HTTP mode, rotates
// the token through the in-pod server. It returns ErrPoolEmpty when no pod is ready. A
// SessionManager claims for its sessions; call Claim yourself only for a sandbox that no manager
// will track.
func (p *WarmPool) Claim(ctx context.Context, sessionID string, env map[string]string) (sb *KubernetesPodSandbox, err error) {
	tel := p.f.c.tel
	ctx, span := tel.tracer.Start(ctx, "podsandbox.Claim", trace.WithAttributes(attrPoolName.String(p.name), attrSessionID.String(sessionID)))
	result := "warm"
	defer func() {
		switch {
		case errors.Is(err, ErrPoolEmpty):
			result = "miss" // not a failed span: the session starts cold
		case err != nil:
			result = "error"
		}
		if sb != nil {
			span.SetAttributes(semconv.K8SPodName(sb.podName))
		}
		span.SetAttributes(attrClaimResult.String(result))
		tel.claims.Add(ctx, 1, metric.WithAttributes(attrPoolName.String(p.name), attrClaimResult.String(result)))
		if result == "miss" {
			endSpan(span, nil)
		} else {
			endSpan(span, err)
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolEmpty
		}
		if len(p.ready) == 0 {
			p.mu.Unlock()
			result = "shared"
			return p.claimShared(ctx, sessionID, env)
		}
		sb := p.ready[0]
		p.ready = p.ready[1:]
		if len(p.ready) == 0 {
			close(p.emptied) // replacements waiting for the refill delay start now
			p.emptied = make(chan struct{})
		} else {
			p.settleUntil = time.Now().Add(p.refillDelay)
		}
		p.mu.Unlock()
		p.kick()
		if !sb.IsAlive(ctx) {
			p.stopLater(ctx, sb)
			continue
		}
		done, err := p.bind(ctx, sb, sessionID, env)
		if done {
			return sb, err
		}
	}
}

// bind claims sb for sessionID. It reports false when another replica claimed the pod first (sb
// is then forgotten and the caller tries another); a failure after the pod became ours deletes it.
func (p *WarmPool) bind(ctx context.Context, sb *KubernetesPodSandbox, sessionID string, env map[string]string) (bool, error) {
	err := sb.claim(ctx, sessionID, env)
	switch {
	case err == nil:
		p.mu.Lock()
		delete(p.members, sb.podName)
		p.handed[sb.podName] = true // the watch may still show it warm: not a shared candidate
		p.mu.Unlock()
		return true, nil
	case errors.Is(err, errClaimedElsewhere):
		p.forget(sb)
		return false, nil
	}
	p.stopLater(ctx, sb)
	return true, err
}

// sharedTries bounds how many other replicas' warm pods one claim tries before it gives up with
// ErrPoolEmpty: each lost race costs a request or two, and means another claim won a pod.
const sharedTries = 64

// claimShared claims a warm pod of the same pool name and spec that another replica started.
// Candidates come from the watch cache in random order, so replicas short of pods at once spread
// over them instead of racing for the same one; after a lost race it looks again (the cache moves
// on), never at a pod it tried already.
func (p *WarmPool) claimShared(ctx context.Context, sessionID string, env map[string]string) (*KubernetesPodSandbox, error) {
	p.mu.Lock()
	sub := p.sub
	p.mu.Unlock()
	if sub == nil {
		return nil, ErrPoolEmpty
	}
	mode := string(p.f.spec.mode)
	tried := map[string]bool{}
	for len(tried) < sharedTries {
		cands := sub.list(func(pod *corev1.Pod) bool {
			return pod.Labels[LabelPool] == p.name && pod.Labels[LabelPoolState] == "warm" && pod.Labels[LabelPoolSpec] == p.hash &&
				pod.Annotations[AnnotationMode] == mode && pod.DeletionTimestamp == nil &&
				pod.Status.Phase == corev1.PodRunning && podReady(pod) && !tried[pod.Name]
		})
		p.mu.Lock()
		for name := range p.handed {
			if pod := sub.cached(name); pod == nil || pod.Labels[LabelPoolState] != "warm" {
				delete(p.handed, name) // the watch has caught up
			}
		}
		cands = slices.DeleteFunc(cands, func(pod *corev1.Pod) bool { return p.members[pod.Name] || p.handed[pod.Name] })
		p.mu.Unlock()
		if len(cands) == 0 {
			break
		}
		pod := cands[mrand.IntN(len(cands))]
		tried[pod.Name] = true
		sb, err := p.member(pod.Annotations[AnnotationSandboxID])
		if err != nil {
			return nil, err
		}
		if sb.podName != pod.Name {
			continue // not named after its sandbox id: not a pool pod to share
		}
		if err := sb.start(ctx, pod); err != nil {
			sb.release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.log.Debug("could not adopt another replica's warm pod", "pod", pod.Name, "err", err)
			continue
		}
		p.mu.Lock()
		p.members[sb.podName] = true
		p.mu.Unlock()
		if done, err := p.bind(ctx, sb, sessionID, env); done {
			if err == nil {
				p.log.Debug("claimed another replica's warm pod", "pod", sb.podName, "session", sessionID)
			}
			return sb, err
		}
	}
	return nil, ErrPoolEmpty
}

// close stops refilling, waits for the pool's goroutines and deletes the unclaimed pods.
func (p *WarmPool) close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.f.c.tel.removePool(p)
	p.bg.stop()
	p.mu.Lock()
	warm := p.ready
	p.ready = nil
	sub := p.sub
	p.sub = nil
	p.mu.Unlock()
	var errs []error
	for _, sb := range warm {
		if err := sb.stopWarm(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if sub != nil {
		sub.close()
	}
	return errors.Join(errs...)
}

// stillWarm reports whether the watch cache shows the sandbox's pod unclaimed.
func (s *KubernetesPodSandbox) stillWarm() bool {
	s.mu.Lock()
	sub, uid := s.watch, s.uid
	s.mu.Unlock()
	if sub == nil {
		return false
	}
	pod := sub.pod()
	return pod != nil && pod.UID == uid && pod.Labels[LabelPoolState] == "warm"
}

// stopWarm stops a pool member and deletes its pod only while the pod is still warm: the delete
// carries the resourceVersion it was last seen warm at, so a claim by another replica in between
// fails it. A pod claimed elsewhere is left, with its Secret, to its new owner.
func (s *KubernetesPodSandbox) stopWarm(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	sub, uid := s.watch, s.uid
	var cached *corev1.Pod
	if sub != nil {
		cached = sub.pod()
	}
	s.detach()
	if uid == "" {
		return nil
	}
	pods := s.client.CoreV1().Pods(s.cfg.namespace)
	deleted := func() error { // the pod is gone: its Secret goes too
		if err := s.deleteSecret(ctx); err != nil {
			return fmt.Errorf("podsandbox: %w", err)
		}
		return nil
	}
	cur := cached
	for range 2 {
		if cur == nil || cur.UID != uid {
			var err error
			if cur, err = pods.Get(ctx, s.podName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return deleted()
			} else if err != nil {
				return fmt.Errorf("podsandbox: delete warm pod %s: %w", s.podName, err)
			}
			if cur.UID != uid {
				return nil // a newer pod of the same name: not ours
			}
		}
		if cur.Labels[LabelPoolState] != "warm" {
			return nil // claimed: it belongs to a session now
		}
		rv := cur.ResourceVersion
		err := pods.Delete(ctx, s.podName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return deleted()
		case !apierrors.IsConflict(err):
			return fmt.Errorf("podsandbox: delete warm pod %s: %w", s.podName, err)
		}
		cur = nil // changed since we saw it: look again
	}
	return fmt.Errorf("podsandbox: delete warm pod %s: it kept changing; Reap removes it once it expires", s.podName)
}

var errClaimedElsewhere = errors.New("warm pod claimed elsewhere")

// claim relabels the pod for sessionID with a resourceVersion precondition, then binds env and a
// fresh token. The sandbox keeps its pod name; its id becomes the session id.
func (s *KubernetesPodSandbox) claim(ctx context.Context, sessionID string, env map[string]string) error {
	s.mu.Lock()
	sub, uid := s.watch, s.uid
	s.mu.Unlock()
	pod := sub.pod()
	if pod == nil || pod.UID != uid {
		return ErrSandboxGone
	}
	if pod.Labels[LabelPoolState] != "warm" {
		// The cache already shows another replica's claim (with its resourceVersion, which
		// would pass the precondition below).
		return errClaimedElsewhere
	}
	label := strings.TrimPrefix(PodName(sessionID), PodNamePrefix)
	pods := s.client.CoreV1().Pods(s.cfg.namespace)
	// relabel binds the pod to the session, if it is still at resourceVersion rv.
	relabel := func(rv string) error {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid":             uid,
			"resourceVersion": rv,
			"labels":          map[string]string{LabelPoolState: "claimed", LabelSandboxID: label},
			"annotations":     map[string]string{AnnotationSandboxID: sessionID, AnnotationExpiresAt: s.expiry(time.Now())},
		}})
		_, err := pods.Patch(ctx, s.podName, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	err := relabel(pod.ResourceVersion)
	if apierrors.IsConflict(err) {
		// Our cached resourceVersion may be stale; look again before giving the pod up.
		cur, gerr := pods.Get(ctx, s.podName, metav1.GetOptions{})
		if gerr != nil || cur.UID != uid || cur.Labels[LabelPoolState] != "warm" || cur.DeletionTimestamp != nil {
			return errClaimedElsewhere
		}
		if err = relabel(cur.ResourceVersion); apierrors.IsConflict(err) {
			return errClaimedElsewhere
		}
	}
	if err != nil {
		return fmt.Errorf("podsandbox: claim %s: %w", s.podName, err)
	}
	s.mu.Lock()
	s.id.Store(&sessionID)
	s.sessionEnv = env
	s.expiryTTL.Store(0)
	tr := s.tr
	s.mu.Unlock()
	if s.cfg.mode == ModeHTTP {
		ht, ok := tr.(*httpTransport)
		if !ok {
			return fmt.Errorf("podsandbox: claim %s: no HTTP transport", s.podName)
		}
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		token := base64.RawURLEncoding.EncodeToString(b)
		if err := ht.configure(ctx, token, env); err != nil {
			return fmt.Errorf("podsandbox: binding %s: %w", s.podName, err)
		}
		s.mu.Lock()
		s.token = token
		secret := s.secretName()
		s.mu.Unlock()
		// so another replica adopting the session reads the right token
		s.bg.do(func(ctx context.Context) { s.storeToken(ctx, secret, token) })
	}
	s.Touch()
	return nil
}

// storeToken writes the sandbox's current token into its Secret.
func (s *KubernetesPodSandbox) storeToken(ctx context.Context, secret, token string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	patch, _ := json.Marshal(map[string]any{"data": map[string][]byte{tokenSecretKey: []byte(token)}})
	if _, err := s.client.CoreV1().Secrets(s.cfg.namespace).Patch(ctx, secret, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		s.log.Warn("could not store the rotated token in the Secret", "err", err)
	}
}

// release forgets the pod without deleting it (it belongs to someone else now).
func (s *KubernetesPodSandbox) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.detach()
	}
}

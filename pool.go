package podsandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrPoolEmpty: no warm pod was ready; the caller should start a cold sandbox.
var ErrPoolEmpty = errors.New("warm pool has no ready pod")

// WarmPool keeps Size pods of one template started and ready, so a session can claim one in
// milliseconds instead of waiting for a cold start. A claim is a label patch with a resourceVersion
// precondition (two replicas can never claim the same pod), then late binding: the session's env,
// and in HTTP mode a fresh token, are given to the running in-pod server, so warm pods need no
// restart to be personalised. The pool refills in the background. Pool pods are ordinary managed
// pods (kubectl get pods -l podsandbox.io/pool=NAME) with an expiry the pool keeps moving forward,
// so Reap removes them if the process that made them dies.
type WarmPool struct {
	name  string
	size  int
	image string
	opts  []Option
	log   *slog.Logger
	ttl   time.Duration

	mu       sync.Mutex
	ready    []*KubernetesPodSandbox
	starting int
	closed   bool
	refill   chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
	failures int
}

// PoolOption configures a WarmPool.
type PoolOption func(*WarmPool)

// WithPoolName names the pool (label podsandbox.io/pool; default "default").
func WithPoolName(name string) PoolOption { return func(p *WarmPool) { p.name = name } }

// WithPoolLogger sets the logger.
func WithPoolLogger(l *slog.Logger) PoolOption { return func(p *WarmPool) { p.log = l } }

// WithPoolTTL sets how long an unclaimed pod may outlive the pool's process before Reap removes
// it (default 10 min); the pool moves the expiry forward while it runs.
func WithPoolTTL(d time.Duration) PoolOption { return func(p *WarmPool) { p.ttl = d } }

// NewWarmPool returns a pool of size pods of image built with opts (the same options a
// KubernetesPodSandbox takes; the sandbox id is chosen by the pool). Call Start to fill it.
func NewWarmPool(size int, image string, opts []Option, popts ...PoolOption) (*WarmPool, error) {
	p := &WarmPool{name: "default", size: size, image: image, opts: opts, ttl: 10 * time.Minute, refill: make(chan struct{}, 1)}
	for _, o := range popts {
		o(p)
	}
	if size < 1 {
		return nil, fmt.Errorf("%w: pool size must be at least 1", ErrInvalidArgument)
	}
	if errs := validation.IsValidLabelValue(p.name); len(errs) > 0 || p.name == "" {
		return nil, fmt.Errorf("%w: pool name %q", ErrInvalidArgument, p.name)
	}
	if _, err := p.newMember(); err != nil { // validate the options now, as the constructor does
		return nil, err
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("pool", p.name)
	return p, nil
}

func (p *WarmPool) newMember() (*KubernetesPodSandbox, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := "pool-" + p.name + "-" + hex.EncodeToString(b)
	opts := append(append([]Option{}, p.opts...), WithSandboxID(id),
		func(c *config) error {
			labels := maps.Clone(c.labels)
			if labels == nil {
				labels = map[string]string{}
			}
			maps.Copy(labels, map[string]string{LabelPool: p.name, LabelPoolState: "warm"})
			c.labels = labels
			return nil
		})
	sb, err := NewKubernetesPodSandbox(p.image, opts...)
	if err != nil {
		return nil, err
	}
	sb.expiryTTL.Store(int64(p.ttl))
	return sb, nil
}

// Start fills the pool in the background and keeps it full until Close.
func (p *WarmPool) Start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil || p.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel, p.done = cancel, make(chan struct{})
	go p.run(ctx)
	p.kick()
}

func (p *WarmPool) kick() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

// run keeps the pool full and the warm pods' expiry fresh.
func (p *WarmPool) run(ctx context.Context) {
	defer close(p.done)
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
				sb.Touch()
				go sb.extendExpiry()
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
	p.mu.Unlock()
	for range need {
		go func() {
			if backoff > 0 {
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
			}
			sb, err := p.newMember()
			if err == nil {
				err = sb.Start(ctx)
			}
			p.mu.Lock()
			p.starting--
			if err != nil {
				p.failures++
				p.mu.Unlock()
				if sb != nil {
					_ = sb.Stop(context.WithoutCancel(ctx))
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
				_ = sb.Stop(context.WithoutCancel(ctx))
				return
			}
			p.ready = append(p.ready, sb)
			p.mu.Unlock()
		}()
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
// the token through the in-pod server. It returns ErrPoolEmpty when no pod is ready.
func (p *WarmPool) Claim(ctx context.Context, sessionID string, env map[string]string) (*KubernetesPodSandbox, error) {
	for {
		p.mu.Lock()
		if p.closed || len(p.ready) == 0 {
			p.mu.Unlock()
			return nil, ErrPoolEmpty
		}
		sb := p.ready[0]
		p.ready = p.ready[1:]
		p.mu.Unlock()
		p.kick()
		if !sb.IsAlive(ctx) {
			go sb.Stop(context.WithoutCancel(ctx))
			continue
		}
		err := sb.claim(ctx, sessionID, env)
		if err == nil {
			return sb, nil
		}
		if errors.Is(err, errClaimedElsewhere) {
			p.log.Debug("warm pod was claimed by another replica", "pod", sb.podName)
			sb.release() // not ours any more: forget it without deleting it
			continue
		}
		go sb.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
}

func (p *WarmPool) claimFor(ctx context.Context, sessionID string, env map[string]string) (Sandbox, error) {
	sb, err := p.Claim(ctx, sessionID, env)
	if err != nil {
		return nil, err
	}
	return sb, nil
}

// Close stops refilling and deletes the unclaimed pods.
func (p *WarmPool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	warm := p.ready
	p.ready = nil
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	var errs []error
	for _, sb := range warm {
		if err := sb.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
	label := strings.TrimPrefix(PodName(sessionID), PodNamePrefix)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":             uid,
		"resourceVersion": pod.ResourceVersion,
		"labels":          map[string]string{LabelPoolState: "claimed", LabelSandboxID: label},
		"annotations":     map[string]string{AnnotationSandboxID: sessionID, AnnotationExpiresAt: s.expiry(time.Now())},
	}})
	pods := s.client.CoreV1().Pods(s.cfg.namespace)
	_, err := pods.Patch(ctx, s.podName, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsConflict(err) {
		// Our cached resourceVersion may be stale; look again before giving the pod up.
		cur, gerr := pods.Get(ctx, s.podName, metav1.GetOptions{})
		if gerr != nil || cur.UID != uid || cur.Labels[LabelPoolState] != "warm" || cur.DeletionTimestamp != nil {
			return errClaimedElsewhere
		}
		patch, _ = json.Marshal(map[string]any{"metadata": map[string]any{
			"uid": uid, "resourceVersion": cur.ResourceVersion,
			"labels":      map[string]string{LabelPoolState: "claimed", LabelSandboxID: label},
			"annotations": map[string]string{AnnotationSandboxID: sessionID, AnnotationExpiresAt: s.expiry(time.Now())},
		}})
		if _, err = pods.Patch(ctx, s.podName, types.MergePatchType, patch, metav1.PatchOptions{}); apierrors.IsConflict(err) {
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
		s.mu.Unlock()
		go s.storeToken(token) // so another replica adopting the session reads the right token
	}
	s.Touch()
	return nil
}

// storeToken writes the sandbox's current token into its Secret.
func (s *KubernetesPodSandbox) storeToken(token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	patch, _ := json.Marshal(map[string]any{"data": map[string][]byte{tokenSecretKey: []byte(token)}})
	if _, err := s.client.CoreV1().Secrets(s.cfg.namespace).Patch(ctx, s.secretName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		s.log.Warn("could not store the rotated token in the Secret", "err", err)
	}
}

// release forgets the pod without deleting it (it belongs to someone else now).
func (s *KubernetesPodSandbox) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detach()
}

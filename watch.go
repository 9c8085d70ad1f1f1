package podsandbox

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// podWatcher is a Client's one pod informer for a namespace, shared by every sandbox in it: Start
// waits on its events instead of polling, and IsAlive reads its cache instead of sending a GET. It
// watches only pods labelled managed-by=podsandbox, runs while it has subscribers, and its
// goroutine is waited for when it stops.
type podWatcher struct {
	c        *Client
	ns       string
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	done     chan struct{} // closed when the informer has returned
	refs     int           // guarded by the client's mu

	mu   sync.Mutex
	subs map[string]map[*podSubscription]struct{}
}

// podSubscription follows one pod name.
type podSubscription struct {
	w    *podWatcher
	name string
	ch   chan struct{}
	once sync.Once
}

func newPodWatcher(c *Client, ns string) *podWatcher {
	inf := coreinformers.NewFilteredPodInformer(c.cs, ns, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
		o.LabelSelector = LabelManagedBy + "=" + ManagedByValue
	})
	_ = inf.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
		}
		return obj, nil
	})
	ctx, cancel := context.WithCancel(context.Background()) // the watcher's own lifetime: cancel stops it
	w := &podWatcher{c: c, ns: ns, informer: inf, cancel: cancel, done: make(chan struct{}), subs: map[string]map[*podSubscription]struct{}{}}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.onEvent,
		UpdateFunc: func(_, n any) { w.onEvent(n) },
		DeleteFunc: w.onEvent,
	})
	go func() {
		defer close(w.done)
		inf.RunWithContext(ctx)
	}()
	return w
}

func (w *podWatcher) subscribe(name string) *podSubscription {
	sub := &podSubscription{w: w, name: name, ch: make(chan struct{}, 1)}
	w.mu.Lock()
	if w.subs[name] == nil {
		w.subs[name] = map[*podSubscription]struct{}{}
	}
	w.subs[name][sub] = struct{}{}
	w.mu.Unlock()
	sub.notify() // let the first wait look at the cache at once
	return sub
}

func (w *podWatcher) onEvent(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for sub := range w.subs[p.Name] {
		sub.notify()
	}
}

func (s *podSubscription) notify() {
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// changed fires after any event for the pod (coalesced).
func (s *podSubscription) changed() <-chan struct{} { return s.ch }

// waitSynced blocks until the informer has listed once. It waits on the informer's synced channel
// rather than cache.WaitForCacheSync, which polls every 100 ms: that poll was most of the time a
// one-shot Attach (a CLI command) took.
func (s *podSubscription) waitSynced(ctx context.Context) bool {
	select {
	case <-s.w.informer.HasSyncedChecker().Done():
		return true
	case <-ctx.Done():
		return s.w.informer.HasSynced()
	}
}

// pod returns the cached pod, or nil when it does not exist (or the cache has not synced).
func (s *podSubscription) pod() *corev1.Pod { return s.cached(s.name) }

// cached returns the cached pod of that name in the subscription's namespace, or nil.
func (s *podSubscription) cached(name string) *corev1.Pod {
	obj, ok, err := s.w.informer.GetStore().GetByKey(s.w.ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	return obj.(*corev1.Pod)
}

// list returns the cached pods of the namespace that match (none before the cache has synced).
func (s *podSubscription) list(match func(*corev1.Pod) bool) []*corev1.Pod {
	var out []*corev1.Pod
	for _, obj := range s.w.informer.GetStore().List() {
		if p, ok := obj.(*corev1.Pod); ok && match(p) {
			out = append(out, p)
		}
	}
	return out
}

// close ends the subscription; the last one stops the watch.
func (s *podSubscription) close() {
	s.once.Do(func() {
		w := s.w
		w.mu.Lock()
		delete(w.subs[s.name], s)
		if len(w.subs[s.name]) == 0 {
			delete(w.subs, s.name)
		}
		w.mu.Unlock()
		w.c.unsubscribe(w)
	})
}

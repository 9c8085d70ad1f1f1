package podsandbox

import (
	"context"
	"encoding/json"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// extendEvery is how often activity may move the expiry annotation forward: a quarter of the idle
// timeout (at most once a second), so an active sandbox's expiry stays at least three quarters of
// the idle timeout ahead of now, and a busy one costs one PATCH per interval, not one per command.
func (s *KubernetesPodSandbox) extendEvery() time.Duration {
	return max(s.cfg.idleTimeout/4, time.Second)
}

// extendExpiryAsync moves the pod's expires-at annotation to last activity plus the idle timeout,
// in the sandbox's background (Stop waits for it). It does nothing before Start or after Stop.
func (s *KubernetesPodSandbox) extendExpiryAsync() {
	s.bg.do(s.extendExpiry)
}

// extendExpiry patches the pod's expires-at annotation to last activity plus the idle timeout. It
// must not take s.mu: Stop waits for it while holding s.mu.
func (s *KubernetesPodSandbox) extendExpiry(ctx context.Context) {
	uid := s.startedUID.Load()
	if uid == nil || *uid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.patchAnnotations(ctx, *uid, map[string]string{AnnotationExpiresAt: s.expiry(s.LastActivity())}); err != nil {
		s.log.Debug("could not extend the expiry annotation", "err", err)
	}
}

// patchAnnotations merges annotations into the pod, which must still have uid.
func (s *KubernetesPodSandbox) patchAnnotations(ctx context.Context, uid types.UID, ann map[string]string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": uid, "annotations": ann}})
	_, err := s.client.CoreV1().Pods(s.cfg.namespace).Patch(ctx, s.podName, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

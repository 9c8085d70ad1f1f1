package podsandbox

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// waitUsable waits, on watch events, until the pod can serve requests: Running and Ready in API
// mode; in HTTP mode, as soon as the container runs and the in-pod server answers /health (without
// waiting for the kubelet's next readiness probe). It fails early on terminal states.
func (s *KubernetesPodSandbox) waitUsable(ctx context.Context, t0 time.Time) (*corev1.Pod, error) {
	sub := s.watch
	span := trace.SpanFromContext(ctx)
	if !sub.waitSynced(ctx) {
		return nil, s.startupFailure(ctx, nil, "Timeout", fmt.Sprintf("not ready in %s: the pod watch did not sync", s.cfg.startupTimeout))
	}
	var (
		grace     = map[string]time.Time{} // reason -> first seen, for reasons that may heal
		graceTick <-chan time.Time
		eventTick <-chan time.Time // with a RuntimeClass: look for a handler the node lacks
		probing   bool
		healthy   = make(chan transport, 1)
		last      *corev1.Pod
		logged    = map[string]bool{}
	)
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	defer func() {
		stopProbe()
		if probing {
			<-probeDone
			select {
			case tr := <-healthy: // the probe answered just as the wait ended another way
				if s.tr != tr {
					tr.close()
				}
			default:
			}
		}
	}()
	for {
		p := sub.pod()
		switch {
		case p == nil && last != nil:
			return nil, s.startupFailure(ctx, last, "Deleted", "the pod was deleted while starting")
		case p != nil && p.UID != s.uid:
			return nil, s.startupFailure(ctx, last, "Deleted", "the pod was replaced while starting")
		case p != nil:
			last = p
			s.logProgress(span, p, t0, logged)
			if reason, msg, terminal := s.classify(p, grace); terminal {
				return nil, s.startupFailure(ctx, p, reason, msg)
			}
			if len(grace) > 0 && graceTick == nil {
				graceTick = time.After(s.cfg.unschedulable + 10*time.Millisecond)
			}
			if eventTick == nil && p.Spec.RuntimeClassName != nil && p.Spec.NodeName != "" && !containerRunning(p) {
				eventTick = time.After(handlerCheckAfter)
			}
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				if s.cfg.mode == ModeAPI && podReady(p) {
					return p, nil
				}
				if s.cfg.mode == ModeHTTP && !probing && containerRunning(p) && p.Status.PodIP != "" {
					probing = true
					go func() {
						defer close(probeDone)
						s.probeHealth(probeCtx, p.Status.PodIP, healthy)
					}()
				}
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, fmt.Errorf("podsandbox: start of %s cancelled after %s: %w", s.podName, time.Since(t0).Round(time.Millisecond), ctx.Err())
			}
			return nil, s.startupFailure(ctx, last, "Timeout", fmt.Sprintf("not ready after %s", time.Since(t0).Round(time.Millisecond)))
		case <-sub.changed():
		case <-graceTick:
			graceTick = nil
		case <-eventTick:
			eventTick = nil
			if last != nil && !containerRunning(last) {
				if msg, ok := s.handlerMissing(ctx); ok {
					return nil, s.startupFailure(ctx, last, "RuntimeHandlerUnavailable", fmt.Sprintf(
						"the node cannot run RuntimeClass %q: its handler is not installed there (%s)", *last.Spec.RuntimeClassName, msg))
				}
				eventTick = time.After(handlerCheckEvery)
			}
		case tr := <-healthy:
			s.tr, s.healthy = tr, true
			span.AddEvent("server ready", trace.WithAttributes(attribute.Int64("podsandbox.elapsed_ms", time.Since(t0).Milliseconds())))
			return last, nil
		}
	}
}

// A starting pod with a RuntimeClass has its events read once its container has not started
// handlerCheckAfter after scheduling, then every handlerCheckEvery: a pod that starts in time
// (gVisor's take about 0.8 s here) costs no events LIST.
const (
	handlerCheckAfter = 2 * time.Second
	handlerCheckEvery = time.Second
)

// handlerMissing reports whether the pod's events say the node cannot create its pod sandbox
// because the RuntimeClass's handler is not configured or its shim is not installed. The kubelet
// retries that forever, and the pod's status shows only ContainerCreating.
func (s *KubernetesPodSandbox) handlerMissing(ctx context.Context) (string, bool) {
	for _, e := range s.lastEvents(ctx, 5) {
		if !strings.HasPrefix(e, "FailedCreatePodSandBox: ") {
			continue
		}
		low := strings.ToLower(e)
		for _, sign := range []string{"no runtime for", "runtime handler", "failed to start shim", "executable file not found"} {
			if strings.Contains(low, sign) {
				return strings.TrimPrefix(e, "FailedCreatePodSandBox: "), true
			}
		}
	}
	return "", false
}

// probeHealth polls the in-pod server's /health until it answers, with a short backoff.
func (s *KubernetesPodSandbox) probeHealth(ctx context.Context, ip string, ok chan<- transport) {
	tr := newHTTPTransportAt(s, s.token, ip)
	delay := 5 * time.Millisecond
	for {
		if err := tr.health(ctx); err == nil {
			ok <- tr
			return
		}
		select {
		case <-ctx.Done():
			tr.close()
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// logProgress logs each milestone once, and adds it to the Start span as an event: scheduled, image
// ready (the container exists, made from the pulled image), started, ready.
func (s *KubernetesPodSandbox) logProgress(span trace.Span, p *corev1.Pod, t0 time.Time, seen map[string]bool) {
	step := func(name string, ok bool, args ...any) {
		if ok && !seen[name] {
			seen[name] = true
			elapsed := time.Since(t0)
			s.log.Debug("pod "+name, append(args, "elapsed", elapsed.Round(time.Millisecond))...)
			span.AddEvent(name, trace.WithAttributes(attribute.Int64("podsandbox.elapsed_ms", elapsed.Milliseconds())))
		}
	}
	step("scheduled", p.Spec.NodeName != "", "node", p.Spec.NodeName)
	step("image ready", imageReady(p), "image", s.cfg.image)
	step("started", containerRunning(p), "image", s.cfg.image)
	step("ready", podReady(p))
}

// imageReady reports whether the sandbox container exists, which needs its image on the node.
func imageReady(p *corev1.Pod) bool {
	for _, c := range p.Status.ContainerStatuses {
		if c.ImageID != "" || c.State.Running != nil || c.State.Terminated != nil {
			return true
		}
	}
	return false
}

// Waiting reasons that never heal for a sandbox pod (restartPolicy Never).
var terminalWaiting = map[string]bool{
	"InvalidImageName":     true,
	"ErrImageNeverPull":    true,
	"ImagePullBackOff":     true,
	"CreateContainerError": true,
	"RunContainerError":    true,
	"CrashLoopBackOff":     true,
	"ImageInspectError":    true,
	"StartError":           true,
}

// classify reports whether p can no longer become usable, and why. Reasons that may heal
// (Unschedulable, CreateContainerConfigError) become terminal after the unschedulable grace.
func (s *KubernetesPodSandbox) classify(p *corev1.Pod, grace map[string]time.Time) (reason, msg string, terminal bool) {
	if p.DeletionTimestamp != nil {
		return "Terminating", "the pod is being deleted", true
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && (t.ExitCode != 0 || p.Status.Phase != corev1.PodPending) {
			return nonEmpty(t.Reason, "Terminated"), fmt.Sprintf("container %s exited with code %d%s", cs.Name, t.ExitCode, prefixed(t.Message)), true
		}
		if w := cs.State.Waiting; w != nil {
			switch {
			case terminalWaiting[w.Reason]:
				return w.Reason, w.Message, true
			case w.Reason == "ErrImagePull" && pullNeverWorks(w.Message):
				return w.Reason, w.Message, true
			case w.Reason == "CreateContainerConfigError":
				if s.graceOver(grace, w.Reason) {
					return w.Reason, w.Message, true
				}
			}
		}
	}
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		return nonEmpty(p.Status.Reason, string(p.Status.Phase)), nonEmpty(p.Status.Message, "the pod finished before it was ready"), true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			if s.graceOver(grace, c.Reason) {
				return c.Reason, c.Message, true
			}
		}
	}
	return "", "", false
}

func (s *KubernetesPodSandbox) graceOver(grace map[string]time.Time, reason string) bool {
	first, ok := grace[reason]
	if !ok {
		grace[reason] = time.Now()
		return s.cfg.unschedulable <= 0
	}
	return time.Since(first) >= s.cfg.unschedulable
}

func pullNeverWorks(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"not found", "manifest unknown", "unauthorized", "access denied", "no such host", "invalid reference"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// startupFailure builds the *StartupError with the pod's last events.
func (s *KubernetesPodSandbox) startupFailure(ctx context.Context, p *corev1.Pod, reason, msg string) error {
	e := &StartupError{Pod: s.podName, Reason: reason, Message: msg}
	if p != nil && reason == "Timeout" {
		e.Message += "; " + describeConditions(p)
	}
	e.Events = s.lastEvents(context.WithoutCancel(ctx), 5)
	low := strings.ToLower(msg)
	if strings.Contains(low, "/bin/sh") && (strings.Contains(low, "no such file") || strings.Contains(low, "not found")) {
		e.ImageUnsupported = true
		e.Message = "the image has no /bin/sh (API mode needs /bin/sh and timeout; use an image with a shell, or HTTP mode with the server image): " + msg
	}
	s.log.Warn("sandbox did not start", "reason", reason, "message", msg)
	return e
}

func describeConditions(p *corev1.Pod) string {
	parts := []string{"phase " + string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			parts = append(parts, fmt.Sprintf("%s=%s %s", c.Type, c.Status, strings.TrimSpace(c.Reason+" "+c.Message)))
		}
	}
	return strings.Join(parts, ", ")
}

// lastEvents returns the pod's newest events as "Reason: message", oldest first.
func (s *KubernetesPodSandbox) lastEvents(ctx context.Context, n int) []string {
	if s.uid == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	list, err := s.client.CoreV1().Events(s.cfg.namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.uid=" + string(s.uid),
	})
	if err != nil {
		return nil
	}
	evs := list.Items
	at := func(e corev1.Event) time.Time {
		if !e.EventTime.IsZero() {
			return e.EventTime.Time
		}
		if !e.LastTimestamp.IsZero() {
			return e.LastTimestamp.Time
		}
		return e.CreationTimestamp.Time
	}
	sort.SliceStable(evs, func(i, j int) bool { return at(evs[i]).Before(at(evs[j])) })
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func containerRunning(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == ContainerName || len(p.Status.ContainerStatuses) == 1 {
			return cs.State.Running != nil
		}
	}
	return false
}

// ensureSecret creates this pod incarnation's own token Secret (see secretName).
func (s *KubernetesPodSandbox) ensureSecret(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:        s.secretName(),
				Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelSandboxID: strings.TrimPrefix(s.podName, PodNamePrefix)},
				Annotations: map[string]string{AnnotationSandboxID: s.ID()},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{tokenSecretKey: []byte(s.token)},
		}
		_, err := s.client.CoreV1().Secrets(s.cfg.namespace).Create(ctx, sec, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) && attempt < 3 {
			s.secret = "" // a random-name collision: pick another
			continue
		}
		if err != nil {
			return s.createError(err)
		}
		return nil
	}
}

// adoptSecret switches to the token of an adopted pod: the one in the Secret its container reads.
// With WithExecToken the caller's token is kept (and the server refuses it if it differs).
func (s *KubernetesPodSandbox) adoptSecret(ctx context.Context, pod *corev1.Pod) error {
	secrets := s.client.CoreV1().Secrets(s.cfg.namespace)
	if mine := s.secret; mine != "" {
		_ = secrets.Delete(ctx, mine, metav1.DeleteOptions{}) // made for a pod we did not create
	}
	name := tokenSecretOf(pod)
	if name == "" {
		return &ConflictError{Pod: s.podName, Reason: "it reads no token from a Secret"}
	}
	s.secret = name
	if s.cfg.execToken != "" {
		return nil
	}
	sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("podsandbox: adopting %s: reading its token: %w", s.podName, err)
	}
	s.token = string(sec.Data[tokenSecretKey])
	return nil
}

// ownSecret makes the pod the Secret's owner, so the garbage collector removes the Secret with the
// pod even when nobody calls Stop.
func (s *KubernetesPodSandbox) ownSecret(ctx context.Context, pod *corev1.Pod) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
	}}}})
	_, err := s.client.CoreV1().Secrets(s.cfg.namespace).Patch(ctx, s.secretName(), types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		s.log.Warn("could not set the token Secret's owner; it will be deleted by Stop or the reaper", "err", err)
	}
}

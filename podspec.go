package podsandbox

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// Names, labels and annotations podsandbox puts on what it creates.
const (
	// PodNamePrefix starts every sandbox pod name (upstream's).
	PodNamePrefix = "pab-sandbox-"
	// ContainerName is the sandbox container's name (upstream's).
	ContainerName = "sandbox"

	// LabelApp is upstream's app label; its value is AppLabelValue.
	LabelApp      = "app"
	AppLabelValue = "pab-sandbox"
	// LabelManagedBy marks every object podsandbox manages; the reaper only touches these.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "podsandbox"
	// LabelSandboxID carries the label-safe form of the sandbox id (the pod name without prefix).
	LabelSandboxID = "podsandbox.io/sandbox-id"
	// LabelNetworkPolicy selects the pod in its NetworkPolicy: the pod name without prefix, set at
	// creation and never changed.
	LabelNetworkPolicy = "podsandbox.io/network-policy"
	// AnnotationSandboxID carries the sandbox id exactly as given.
	AnnotationSandboxID = "podsandbox.io/sandbox-id"
	// AnnotationMode records the transport the pod was built for ("http" or "api").
	AnnotationMode = "podsandbox.io/mode"
	// AnnotationExpiresAt (RFC 3339) is when the pod may be reaped if nobody uses it: last activity
	// plus the idle timeout. Activity moves it forward; Reap deletes managed pods past it, even
	// when the process that made them is gone.
	AnnotationExpiresAt = "podsandbox.io/expires-at"
	// LabelPool names the warm pool a pod was made for; LabelPoolState is "warm" until a session
	// claims the pod, then "claimed".
	LabelPool      = "podsandbox.io/pool"
	LabelPoolState = "podsandbox.io/pool-state"
	// LabelPoolSpec is a hash of a warm pod's spec. Replicas share the warm pods of a pool name,
	// but only those whose spec hash equals their own, so a replica never hands its users a pod
	// made from another image or settings (during a rolling update, for example).
	LabelPoolSpec = "podsandbox.io/pool-spec"

	tokenSecretKey = "token"
	workspaceVol   = "workspace"
	tmpVol         = "tmp"
)

// maxNameLen is the DNS-1123 label limit that applies to pod names used as hostnames.
const maxNameLen = 63

// PodName returns the pod name for a sandbox id: upstream's "pab-sandbox-" prefix and the id
// lower-cased with every character other than ASCII a-z, 0-9 and "-" replaced by "-". When that
// mapping loses information (case, punctuation, non-ASCII) or the name must be cut to 63
// characters, a short hash of the exact id is appended, so ids that would collide ("A_b", "a.b",
// "a-b") get distinct names.
func PodName(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	clean := strings.Trim(b.String(), "-")
	lossy := clean != id
	sum := sha256.Sum256([]byte(id))
	hash := hex.EncodeToString(sum[:4])
	if clean == "" {
		return PodNamePrefix + hash
	}
	room := maxNameLen - len(PodNamePrefix)
	if !lossy && len(clean) <= room {
		return PodNamePrefix + clean
	}
	if len(clean) > room-len(hash)-1 {
		clean = strings.TrimRight(clean[:room-len(hash)-1], "-")
	}
	return PodNamePrefix + clean + "-" + hash
}

// podLabels returns the labels for a sandbox pod: the caller's extra labels, then upstream's app
// label (extra labels may override it, as upstream) and podsandbox's own (which may not be
// overridden: the reaper and adoption rely on them).
// ownLabel reports whether k is one of the labels podsandbox sets and a caller may not.
func ownLabel(k string) bool {
	switch k {
	case LabelManagedBy, LabelSandboxID, LabelPool, LabelPoolState, LabelPoolSpec, LabelNetworkPolicy:
		return true
	}
	return false
}

func podLabels(name string, extra map[string]string) map[string]string {
	l := map[string]string{LabelApp: AppLabelValue}
	maps.Copy(l, extra)
	l[LabelManagedBy] = ManagedByValue
	l[LabelSandboxID] = strings.TrimPrefix(name, PodNamePrefix)
	l[LabelNetworkPolicy] = l[LabelSandboxID] // fixed for the pod's life: a warm pool's claim changes LabelSandboxID
	return l
}

// buildPod returns the pod body for this sandbox: upstream's hardened default with fixes for
// images whose command exits and for a writable HOME, or the caller's template with the required fields filled in.
func (s *KubernetesPodSandbox) buildPod() *corev1.Pod {
	c := &s.cfg
	if c.podTemplate != nil {
		return s.mergeTemplate()
	}
	ctr := corev1.Container{
		Name:            ContainerName,
		Image:           c.image,
		ImagePullPolicy: c.pullPolicy,
		WorkingDir:      c.workDir,
		Env:             s.containerEnv(nil),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			ReadOnlyRootFilesystem:   new(true),
			RunAsNonRoot:             new(true),
			RunAsUser:                new(int64(1000)),
			RunAsGroup:               new(int64(1000)),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Resources: c.resources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: workspaceVol, MountPath: c.workDir},
			{Name: tmpVol, MountPath: "/tmp"},
		},
	}
	if c.mode == ModeHTTP {
		s.addHTTPBits(&ctr)
	} else {
		// A long-running command of our own, so images whose CMD exits (python, node)
		// still work. Unlike `sleep infinity` it exits on SIGTERM, so deletes are quick.
		ctr.Command = []string{"/bin/sh", "-c", apiModeIdle}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        s.podName,
			Namespace:   c.namespace,
			Labels:      podLabels(s.podName, c.labels),
			Annotations: s.annotations(),
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  new(false),
			ServiceAccountName:            c.serviceAccount,
			TerminationGracePeriodSeconds: new(c.terminationGrace),
			EnableServiceLinks:            new(false),
			RuntimeClassName:              c.runtimeClass,
			ActiveDeadlineSeconds:         c.activeDeadline,
			Tolerations:                   slices.Clone(c.tolerations),
			NodeSelector:                  maps.Clone(c.nodeSelector),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   new(true),
				RunAsUser:      new(int64(1000)),
				RunAsGroup:     new(int64(1000)),
				FSGroup:        new(int64(1000)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{ctr},
			Volumes: []corev1.Volume{
				{Name: workspaceVol, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: new(c.workspaceSize)}}},
				{Name: tmpVol, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: new(resource.MustParse("256Mi"))}}},
			},
		},
	}
	return pod
}

// apiModeIdle keeps an API-mode pod running and exits promptly on SIGTERM.
const apiModeIdle = `trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done`

// DefaultResources returns upstream's requests and limits (256Mi/100m requests, 768Mi/1 CPU
// limits), the default of every sandbox; start from it to change one value with WithResources.
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("768Mi"), corev1.ResourceCPU: resource.MustParse("1")},
	}
}

func (s *KubernetesPodSandbox) annotations() map[string]string {
	return map[string]string{
		AnnotationSandboxID: s.ID(),
		AnnotationMode:      string(s.cfg.mode),
		// A pod still starting must not look idle to a reaper: its expiry counts from the end
		// of the startup timeout (activity moves it forward as usual once the sandbox runs).
		AnnotationExpiresAt: s.expiry(time.Now().Add(s.cfg.startupTimeout)),
	}
}

// expiry returns the expires-at value for activity at t.
func (s *KubernetesPodSandbox) expiry(t time.Time) string {
	d := s.cfg.idleTimeout
	if ttl := time.Duration(s.expiryTTL.Load()); ttl > 0 {
		d = ttl
	}
	return t.Add(d).UTC().Format(time.RFC3339)
}

// containerEnv returns the sandbox container's env: the token (HTTP mode, from the sandbox's
// Secret, never a plain value), port, work dir, PYTHONUNBUFFERED and HOME, then the caller's extras
// in name order. Names in skip (a template's own env) are left out.
func (s *KubernetesPodSandbox) containerEnv(skip map[string]bool) []corev1.EnvVar {
	c := &s.cfg
	var env []corev1.EnvVar
	add := func(e corev1.EnvVar) {
		if !skip[e.Name] {
			env = append(env, e)
			skip = withKey(skip, e.Name)
		}
	}
	if c.mode == ModeHTTP {
		add(corev1.EnvVar{Name: wire.EnvToken, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: s.secretName()}, Key: tokenSecretKey,
		}}})
		add(corev1.EnvVar{Name: wire.EnvPort, Value: strconv.Itoa(c.port)})
	}
	add(corev1.EnvVar{Name: wire.EnvWorkDir, Value: c.workDir})
	add(corev1.EnvVar{Name: "PYTHONUNBUFFERED", Value: "1"})
	for _, k := range slices.Sorted(maps.Keys(c.env)) {
		add(corev1.EnvVar{Name: k, Value: c.env[k]})
	}
	// HOME must be writable on the read-only root; the caller's HOME wins.
	add(corev1.EnvVar{Name: "HOME", Value: c.workDir})
	return env
}

func withKey(m map[string]bool, k string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[k] = true
	return m
}

func (s *KubernetesPodSandbox) addHTTPBits(ctr *corev1.Container) {
	port := int32(s.cfg.port)
	if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port }) {
		ctr.Ports = append(ctr.Ports, corev1.ContainerPort{ContainerPort: port, Name: "exec"})
	}
	if ctr.ReadinessProbe == nil {
		ctr.ReadinessProbe = &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: wire.RouteHealth, Port: intstr.FromInt32(port)}},
			PeriodSeconds:    1,
			FailureThreshold: 5,
		}
	}
}

// mergeTemplate fills the caller's pod template by WithPodTemplate's rule (the constructor has
// already refused contradictions): the name is forced, the namespace must agree, labels, env and
// the node selector merge, tolerations are appended, the options given explicitly fill the fields
// the template leaves empty, and only the first container is touched. Unlike upstream, a template
// that presets the token env var must agree with the client's token, and podsandbox's own labels
// are always set.
func (s *KubernetesPodSandbox) mergeTemplate() *corev1.Pod {
	c := &s.cfg
	pod := c.podTemplate.DeepCopy()
	pod.Name = s.podName
	pod.Namespace = c.namespace
	labels := podLabels(s.podName, c.labels)
	for k, v := range pod.Labels {
		if !ownLabel(k) {
			labels[k] = v
		}
	}
	pod.Labels = labels
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	maps.Copy(pod.Annotations, s.annotations())
	if len(c.nodeSelector) > 0 {
		pod.Spec.NodeSelector = mergeInto(pod.Spec.NodeSelector, c.nodeSelector)
	}
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, c.tolerations...)
	set := c.set
	if set["WithServiceAccount"] && pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = c.serviceAccount
	}
	if set["WithRuntimeClass"] && pod.Spec.RuntimeClassName == nil {
		pod.Spec.RuntimeClassName = c.runtimeClass
	}
	if set["WithActiveDeadline"] && pod.Spec.ActiveDeadlineSeconds == nil {
		pod.Spec.ActiveDeadlineSeconds = c.activeDeadline
	}
	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{{}}
	}
	ctr := &pod.Spec.Containers[0]
	ctr.Image = c.image
	if ctr.Name == "" {
		ctr.Name = ContainerName
	}
	if set["WithImagePullPolicy"] && ctr.ImagePullPolicy == "" {
		ctr.ImagePullPolicy = c.pullPolicy
	}
	if set["WithWorkDir"] && ctr.WorkingDir == "" {
		ctr.WorkingDir = c.workDir
	}
	if set["WithResources"] && len(ctr.Resources.Requests) == 0 && len(ctr.Resources.Limits) == 0 {
		ctr.Resources = c.resources
	}
	have := map[string]bool{}
	for _, e := range ctr.Env {
		have[e.Name] = true
	}
	ctr.Env = append(ctr.Env, s.containerEnv(have)...)
	if c.mode == ModeHTTP {
		s.addHTTPBits(ctr)
	}
	return pod
}

// secretName is the name of the Secret holding an HTTP-mode sandbox's token: the pod's name and a
// random suffix, one Secret per pod incarnation, owned by that pod. A replacement pod of the same
// name never reuses a Secret that the garbage collector (and the kubelet's cache) still tie to
// the old pod; an adopter finds the token through the pod's own secretKeyRef.
func (s *KubernetesPodSandbox) secretName() string {
	if s.secret == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		s.secret = s.podName + "-token-" + hex.EncodeToString(b)
	}
	return s.secret
}

// tokenSecretOf returns the name of the Secret a pod's container reads its token from.
func tokenSecretOf(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == wire.EnvToken && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				return e.ValueFrom.SecretKeyRef.Name
			}
		}
	}
	return ""
}

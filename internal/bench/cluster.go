package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// createNamespace creates psbx-bench-<random> and waits for its default ServiceAccount (pods
// cannot be created before it exists).
func (b *bench) createNamespace(ctx context.Context) error {
	ns, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "psbx-bench-",
		Labels:       map[string]string{"podsandbox.dev/bench": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	b.ns = ns.Name
	return poll(ctx, time.Minute, 100*time.Millisecond, func() (bool, error) {
		_, err := b.cs.CoreV1().ServiceAccounts(b.ns).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// deleteNamespace deletes the bench namespace and waits (bounded) until it is gone, so the pods
// are gone too when the program exits.
func (b *bench) deleteNamespace(ctx context.Context) error {
	if b.ns == "" {
		return nil
	}
	err := b.cs.CoreV1().Namespaces().Delete(ctx, b.ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, error) {
		_, err := b.cs.CoreV1().Namespaces().Get(ctx, b.ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// poll calls cond every interval until it returns true, an error, or timeout passes.
func poll(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s", timeout)
		case <-time.After(interval):
		}
	}
}

// waitPodsGone waits until none of the named pods exists in the bench namespace.
func (b *bench) waitPodsGone(ctx context.Context, names ...string) error {
	for _, n := range names {
		err := poll(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, error) {
			_, err := b.cs.CoreV1().Pods(b.ns).Get(ctx, n, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("pod %s still there: %w", n, err)
		}
	}
	return nil
}

// deletePod deletes a pod (not timed) and waits until it is gone.
func (b *bench) deletePod(ctx context.Context, name string) error {
	err := b.cs.CoreV1().Pods(b.ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return b.waitPodsGone(ctx, name)
}

// otherPods counts the pods of other namespaces that are not finished: the shared cluster's load.
func (b *bench) otherPods(ctx context.Context) int {
	l, err := b.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return -1
	}
	n := 0
	for _, p := range l.Items {
		if p.Namespace != b.ns && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n
}

// kubectl runs /usr/bin/kubectl against the bench namespace. Its stdout goes to stdout (nil:
// discarded); its stderr (kubectl v1.32 warns about the version skew there) is only shown when
// the command fails.
func (b *bench) kubectl(ctx context.Context, stdout io.Writer, args ...string) error {
	full := append([]string{"--kubeconfig", b.kubeconfig, "-n", b.ns}, args...)
	cmd := exec.CommandContext(ctx, b.opt.kubectl, full...)
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 3))
	}
	return nil
}

// lastLines returns the last n non-empty lines of s, without kubectl's version-skew warning.
func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "version difference") && !strings.Contains(l, "exceeds the supported minor version skew") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, " | ")
}

// kubectlVersion returns kubectl's client version, or "?".
func (b *bench) kubectlVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, b.opt.kubectl, "version", "--client", "-o", "json").Output()
	if err != nil {
		return "?"
	}
	var v struct {
		ClientVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"clientVersion"`
	}
	if json.Unmarshal(out, &v) != nil || v.ClientVersion.GitVersion == "" {
		return "?"
	}
	return v.ClientVersion.GitVersion
}

// clientGoExec is the bare client-go baseline: one pods/exec call built per call exactly as
// kubectl exec builds it (WebSocket executor with SPDY fallback on an upgrade failure), with
// nothing of podsandbox on the path.
func (b *bench) clientGoExec(ctx context.Context, pod, container string, argv []string, stdout, stderr io.Writer) error {
	req := b.cs.CoreV1().RESTClient().Post().Namespace(b.ns).Resource("pods").Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdyEx, err := remotecommand.NewSPDYExecutor(b.cfg, "POST", req.URL())
	if err != nil {
		return err
	}
	wsEx, err := remotecommand.NewWebSocketExecutor(b.cfg, "GET", req.URL().String())
	if err != nil {
		return err
	}
	ex, err := remotecommand.NewFallbackExecutor(wsEx, spdyEx, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr})
}

// hashWriter counts and hashes what is written to it.
type hashWriter struct {
	h hash.Hash
	n int64
}

func newHashWriter() *hashWriter { return &hashWriter{h: sha256.New()} }

func (w *hashWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

func (w *hashWriter) sum() string { return hex.EncodeToString(w.h.Sum(nil)) }

//go:build e2e

package podsandbox_test

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// The node drills fault the local cluster's own daemons through hack/cluster/fault.sh, so they
// disturb every test running beside them: hack/test.sh runs them alone, after the other e2e tests
// (-run '^TestNodeDrill'), and make chaos after the other drills.

// fault runs hack/cluster/fault.sh with args and fails the test when it fails.
func fault(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("hack/cluster/fault.sh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("hack/cluster/fault.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("hack/cluster/fault.sh %s:\n%s", strings.Join(args, " "), out)
}

// drillCase is one transport of a drill, and the options of its calls.
type drillCase struct {
	name  string
	image string
	opts  []podsandbox.Option
	exec  []podsandbox.ExecOption
}

// drillCases are the four transports of the drills (a func: testAgent is built by TestMain).
func drillCases(exec ...podsandbox.ExecOption) []drillCase {
	return []drillCase{
		{"http-podip", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachPodIP)}, exec},
		{"http-proxy", e2e.ImageServer, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeHTTP), podsandbox.WithReach(podsandbox.ReachProxy)}, exec},
		{"api-exec", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI)}, exec},
		{"api-agent", e2e.ImageBusybox, []podsandbox.Option{podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithAgent(testAgent)}, exec},
	}
}

// drillScript appends a line to /tmp/drill.runs (so a second run shows), says it started, sleeps
// through the fault, then writes 15 000 numbered lines (under the 100 000-byte cap).
const drillScript = `echo run >> /tmp/drill.runs; touch /tmp/drill.started; sleep %d; seq 1 15000; echo end`

// checkDrillResult: the complete output, exit 0, and one run of the command.
func checkDrillResult(t *testing.T, sb *podsandbox.KubernetesPodSandbox, res drillResult) {
	t.Helper()
	var want strings.Builder
	for i := 1; i <= 15000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	want.WriteString("end\n")
	if res.err != nil {
		t.Fatalf("Execute: %v", res.err)
	}
	if res.r.ExitCode != 0 || res.r.Stdout != want.String() {
		t.Errorf("Execute: exit %d, %d bytes of stdout (want %d), truncated %v", res.r.ExitCode, len(res.r.Stdout), want.Len(), res.r.Truncated)
	}
	r := mustExec(t, sb, "wc -l < /tmp/drill.runs")
	if strings.TrimSpace(r.Stdout) != "1" {
		t.Errorf("the command ran %s times, want once", strings.TrimSpace(r.Stdout))
	}
}

// TestNodeDrillKubeletPaused: the kubelet is stopped (SIGSTOP) for 20 s while a command runs on
// every transport. API mode's streams pass through the kubelet and stall; HTTP mode by pod IP does
// not need it. Every call returns its complete result, once, within 30 s of the kubelet resuming:
// a paused kubelet delays results, it never cuts them or runs a command twice.
func TestNodeDrillKubeletPaused(t *testing.T) {
	e2e.RequireNodeAccess(t)
	cases := drillCases()
	sbs := make([]*podsandbox.KubernetesPodSandbox, len(cases))
	for i, tc := range cases {
		sbs[i] = startSandbox(t, tc.image, tc.opts...)
	}
	ctx := ctxT(t, 4*time.Minute)
	dones := make([]<-chan drillResult, len(cases))
	for i, sb := range sbs {
		dones[i] = startDrillCommand(ctx, t, sb, sb, fmt.Sprintf(drillScript, 5), "/tmp/drill.started")
	}
	fault(t, "pause", "kubelet", "20")
	resumed := time.Now()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			select {
			case res := <-dones[i]:
				t.Logf("returned %s after the kubelet resumed", res.at.Sub(resumed).Round(time.Millisecond))
				checkDrillResult(t, sbs[i], res)
			case <-time.After(time.Until(resumed.Add(30 * time.Second))):
				t.Fatal("no result 30 s after the kubelet resumed")
			}
		})
	}
}

// TestNodeDrillAPIServerRestart: kube-apiserver crashes (SIGKILL) and is started again (a few
// seconds without an API server) while a command runs. WithReattach on every transport returns the complete
// result, once. A plain Execute returns its complete result by pod IP (no API server on the way)
// and otherwise fails with ErrConnectionLost, typed, never a partial result that looks complete.
func TestNodeDrillAPIServerRestart(t *testing.T) {
	e2e.RequireNodeAccess(t)
	type run struct {
		tc   drillCase
		sb   *podsandbox.KubernetesPodSandbox
		done <-chan drillResult
	}
	var runs []run
	for _, tc := range append(drillCases(podsandbox.WithReattach()), drillCases()...) {
		if len(tc.exec) == 0 {
			tc.name += "/plain"
		} else {
			tc.name += "/reattach"
		}
		runs = append(runs, run{tc: tc, sb: startSandbox(t, tc.image, tc.opts...)})
	}
	ctx := ctxT(t, 5*time.Minute)
	for i := range runs {
		runs[i].done = startDrillCommand(ctx, t, runs[i].sb, runs[i].sb, fmt.Sprintf(drillScript, 8), "/tmp/drill.started", runs[i].tc.exec...)
	}
	fault(t, "restart", "kube-apiserver", "KILL")
	back := time.Now()
	for _, r := range runs {
		t.Run(r.tc.name, func(t *testing.T) {
			var res drillResult
			select {
			case res = <-r.done:
			case <-time.After(time.Until(back.Add(90 * time.Second))):
				t.Fatal("no result 90 s after the API server came back")
			}
			t.Logf("returned %s after the API server came back: %v", res.at.Sub(back).Round(time.Millisecond), res.err)
			if len(r.tc.exec) > 0 || r.tc.name == "http-podip/plain" {
				checkDrillResult(t, r.sb, res)
				return
			}
			if !errors.Is(res.err, podsandbox.ErrConnectionLost) {
				t.Errorf("a plain Execute across the restart: %v, want the complete result or ErrConnectionLost", res.err)
			}
		})
	}
}

// podDrillCases are the transports of the drills that end the pod: by pod IP, a pods/exec per
// call and the agent (pods/proxy adds nothing when the pod itself goes).
func podDrillCases() []drillCase {
	return slices.DeleteFunc(drillCases(), func(c drillCase) bool { return c.name == "http-proxy" })
}

//go:build e2e

package podsandbox_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// TestExecChannel checks what only a long-lived exec stream could get wrong, on both images and
// both kinds of stream (the /bin/sh exec channel, the injected agent): one command's shell state or
// stray output must not reach the next, a command cannot eat or break the stream's protocol, and
// many concurrent calls share the stream with exact results.
func TestExecChannel(t *testing.T) {
	kinds := []struct {
		name string
		opt  func() podsandbox.Option
		via  string
	}{
		{"channel", func() podsandbox.Option { return podsandbox.WithExecChannels(2) }, podsandbox.ViaChannel},
		{"agent", func() podsandbox.Option { return podsandbox.WithAgent(testAgent) }, podsandbox.ViaAgent},
	}
	for _, k := range kinds {
		for _, img := range []string{e2e.ImageBusybox, e2e.ImagePython} {
			t.Run(k.name+"-"+img[strings.LastIndex(img, "/")+1:], func(t *testing.T) {
				t.Parallel()
				sb := startSandbox(t, img, podsandbox.WithMode(podsandbox.ModeAPI), k.opt())
				t.Cleanup(func() {
					if sb.Via() != k.via {
						t.Errorf("Via() = %q, want %q", sb.Via(), k.via)
					}
				})
				execChannelCases(t, sb)
			})
		}
	}
}

// execChannelCases are TestExecChannel's checks on one sandbox.
func execChannelCases(t *testing.T, sb *podsandbox.KubernetesPodSandbox) {
	t.Run("state does not leak between commands", func(t *testing.T) {
		mustExec(t, sb, "cd /tmp; export LEAK=1; trap 'echo trapped' EXIT; umask 077")
		r := mustExec(t, sb, `echo "$(pwd) ${LEAK:-none} $(umask)"`)
		if r.Stdout != "/workspace none 0022\n" && r.Stdout != "/workspace none 022\n" {
			t.Errorf("state leaked: %q", r.Stdout)
		}
	})
	t.Run("commands that end their shell or read stdin", func(t *testing.T) {
		for _, c := range []struct{ cmd, out string }{
			{"exit 7", ""},
			{"exec echo replaced", "replaced\n"},
			{"kill -9 $$", ""},
			{"exec 1>&- 2>&-; true", ""},
			{"cat; echo after", "after\n"},
			{"read x; echo \"got[$x]\"", "got[]\n"},
			{"dd bs=1 count=100 2>/dev/null | wc -c", "0\n"},
		} {
			r := mustExec(t, sb, c.cmd)
			if strings.TrimLeft(r.Stdout, " ") != c.out {
				t.Errorf("%q: stdout %q, want %q", c.cmd, r.Stdout, c.out)
			}
			if r2 := mustExec(t, sb, "echo ok"); r2.Stdout != "ok\n" || r2.ExitCode != 0 {
				t.Fatalf("after %q the next call got %+v", c.cmd, r2)
			}
		}
		if r := mustExec(t, sb, "kill -9 $$"); r.ExitCode != 137 {
			t.Errorf("kill -9 $$: exit code %d, want 137", r.ExitCode)
		}
	})
	t.Run("a background writer does not reach the next command", func(t *testing.T) {
		// The late output may belong to this call (the agent, like HTTP mode, waits a moment
		// for a child holding stdout), never to a later one.
		r := mustExec(t, sb, "(sleep 1; echo LATE; echo LATE >&2) & echo first")
		if !strings.HasPrefix(r.Stdout, "first\n") {
			t.Errorf("first: %+v", r)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			r := mustExec(t, sb, "echo next")
			if r.Output != "next\n" {
				t.Fatalf("a later command got %q", r.Output)
			}
		}
	})
	t.Run("200 concurrent calls, exact results", func(t *testing.T) {
		ctx := ctxT(t, 2*time.Minute)
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 200 {
			wg.Go(func() {
				r, err := sb.Execute(ctx, fmt.Sprintf("echo out%d; echo err%d >&2; exit %d", i, i, i%256))
				switch {
				case err != nil:
					errs <- err
				case r.Stdout != fmt.Sprintf("out%d\n", i) || r.Stderr != fmt.Sprintf("err%d\n", i) || r.ExitCode != i%256:
					errs <- fmt.Errorf("call %d got %+v", i, r)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

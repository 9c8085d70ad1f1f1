//go:build e2e

package podsandbox_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// TestAgent checks the injected agent's own paths: it falls back where it cannot run, and a
// stream that breaks mid-command gives a typed error, after which the next call gets a new agent.
func TestAgent(t *testing.T) {
	t.Run("falls back to a pods/exec per call on another machine", func(t *testing.T) {
		t.Parallel()
		// The same binary, marked as built for the other architecture: the pod's start script
		// compares it with uname -m and refuses it.
		bin, err := e2e.BuildAgent()
		if err != nil {
			t.Fatal(err)
		}
		other := elfMachineAMD64
		if testAgent.Machine() == "x86_64" {
			other = elfMachineARM64
		}
		binary.LittleEndian.PutUint16(bin[18:], other)
		foreign, err := podsandbox.NewAgent(bin)
		if err != nil {
			t.Fatal(err)
		}
		if foreign.Machine() == testAgent.Machine() {
			t.Fatalf("the patched agent is still for %s", foreign.Machine())
		}
		sb := startSandbox(t, e2e.ImageBusybox, podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithAgent(foreign))
		r := mustExec(t, sb, "echo fallback; uname -m")
		if !strings.HasPrefix(r.Stdout, "fallback\n") || r.ExitCode != 0 {
			t.Errorf("Execute: %+v", r)
		}
		if sb.Via() != podsandbox.ViaExec {
			t.Errorf("Via() = %q, want %q", sb.Via(), podsandbox.ViaExec)
		}
	})

	for _, img := range []string{e2e.ImageBusybox, e2e.ImagePython} {
		t.Run("a lost stream is typed, then a new agent answers/"+img[strings.LastIndex(img, "/")+1:], func(t *testing.T) {
			t.Parallel()
			sb := startSandbox(t, img, podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithAgent(testAgent))
			ctx := ctxT(t, time.Minute)
			// The command's parent is the agent: kill it while the command runs.
			t0 := time.Now()
			_, err := sb.Execute(ctx, `case "$(tr '\0' ' ' </proc/$PPID/cmdline)" in *-stdio*) kill -9 $PPID;; *) echo "parent is not the agent" >&2;; esac; sleep 20`)
			if !errors.Is(err, podsandbox.ErrConnectionLost) || !errors.Is(err, podsandbox.ErrOutputIncomplete) {
				t.Fatalf("Execute with the agent killed: %v, want ErrConnectionLost", err)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("the lost stream took %s to report", d)
			}
			r, err := sb.Execute(ctx, "echo back")
			if err != nil || r.Stdout != "back\n" {
				t.Fatalf("the next call: %+v %v", r, err)
			}
			if sb.Via() != podsandbox.ViaAgent {
				t.Errorf("Via() = %q after the reconnect, want %q", sb.Via(), podsandbox.ViaAgent)
			}
			// The binary was copied once: the second agent found it in place.
			r = mustExec(t, sb, "ls -a /tmp | grep -c '^.psbx-agent-'; ls /tmp/.psbx-agent-*/")
			if lines := strings.Split(strings.TrimSpace(r.Stdout), "\n"); lines[0] != "1" || !slices.Contains(lines, "agent") || len(lines) != 2 {
				t.Errorf("/tmp holds %q, want one agent directory with the agent alone", r.Stdout)
			}
		})
	}

	t.Run("cancel stops the command", func(t *testing.T) {
		t.Parallel()
		sb := startSandbox(t, e2e.ImagePython, podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithAgent(testAgent))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := sb.Execute(ctx, "echo $$ > /tmp/cancelled.pid; exec sleep 60")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Execute: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(t0); d > 4*time.Second {
			t.Errorf("cancel returned after %s", d)
		}
		assertDead(t, sb, "/tmp/cancelled.pid")
	})
}

// ELF e_machine values (the two bytes at offset 18 of a little-endian ELF header).
const (
	elfMachineAMD64 uint16 = 62
	elfMachineARM64 uint16 = 183
)

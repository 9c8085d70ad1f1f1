package podsandbox

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadProcRecord(t *testing.T) {
	cmd := "echo 'a\nb'\ncmd=3\nid=x"
	rec := func(lines ...string) string {
		return strings.Join(lines, "\n") + "\ncmd=" + strconv.Itoa(len(cmd)) + "\n" + cmd
	}
	tests := []struct {
		name string
		in   string
		want ProcessStatus
		err  error
	}{
		{"running", rec("id=p-1", "alive=1", "pgid=42", "started=1700000000", "outsize=5", "errsize=0"),
			ProcessStatus{ID: "p-1", Command: cmd, PGID: 42, State: ProcessRunning, StartedAt: time.Unix(1700000000, 0), StdoutBytes: 5}, nil},
		{"exited, truncated, output done", rec("id=p-2", "alive=0", "pgid=7", "started=1", "exit=137 2", "outcut=1", "outeof=1", "outsize=1024", "erreof=1", "errsize=3"),
			ProcessStatus{ID: "p-2", Command: cmd, PGID: 7, State: ProcessExited, ExitCode: 137, StartedAt: time.Unix(1, 0), EndedAt: time.Unix(2, 0),
				StdoutBytes: 1024, StderrBytes: 3, StdoutTruncated: true, OutputDone: true}, nil},
		{"exit code read after a dead supervisor: exited", rec("id=p-3", "alive=0", "exit=0 0", "outeof=1"),
			ProcessStatus{ID: "p-3", Command: cmd, State: ProcessExited, EndedAt: time.Unix(0, 0)}, nil},
		{"dead supervisor and no exit code: lost", rec("id=p-4", "alive=0", "pgid=9"),
			ProcessStatus{ID: "p-4", Command: cmd, PGID: 9, State: ProcessLost}, nil},
		{"empty", "", ProcessStatus{}, io.EOF},
		{"cut short", "id=p-5\nalive=1\n", ProcessStatus{}, ErrOutputIncomplete},
		{"command cut short", "id=p-6\ncmd=10\nabc", ProcessStatus{}, ErrOutputIncomplete},
		{"unknown key", "id=p-7\nbogus=1\n", ProcessStatus{}, ErrOutputIncomplete},
		{"exit without its time", "id=p-8\nexit=3\n", ProcessStatus{}, ErrOutputIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readProcRecord(bufio.NewReader(strings.NewReader(tc.in)))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

func TestStartProcessRefusesBadInput(t *testing.T) {
	sb := newTestSandbox(t)
	ctx := t.Context()
	tests := []struct {
		name string
		cmd  string
		opts []ExecOption
		want string
	}{
		{"stdin", "cat", []ExecOption{WithStdin(strings.NewReader("x"))}, "WithOpenStdin"},
		{"stdout writer", "true", []ExecOption{WithStdout(io.Discard)}, "ReadOutput or Follow"},
		{"timeout", "true", []ExecOption{WithTimeout(time.Second)}, "no timeout"},
		{"negative limit", "true", []ExecOption{WithOutputLimit(-1)}, "output limit"},
		{"empty command", " \n", nil, "empty command"},
		{"reserved env", "true", []ExecOption{WithExecEnv(map[string]string{"PSBX_CMD": "x"})}, "PSBX_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sb.StartProcess(ctx, tc.cmd, tc.opts...)
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidArgument saying %q", err, tc.want)
			}
		})
	}
	// Ids that cannot be a process directory are unknown, without a call to the pod.
	for _, id := range []string{"", "../x", "a/b", "-p", "P-1", strings.Repeat("a", 64)} {
		if _, err := sb.Process(ctx, id); !errors.Is(err, ErrNoProcess) {
			t.Errorf("Process(%q): %v, want ErrNoProcess", id, err)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox/examples/internal/cli"
)

// Client talks to the service.
type Client struct {
	Base string // http://127.0.0.1:PORT
	HTTP *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, body)
	if err != nil {
		return 0, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if b, ok := out.(*strings.Builder); ok {
		b.Write(data) // not JSON: the body as it is
		return resp.StatusCode, nil
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Exec runs command in user's sandbox.
func (c *Client) Exec(ctx context.Context, user, command string) (ExecResult, error) {
	var r ExecResult
	_, err := c.do(ctx, http.MethodPost, "/sessions/"+user+"/exec", strings.NewReader(command), &r)
	return r, err
}

// List returns the open sessions.
func (c *Client) List(ctx context.Context) (List, error) {
	var l List
	_, err := c.do(ctx, http.MethodGet, "/sessions", nil, &l)
	return l, err
}

// Release stops user's sandbox; it reports whether there was one.
func (c *Client) Release(ctx context.Context, user string) (bool, error) {
	code, err := c.do(ctx, http.MethodDelete, "/sessions/"+user, nil, nil)
	if code == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// Scenario drives the service as two users would and checks what each sees: every user has
// their own sandbox (alice's file is not in bob's), the same user gets the same sandbox again,
// and a released user starts over in a fresh one.
func Scenario(ctx context.Context, c *Client, out io.Writer) error {
	exec := func(user, command string) (ExecResult, error) {
		fmt.Fprintf(out, "  POST /sessions/%s/exec   %s\n", user, command)
		t := time.Now()
		r, err := c.Exec(ctx, user, command)
		if err != nil {
			return r, err
		}
		how := "existing session"
		if r.New && r.Warm {
			how = "new session: warm pod claimed"
		} else if r.New {
			how = "new session: pod started cold"
		}
		fmt.Fprintf(out, "    → exit %d in %s (sandbox %dms, command %dms)  pod %s  [%s]\n",
			r.ExitCode, cli.Elapsed(time.Since(t)), r.SessionMS, r.ExecMS, r.Pod, how)
		if o := strings.TrimRight(r.Output, "\n"); o != "" {
			fmt.Fprintf(out, "      %s\n", strings.ReplaceAll(o, "\n", "\n      "))
		}
		return r, nil
	}
	list := func() ([]string, error) {
		l, err := c.List(ctx)
		if err != nil {
			return nil, err
		}
		var users []string
		for _, s := range l.Sessions {
			users = append(users, s.User)
		}
		fmt.Fprintf(out, "  GET /sessions   → %s (warm pods ready: %d)\n", strings.Join(users, ", "), l.WarmReady)
		return users, nil
	}

	fmt.Fprintln(out, "alice writes a file in her sandbox:")
	a1, err := exec("alice", `echo "alice's notes" > notes.txt && ls`)
	if err != nil {
		return err
	}
	if a1.ExitCode != 0 || !a1.New {
		return fmt.Errorf("alice's first command: exit %d, new session %v", a1.ExitCode, a1.New)
	}

	fmt.Fprintln(out, "bob looks for it in his:")
	b1, err := exec("bob", `cat notes.txt`)
	if err != nil {
		return err
	}
	if b1.ExitCode == 0 || b1.Pod == a1.Pod || strings.Contains(b1.Output, "alice") {
		return fmt.Errorf("isolation: bob (pod %s) read alice's file (pod %s): exit %d %q", b1.Pod, a1.Pod, b1.ExitCode, b1.Output)
	}
	fmt.Fprintln(out, "    ✓ bob has his own sandbox: alice's file is not there")

	fmt.Fprintln(out, "alice comes back:")
	a2, err := exec("alice", `cat notes.txt`)
	if err != nil {
		return err
	}
	if a2.Pod != a1.Pod || a2.New || strings.TrimSpace(a2.Output) != "alice's notes" {
		return fmt.Errorf("alice's second command ran in pod %s (first: %s), new %v, output %q", a2.Pod, a1.Pod, a2.New, a2.Output)
	}
	fmt.Fprintln(out, "    ✓ same sandbox, her file is still there")

	users, err := list()
	if err != nil {
		return err
	}
	if !slices.Equal(users, []string{"alice", "bob"}) {
		return fmt.Errorf("sessions %v, want alice and bob", users)
	}

	fmt.Fprintln(out, "alice is done:")
	fmt.Fprintln(out, "  DELETE /sessions/alice")
	if ok, err := c.Release(ctx, "alice"); err != nil || !ok {
		return fmt.Errorf("release alice: %v (existed: %v)", err, ok)
	}
	if users, err = list(); err != nil {
		return err
	}
	if !slices.Equal(users, []string{"bob"}) {
		return fmt.Errorf("sessions after releasing alice: %v, want bob", users)
	}
	// The pool refills in the background after each claim; give it a moment so alice's new
	// sandbox is a warm one too (without a ready pod she would get a cold start, also fine).
	t := time.Now()
	for {
		l, err := c.List(ctx)
		if err != nil {
			return err
		}
		if l.WarmReady > 0 || time.Since(t) > time.Minute {
			fmt.Fprintf(out, "  (the warm pool refills in the background; waited %[2]s for a ready pod: %[1]d now)\n", l.WarmReady, cli.Elapsed(time.Since(t)))
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	a3, err := exec("alice", `cat notes.txt`)
	if err != nil {
		return err
	}
	if !a3.New || a3.Pod == a1.Pod || a3.ExitCode == 0 {
		return fmt.Errorf("alice after release: pod %s (old %s), new %v, exit %d", a3.Pod, a1.Pod, a3.New, a3.ExitCode)
	}
	fmt.Fprintln(out, "    ✓ after release alice starts over in a fresh sandbox")
	return nil
}

// ExecTraced runs command in user's sandbox and asks the service to print the request's trace.
func (c *Client) ExecTraced(ctx context.Context, user, command string) (ExecResult, error) {
	var r ExecResult
	_, err := c.do(ctx, http.MethodPost, "/sessions/"+user+"/exec?trace=1", strings.NewReader(command), &r)
	return r, err
}

// Metrics returns GET /metrics: the library's metrics in Prometheus's text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var b strings.Builder
	_, err := c.do(ctx, http.MethodGet, "/metrics", nil, &b)
	return b.String(), err
}

// telemetryTour asks for the trace of a new user's first request (dana: a warm-pool claim and a
// command), which the service prints, and shows podsandbox's lines of GET /metrics.
func telemetryTour(ctx context.Context, c *Client, out io.Writer) error {
	fmt.Fprintln(out, "\ndana's first request, traced (?trace=1); the service prints its spans:")
	r, err := c.ExecTraced(ctx, "dana", "echo traced")
	if err != nil {
		return err
	}
	if r.ExitCode != 0 || r.Output != "traced\n" {
		return fmt.Errorf("dana: exit %d, output %q", r.ExitCode, r.Output)
	}
	m, err := c.Metrics(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nGET /metrics, a selection of podsandbox's:")
	shown := 0
	for _, line := range strings.Split(m, "\n") {
		for _, name := range []string{"podsandbox_pool_claims_total", "podsandbox_sessions_live", "podsandbox_pool_warm",
			"podsandbox_start_duration_seconds_count", "podsandbox_exec_duration_seconds_count"} {
			if strings.HasPrefix(line, name) {
				fmt.Fprintln(out, "  "+line)
				shown++
			}
		}
	}
	if shown == 0 {
		return fmt.Errorf("GET /metrics has none of podsandbox's metrics:\n%s", m)
	}
	return nil
}

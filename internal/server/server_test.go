package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox/internal/wire"
)

var allRoutes = []struct {
	method, route string
}{
	{http.MethodPost, wire.RouteExec},
	{http.MethodPost, wire.RouteExecStream},
	{http.MethodPost, wire.RouteRead},
	{http.MethodPost, wire.RouteReadBytes},
	{http.MethodPost, wire.RouteWrite},
	{http.MethodPut, wire.RouteFiles + "?path=x"},
	{http.MethodPost, wire.RouteEdit},
	{http.MethodPost, wire.RouteLs},
	{http.MethodPost, wire.RouteGlob},
	{http.MethodPost, wire.RouteGrep},
	{http.MethodPost, wire.RouteExists},
	{http.MethodPost, wire.RouteConfigure},
	{http.MethodPost, "/no-such-route"},
}

func TestNewRequiresToken(t *testing.T) {
	if _, err := New(Config{WorkDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), wire.EnvToken) {
		t.Fatalf("New without token: %v, want an error naming %s", err, wire.EnvToken)
	}
}

func TestHealthIsOpen(t *testing.T) {
	e := newTenv(t)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		code, body := e.request(method, wire.RouteHealth, nil, wire.TokenHeader, "")
		if code != http.StatusOK {
			t.Fatalf("%s /health without token: %d %s", method, code, body)
		}
		if method == http.MethodGet {
			var h wire.Health
			if err := json.Unmarshal(body, &h); err != nil || !h.Ready {
				t.Fatalf("/health body %s", body)
			}
		}
	}
	e.failMethod(http.MethodPost, wire.RouteHealth, nil, http.StatusMethodNotAllowed, wire.CodeInvalid)
}

func TestAuth(t *testing.T) {
	e := newTenv(t)
	for _, r := range allRoutes {
		for _, tok := range []string{"", "wrong", testToken + "x", testToken[:len(testToken)-1], strings.ToUpper(testToken)} {
			t.Run(r.route+"/"+tok, func(t *testing.T) {
				e.token = tok
				defer func() { e.token = testToken }()
				e.t = t
				e.failMethod(r.method, r.route, `{"command":"touch pwned","path":"x"}`, http.StatusUnauthorized, wire.CodeUnauthorized)
			})
		}
	}
	e.t = t
	if exists(e.path("pwned")) || exists(e.path("x")) {
		t.Fatal("an unauthorized request had an effect")
	}
	if strings.Contains(e.logs.String(), testToken) {
		t.Fatal("the token was logged")
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newTenv(t)
	e.failMethod(http.MethodPost, "/no-such-route", "{}", http.StatusNotFound, wire.CodeNotFound)
	e.failMethod(http.MethodGet, wire.RouteExec, nil, http.StatusMethodNotAllowed, wire.CodeInvalid)
	e.failMethod(http.MethodPost, wire.RouteFiles+"?path=x", "", http.StatusMethodNotAllowed, wire.CodeInvalid)
	for _, route := range []string{wire.RouteExec, wire.RouteRead, wire.RouteLs, wire.RouteGlob, wire.RouteGrep, wire.RouteConfigure, wire.RouteEdit, wire.RouteWrite, wire.RouteExists, wire.RouteReadBytes} {
		e.fail(route, "not json", http.StatusBadRequest, wire.CodeInvalid)
		if route != wire.RouteConfigure {
			e.fail(route, `{"path": 5, "command": 5, "pattern": 5}`, http.StatusBadRequest, wire.CodeInvalid)
		}
	}
	e.fail(wire.RouteConfigure, `{"token": 5}`, http.StatusBadRequest, wire.CodeInvalid)
	e.fail(wire.RouteExecStream, "not json\n", http.StatusBadRequest, wire.CodeInvalid)
	// JSON bodies are capped at 1 MiB.
	big := `{"path":"` + strings.Repeat("a", 2<<20) + `"}`
	we := e.fail(wire.RouteRead, big, http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
	if we.Limit != jsonBodyLimit {
		t.Fatalf("limit %d", we.Limit)
	}
}

func TestConfigureRotatesTokenAndSetsEnv(t *testing.T) {
	e := newTenv(t)
	e.ok(wire.RouteConfigure, wire.ConfigureRequest{Token: "new-token", Env: map[string]string{"SESSION": "s1", "QUOTED": "a 'b' \"c\""}}, nil)
	// The old token no longer works, the new one does.
	e.fail(wire.RouteExec, wire.ExecRequest{Command: "true"}, http.StatusUnauthorized, wire.CodeUnauthorized)
	e.token = "new-token"
	r := e.exec(wire.ExecRequest{Command: `printf '%s|%s' "$SESSION" "$QUOTED"`})
	if r.Output != `s1|a 'b' "c"` {
		t.Fatalf("configured env: %q", r.Output)
	}
	// Request env wins over configured env; configure merges.
	e.ok(wire.RouteConfigure, wire.ConfigureRequest{Env: map[string]string{"OTHER": "o"}}, nil)
	r = e.exec(wire.ExecRequest{Command: `printf '%s|%s' "$SESSION" "$OTHER"`, Env: map[string]string{"SESSION": "req"}})
	if r.Output != "req|o" {
		t.Fatalf("env precedence: %q", r.Output)
	}
	e.fail(wire.RouteConfigure, wire.ConfigureRequest{Env: map[string]string{"A=B": "x"}}, http.StatusBadRequest, wire.CodeInvalid)
	e.fail(wire.RouteConfigure, wire.ConfigureRequest{Env: map[string]string{"": "x"}}, http.StatusBadRequest, wire.CodeInvalid)
	if strings.Contains(e.logs.String(), "new-token") {
		t.Fatal("token logged")
	}
}

func TestCommandsDoNotSeeToken(t *testing.T) {
	t.Setenv(wire.EnvToken, testToken)
	e := newTenv(t)
	r := e.exec(wire.ExecRequest{Command: "env"})
	if strings.Contains(r.Output, testToken) || strings.Contains(r.Output, wire.EnvToken) {
		t.Fatalf("command environment carries the token:\n%s", r.Output)
	}
}

func TestRequestLog(t *testing.T) {
	e := newTenv(t)
	e.ok(wire.RouteWrite, wire.WriteRequest{Path: "secret.txt", ContentB64: "c2VjcmV0LWNvbnRlbnQ="}, nil)
	e.fail(wire.RouteRead, wire.ReadRequest{Path: "missing"}, http.StatusNotFound, wire.CodeNotFound)
	var sawWrite, sawRead bool
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		for _, k := range []string{"route", "status", "duration_ms", "method"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("log line without %s: %s", k, line)
			}
		}
		switch rec["route"] {
		case wire.RouteWrite:
			sawWrite = rec["status"] == float64(200)
		case wire.RouteRead:
			sawRead = rec["status"] == float64(404)
		}
	}
	if !sawWrite || !sawRead {
		t.Fatalf("missing request records:\n%s", e.logs.String())
	}
	if l := e.logs.String(); strings.Contains(l, "c2VjcmV0") || strings.Contains(l, "secret-content") {
		t.Fatal("a request body was logged")
	}
}

func TestParseOptions(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var sb syncBuffer
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    Options
		wantErr string
	}{
		{name: "no token", env: map[string]string{}, wantErr: wire.EnvToken},
		{name: "defaults", env: map[string]string{wire.EnvToken: "t"},
			want: Options{Config: Config{Token: "t", WorkDir: "/workspace", MaxFileBytes: 64 << 20}, Addr: "0.0.0.0:8080", Init: "auto"}},
		{name: "env", env: map[string]string{wire.EnvToken: "t", wire.EnvPort: "9000", wire.EnvWorkDir: "/w", wire.EnvListen: "127.0.0.1"},
			want: Options{Config: Config{Token: "t", WorkDir: "/w", MaxFileBytes: 64 << 20}, Addr: "127.0.0.1:9000", Init: "auto"}},
		{name: "flags override env", args: []string{"-port", "81", "-workdir", "/x", "-listen", "::1", "-token", "f", "-max-file-bytes", "10", "-init", "off"},
			env:  map[string]string{wire.EnvToken: "t", wire.EnvPort: "9000", wire.EnvWorkDir: "/w", wire.EnvListen: "127.0.0.1"},
			want: Options{Config: Config{Token: "f", WorkDir: "/x", MaxFileBytes: 10}, Addr: "[::1]:81", Init: "off"}},
		{name: "bad port", env: map[string]string{wire.EnvToken: "t", wire.EnvPort: "http"}, wantErr: "port"},
		{name: "port range", args: []string{"-port", "70000"}, env: map[string]string{wire.EnvToken: "t"}, wantErr: "port"},
		{name: "bad init", args: []string{"-init", "maybe"}, env: map[string]string{wire.EnvToken: "t"}, wantErr: "init"},
		{name: "stray args", args: []string{"serve"}, env: map[string]string{wire.EnvToken: "t"}, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.args, env(tt.env), &sb)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

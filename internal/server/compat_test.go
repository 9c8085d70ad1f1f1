package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// TestPythonClientCompat sends exactly what pydantic-ai-backend's KubernetesPodSandbox (mode="http")
// sends and checks the JSON keys it reads (upstream-spec.md §2.7).
func TestPythonClientCompat(t *testing.T) {
	e := newTenv(t)
	keys := func(t *testing.T, body []byte, want ...string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Fatalf("key %q missing in %s", k, body)
			}
		}
		return m
	}

	// /exec: {"command", "timeout_seconds": int} -> {"output", "exit_code": int, "truncated": bool}.
	code, body := e.request(http.MethodPost, wire.RouteExec, `{"command": "echo hi; echo err 1>&2; exit 4", "timeout_seconds": 1800}`)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	m := keys(t, body, "output", "exit_code", "truncated")
	// stdout and stderr are separate pipes: their relative order is only known when time separates them.
	if out, _ := m["output"].(string); (out != "hi\nerr\n" && out != "err\nhi\n") || m["exit_code"] != float64(4) || m["truncated"] != false {
		t.Fatalf("%s", body)
	}

	// /write: {"path", "content_b64"} -> any 2xx.
	code, body = e.request(http.MethodPost, wire.RouteWrite, `{"path": "/`+strings.TrimPrefix(e.path("py.txt"), "/")+`", "content_b64": "bGluZSAxCmxpbmUgMgo="}`)
	if code/100 != 2 {
		t.Fatalf("%d %s", code, body)
	}

	// /read: {"path", "offset", "limit"} -> {"content"}; read_bytes uses limit 10**9.
	code, body = e.request(http.MethodPost, wire.RouteRead, `{"path": "py.txt", "offset": 0, "limit": 2000}`)
	if code != 200 || keys(t, body, "content")["content"] != "     1\tline 1\n     2\tline 2" {
		t.Fatalf("%d %s", code, body)
	}
	// read_bytes (offset 0, limit 10**9) gets the content as it is: edit writes it back.
	code, body = e.request(http.MethodPost, wire.RouteRead, `{"path": "py.txt", "offset": 0, "limit": 1000000000}`)
	if code != 200 || keys(t, body, "content")["content"] != "line 1\nline 2\n" {
		t.Fatalf("%d %s", code, body)
	}
	// 404 on a missing file: the client turns it into "File '<path>' not found".
	if code, _ = e.request(http.MethodPost, wire.RouteRead, `{"path": "nope", "offset": 0, "limit": 2000}`); code != 404 {
		t.Fatal(code)
	}

	// /ls and /glob: JSON arrays of {"name","path","is_dir","size"[,"modified_at"]}.
	code, body = e.request(http.MethodPost, wire.RouteLs, `{"path": "."}`)
	var rows []map[string]any
	if code != 200 || json.Unmarshal(body, &rows) != nil || len(rows) != 1 {
		t.Fatalf("%d %s", code, body)
	}
	for _, k := range []string{"name", "path", "is_dir", "size", "modified_at"} {
		if _, ok := rows[0][k]; !ok {
			t.Fatalf("ls row lacks %q: %s", k, body)
		}
	}
	for _, root := range []string{"/", "."} { // the method default and the console's
		code, body = e.request(http.MethodPost, wire.RouteGlob, `{"pattern": "*.txt", "path": "`+root+`"}`)
		rows = nil
		if code != 200 || json.Unmarshal(body, &rows) != nil || len(rows) != 1 {
			t.Fatalf("%d %s", code, body)
		}
		for _, k := range []string{"name", "path", "is_dir", "size"} {
			if _, ok := rows[0][k]; !ok {
				t.Fatalf("glob row lacks %q: %s", k, body)
			}
		}
		if rows[0]["path"] != e.path("py.txt") {
			t.Fatalf("%s", body)
		}
	}

	// /health: {"ready": true}, no token.
	code, body = e.request(http.MethodGet, wire.RouteHealth, nil, wire.TokenHeader, "")
	if code != 200 || string(body) != "{\"ready\":true}\n" {
		t.Fatalf("%d %q", code, body)
	}
}

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox"
)

func TestParseCpArgs(t *testing.T) {
	tests := []struct {
		name, src, dst string
		from, to       cpEnd
		err            string // a substring of the error; "" for none
	}{
		{name: "upload", src: "data.csv", dst: "demo:input/data.csv",
			from: cpEnd{path: "data.csv"}, to: cpEnd{id: "demo", path: "input/data.csv"}},
		{name: "download absolute", src: "demo:/tmp/out.bin", dst: "./out.bin",
			from: cpEnd{id: "demo", path: "/tmp/out.bin"}, to: cpEnd{path: "./out.bin"}},
		{name: "upload into the work dir", src: "/etc/hosts", dst: "demo:",
			from: cpEnd{path: "/etc/hosts"}, to: cpEnd{id: "demo"}},
		{name: "stdin", src: "-", dst: "demo:in.txt", from: cpEnd{path: "-"}, to: cpEnd{id: "demo", path: "in.txt"}},
		{name: "stdout", src: "demo:in.txt", dst: "-", from: cpEnd{id: "demo", path: "in.txt"}, to: cpEnd{path: "-"}},
		{name: "spaces", src: "my id:my dir/a b.txt", dst: "a b.txt",
			from: cpEnd{id: "my id", path: "my dir/a b.txt"}, to: cpEnd{path: "a b.txt"}},
		{name: "colon in the remote path", src: "demo:a:b", dst: "x",
			from: cpEnd{id: "demo", path: "a:b"}, to: cpEnd{path: "x"}},
		{name: "local names with a colon", src: "./a:b", dst: "demo:c",
			from: cpEnd{path: "./a:b"}, to: cpEnd{id: "demo", path: "c"}},
		{name: "a slash before the colon is local", src: "dir/a:b", dst: "demo:c",
			from: cpEnd{path: "dir/a:b"}, to: cpEnd{id: "demo", path: "c"}},
		{name: "home is local", src: "~/a:b", dst: "demo:c", from: cpEnd{path: "~/a:b"}, to: cpEnd{id: "demo", path: "c"}},
		{name: "both remote", src: "a:x", dst: "b:y", err: "both sides are sandbox paths"},
		{name: "both local", src: "x", dst: "y", err: "write one side as ID:PATH"},
		{name: "both stdio", src: "-", dst: "-", err: "write one side as ID:PATH"},
		{name: "no id", src: ":x", dst: "y", err: "no sandbox id before the colon"},
		{name: "empty", src: "", dst: "demo:x", err: "an empty path"},
		{name: "remote work dir as source", src: "demo:", dst: "x", err: "names a directory"},
		{name: "remote dir as source", src: "demo:d/", dst: "x", err: "names a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to, err := parseCpArgs(tt.src, tt.dst)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || from != tt.from || to != tt.to {
				t.Errorf("got %+v, %+v, %v; want %+v, %+v", from, to, err, tt.from, tt.to)
			}
		})
	}
}

func TestRemoteDest(t *testing.T) {
	tests := []struct {
		dst, base, want string
		dir             bool
	}{
		{"", "a.txt", "a.txt", true},
		{"d/", "a.txt", "d/a.txt", true},
		{"/tmp/", "a b", "/tmp/a b", true},
		{"d/x.txt", "a.txt", "d/x.txt", false},
		{"/tmp", "a.txt", "/tmp", false}, // a directory without the slash: Write says so, cp retries
		{"", "", "", true},               // stdin: the caller refuses it
	}
	for _, tt := range tests {
		if got, dir := remoteDest(tt.dst, tt.base); got != tt.want || dir != tt.dir {
			t.Errorf("remoteDest(%q, %q) = %q, %v; want %q, %v", tt.dst, tt.base, got, dir, tt.want, tt.dir)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"}, {10 * 1024, "10 KiB"},
		{1148444, "1.1 MiB"}, {64 << 20, "64 MiB"}, {5 << 30, "5 GiB"}, {3 << 40, "3 TiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	tests := []struct {
		size int64
		want string
	}{
		{80 << 20, "file too large: big.bin is 80 MiB, over the file limit of 64 MiB (67108864 bytes): raise --max-file-bytes"},
		{-1, "file too large: big.bin is over the file limit of 64 MiB (67108864 bytes)"},
	}
	for _, tt := range tests {
		err := tooLarge("big.bin", tt.size, 64<<20)
		if !errors.Is(err, podsandbox.ErrFileTooLarge) || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("tooLarge(%d) = %q, want the one line to start %q", tt.size, err, tt.want)
		}
	}
}

// TestCpLocalErrors: what cp refuses before it touches the cluster (no kubeconfig is needed).
func TestCpLocalErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, make([]byte, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"missing local file", []string{"cp", filepath.Join(dir, "nope"), "demo:x"}, "",
			"podsandbox: reading " + filepath.Join(dir, "nope") + ": no such file or directory\n"},
		{"local directory", []string{"cp", dir, "demo:"}, "", "is a directory: cp copies one file; archive it: tar czf - "},
		{"over the limit", []string{"cp", "--max-file-bytes", "1024", big, "demo:"}, "",
			"file too large: " + big + " is 2 KiB, over the file limit of 1 KiB (1024 bytes)"},
		{"stdin over the limit", []string{"cp", "--max-file-bytes", "4", "-", "demo:x"}, "12345",
			"file too large: stdin is over the file limit of 4 B (4 bytes)"},
		{"stdin into a directory", []string{"cp", "-", "demo:d/"}, "x", "stdin has no name: give the file's path"},
		{"both local", []string{"cp", "a", "b"}, "", "write one side as ID:PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(t.Context(), append([]string{"--kubeconfig", filepath.Join(dir, "no-kubeconfig")}, tt.args...),
				strings.NewReader(tt.stdin), &out, &errb)
			if code != 1 || out.Len() != 0 || !strings.Contains(errb.String(), tt.want) || strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line containing %q", code, out.String(), errb.String(), tt.want)
			}
		})
	}
}

func TestShq(t *testing.T) {
	tests := []struct{ in, want string }{
		{"demo", "demo"}, {"/workspace/d", "/workspace/d"}, {"x y", "'x y'"}, {"it's", `'it'\''s'`}, {"", "''"}, {"$(id)", "'$(id)'"},
	}
	for _, tt := range tests {
		if got := shq(tt.in); got != tt.want {
			t.Errorf("shq(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

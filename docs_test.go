package podsandbox_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmePreamble turns a README snippet (a function body) into a program: the imports and the
// names the snippets take as given.
const readmePreamble = `package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"syscall"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/podsandbox/podsandbox"
)

var (
	exporter     = tracetest.NewInMemoryExporter() // the Traces and metrics snippet's exporters
	promExporter = sdkmetric.NewManualReader()
	_            = sdktrace.NewTracerProvider
	_            = errors.Is
	_ = fmt.Sprint
	_ = log.Fatal
	_ = time.Second
	_ = os.Stdout
	_ = syscall.SIGTERM
	_ = podsandbox.ModeAPI
)

func main() {
	ctx := context.Background()
	image, userID := "busybox:stable", "user-1"
	_, _, _ = ctx, image, userID
`

// TestReadmeSnippetsCompile builds every Go snippet of README.md as a program of this module
// (through go build -overlay, so nothing is written into the tree): the README's code is the API.
func TestReadmeSnippetsCompile(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d Go snippets in README.md, want at least 3", len(blocks))
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	overlay := map[string]string{}
	var pkgs []string
	for i, b := range blocks {
		var body []string
		for _, l := range strings.Split(b[1], "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "import ") {
				body = append(body, "\t"+l)
			}
		}
		src := readmePreamble + strings.Join(body, "\n") + "\n}\n"
		file := filepath.Join(dir, "snippet"+string(rune('a'+i))+".go")
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		pkg := filepath.Join("internal", "readmesnippets", "s"+string(rune('a'+i)))
		overlay[filepath.Join(root, pkg, "main.go")] = file
		pkgs = append(pkgs, "./"+pkg)
	}
	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"build", "-overlay", ovFile, "-o", filepath.Join(dir, "bin") + string(filepath.Separator)}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md's Go snippets do not compile (snippet a is the first):\n%s", out)
	}
}

// TestEveryOptionExercised: each exported With* option of the package is called by at least one
// test or Example in the module, so none ships unproven.
func TestEveryOptionExercised(t *testing.T) {
	fset := token.NewFileSet()
	var options []string
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.IsExported() && strings.HasPrefix(fn.Name.Name, "With") {
				options = append(options, fn.Name.Name)
			}
		}
	}
	if len(options) < 20 {
		t.Fatalf("found %d With* options: the scan is broken", len(options))
	}
	var tests strings.Builder
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") && p != "docs_test.go" {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tests.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := tests.String()
	for _, o := range options {
		if !regexp.MustCompile(`\b` + o + `\(`).MatchString(all) {
			t.Errorf("%s is not called by any test or Example", o)
		}
	}
}

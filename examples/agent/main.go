// Command agent runs the seed's one-shot agent, "Create /workspace/hello.txt with 'hello world',
// then read it back", in a sandbox pod through the console toolset (package toolset): a tiny
// agent loop hands the model the tool definitions, runs each tool call the model makes on the
// sandbox, and gives it the results (upstream's exact strings, such as
// "Wrote 1 lines to /workspace/hello.txt") until it answers.
//
// The model is chosen by -model (default auto):
//
//   - scripted: an offline model that makes the calls a real model makes for this task
//     (write_file, then read_file, then its answer). No network call. What CI runs.
//   - anthropic: Claude through the Anthropic Messages API (ANTHROPIC_API_KEY; ANTHROPIC_MODEL,
//     ANTHROPIC_BASE_URL optional).
//   - openai: the OpenAI Chat Completions API (OPENAI_API_KEY; OPENAI_MODEL, OPENAI_BASE_URL
//     optional).
//   - auto: anthropic when ANTHROPIC_API_KEY is set, else openai when OPENAI_API_KEY is set, else
//     scripted.
//
// The real models use plain net/http, so the example needs no SDK.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/examples/internal/cli"
	"github.com/podsandbox/podsandbox/toolset"
)

// The seed task, and what the scripted model writes for it.
const (
	Task        = "Create /workspace/hello.txt with 'hello world', then read it back"
	TaskPath    = "/workspace/hello.txt"
	TaskContent = "hello world\n"
)

// Config is what run needs.
type Config struct {
	Cluster cli.Cluster
	Image   string
	Mode    podsandbox.Mode
	Task    string
	// Model is the model choice: auto, scripted, anthropic or openai.
	Model string
	// Getenv reads the API keys (os.Getenv in the program). Nil means no keys: scripted only.
	Getenv   func(string) string
	MaxSteps int
	Verbose  bool
}

func main() {
	cli.Main("agent", func(ctx context.Context) error {
		var (
			flags cli.Flags
			cfg   = Config{Getenv: os.Getenv}
			mode  string
		)
		flags.Register(flag.CommandLine)
		flag.StringVar(&cfg.Image, "image", cli.ImageServer, "sandbox image")
		flag.StringVar(&mode, "mode", string(podsandbox.ModeHTTP), "transport: http (the image runs sandbox-server) or api (any image with /bin/sh)")
		flag.StringVar(&cfg.Model, "model", "auto", "auto, scripted, anthropic or openai (see the package doc)")
		flag.StringVar(&cfg.Task, "task", Task, "the task (the scripted model only knows the default one)")
		flag.IntVar(&cfg.MaxSteps, "max-steps", 20, "most model turns before giving up")
		flag.Parse()
		cfg.Mode = podsandbox.Mode(mode)
		// Choose the model before anything else: a missing key should fail before a pod starts.
		if _, err := chooseModel(cfg.Model, cfg.Getenv); err != nil {
			return err
		}
		cluster, err := flags.Cluster()
		if err != nil {
			return err
		}
		cfg.Cluster, cfg.Verbose = cluster, flags.Verbose
		return run(ctx, cfg, os.Stdout)
	})
}

// run starts a sandbox, runs the agent on the task in it, checks the result and stops the sandbox.
func run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	t0 := time.Now()
	choice, err := chooseModel(cfg.Model, cfg.Getenv)
	if err != nil {
		return err
	}
	if cfg.Task == "" {
		cfg.Task = Task
	}
	if choice.Provider == "scripted" && cfg.Task != Task {
		return fmt.Errorf("the scripted model only does the seed task; set ANTHROPIC_API_KEY or OPENAI_API_KEY for %q", cfg.Task)
	}
	log := cli.NewLogger(out, cfg.Verbose)
	client, err := cfg.Cluster.Connect(ctx, log) // the program's one connection to the cluster
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cli.Close(ctx, client)) }() // after the sandbox's Stop
	fmt.Fprintf(out, "Task:  %s\nModel: %s\n", cfg.Task, choice)

	sb, err := client.NewSandbox(cfg.Image, append(cfg.Cluster.Options(log), podsandbox.WithMode(cfg.Mode))...)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := sb.Stop(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop: %w", serr))
			return
		}
		fmt.Fprintf(out, "stopped: pod %s deleted (%s in all)\n", sb.PodName(), cli.Elapsed(time.Since(t0)))
	}()
	fmt.Fprintf(out, "Sandbox: %s in %s mode\n", cfg.Image, cfg.Mode)
	if err := sb.Start(ctx); err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}

	// Every tool acts inside the sandbox pod, which is what it is for, so this host approves the
	// execute tool without asking (upstream asks by default). A host whose tools reach anything
	// that matters keeps approval on and asks a person when Tool.RequiresApproval is set.
	ts, err := toolset.New(sb, toolset.WithExecuteApproval(false))
	if err != nil {
		return err
	}
	var names []string
	for _, t := range ts.Tools() {
		names = append(names, t.Name)
	}
	fmt.Fprintf(out, "Tools: %s\n\n", strings.Join(names, ", "))

	system := ts.SystemPrompt() + "\nYou work in a sandbox whose working directory is /workspace. " +
		"Use the tools to do the task, then answer with one or two sentences saying what you did and what you found."
	answer, err := Agent{Model: choice.build(ts.Tools(), system), Tools: ts, Out: out, MaxSteps: cfg.MaxSteps}.Run(ctx, cfg.Task)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAnswer: %s\n", answer)

	if cfg.Task == Task {
		// Check the work independently of the model, with the sandbox's own API.
		data, err := sb.ReadBytes(ctx, TaskPath)
		if err != nil {
			return fmt.Errorf("check %s: %w", TaskPath, err)
		}
		if strings.TrimSpace(string(data)) != "hello world" {
			return fmt.Errorf("check: %s holds %q, want \"hello world\"", TaskPath, data)
		}
		fmt.Fprintf(out, "Check: %s holds %q (read with Sandbox.ReadBytes)\n", TaskPath, data)
	}
	return nil
}

// Agent is the loop: ask the model, run its tool calls, return the results, until it answers.
type Agent struct {
	Model    Model
	Tools    *toolset.Toolset
	Out      io.Writer
	MaxSteps int
}

// Run returns the model's final answer to task.
func (a Agent) Run(ctx context.Context, task string) (string, error) {
	history := []Message{{Role: RoleUser, Text: task}}
	steps := a.MaxSteps
	if steps <= 0 {
		steps = 20
	}
	call := 0
	for range steps {
		t := time.Now()
		reply, err := a.Model.Next(ctx, history)
		if err != nil {
			return "", err
		}
		reply.Role = RoleAssistant
		history = append(history, reply)
		if len(reply.ToolCalls) == 0 {
			return reply.Text, nil
		}
		if reply.Text != "" {
			fmt.Fprintf(a.Out, "  model: %s\n", oneLine(reply.Text, 200))
		}
		results := Message{Role: RoleTool}
		for _, c := range reply.ToolCalls {
			call++
			tc := time.Now()
			// CallResult turns what the model can fix (an unknown tool, bad arguments) into an
			// "Error: ..." result for it; the error is for what it cannot (the sandbox is gone).
			text, isErr, err := a.Tools.CallResult(ctx, c.Name, c.Arguments)
			if err != nil {
				return "", fmt.Errorf("tool %s: %w", c.Name, err)
			}
			fmt.Fprintf(a.Out, "  [%d] %s %s   (model %s, tool %s)\n", call, c.Name, oneLine(compact(c.Arguments), 200),
				cli.Elapsed(tc.Sub(t)), cli.Elapsed(time.Since(tc)))
			fmt.Fprintf(a.Out, "      → %s\n", strings.ReplaceAll(text, "\n", "\n        "))
			t = time.Now()
			results.Results = append(results.Results, ToolResult{CallID: c.ID, Name: c.Name, Content: text, IsError: isErr})
		}
		history = append(history, results)
	}
	return "", fmt.Errorf("no answer after %d model turns", steps)
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func oneLine(s string, limit int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return s
}

// modelChoice is the model -model and the environment select.
type modelChoice struct {
	Provider, Name, Key, BaseURL string
}

func (c modelChoice) String() string {
	switch c.Provider {
	case "anthropic":
		return "anthropic " + c.Name + " (Messages API at " + c.BaseURL + ")"
	case "openai":
		return "openai " + c.Name + " (Chat Completions API at " + c.BaseURL + ")"
	}
	return "scripted (offline; set ANTHROPIC_API_KEY or OPENAI_API_KEY to use a real LLM)"
}

// chooseModel picks the model for kind (auto, scripted, anthropic, openai). It reads only the
// environment, never the network.
func chooseModel(kind string, getenv func(string) string) (modelChoice, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	anthropic := modelChoice{"anthropic", env("ANTHROPIC_MODEL", "claude-sonnet-4-5"), getenv("ANTHROPIC_API_KEY"), env("ANTHROPIC_BASE_URL", "https://api.anthropic.com")}
	openai := modelChoice{"openai", env("OPENAI_MODEL", "gpt-4.1"), getenv("OPENAI_API_KEY"), env("OPENAI_BASE_URL", "https://api.openai.com/v1")}
	switch kind {
	case "auto", "":
		if anthropic.Key != "" {
			return anthropic, nil
		}
		if openai.Key != "" {
			return openai, nil
		}
		return modelChoice{Provider: "scripted"}, nil
	case "scripted":
		return modelChoice{Provider: "scripted"}, nil
	case "anthropic":
		if anthropic.Key == "" {
			return modelChoice{}, errors.New("-model anthropic: ANTHROPIC_API_KEY is not set")
		}
		return anthropic, nil
	case "openai":
		if openai.Key == "" {
			return modelChoice{}, errors.New("-model openai: OPENAI_API_KEY is not set")
		}
		return openai, nil
	}
	return modelChoice{}, fmt.Errorf("-model %q: want auto, scripted, anthropic or openai", kind)
}

func (c modelChoice) build(tools []toolset.Tool, system string) Model {
	switch c.Provider {
	case "anthropic":
		return &Anthropic{Key: c.Key, Model: c.Name, BaseURL: c.BaseURL, System: system, Tools: tools}
	case "openai":
		return &OpenAI{Key: c.Key, Model: c.Name, BaseURL: c.BaseURL, System: system, Tools: tools}
	}
	return Scripted{Path: TaskPath, Content: TaskContent}
}

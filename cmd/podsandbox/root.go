package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/podsandbox/podsandbox"
)

// cli holds the global flags and the one Client of a command line.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	kubeconfig string
	namespace  string
	reach      string
	output     string
	verbose    bool

	client *podsandbox.Client
	log    *slog.Logger // made with the client: errors only, everything with -v
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) (*cobra.Command, *cli) {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "podsandbox",
		Short:         "Kubernetes pods as sandboxes: run, exec, proc, files, cp, list, rm, reap, pool, images, mcp",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	f := root.PersistentFlags()
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVarP(&c.namespace, "namespace", "n", "default", "namespace of the sandboxes")
	f.BoolVarP(&c.verbose, "verbose", "v", false, "log what the library does (pod created, ready, ...) on stderr")
	f.StringVar(&c.reach, "reach", string(podsandbox.ReachAuto), "how HTTP-mode commands reach the pod: auto, pod-ip, proxy or port-forward")
	root.AddCommand(c.runCmd(), c.execCmd(), c.listCmd(), c.rmCmd(), c.reapCmd(),
		c.lsCmd(), c.readCmd(), c.globCmd(), c.grepCmd(), c.editCmd(), c.cpCmd(), c.mcpCmd(),
		c.poolCmd(), c.imagesCmd(), c.procCmd())
	return root, c
}

// close closes the command line's Client, if a command made one (also after a failed command).
func (c *cli) close(ctx context.Context) error {
	if c.client == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.client.Close(ctx)
}

// connect makes the command line's Client (closed after the command by the root's post-run).
func (c *cli) connect() (*podsandbox.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	cfg, err := podsandbox.LoadConfig(c.kubeconfig, nil)
	if err != nil {
		return nil, fmt.Errorf("%w (give --kubeconfig, or set KUBECONFIG)", err)
	}
	level := slog.LevelError // failures come back as the command's one-line error
	if c.verbose {
		level = slog.LevelDebug
	}
	c.log = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	cl, err := podsandbox.NewClient(cfg, podsandbox.WithClientLogger(c.log))
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// sandboxOptions are the options of a sandbox (or factory) the CLI makes: the namespace, mode,
// image pull policy ("" for Kubernetes's default) and --reach.
func (c *cli) sandboxOptions(mode, pull string) []podsandbox.Option {
	opts := []podsandbox.Option{podsandbox.WithNamespace(c.namespace), podsandbox.WithMode(podsandbox.Mode(mode))}
	if pull != "" {
		opts = append(opts, podsandbox.WithImagePullPolicy(corev1.PullPolicy(pull)))
	}
	if c.reach != string(podsandbox.ReachAuto) {
		opts = append(opts, podsandbox.WithReach(podsandbox.Reach(c.reach)))
	}
	return opts
}

// attach connects and attaches to sandbox id, with extra options (cp's file size limit); its Stop
// only detaches.
func (c *cli) attach(ctx context.Context, id string, extra ...podsandbox.Option) (*podsandbox.KubernetesPodSandbox, error) {
	cl, err := c.connect()
	if err != nil {
		return nil, err
	}
	opts := append([]podsandbox.Option(nil), extra...)
	if c.reach != string(podsandbox.ReachAuto) {
		opts = append(opts, podsandbox.WithReach(podsandbox.Reach(c.reach)))
	}
	sb, err := cl.Attach(ctx, c.namespace, id, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (list the sandboxes with `podsandbox list -n %s`)", err, c.namespace)
	}
	return sb, nil
}

// withSandbox runs f on sandbox id and detaches afterwards.
func (c *cli) withSandbox(cmd *cobra.Command, id string, f func(context.Context, *podsandbox.KubernetesPodSandbox) error) error {
	ctx := cmd.Context()
	sb, err := c.attach(ctx, id)
	if err != nil {
		return err
	}
	defer sb.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // detach only: nothing is deleted
	return f(ctx, sb)
}

// print writes v as JSON or YAML for -o json|yaml; it reports false for any other format.
func (c *cli) print(v any) (bool, error) {
	switch c.output {
	case "json":
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = c.stdout.Write(b)
		return true, err
	case "", "wide":
		return false, nil
	}
	return true, fmt.Errorf("unknown output format %q: use json, yaml or wide", c.output)
}

func (c *cli) table() *tabwriter.Writer { return tabwriter.NewWriter(c.stdout, 0, 4, 3, ' ', 0) }

func outputFlag(cmd *cobra.Command, c *cli, formats string) {
	cmd.Flags().StringVarP(&c.output, "output", "o", "", "output format: "+formats)
}

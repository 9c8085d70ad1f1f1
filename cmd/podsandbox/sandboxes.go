package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
)

func (c *cli) runCmd() *cobra.Command {
	var mode, id, pull string
	var idle time.Duration
	var env []string
	var iso isolation
	cmd := &cobra.Command{
		Use:   "run IMAGE",
		Short: "Start a sandbox pod and print its id; it stays until rm or until it is idle past --idle-timeout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := append(c.sandboxOptions(mode, pull), podsandbox.WithDeleteOnStop(false))
			isoOpts, err := iso.options()
			if err != nil {
				return err
			}
			opts = append(opts, isoOpts...)
			if id != "" {
				opts = append(opts, podsandbox.WithSandboxID(id))
			}
			if cmd.Flags().Changed("idle-timeout") {
				opts = append(opts, podsandbox.WithIdleTimeout(idle))
			}
			if len(env) > 0 {
				m, err := envMap(env)
				if err != nil {
					return err
				}
				opts = append(opts, podsandbox.WithEnv(m))
			}
			cl, err := c.connect()
			if err != nil {
				return err
			}
			sb, err := cl.NewSandbox(args[0], opts...)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := sb.Start(ctx); err != nil {
				return err
			}
			defer sb.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // detach: the pod stays
			info := sandboxInfo{ID: sb.ID(), Pod: sb.PodName(), Namespace: sb.Namespace(), Mode: string(sb.Mode()), Image: args[0]}
			if done, err := c.print(info); done {
				return err
			}
			_, err = fmt.Fprintln(c.stdout, sb.ID())
			return err
		},
	}
	cmd.Flags().StringVar(&mode, "mode", string(podsandbox.ModeHTTP), "transport: http (the image runs podsandbox's server) or api (any image with /bin/sh)")
	cmd.Flags().StringVar(&id, "id", "", "sandbox id (default: a random one); the pod is named after it")
	cmd.Flags().DurationVar(&idle, "idle-timeout", 0, "how long the sandbox may sit unused before a reaper deletes it (default: the library's)")
	cmd.Flags().StringVar(&pull, "image-pull-policy", "", "Always, IfNotPresent or Never (default: Kubernetes's)")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "NAME=VALUE for every command in the sandbox (repeatable)")
	iso.register(cmd)
	outputFlag(cmd, c, "json or yaml (default: the id alone)")
	return cmd
}

func (c *cli) execCmd() *cobra.Command {
	var interactive, reattach, tty bool
	var timeout, quiet time.Duration
	var dir, requestID string
	cmd := &cobra.Command{
		Use:   "exec ID [-i] [-t] -- COMMAND [ARG...]",
		Short: "Run a command in a sandbox, streaming its output; exit with its exit code",
		Long: "Run a command in a sandbox with /bin/sh -c, streaming stdout and stderr, and exit with the command's exit code\n" +
			"(124 when --timeout or --no-output-timeout kills it). One argument is a shell script as written; several are quoted into one command line.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			command := args[1]
			if len(args) > 2 {
				command = shellJoin(args[1:])
			}
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				opts := []podsandbox.ExecOption{podsandbox.WithStdout(c.stdout), podsandbox.WithStderr(c.stderr),
					podsandbox.WithOutputLimit(1)} // the output streams; the response keeps none of it
				if interactive {
					opts = append(opts, podsandbox.WithStdin(c.stdin))
				}
				if timeout > 0 {
					opts = append(opts, podsandbox.WithTimeout(timeout))
				}
				if quiet > 0 {
					opts = append(opts, podsandbox.WithNoOutputTimeout(quiet))
				}
				if dir != "" {
					opts = append(opts, podsandbox.WithDir(dir))
				}
				if reattach {
					opts = append(opts, podsandbox.WithReattach())
				}
				if requestID != "" {
					opts = append(opts, podsandbox.WithRequestID(requestID))
				}
				if tty {
					topts, restore, err := c.terminal(ctx, interactive)
					if err != nil {
						return err
					}
					defer restore()
					opts = append(opts, topts...)
				}
				res, err := sb.Execute(ctx, command, opts...)
				if err != nil {
					return err
				}
				switch {
				case res.NoOutputTimedOut:
					fmt.Fprintf(c.stderr, "podsandbox: the command wrote nothing for %s and was killed\n", quiet)
				case res.TimedOut:
					fmt.Fprintf(c.stderr, "podsandbox: the command timed out after %s and was killed\n", timeout)
				}
				if res.ExitCode != 0 {
					return exitError{res.ExitCode}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&interactive, "stdin", "i", false, "pass standard input to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "run the command on a terminal, of this terminal's size (24x80 when stdout is not one); with -i on a terminal, keys go to the command as typed")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "kill the command after this long (default: the library's)")
	cmd.Flags().DurationVar(&quiet, "no-output-timeout", 0, "kill the command when it writes nothing for this long (exit 124)")
	cmd.Flags().StringVar(&dir, "dir", "", "run in this directory (relative to the work dir)")
	cmd.Flags().BoolVar(&reattach, "reattach", false, "survive a lost connection: run under the pod's process supervisor and read on where the output was (never runs the command twice)")
	cmd.Flags().StringVar(&requestID, "request-id", "", "like --reattach, and a second exec with the same id prints the first's output and exits with its code instead of running again")
	return cmd
}

// shellJoin quotes args for /bin/sh so that each is passed as one word, exactly.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// sandboxInfo is one sandbox as `list` and `run -o json` show it.
type sandboxInfo struct {
	ID        string    `json:"id"`
	Pod       string    `json:"pod"`
	Namespace string    `json:"namespace"`
	Mode      string    `json:"mode"`
	Image     string    `json:"image"`
	Status    string    `json:"status,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Pool      string    `json:"pool,omitempty"`
	PoolState string    `json:"pool_state,omitempty"`
	IP        string    `json:"ip,omitempty"`
	Node      string    `json:"node,omitempty"`
}

func infoOf(p *corev1.Pod) sandboxInfo {
	in := sandboxInfo{ID: p.Annotations[podsandbox.AnnotationSandboxID], Pod: p.Name, Namespace: p.Namespace,
		Mode: p.Annotations[podsandbox.AnnotationMode], Created: p.CreationTimestamp.Time,
		Pool: p.Labels[podsandbox.LabelPool], PoolState: p.Labels[podsandbox.LabelPoolState], IP: p.Status.PodIP, Node: p.Spec.NodeName}
	if len(p.Spec.Containers) > 0 {
		in.Image = p.Spec.Containers[0].Image
	}
	in.ExpiresAt, _ = time.Parse(time.RFC3339, p.Annotations[podsandbox.AnnotationExpiresAt])
	in.Status = string(p.Status.Phase)
	if p.DeletionTimestamp != nil {
		in.Status = "Terminating"
	}
	return in
}

func (c *cli) listCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list [ID...]",
		Aliases: []string{"get"},
		Short:   "List the sandboxes of the namespace (all, or the ids given)",
		RunE: func(cmd *cobra.Command, ids []string) error {
			cl, err := c.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			l, err := cl.Clientset().CoreV1().Pods(c.namespace).List(ctx, metav1.ListOptions{
				LabelSelector: podsandbox.LabelManagedBy + "=" + podsandbox.ManagedByValue})
			if err != nil {
				return fmt.Errorf("listing sandboxes in %s: %w", c.namespace, err)
			}
			infos := []sandboxInfo{} // an empty namespace prints [], not null
			for i := range l.Items {
				in := infoOf(&l.Items[i])
				if len(ids) == 0 || slices.Contains(ids, in.ID) {
					infos = append(infos, in)
				}
			}
			slices.SortFunc(infos, func(a, b sandboxInfo) int { return strings.Compare(a.ID, b.ID) })
			for _, id := range ids {
				if !slices.ContainsFunc(infos, func(in sandboxInfo) bool { return in.ID == id }) {
					return fmt.Errorf("%w: %q in namespace %s", podsandbox.ErrNoSandbox, id, c.namespace)
				}
			}
			if done, err := c.print(infos); done {
				return err
			}
			if len(infos) == 0 {
				fmt.Fprintf(c.stderr, "No sandboxes in namespace %s.\n", c.namespace)
				return nil
			}
			tw := c.table()
			wide := c.output == "wide"
			fmt.Fprint(tw, "ID\tMODE\tSTATUS\tAGE\tEXPIRES\tPOOL")
			if wide {
				fmt.Fprint(tw, "\tIMAGE\tPOD\tIP\tNODE")
			}
			fmt.Fprintln(tw)
			now := time.Now()
			for _, in := range infos {
				pool := "-"
				if in.Pool != "" {
					pool = in.Pool + "/" + in.PoolState
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", in.ID, in.Mode, in.Status, age(now.Sub(in.Created)), expires(now, in.ExpiresAt), pool)
				if wide {
					fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", in.Image, in.Pod, in.IP, in.Node)
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, c, "json, yaml or wide")
	return cmd
}

// age formats d as kubectl does: the largest unit or two.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func expires(now, at time.Time) string {
	switch {
	case at.IsZero():
		return "-"
	case at.Before(now):
		return "expired"
	}
	return "in " + age(at.Sub(now))
}

func (c *cli) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID...",
		Short: "Delete sandboxes (their pods; a token Secret goes with its pod)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			cl, err := c.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var errs []error
			for _, id := range ids {
				if err := cl.Remove(ctx, c.namespace, id); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.stdout, id)
			}
			return errors.Join(errs...)
		},
	}
}

func (c *cli) reapCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "reap",
		Short: "Delete the namespace's sandboxes that are idle past their expiry (what a SessionManager's reaper does)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect()
			if err != nil {
				return err
			}
			r := cl.Reaper(c.namespace)
			r.DryRun = dryRun
			res, err := r.Reap(cmd.Context())
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(c.stdout, "%s %d pods, %d orphaned token Secrets in %s\n", verb, res.Pods, res.Secrets, c.namespace)
			for _, p := range res.Reaped {
				fmt.Fprintf(c.stdout, "  %s\t%s\n", p.ID, p.Why)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be deleted")
	return cmd
}

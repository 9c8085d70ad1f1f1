package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsandbox/podsandbox"
)

// procCmd is `podsandbox proc`: background processes in a sandbox. Each subcommand attaches to
// the sandbox and to the process by id, so a process started by one invocation is followed,
// waited for and killed by later ones, from any machine that reaches the cluster.
func (c *cli) procCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "proc",
		Short: "Background processes in a sandbox: start, ls, logs, write, wait, kill, rm",
		Long: "Background processes run detached in the sandbox's pod and outlive the command line that started them:\n" +
			"`proc start` prints an id that every later `proc` command takes.",
	}
	root.AddCommand(c.procStartCmd(), c.procLsCmd(), c.procLogsCmd(), c.procWriteCmd(), c.procWaitCmd(), c.procKillCmd(), c.procRmCmd())
	return root
}

func (c *cli) procStartCmd() *cobra.Command {
	var dir string
	var env []string
	var limit int
	var stdin bool
	cmd := &cobra.Command{
		Use:   "start ID -- COMMAND [ARG...]",
		Short: "Start a command in the background in sandbox ID and print the process's id",
		Long:  "One argument is a shell script as written; several are quoted into one command line.",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			command := args[1]
			if len(args) > 2 {
				command = shellJoin(args[1:])
			}
			var opts []podsandbox.ExecOption
			if dir != "" {
				opts = append(opts, podsandbox.WithDir(dir))
			}
			if limit != 0 {
				opts = append(opts, podsandbox.WithOutputLimit(limit))
			}
			if stdin {
				opts = append(opts, podsandbox.WithOpenStdin())
			}
			if len(env) > 0 {
				m, err := envMap(env)
				if err != nil {
					return err
				}
				opts = append(opts, podsandbox.WithExecEnv(m))
			}
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				p, err := sb.StartProcess(ctx, command, opts...)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(c.stdout, p.ID())
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "run in this directory (relative to the work dir)")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "NAME=VALUE for this process (repeatable)")
	cmd.Flags().IntVar(&limit, "output-limit", 0, fmt.Sprintf("bytes of each of stdout and stderr the pod keeps (default %d)", podsandbox.DefaultProcessOutputLimit))
	cmd.Flags().BoolVar(&stdin, "stdin", false, "keep the process's stdin open for `proc write` (default: /dev/null)")
	return cmd
}

func (c *cli) procWriteCmd() *cobra.Command {
	var closeAfter bool
	cmd := &cobra.Command{
		Use:   "write ID PROC [--close]",
		Short: "Copy standard input to a background process's stdin (started with --stdin)",
		Long:  "With --close, the process's stdin is closed afterwards: it reads end of file. With --close and no input, it is only closed.",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withProcess(cmd, args, func(ctx context.Context, p *podsandbox.Process) error {
				if err := exited(p.WriteStdin(ctx, c.stdin), p, args[0]); err != nil || !closeAfter {
					return err
				}
				return p.CloseStdin(ctx)
			})
		},
	}
	cmd.Flags().BoolVar(&closeAfter, "close", false, "close the process's stdin after the input")
	return cmd
}

func (c *cli) procLsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls ID",
		Short: "List the background processes of sandbox ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				list, err := sb.Processes(ctx)
				if err != nil {
					return err
				}
				if done, err := c.print(list); done {
					return err
				}
				w := c.table()
				fmt.Fprintln(w, "PROC\tSTATE\tEXIT\tSTARTED\tOUTPUT\tCOMMAND")
				for _, p := range list {
					exit := "-"
					if p.State == podsandbox.ProcessExited {
						exit = strconv.Itoa(p.ExitCode)
					}
					out := fmt.Sprintf("%d/%d", p.StdoutBytes, p.StderrBytes)
					if p.StdoutTruncated || p.StderrTruncated {
						out += " (cut)"
					}
					command := strings.ReplaceAll(p.Command, "\n", "; ")
					if len(command) > 60 {
						command = command[:57] + "..."
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.State, exit, p.StartedAt.Local().Format(time.DateTime), out, command)
				}
				return w.Flush()
			})
		},
	}
	outputFlag(cmd, c, "json, yaml or wide")
	return cmd
}

func (c *cli) procLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs ID PROC [-f]",
		Short: "Print a background process's stdout and stderr (to this command's stdout and stderr)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withProcess(cmd, args, func(ctx context.Context, p *podsandbox.Process) error {
				if follow {
					_, _, err := p.Follow(ctx, podsandbox.Cursor{}, c.stdout, c.stderr)
					return err
				}
				at := podsandbox.Cursor{}
				for {
					o, err := p.ReadOutput(ctx, at, 1<<20)
					if err != nil {
						return err
					}
					if _, err := c.stdout.Write(o.Stdout); err != nil {
						return err
					}
					if _, err := c.stderr.Write(o.Stderr); err != nil {
						return err
					}
					if o.Next == at {
						return nil
					}
					at = o.Next
				}
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing output as it arrives, until the process exits")
	return cmd
}

func (c *cli) procWaitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "wait ID PROC",
		Short: "Wait for a background process to exit; exit with its exit code",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withProcess(cmd, args, func(ctx context.Context, p *podsandbox.Process) error {
				st, err := p.Wait(ctx)
				switch {
				case err != nil:
					return err
				case st.State == podsandbox.ProcessLost:
					return fmt.Errorf("process %s is lost: its supervisor died without recording an exit code", p.ID())
				case st.ExitCode != 0:
					return exitError{st.ExitCode}
				}
				return nil
			})
		},
	}
}

func (c *cli) procKillCmd() *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill ID PROC [--signal TERM]",
		Short: "Send a signal (default KILL) to a background process's whole process group",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := parseSignal(sig)
			if err != nil {
				return err
			}
			return c.withProcess(cmd, args, func(ctx context.Context, p *podsandbox.Process) error {
				return exited(p.Signal(ctx, s), p, args[0])
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal name (TERM, INT, HUP, KILL, ...) or number")
	return cmd
}

func (c *cli) procRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID PROC...",
		Short: "Kill background processes if they run, and delete their output",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				var errs []error
				for _, id := range args[1:] {
					p, err := sb.Process(ctx, id)
					if err == nil {
						err = p.Remove(ctx)
					}
					if err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintln(c.stdout, id)
				}
				return errors.Join(errs...)
			})
		},
	}
}

// withProcess attaches to sandbox args[0] and its process args[1], and runs f.
func (c *cli) withProcess(cmd *cobra.Command, args []string, f func(context.Context, *podsandbox.Process) error) error {
	return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
		p, err := sb.Process(ctx, args[1])
		if err != nil {
			return fmt.Errorf("%w (list them with `podsandbox -n %s proc ls %s`)", err, c.namespace, args[0])
		}
		return f(ctx, p)
	})
}

var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "CONT": syscall.SIGCONT,
	"STOP": syscall.SIGSTOP, "ALRM": syscall.SIGALRM,
}

// parseSignal reads a signal name (with or without SIG) or number.
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 64 {
		return syscall.Signal(n), nil
	}
	if sig, ok := signalNames[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("--signal %q: want a name (TERM, INT, HUP, KILL, USR1, ...) or a number", s)
}

// envMap reads NAME=VALUE flags.
func envMap(env []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
		m[k] = v
	}
	return m, nil
}

// exited words os.ErrProcessDone for the command line: the process of sandbox id has exited.
func exited(err error, p *podsandbox.Process, id string) error {
	if errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("process %s has already exited (see `podsandbox proc ls %s`)", p.ID(), id)
	}
	return err
}

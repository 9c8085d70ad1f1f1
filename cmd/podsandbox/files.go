package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podsandbox/podsandbox"
)

func (c *cli) lsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ls ID [PATH]",
		Short: "List a directory of a sandbox (default: its work dir), directories first",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				es, err := sb.LsInfo(ctx, dir)
				if err != nil {
					return err
				}
				return c.printFiles(es, true)
			})
		},
	}
	outputFlag(cmd, c, "json or yaml")
	return cmd
}

func (c *cli) globCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "glob ID PATTERN [PATH]",
		Short: "Find files of a sandbox whose path matches PATTERN (** crosses directories)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "."
			if len(args) == 3 {
				root = args[2]
			}
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				es, err := sb.GlobInfo(ctx, args[1], root)
				if err != nil {
					return err
				}
				return c.printFiles(es, false)
			})
		},
	}
	outputFlag(cmd, c, "json or yaml")
	return cmd
}

// printFiles prints entries as -o asks, else one a line: size, time and path (ls) or the path.
func (c *cli) printFiles(es []podsandbox.FileInfo, long bool) error {
	if done, err := c.print(es); done {
		return err
	}
	if !long {
		for _, e := range es {
			fmt.Fprintln(c.stdout, e.Path)
		}
		return nil
	}
	tw := c.table()
	for _, e := range es {
		name := e.Name
		if e.IsDir {
			name += "/"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", e.Size, e.ModifiedAt.Local().Format(time.DateTime), name)
	}
	return tw.Flush()
}

func (c *cli) readCmd() *cobra.Command {
	var numbered bool
	var offset, limit int
	cmd := &cobra.Command{
		Use:   "read ID PATH",
		Short: "Write a sandbox file's bytes to stdout (binary-safe); -N for the numbered view the agent tool shows",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				if numbered {
					text, err := sb.Read(ctx, args[1], offset, limit)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintln(c.stdout, text)
					return err
				}
				b, err := sb.ReadBytes(ctx, args[1])
				if err != nil {
					return err
				}
				_, err = c.stdout.Write(b)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&numbered, "numbered", "N", false, "numbered lines, as the read_file tool shows them")
	cmd.Flags().IntVar(&offset, "offset", 0, "with -N: first line (0-based)")
	cmd.Flags().IntVar(&limit, "limit", 2000, "with -N: number of lines")
	return cmd
}

func (c *cli) grepCmd() *cobra.Command {
	var glob string
	var hidden bool
	cmd := &cobra.Command{
		Use:   "grep ID PATTERN [PATH]",
		Short: "Search a sandbox's files for a regular expression (Go RE2 syntax); prints path:line:text",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := podsandbox.GrepOptions{Glob: glob, IncludeHidden: hidden}
			if len(args) == 3 {
				opts.Path = args[2]
			}
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				ms, err := sb.GrepRaw(ctx, args[1], opts)
				if err != nil {
					return err
				}
				if done, err := c.print(ms); done {
					return err
				}
				for _, m := range ms {
					fmt.Fprintf(c.stdout, "%s:%d:%s\n", m.Path, m.LineNumber, m.Line)
				}
				if len(ms) == 0 {
					return exitError{1} // as grep: no match
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&glob, "include", "", "only files whose base name matches this glob")
	cmd.Flags().BoolVar(&hidden, "hidden", false, "search hidden files and directories too")
	outputFlag(cmd, c, "json or yaml")
	return cmd
}

func (c *cli) editCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "edit ID PATH OLD NEW",
		Short: "Replace OLD with NEW in a sandbox file (OLD must occur once unless --all)",
		Args:  cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withSandbox(cmd, args[0], func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) error {
				res, err := sb.Edit(ctx, args[1], args[2], args[3], all)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(c.stdout, "%s: %d replaced\n", res.Path, res.Occurrences)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "replace every occurrence")
	return cmd
}

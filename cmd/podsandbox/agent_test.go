package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsandbox/podsandbox"
)

func TestAgentFlag(t *testing.T) {
	self, err := os.Executable() // an ELF executable for this machine, as a built agent is
	if err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(t.TempDir(), "agent.txt")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, mode string
		opts             int
		err              string
		sentinel         error
	}{
		{"unset", "", "api", 0, "", nil},
		{"a binary, API mode", self, "api", 1, "", nil},
		{"HTTP mode", self, "http", 0, "needs --mode api", nil},
		{"missing file", filepath.Join(t.TempDir(), "none"), "api", 0, "--agent", os.ErrNotExist},
		{"not an executable", text, "api", 0, "not an ELF", podsandbox.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := agentFlag{path: tc.path}
			opts, err := f.options(tc.mode)
			if tc.err == "" {
				if err != nil || len(opts) != tc.opts {
					t.Fatalf("options: %d, %v; want %d options", len(opts), err, tc.opts)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want it to say %q", err, tc.err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("err %v does not match %v", err, tc.sentinel)
			}
		})
	}
}

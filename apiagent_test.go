package podsandbox

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestNewAgent(t *testing.T) {
	self, err := os.ReadFile("/proc/self/exe") // this test binary: an ELF executable of this machine
	if err != nil {
		t.Skip("no /proc/self/exe on this system") // Linux-only fact; the e2e tests cover the agent
	}
	a, err := NewAgent(self)
	if err != nil {
		if !strings.Contains(err.Error(), "build it for amd64 or arm64") {
			t.Fatalf("NewAgent(this test binary): %v", err)
		}
	} else if a.Machine() != "x86_64" && a.Machine() != "aarch64" {
		t.Errorf("Machine() = %q", a.Machine())
	}
	relocatable := append([]byte(nil), self...)
	relocatable[16] = 1 // e_type ET_REL
	for _, tc := range []struct {
		name string
		bin  []byte
		want string
	}{
		{"empty", nil, "not an ELF executable"},
		{"a script", []byte("#!/bin/sh\necho hi\n"), "not an ELF executable"},
		{"an object file", relocatable, "not an executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAgent(tc.bin)
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewAgent = %v, want ErrInvalidArgument saying %q", err, tc.want)
			}
		})
	}
}

package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podsandbox/podsandbox"
)

// isolation holds the flags of the sandbox's runtime class and NetworkPolicy, shared by run and
// mcp.
type isolation struct {
	runtimeClass string
	egress       []string
	open         bool
}

func (f *isolation) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.runtimeClass, "runtime-class", "", "RuntimeClass of the pod, for example gvisor (default: the cluster's runtime)")
	cmd.Flags().StringArrayVar(&f.egress, "egress-allow", nil, "CIDR[:PORT[,PORT...]] the sandbox may connect to over TCP and UDP, beyond DNS (repeatable; all ports when none)")
	cmd.Flags().BoolVar(&f.open, "open-network", false, "no NetworkPolicy: the sandbox may connect anywhere the cluster routes, and be connected to")
}

// options turns the flags into library options; their values are checked by the library.
func (f *isolation) options() ([]podsandbox.Option, error) {
	var opts []podsandbox.Option
	if f.runtimeClass != "" {
		opts = append(opts, podsandbox.WithRuntimeClass(f.runtimeClass))
	}
	for _, spec := range f.egress {
		cidr, ports, err := parseEgress(spec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, podsandbox.WithEgressAllow(cidr, ports...))
	}
	if f.open {
		opts = append(opts, podsandbox.WithOpenNetwork())
	}
	return opts, nil
}

// parseEgress splits "CIDR[:PORT[,PORT...]]"; the ports follow the first ':' after the prefix
// length, so IPv6 prefixes ("fd00::/64:443") work too.
func parseEgress(spec string) (string, []int, error) {
	slash := strings.Index(spec, "/")
	if slash < 0 {
		return "", nil, fmt.Errorf("--egress-allow %q: want CIDR[:PORT[,PORT...]], for example 10.0.0.0/8:443 or 192.0.2.7/32", spec)
	}
	colon := strings.Index(spec[slash:], ":")
	if colon < 0 {
		return spec, nil, nil
	}
	cidr, list := spec[:slash+colon], spec[slash+colon+1:]
	var ports []int
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", nil, fmt.Errorf("--egress-allow %q: port %q is not a number", spec, p)
		}
		ports = append(ports, n)
	}
	return cidr, ports, nil
}

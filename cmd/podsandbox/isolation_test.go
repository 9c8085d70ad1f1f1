package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseEgress(t *testing.T) {
	cases := []struct {
		spec  string
		cidr  string
		ports []int
		err   string
	}{
		{"10.0.0.0/8", "10.0.0.0/8", nil, ""},
		{"10.0.0.0/8:443", "10.0.0.0/8", []int{443}, ""},
		{"192.0.2.7/32:53,8443", "192.0.2.7/32", []int{53, 8443}, ""},
		{"fd00::/64:443", "fd00::/64", []int{443}, ""},
		{"fd00::/64", "fd00::/64", nil, ""},
		{"example.com:443", "", nil, "want CIDR"},
		{"10.0.0.0/8:https", "", nil, "not a number"},
		{"10.0.0.0/8:", "", nil, "not a number"},
	}
	for _, tc := range cases {
		cidr, ports, err := parseEgress(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || cidr != tc.cidr || !slices.Equal(ports, tc.ports) {
			t.Errorf("%q: %q %v %v, want %q %v", tc.spec, cidr, ports, err, tc.cidr, tc.ports)
		}
	}
}

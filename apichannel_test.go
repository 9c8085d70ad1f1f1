package podsandbox

import (
	"strings"
	"testing"
)

// TestChannelRequest checks the encoding the channel's driver reads: short one-line arguments as
// lines, the others by length (a newline, a long text, an empty line stays a line), then whether
// stdin follows.
func TestChannelRequest(t *testing.T) {
	long := strings.Repeat("x", lineArgMax+1)
	for _, c := range []struct {
		name  string
		args  []string
		stdin bool
		want  string
	}{
		{"lines", []string{"/w", "", "a b"}, false, "r MK\n3\n-\n/w\n-\n\n-\na b\n-\n"},
		{"newline", []string{"a\nb\n"}, true, "r MK\n1\n4\na\nb\ni\n"},
		{"long", []string{long}, false, "r MK\n1\n513\n" + long + "-\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(request("MK", c.args, c.stdin)); got != c.want {
				t.Errorf("request = %q, want %q", got, c.want)
			}
		})
	}
}

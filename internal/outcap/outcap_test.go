package outcap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type chunk struct {
	stream int
	data   string
}

func TestCapture(t *testing.T) {
	tests := []struct {
		name               string
		limit              int
		in                 []chunk
		output, out, err   string
		trunc, tOut, tErr  bool
		outBytes, errBytes int64
	}{
		{name: "nothing", limit: 10},
		{name: "under the limit", limit: 10, in: []chunk{{Stdout, "ab"}, {Stderr, "X"}, {Stdout, "c"}},
			output: "abXc", out: "abc", err: "X", outBytes: 3, errBytes: 1},
		{name: "exactly the limit", limit: 4, in: []chunk{{Stdout, "ab"}, {Stdout, "cd"}},
			output: "abcd", out: "abcd", outBytes: 4},
		{name: "head and tail", limit: 4, in: []chunk{{Stdout, "abcdefgh"}},
			output: "ab" + fmt.Sprintf(Marker, 4) + "gh", out: "ab" + fmt.Sprintf(Marker, 4) + "gh",
			trunc: true, tOut: true, outBytes: 8},
		{name: "tail over many writes", limit: 4, in: []chunk{{Stdout, "a"}, {Stdout, "b"}, {Stdout, "c"}, {Stdout, "d"}, {Stdout, "e"}, {Stdout, "f"}, {Stdout, "g"}},
			output: "ab" + fmt.Sprintf(Marker, 3) + "fg", out: "ab" + fmt.Sprintf(Marker, 3) + "fg",
			trunc: true, tOut: true, outBytes: 7},
		{name: "only the interleaving is cut", limit: 4, in: []chunk{{Stdout, "abc"}, {Stderr, "XYZ"}},
			output: "ab" + fmt.Sprintf(Marker, 2) + "YZ", out: "abc", err: "XYZ", trunc: true, outBytes: 3, errBytes: 3},
		{name: "one stream cut, the other whole", limit: 4, in: []chunk{{Stderr, "E"}, {Stdout, "0123456789"}},
			output: "E0" + fmt.Sprintf(Marker, 7) + "89", out: "01" + fmt.Sprintf(Marker, 6) + "89", err: "E",
			trunc: true, tOut: true, outBytes: 10, errBytes: 1},
		{name: "limit of one keeps the last byte", limit: 1, in: []chunk{{Stdout, "abc"}},
			output: fmt.Sprintf(Marker, 2) + "c", out: fmt.Sprintf(Marker, 2) + "c", trunc: true, tOut: true, outBytes: 3},
		// "é" is 2 bytes, "€" 3: the head would end inside "é", the tail start inside "€".
		{name: "no character is split", limit: 6, in: []chunk{{Stdout, "aaé" + strings.Repeat("x", 10) + "€bb"}},
			output: "aa" + fmt.Sprintf(Marker, 15) + "bb", out: "aa" + fmt.Sprintf(Marker, 15) + "bb",
			trunc: true, tOut: true, outBytes: 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.limit)
			for _, ch := range tt.in {
				c.Add(ch.stream, []byte(ch.data))
			}
			r := c.Result()
			if string(r.Output) != tt.output || string(r.Stdout) != tt.out || string(r.Stderr) != tt.err {
				t.Errorf("output %q stdout %q stderr %q, want %q %q %q", r.Output, r.Stdout, r.Stderr, tt.output, tt.out, tt.err)
			}
			if r.Truncated != tt.trunc || r.StdoutTruncated != tt.tOut || r.StderrTruncated != tt.tErr {
				t.Errorf("truncated %v/%v/%v, want %v/%v/%v", r.Truncated, r.StdoutTruncated, r.StderrTruncated, tt.trunc, tt.tOut, tt.tErr)
			}
			if r.StdoutBytes != tt.outBytes || r.StderrBytes != tt.errBytes {
				t.Errorf("bytes %d/%d, want %d/%d", r.StdoutBytes, r.StderrBytes, tt.outBytes, tt.errBytes)
			}
			if r.Spilled != 0 {
				t.Errorf("spilled %d without a spill", r.Spilled)
			}
		})
	}
}

func TestCaptureSpill(t *testing.T) {
	tests := []struct {
		name       string
		limit      int
		spillLimit int64
		in         []string
		spill      string
		opened     bool
		cut        bool
	}{
		{name: "under the limit opens nothing", limit: 8, spillLimit: 100, in: []string{"abc", "defgh"}},
		{name: "everything from the first byte", limit: 4, spillLimit: 100, in: []string{"ab", "cd", "efg", "h"},
			spill: "abcdefgh", opened: true},
		{name: "one big write", limit: 4, spillLimit: 100, in: []string{"0123456789"}, spill: "0123456789", opened: true},
		{name: "cut at the spill limit", limit: 2, spillLimit: 5, in: []string{"ab", "cdef", "gh"}, spill: "abcde", opened: true, cut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.limit)
			var buf bytes.Buffer
			opens := 0
			c.Spill(tt.spillLimit, func() (io.Writer, error) { opens++; return &buf, nil })
			for i, s := range tt.in {
				c.Add(1+i%2, []byte(s))
			}
			r := c.Result()
			if buf.String() != tt.spill || r.Spilled != int64(len(tt.spill)) || r.SpillCut != tt.cut || r.SpillErr != nil {
				t.Errorf("spill %q (%d bytes, cut %v, err %v), want %q cut %v", buf.String(), r.Spilled, r.SpillCut, r.SpillErr, tt.spill, tt.cut)
			}
			if want := map[bool]int{true: 1}[tt.opened]; opens != want {
				t.Errorf("opened %d times, want %d", opens, want)
			}
		})
	}
}

func TestCaptureSpillError(t *testing.T) {
	c := New(2)
	boom := errors.New("disk full")
	c.Spill(100, func() (io.Writer, error) { return nil, boom })
	c.Add(Stdout, []byte("abcdef"))
	c.Add(Stdout, []byte("gh"))
	r := c.Result()
	if !errors.Is(r.SpillErr, boom) || r.Spilled != 0 || string(r.Stdout) != "a"+fmt.Sprintf(Marker, 6)+"h" {
		t.Errorf("spill err %v spilled %d stdout %q", r.SpillErr, r.Spilled, r.Stdout)
	}
}

package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

func TestFrames(t *testing.T) {
	var b []byte
	b = AppendFrame(b, FrameStdout, []byte("out"))
	b = AppendFrame(b, FrameInput, nil)
	b = AppendFrame(b, FrameExit, []byte(`{"t":"x"}`))
	r := bytes.NewReader(b)
	var buf []byte
	for _, want := range []struct{ typ, data string }{{FrameStdout, "out"}, {FrameInput, ""}, {FrameExit, `{"t":"x"}`}} {
		typ, data, err := ReadFrame(r, buf)
		if err != nil || typ != want.typ || string(data) != want.data {
			t.Fatalf("ReadFrame = %q %q %v, want %q %q", typ, data, err, want.typ, want.data)
		}
		buf = data
	}
	if _, _, err := ReadFrame(r, buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
	// A frame that claims more than MaxBinaryFrame is refused before anything is allocated.
	head := binary.BigEndian.AppendUint32([]byte{'o'}, MaxBinaryFrame+1)
	if _, _, err := ReadFrame(bytes.NewReader(head), nil); err == nil {
		t.Error("an oversized frame was accepted")
	}
	// A frame cut short is an error, not a short payload.
	if _, _, err := ReadFrame(bytes.NewReader(AppendFrame(nil, "o", []byte("abcdef"))[:8]), nil); err != io.ErrUnexpectedEOF {
		t.Errorf("a cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

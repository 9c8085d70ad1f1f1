package wire

import (
	"io"
	"net"
	"time"
)

// StreamConn is a net.Conn over a byte stream's two halves, for HTTP/2 on a process's stdin and
// stdout (the agent, and the client that started it through pods/exec). Deadlines are not
// supported: neither side sets any. Close closes W, then ExtraClose when set.
type StreamConn struct {
	R          io.Reader
	W          io.WriteCloser
	ExtraClose io.Closer
}

func (c *StreamConn) Read(p []byte) (int, error)  { return c.R.Read(p) }
func (c *StreamConn) Write(p []byte) (int, error) { return c.W.Write(p) }

func (c *StreamConn) Close() error {
	err := c.W.Close()
	if c.ExtraClose != nil {
		_ = c.ExtraClose.Close()
	}
	return err
}

func (c *StreamConn) LocalAddr() net.Addr              { return streamAddr{} }
func (c *StreamConn) RemoteAddr() net.Addr             { return streamAddr{} }
func (c *StreamConn) SetDeadline(time.Time) error      { return nil }
func (c *StreamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *StreamConn) SetWriteDeadline(time.Time) error { return nil }

type streamAddr struct{}

func (streamAddr) Network() string { return "stdio" }
func (streamAddr) String() string  { return "stdio" }

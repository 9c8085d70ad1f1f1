package server

import (
	"bufio"
	"encoding/json"
	"io"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/podsandbox/podsandbox/internal/wire"
)

// openPTY opens a pseudo-terminal of size. The master comes back pollable, so its reads and
// writes take deadlines like a pipe's: pty.Open leaves it in blocking mode (it calls Fd), so it is
// replaced by a non-blocking duplicate.
func openPTY(size wire.TerminalSize) (master, slave *os.File, err error) {
	m, sl, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.Dup(int(m.Fd()))
	_ = m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
		if err != nil {
			_ = unix.Close(fd)
		}
	}
	if err != nil {
		_ = sl.Close()
		return nil, nil, err
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := setTerminalSize(master, size); err != nil {
		_ = master.Close()
		_ = sl.Close()
		return nil, nil, err
	}
	return master, sl, nil
}

// setTerminalSize resizes the terminal of master (the command gets SIGWINCH).
func setTerminalSize(master *os.File, size wire.TerminalSize) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols})
	}); err != nil {
		return err
	}
	return ierr
}

// terminalInput reads terminal input frames from r (wire.FrameInput, wire.FrameResize) and applies
// them to master until r ends or fails, or a write to the terminal fails. Unknown frames are
// skipped.
func terminalInput(master *os.File, r io.Reader) {
	br := bufio.NewReader(r)
	var buf []byte
	for {
		typ, data, err := wire.ReadFrame(br, buf)
		if err != nil {
			return
		}
		buf = data
		switch typ {
		case wire.FrameInput:
			if _, err := master.Write(data); err != nil {
				return
			}
		case wire.FrameResize:
			var size wire.TerminalSize
			if json.Unmarshal(data, &size) == nil {
				_ = setTerminalSize(master, size)
			}
		}
	}
}

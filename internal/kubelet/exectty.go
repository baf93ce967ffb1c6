package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Exec with a TTY: `runc exec --tty` in the foreground wants a terminal
// of its own on its standard streams (it sets it raw and copies between it
// and the container's terminal, sizing the container's terminal from it
// when it starts). The kubelet gives it one: a pseudo-terminal whose
// master side is copied to and from the client's streams and whose size
// is the client's first resize message.

// Exec TTY bounds.
const (
	// firstResizeWait is how long the command's start waits for the
	// client's first terminal size; kubectl sends it at once.
	firstResizeWait = 2 * time.Second
	// ttyDrainWait bounds reading the terminal's last output once the
	// command ended.
	ttyDrainWait = 2 * time.Second
)

// terminalSize is a resize message, as the client writes them.
type terminalSize struct {
	Width, Height uint16
}

// openPTY opens a new pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	var n int
	cerr := control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlock pty: %w", err)
		}
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		if err != nil {
			return fmt.Errorf("pty number: %w", err)
		}
		return nil
	})
	if cerr != nil {
		master.Close()
		return nil, nil, cerr
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open pty %d: %w", n, err)
	}
	return master, slave, nil
}

// control runs fn on f's descriptor without making f blocking.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// setTerminalSize sizes the terminal of master.
func setTerminalSize(master *os.File, s terminalSize) error {
	return control(master, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: s.Height, Col: s.Width})
	})
}

// runExecTTY runs the command on a pseudo-terminal: the client's stdin
// goes to it, its output to the client's stdout (a terminal has no
// separate stderr), and resize messages size it. Later sizes reach the
// terminal but not the command's, which runc sizes once at start.
func (s *Server) runExecTTY(ctx context.Context, id string, opts execOptions, st *execStreams) (int, error) {
	master, slave, err := openPTY()
	if err != nil {
		return -1, err
	}
	defer master.Close()
	defer slave.Close()
	sized := make(chan struct{})
	if st.resize != nil {
		go func() {
			dec := json.NewDecoder(st.resize)
			first := true
			for {
				var size terminalSize
				if err := dec.Decode(&size); err != nil {
					break
				}
				if err := setTerminalSize(master, size); err != nil {
					s.log.Debug("exec terminal resize", "err", err)
				}
				if first {
					close(sized)
					first = false
				}
			}
			if first {
				close(sized)
			}
		}()
		select {
		case <-sized:
		case <-time.After(firstResizeWait):
		}
	}
	if st.stdin != nil {
		go func() { _, _ = io.Copy(master, st.stdin) }()
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if st.stdout == nil {
			_, _ = io.Copy(io.Discard, master)
			return
		}
		// Once every slave side is closed the master reads EIO: the end.
		if _, err := io.Copy(st.stdout, master); err != nil && !errors.Is(err, unix.EIO) {
			s.log.Debug("exec terminal output", "err", err)
		}
	}()
	code, err := s.cfg.Runtime.Exec(ctx, id, opts.command, slave, slave, slave, true)
	slave.Close()
	select {
	case <-drained:
	case <-time.After(ttyDrainWait):
	}
	return code, err
}

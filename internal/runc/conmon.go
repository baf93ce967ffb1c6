package runc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-sh/skiff/internal/cri"
)

// Files in a container's directory, which is also its OCI bundle and
// conmon's exit and persist directory.
const (
	conmonPIDFile = "conmon.pid" // conmon's own PID (--conmon-pidfile)
	initPIDFile   = "init.pid"   // the container's init (--container-pidfile)
	conmonLogFile = "conmon.log" // conmon's standard streams before it daemonizes
	runcLogFile   = "runc.log"   // runc's JSON log (--runtime-arg --log)
	oomFile       = "oom"        // created by conmon when the cgroup saw an OOM kill
	attachSocket  = "attach"     // conmon's attach socket (--full-attach)
	ctlFifo       = "ctl"        // conmon's control fifo: resize, reopen log
	exitFile      = "exit.json"  // the runtime's record of the container's end
)

// exitStatus is the runtime's record of a container's end (exit.json). It
// is written once, atomically, after runc has removed the container.
type exitStatus struct {
	ExitCode   int32
	Reason     string
	Message    string
	FinishedAt time.Time
}

// conmonArgs are the arguments that make conmon create container id from
// the bundle dir with runc, the way CRI-O runs it: conmon daemonizes into
// its own session, runs `runc create`, reports the container's PID on the
// sync pipe, writes the CRI log, and when the container exits writes its
// exit code to the file named id in dir (and "oom" there after an OOM
// kill). The container's end is collected by the runtime.
func conmonArgs(runcPath, runcRoot, dir, id, name, logPath string, tty, stdin, stdinOnce bool) []string {
	args := []string{
		"--api-version", "1",
		"--cid", id, "--cuuid", id, "--name", name,
		"--runtime", runcPath,
		"--runtime-arg", "--root=" + runcRoot,
		"--runtime-arg", "--log=" + filepath.Join(dir, runcLogFile),
		"--runtime-arg", "--log-format=json",
		"--bundle", dir,
		"--container-pidfile", filepath.Join(dir, initPIDFile),
		"--conmon-pidfile", filepath.Join(dir, conmonPIDFile),
		"--log-path", "k8s-file:" + logPath,
		"--exit-dir", dir,
		"--persist-dir", dir,
		// The attach socket in the bundle directory, not under a
		// socket directory through a symbolic link.
		"--full-attach", "--socket-dir-path", dir,
	}
	if tty {
		args = append(args, "--terminal")
	}
	if stdin {
		args = append(args, "--stdin")
		if !stdinOnce {
			// Without StdinOnce a client that detaches leaves the
			// container's stdin open; with it, conmon closes it.
			args = append(args, "--leave-stdin-open")
		}
	}
	return args
}

// syncMessage is what conmon writes on its sync pipe once `runc create`
// has finished: the container's PID, or -1 and a message.
type syncMessage struct {
	Data    int    `json:"data"`
	Message string `json:"message,omitempty"`
}

// startConmon starts the container's conmon and waits until it reports
// that runc created the container. conmon daemonizes: the process started
// here exits at once, and the daemon lives in its own session, so it
// outlives this process.
func (r *Runtime) startConmon(ctx context.Context, c *containerState, cfg cri.ContainerConfig) error {
	dir := r.cfg.containerDir(c.ID)
	logFile, err := os.OpenFile(filepath.Join(dir, conmonLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer syncR.Close()
	name := c.Namespace + "_" + c.PodName + "_" + c.Name
	cmd := exec.Command(r.cfg.ConmonPath, conmonArgs(r.cfg.RuncPath, r.cfg.runcRoot(), dir, c.ID, name, c.LogPath, cfg.TTY, cfg.Stdin, cfg.StdinOnce)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "_OCI_SYNCPIPE=3"}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{syncW} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	syncW.Close()
	if err != nil {
		return fmt.Errorf("start conmon: %w", err)
	}
	go func() { _ = cmd.Wait() }() // the first conmon process exits once it has forked

	deadline := time.Now().Add(createTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = syncR.SetReadDeadline(deadline)
	// conmon keeps the pipe open until the container exits: read the
	// one message, not to the end.
	var msg syncMessage
	if err := json.NewDecoder(syncR).Decode(&msg); err != nil {
		detail := lastRuncError(filepath.Join(dir, runcLogFile))
		if detail == "" {
			detail = "see " + filepath.Join(dir, conmonLogFile)
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("conmon exited without reporting: %s", detail)
		}
		return fmt.Errorf("conmon: %w: %s", err, detail)
	}
	if msg.Data <= 0 {
		return fmt.Errorf("runc create: %s", createFailure(msg.Message, lastRuncError(filepath.Join(dir, runcLogFile))))
	}
	return nil
}

// createFailure joins conmon's message about a failed `runc create` with
// runc's own last error, which says why.
func createFailure(conmonMsg, runcMsg string) string {
	conmonMsg = strings.TrimSpace(conmonMsg)
	switch {
	case runcMsg == "":
		if conmonMsg == "" {
			return "failed"
		}
		return conmonMsg
	case conmonMsg == "" || strings.Contains(conmonMsg, runcMsg):
		return runcMsg
	default:
		return conmonMsg + ": " + runcMsg
	}
}

// lastRuncError returns the last error message in runc's JSON log.
func lastRuncError(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	var msg string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var entry struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			msg = entry.Msg
		}
	}
	return msg
}

// conmonExitFile is where conmon writes the container's exit code
// (--exit-dir is the container's directory; the file is named by ID).
func (c Config) conmonExitFile(id string) string {
	return filepath.Join(c.containerDir(id), id)
}

// parseExitCode reads conmon's exit file: the decimal exit code, 128+n
// for a container killed by signal n.
func parseExitCode(data []byte) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("exit code %q: %w", data, err)
	}
	return int32(n), nil
}

// exitReason is the container's termination reason, as the kubelet
// reports it.
func exitReason(code int32, oomKilled bool) string {
	switch {
	case oomKilled:
		return "OOMKilled"
	case code != 0:
		return "Error"
	default:
		return "Completed"
	}
}

// exitStatus returns the container's recorded end. When conmon has written
// the exit code but the runtime has not yet collected it, it is collected
// now: the OOM verdict is taken (conmon's marker, or the memory cgroup's
// OOM-kill counter, read before runc removes the cgroup), runc deletes the
// container and exit.json is written.
func (r *Runtime) exitStatus(id string) (exitStatus, bool) {
	var st exitStatus
	if err := r.readRecord(filepath.Join(r.cfg.containerDir(id), exitFile), &st); err == nil {
		return st, true
	}
	data, err := os.ReadFile(r.cfg.conmonExitFile(id))
	if err != nil {
		return st, false
	}
	r.collectMu.Lock()
	defer r.collectMu.Unlock()
	if err := r.readRecord(filepath.Join(r.cfg.containerDir(id), exitFile), &st); err == nil {
		return st, true // collected meanwhile
	}
	code, err := parseExitCode(data)
	if err != nil {
		// Written but not yet complete; the next look finds it.
		return st, false
	}
	c, err := r.loadContainer(id)
	if err != nil {
		return st, false // being removed
	}
	fi, err := os.Stat(r.cfg.conmonExitFile(id))
	if err != nil {
		return st, false
	}
	_, oomErr := os.Stat(filepath.Join(r.cfg.containerDir(id), oomFile))
	oom := oomErr == nil || oomKilled(c.CgroupsPath)
	st = exitStatus{ExitCode: code, Reason: exitReason(code, oom), FinishedAt: fi.ModTime()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.runc(ctx, "delete", "--force", id); err != nil && !strings.Contains(err.Error(), "not exist") {
		r.logger.Warn("delete exited container", "id", id, "err", err)
	}
	if err := r.writeRecord(filepath.Join(r.cfg.containerDir(id), exitFile), &st); err != nil {
		r.logger.Warn("record container exit", "id", id, "err", err)
		return st, false
	}
	r.logger.Info("container exited", "pod", c.Namespace+"/"+c.PodName, "container", c.Name, "id", id, "exitCode", code, "reason", st.Reason)
	return st, true
}

// conmonAlive reports whether the container's conmon still runs. The PID
// file's process must name the container's bundle, which guards against
// PID reuse; a zombie has an empty command line.
func (r *Runtime) conmonAlive(id string) bool {
	if alive, known := r.watchedConmonAlive(id); known {
		return alive
	}
	data, err := os.ReadFile(filepath.Join(r.cfg.containerDir(id), conmonPIDFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if !bytes.Contains(cmdline, []byte("\x00"+r.cfg.containerDir(id)+"\x00")) {
		return false
	}
	r.watchConmon(id, pid)
	return true
}

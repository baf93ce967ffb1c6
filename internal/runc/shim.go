package runc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files in a container's directory.
const (
	shimConfigFile = "shim.json"
	shimPIDFile    = "shim.pid"
	initPIDFile    = "init.pid"
	exitFile       = "exit.json"
	runcLogFile    = "runc.log"
	shimLogFile    = "shim.log"
)

// shimConfig is what the runtime tells a container's shim (shim.json).
type shimConfig struct {
	ID          string
	RuncPath    string
	RuncRoot    string
	LogPath     string
	CgroupsPath string
}

// exitStatus is the shim's record of a container's end (exit.json). It is
// written once, atomically, after runc has removed the container.
type exitStatus struct {
	ExitCode   int32
	Reason     string
	Message    string
	FinishedAt time.Time
}

// ShimMain runs the hidden shim command with args:
//
//	run <container dir>   supervise one container (see doc.go)
//	pause                 hold a shared PID namespace until killed
//
// The skiff binary runs it when re-executed through Config.ShimCommand.
func ShimMain(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "run":
		return runShim(args[1])
	case len(args) == 1 && args[0] == "pause":
		return runPause()
	default:
		return fmt.Errorf("shim: usage: shim run <container dir> | shim pause")
	}
}

// runShim creates the container with runc as a child subreaper, reports
// readiness on fd 3, copies the container's output into its CRI log, and
// when the container's init exits records the exit status and deletes the
// container.
func runShim(dir string) error {
	ready := os.NewFile(3, "ready")
	fail := func(err error) error {
		if ready != nil {
			fmt.Fprintf(ready, "%v\n", err)
			ready.Close()
		}
		return err
	}
	var cfg shimConfig
	if err := readJSON(filepath.Join(dir, shimConfigFile), &cfg); err != nil {
		return fail(err)
	}
	// Terminal signals must not end the shim; handled (not ignored)
	// signals are reset in runc and the container on exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("set child subreaper: %w", err))
	}
	if err := os.WriteFile(filepath.Join(dir, shimPIDFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return fail(err)
	}
	logFile, err := openRotating(cfg.LogPath, logMaxSize, logMaxFiles, time.Now)
	if err != nil {
		return fail(fmt.Errorf("open container log: %w", err))
	}
	defer logFile.Close()
	lw := &logWriter{w: logFile, now: time.Now}

	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	copied := make(chan struct{}, 2)
	go func() { _ = lw.copy(outR, "stdout"); copied <- struct{}{} }()
	go func() { _ = lw.copy(errR, "stderr"); copied <- struct{}{} }()

	// The container inherits runc create's standard streams.
	create := exec.Command(cfg.RuncPath, "--root", cfg.RuncRoot,
		"--log", filepath.Join(dir, runcLogFile), "--log-format", "json",
		"create", "--bundle", dir, "--pid-file", filepath.Join(dir, initPIDFile), cfg.ID)
	create.Stdout, create.Stderr = outW, errW
	createErr := create.Run()
	outW.Close()
	errW.Close()
	if createErr != nil {
		return fail(fmt.Errorf("runc create: %w: %s", createErr, lastRuncError(filepath.Join(dir, runcLogFile))))
	}
	pidData, err := os.ReadFile(filepath.Join(dir, initPIDFile))
	if err != nil {
		return fail(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		return fail(fmt.Errorf("container init pid: %w", err))
	}
	fmt.Fprintln(ready, "ok")
	ready.Close()
	ready = nil

	code := waitInit(pid)
	// Output may still be buffered in the pipes; processes that outlive
	// init (in a shared PID namespace) must not hold the shim forever.
	for range 2 {
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	st := exitStatus{ExitCode: code, FinishedAt: time.Now()}
	if oomKilled(cfg.CgroupsPath) {
		st.Reason = "OOMKilled"
	} else if code != 0 {
		st.Reason = "Error"
	} else {
		st.Reason = "Completed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := runRunc(ctx, cfg.RuncPath, cfg.RuncRoot, "delete", "--force", cfg.ID); err != nil {
		fmt.Fprintf(os.Stderr, "shim: %v\n", err)
	}
	return writeJSON(filepath.Join(dir, exitFile), st)
}

// waitInit reaps children until the container's init exits and returns
// its exit code (128+signal when killed). Orphans reparented to the shim
// are reaped on the way.
func waitInit(pid int) int32 {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// No children: init was not reparented to us. Poll it.
			for unix.Kill(pid, 0) == nil {
				time.Sleep(100 * time.Millisecond)
			}
			return 255
		}
		if wpid != pid {
			continue
		}
		switch {
		case ws.Exited():
			return int32(ws.ExitStatus())
		case ws.Signaled():
			return 128 + int32(ws.Signal())
		}
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

// runPause is PID 1 of a pod's shared PID namespace: it reaps orphans
// until it is killed or told to stop.
func runPause() error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return nil
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
	return nil
}

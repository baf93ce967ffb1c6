package runc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Container log rotation, as upstream's kubelet container log manager
// does it by default (containerLogMaxSize 10Mi, containerLogMaxFiles 5):
// conmon writes the current file; Run checks the sizes every 10 s, renames
// a file that grew past the size to "<path>.<UTC timestamp>", tells conmon
// through its control fifo to reopen its log (which creates a new current
// file), and keeps the newest LogMaxFiles-1 rotated files. `kubectl logs`
// reads the current file.
const (
	logMaxSize        = 10 << 20
	logMaxFiles       = 5
	logRotateInterval = 10 * time.Second
	// rotatedTimeFormat sorts rotated files by time.
	rotatedTimeFormat = "20060102-150405.000000000"
	// reopenLogMessage is conmon's control message "reopen the log
	// files": type 2, with the (unused) height and width of a resize.
	reopenLogMessage = "2 0 0\n"
)

// rotatedLogName is the name a log at path is renamed to when rotated at
// now.
func rotatedLogName(path string, now time.Time) string {
	return path + "." + now.UTC().Format(rotatedTimeFormat)
}

// logsToDrop returns the oldest of the rotated files beyond the maxFiles-1
// that are kept beside the current file.
func logsToDrop(rotated []string, maxFiles int) []string {
	old := append([]string(nil), rotated...)
	sort.Strings(old) // the timestamps sort by time
	keep := max(maxFiles-1, 0)
	if len(old) <= keep {
		return nil
	}
	return old[:len(old)-keep]
}

// Run rotates the containers' logs until ctx ends. The node agent runs it
// once per Runtime.
func (r *Runtime) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.LogRotateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.rotateLogs(ctx)
		}
	}
}

// rotateLogs makes one pass over the containers: one stat of each log,
// and a rotation of those past the size whose conmon still writes them.
func (r *Runtime) rotateLogs(ctx context.Context) {
	entries, err := os.ReadDir(r.cfg.containersDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		c, err := r.loadContainer(e.Name())
		if err != nil || c.LogPath == "" {
			continue
		}
		fi, err := os.Stat(c.LogPath)
		if err != nil || fi.Size() < r.cfg.LogMaxSize || !r.conmonAlive(c.ID) {
			continue
		}
		if err := r.rotateLog(c.ID, c.LogPath); err != nil {
			r.logger.Warn("rotate container log", "pod", c.Namespace+"/"+c.PodName, "container", c.Name, "id", c.ID, "err", err)
		}
	}
}

// rotateLog renames the container's current log aside, has conmon reopen
// it, and drops the oldest rotated files.
func (r *Runtime) rotateLog(id, path string) error {
	rotated := rotatedLogName(path, time.Now())
	if err := os.Rename(path, rotated); err != nil {
		return err
	}
	if err := r.reopenLog(id); err != nil {
		// conmon still writes the renamed file; put it back so that
		// `kubectl logs` keeps following it.
		_ = os.Rename(rotated, path)
		return err
	}
	old, _ := filepath.Glob(path + ".*")
	for _, f := range logsToDrop(old, r.cfg.LogMaxFiles) {
		_ = os.Remove(f)
	}
	return nil
}

// reopenLog asks the container's conmon to reopen its log file. The
// write never blocks: without a reader (conmon gone) opening the fifo
// fails with ENXIO.
func (r *Runtime) reopenLog(id string) error {
	return writeCtl(r.cfg.containerDir(id), reopenLogMessage)
}

// writeCtl writes one message to the conmon control fifo in dir.
func writeCtl(dir, msg string) error {
	fd, err := unix.Open(filepath.Join(dir, ctlFifo), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("conmon control fifo: %w", err)
	}
	f := os.NewFile(uintptr(fd), ctlFifo)
	defer f.Close()
	if _, err := f.WriteString(msg); err != nil {
		return fmt.Errorf("conmon control fifo: %w", err)
	}
	return nil
}

package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The skiff binary carries the API server, etcd and kubectl as well as the
// node agent, and Go runs every linked package's initialisation at start:
// that touches tens of megabytes of the binary's code and read-only data
// that a running agent never uses again. Once the agent has settled, it
// asks the kernel to reclaim those pages (madvise MADV_PAGEOUT over the
// binary's read-only mappings). The pages the agent does use fault back in
// from the page cache as it runs; the rest stop counting against the
// node's memory.

// startupSettle is how long after start the agent releases its start-up
// pages: long enough to have registered, listed its pods and started
// their workers.
const startupSettle = time.Minute

// mapping is one address range of /proc/self/maps.
type mapping struct {
	start, end uintptr
}

// readOnlyMappings returns the read-only mappings of the file exe in a
// /proc/<pid>/maps text: its code and read-only data, never its writable
// data.
func readOnlyMappings(maps, exe string) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(strings.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != exe || len(f[1]) < 2 || f[1][1] == 'w' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps: bad range %q", f[0])
		}
		start, err := strconv.ParseUint(lo, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("maps: bad range %q: %w", f[0], err)
		}
		end, err := strconv.ParseUint(hi, 16, 64)
		if err != nil || end <= start {
			return nil, fmt.Errorf("maps: bad range %q", f[0])
		}
		out = append(out, mapping{start: uintptr(start), end: uintptr(end)})
	}
	return out, sc.Err()
}

// releaseStartupPages pages out this process's read-only mappings of its
// own binary and returns how many bytes of address space it covered.
func releaseStartupPages() (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	ms, err := readOnlyMappings(string(maps), exe)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, m := range ms {
		// The ranges are the binary's own mappings, page aligned; no Go
		// pointer is involved.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_PAGEOUT); e != 0 {
			return total, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, e)
		}
		total += int64(m.end - m.start)
	}
	return total, nil
}

// releaseStartupPagesLater releases the start-up pages once the agent has
// settled, unless ctx ends first.
func releaseStartupPagesLater(ctx context.Context, log *slog.Logger) {
	t := time.NewTimer(startupSettle)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	n, err := releaseStartupPages()
	switch {
	case errors.Is(err, unix.EINVAL):
		// Kernels before 5.4 have no MADV_PAGEOUT.
		log.Debug("start-up pages kept: the kernel cannot page out", "err", err)
	case err != nil:
		log.Info("releasing start-up pages failed", "err", err)
	default:
		log.Debug("start-up pages released", "mappedBytes", n)
	}
}

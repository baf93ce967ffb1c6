package server

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartupPages asks the kernel to drop the pages of the skiff binary
// itself that this process has mapped, once start-up is over.
//
// The binary is large (it embeds kubectl and etcd), and start-up touches
// code and tables spread all over it: package initialisation, the
// OpenAPI and scheme builders. The kernel maps those pages in large chunks
// and keeps them mapped, though an idle server never runs that code again;
// they are clean file pages, so the kernel would drop them under memory
// pressure anyway. MADV_PAGEOUT drops them now, so the process's resident
// set is its working set: pages still in use fault back in from the page
// cache on their next access. Best effort: errors are ignored.
func releaseStartupPages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	for _, r := range exeMappings(data, exe) {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_PAGEOUT)
	}
}

// exeMappings returns the read-only (code and constant data) mappings of
// path in a /proc/PID/maps listing, as [start, end) pairs.
func exeMappings(maps []byte, path string) [][2]uintptr {
	var out [][2]uintptr
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != path || strings.Contains(f[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		out = append(out, [2]uintptr{uintptr(a), uintptr(b)})
	}
	return out
}

package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	maps := `00400000-01909000 r--p 00000000 fe:00 10002561                           /usr/bin/skiff
01909000-0402f000 r-xp 01509000 fe:00 10002561                           /usr/bin/skiff
0402f000-070fa000 r--p 03c2f000 fe:00 10002561                           /usr/bin/skiff
070fb000-07222000 rw-p 06cfa000 fe:00 10002561                           /usr/bin/skiff
07222000-0725a000 rw-p 00000000 00:00 0
163d53c00000-163d54c00000 rw-p 00000000 00:00 0
7f314a943000-7f314aa99000 r-xp 00026000 fe:00 326269                     /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1a000000-7ffd1a021000 rw-p 00000000 00:00 0                          [stack]
`
	got, err := readOnlyMappings(maps, "/usr/bin/skiff")
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{{0x400000, 0x1909000}, {0x1909000, 0x402f000}, {0x402f000, 0x70fa000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %x, want %x", got, want)
	}
	if _, err := readOnlyMappings("zz-01 r--p 0 fe:00 1 /usr/bin/skiff\n", "/usr/bin/skiff"); err == nil {
		t.Errorf("bad range: got no error")
	}
}

// TestReleaseStartupPages pages out the test binary's own code and data:
// its file-backed resident memory drops, and it keeps running (the pages
// it uses fault back in).
func TestReleaseStartupPages(t *testing.T) {
	before := rssFile(t)
	n, err := releaseStartupPages()
	if err != nil {
		t.Skipf("kernel cannot page out: %v", err)
	}
	after := rssFile(t)
	if n == 0 || after >= before {
		t.Errorf("released %d bytes of mappings: RssFile %d kB -> %d kB, want it lower", n, before, after)
	}
}

// rssFile is this process's RssFile in kB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssFile:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

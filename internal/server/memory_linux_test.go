package server

import (
	"testing"
)

func TestExeMappings(t *testing.T) {
	maps := []byte(`00400000-014f2000 r--p 00000000 fe:01 123 /usr/bin/skiff
014f2000-03706000 r-xp 010f2000 fe:01 123 /usr/bin/skiff
05fa2000-060c0000 rw-p 05ba2000 fe:01 123 /usr/bin/skiff
060c0000-06100000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fe:01 456 /usr/lib/libc.so.6
7f0000002000-7f0000003000 r-xp 00000000 fe:01 789 /usr/bin/skiff-other
`)
	got := exeMappings(maps, "/usr/bin/skiff")
	want := [][2]uintptr{{0x400000, 0x14f2000}, {0x14f2000, 0x3706000}}
	if len(got) != len(want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d: got %x, want %x", i, got[i], want[i])
		}
	}
}

package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestClassifyEntry(t *testing.T) {
	tests := []struct {
		name   string
		action entryAction
		path   string
	}{
		{"etc/passwd", actionFile, "etc/passwd"},
		{"./etc/passwd", actionFile, "etc/passwd"},
		{"/etc/", actionFile, "etc"},
		{"./", actionFile, "."},
		{"../../etc/shadow", actionFile, "etc/shadow"},
		{"etc/.wh.passwd", actionWhiteout, "etc/passwd"},
		{".wh.file", actionWhiteout, "file"},
		{"a/b/.wh..wh..opq", actionOpaque, "a/b"},
		{".wh..wh..opq", actionOpaque, "."},
		{"a/.wh..wh.plnk", actionSkip, "a/.wh..wh.plnk"},
		{"a/.wh.", actionSkip, "a/.wh."},
		{"a/.wh...", actionSkip, "a/.wh..."},
		{"a/x.wh.y", actionFile, "a/x.wh.y"},
	}
	for _, tt := range tests {
		action, path := classifyEntry(tt.name)
		if action != tt.action || path != tt.path {
			t.Errorf("classifyEntry(%q) = %v, %q, want %v, %q", tt.name, action, path, tt.action, tt.path)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1200: "1.2 kB", 2_000_000: "2.0 MB", 3_500_000_000: "3.5 GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func tarStream(t *testing.T, hdrs ...tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestUnpackKeepsMetadata(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	mtime := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	stream := tarStream(t,
		tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4711, ModTime: mtime},
		tar.Header{Name: "etc/conf", Typeflag: tar.TypeReg, Mode: 0o644},
		tar.Header{Name: "home/app/data", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 2000, ModTime: mtime,
			PAXRecords: map[string]string{"SCHILY.xattr.user.skiff": "yes"}},
		tar.Header{Name: "usr/bin/su-link", Typeflag: tar.TypeLink, Linkname: "usr/bin/su"},
		tar.Header{Name: "lib", Typeflag: tar.TypeSymlink, Linkname: "usr/lib", Uid: 7, Gid: 8},
		tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
		// A later entry for the same path wins.
		tar.Header{Name: "etc/conf", Typeflag: tar.TypeSymlink, Linkname: "other"},
	)
	if _, err := unpackTar(root, stream, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	stat := func(rel string) unix.Stat_t {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return st
	}
	if st := stat("usr/bin/su"); st.Mode&0o7777 != 0o4711 || st.Nlink != 2 {
		t.Errorf("su: got mode %o nlink %d, want 4711 and 2 (hard link)", st.Mode&0o7777, st.Nlink)
	}
	if target, err := os.Readlink(filepath.Join(root, "etc/conf")); err != nil || target != "other" {
		t.Errorf("etc/conf: got link %q, %v, want the later entry, a link to other", target, err)
	}
	if st := stat("home/app/data"); st.Uid != 1000 || st.Gid != 2000 || st.Mode&0o777 != 0o600 {
		t.Errorf("data: got %d:%d mode %o, want 1000:2000 600", st.Uid, st.Gid, st.Mode&0o777)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(root, "home/app/data"), "user.skiff", buf); err != nil || string(buf[:n]) != "yes" {
		t.Logf("user xattr not kept (%v); the filesystem may not support it", err)
	}
	if st := stat("lib"); st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("lib: got mode %o owner %d:%d, want a symlink owned by 7:8", st.Mode, st.Uid, st.Gid)
	}
	if st := stat("dev/null"); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: got mode %o rdev %d, want char 1:3", st.Mode, st.Rdev)
	}
	if st := stat("run/fifo"); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: got mode %o", st.Mode)
	}
	if st := stat("usr/bin"); time.Unix(st.Mtim.Unix()).UTC() != mtime {
		t.Errorf("usr/bin mtime: got %v, want %v", time.Unix(st.Mtim.Unix()).UTC(), mtime)
	}
}

func TestUnpackStaysInsideRoot(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	tests := map[string][]tar.Header{
		"through a symlink": {
			{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "escape/pwned", Typeflag: tar.TypeReg, Mode: 0o644},
		},
		"hardlink through a symlink": {
			{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "pwned", Typeflag: tar.TypeLink, Linkname: "escape/victim"},
		},
	}
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, hdrs := range tests {
		root := t.TempDir()
		_, err := unpackTar(root, tarStream(t, hdrs...), func(string, ...any) {})
		if err == nil {
			t.Errorf("%s: got no error", name)
		}
		if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
			t.Fatalf("%s: a file was written outside the layer", name)
		}
	}
	// "../" is cleaned into the root.
	root := t.TempDir()
	if _, err := unpackTar(root, tarStream(t, tar.Header{Name: "../../dotdot", Typeflag: tar.TypeReg, Mode: 0o644}), func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "dotdot")); err != nil {
		t.Errorf("../../dotdot: %v, want it at the layer root", err)
	}
}

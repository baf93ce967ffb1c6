package image

import "testing"

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

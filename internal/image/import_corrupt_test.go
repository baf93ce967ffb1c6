package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportCorruptArchive: an archive that is not a tar, or one cut
// short, fails with an error that names the file and says what is wrong,
// and leaves no image in the store.
func TestImportCorruptArchive(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("layer"), 4096)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("[]")); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "layer.tar", Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{name: "garbage", data: []byte("this is not an image archive, only some words"), want: "not a tar archive"},
		{name: "cut short", data: buf.Bytes()[:buf.Len()/2], want: "read archive: layer.tar: archive cut short"},
		{name: "empty", data: nil, want: "empty archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := New(Config{Root: filepath.Join(dir, "store")})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "image.tar")
			if err := os.WriteFile(file, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			imgs, err := s.Import(context.Background(), file)
			if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s with %q", err, file, tt.want)
			}
			if len(imgs) != 0 {
				t.Errorf("imported %v, want nothing", imgs)
			}
			if list, err := s.List(); err != nil || len(list) != 0 {
				t.Errorf("store after the failed import: got %v (%v), want no images", list, err)
			}
		})
	}
}

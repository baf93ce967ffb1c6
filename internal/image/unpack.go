package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// OCI whiteout names (image-spec layer.md): ".wh.NAME" deletes NAME from
// the layers below, ".wh..wh..opq" hides everything below in its directory.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// entryAction is what a tar entry's name asks for once whiteouts are
// translated into overlayfs form.
type entryAction int

const (
	// actionFile creates the entry as it is.
	actionFile entryAction = iota
	// actionWhiteout creates a 0:0 character device at the target.
	actionWhiteout
	// actionOpaque marks the target directory trusted.overlay.opaque=y.
	actionOpaque
	// actionSkip ignores the entry (other ".wh..wh." metadata).
	actionSkip
)

// classifyEntry maps a tar entry name to the relative path it affects and
// what to do there. The path is cleaned and never leaves the layer root;
// "." is the root itself.
func classifyEntry(name string) (entryAction, string) {
	rel := strings.TrimPrefix(filepath.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	dir, base := filepath.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	switch {
	case base == whiteoutOpaque:
		return actionOpaque, dir
	case strings.HasPrefix(base, whiteoutMeta):
		return actionSkip, rel
	case strings.HasPrefix(base, whiteoutPrefix):
		target := strings.TrimPrefix(base, whiteoutPrefix)
		if target == "" || target == "." || target == ".." {
			return actionSkip, rel
		}
		return actionWhiteout, filepath.Join(dir, target)
	}
	return actionFile, rel
}

// decompress returns the uncompressed stream of a layer blob, recognising
// gzip and zstd by their magic numbers; anything else is taken as a plain
// tar, as docker-save archives store layers.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read layer header: %w", err)
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip layer: %w", err)
		}
		return zr, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// unpacker writes one layer's tar stream into an empty directory,
// translating whiteouts to overlayfs form. It never writes outside root:
// entry paths are cleaned and no path component may be a symlink.
type unpacker struct {
	root string
	// dirs are directories known to be real directories inside root
	// (not symlinks), so parents are checked once.
	dirs map[string]bool
	// dirTimes are applied at the end, since creating children changes
	// a directory's mtime.
	dirTimes map[string]time.Time
	size     int64
	// warn reports entries whose metadata could not be kept (xattrs the
	// filesystem refuses); the entry itself is still written.
	warn func(msg string, args ...any)
}

// unpackTar applies the tar stream r to the empty directory root and
// returns the bytes of regular file content written.
func unpackTar(root string, r io.Reader, warn func(string, ...any)) (int64, error) {
	u := &unpacker{root: root, dirs: map[string]bool{".": true}, dirTimes: map[string]time.Time{}, warn: warn}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read layer: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	for rel, t := range u.dirTimes {
		ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, u.abs(rel), ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return u.size, nil
}

func (u *unpacker) abs(rel string) string { return filepath.Join(u.root, rel) }

// parent makes sure every directory above rel exists as a real directory,
// creating missing ones (tar streams may omit them) and refusing symlinks,
// which could lead a later entry outside the layer.
func (u *unpacker) parent(rel string) error {
	dir := filepath.Dir(rel)
	if u.dirs[dir] {
		return nil
	}
	if err := u.parent(dir); err != nil {
		return err
	}
	fi, err := os.Lstat(u.abs(dir))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(u.abs(dir), 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("parent %q is not a directory", dir)
	}
	u.dirs[dir] = true
	return nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	action, rel := classifyEntry(hdr.Name)
	switch action {
	case actionSkip:
		return nil
	case actionOpaque:
		if err := u.parent(filepath.Join(rel, "x")); err != nil {
			return err
		}
		return unix.Lsetxattr(u.abs(rel), "trusted.overlay.opaque", []byte("y"), 0)
	case actionWhiteout:
		if err := u.parent(rel); err != nil {
			return err
		}
		if err := u.clear(rel); err != nil {
			return err
		}
		return unix.Mknod(u.abs(rel), unix.S_IFCHR, 0)
	}
	if rel != "." {
		if err := u.parent(rel); err != nil {
			return err
		}
	}
	path := u.abs(rel)
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := os.Lstat(path)
		if err != nil || !fi.IsDir() {
			if err := u.clear(rel); err != nil {
				return err
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				return err
			}
		}
		u.dirs[rel] = true
		u.dirTimes[rel] = hdr.ModTime
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives still use TypeRegA
		if err := u.clear(rel); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		n, err := io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		u.size += n
	case tar.TypeSymlink:
		if err := u.clear(rel); err != nil {
			return err
		}
		if err := os.Symlink(hdr.Linkname, path); err != nil {
			return err
		}
	case tar.TypeLink:
		_, target := classifyEntry(hdr.Linkname)
		if err := u.parent(target); err != nil {
			return err
		}
		fi, err := os.Lstat(u.abs(target))
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		if fi.IsDir() {
			return fmt.Errorf("hardlink target %q is a directory", hdr.Linkname)
		}
		if err := u.clear(rel); err != nil {
			return err
		}
		// A hard link shares the target's inode, so its metadata was set
		// with the target.
		return os.Link(u.abs(target), path)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := u.clear(rel); err != nil {
			return err
		}
		kind := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			kind = unix.S_IFCHR
		case tar.TypeBlock:
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(path, kind|uint32(mode.Perm()), int(dev)); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		u.warn("skipping unsupported layer entry", "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	return u.meta(rel, hdr, mode)
}

// clear removes whatever an entry replaces: a later entry for the same
// path wins within one layer. Directories are kept only when the new
// entry is a directory too (handled by the caller).
func (u *unpacker) clear(rel string) error {
	if rel == "." {
		return nil
	}
	if err := os.RemoveAll(u.abs(rel)); err != nil {
		return err
	}
	delete(u.dirs, rel)
	return nil
}

// meta applies ownership, mode, xattrs and times. Ownership goes first
// because chown clears set-id bits.
func (u *unpacker) meta(rel string, hdr *tar.Header, mode os.FileMode) error {
	path := u.abs(rel)
	if err := os.Lchown(path, hdr.Uid, hdr.Gid); err != nil && !errors.Is(err, unix.EPERM) {
		return err
	}
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Lsetxattr(path, name, []byte(value), 0); err != nil {
			u.warn("cannot keep extended attribute", "path", "/"+rel, "xattr", name, "err", err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(path, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if hdr.AccessTime.After(time.Time{}) {
			ts[0] = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
		}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// digestReader hashes what passes through it, for checking a layer's
// diffID after unpacking.
type digestReader struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newDigestReader(r io.Reader) *digestReader {
	return &digestReader{r: r, h: sha256.New()}
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	return n, err
}

func (d *digestReader) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/cri"
)

var _ cri.ImageService = (*Store)(nil)

// ErrNotFound is returned (wrapped) for an image the store does not hold.
var ErrNotFound = errors.New("not found")

// ErrInUse is returned (wrapped) by Remove for an image whose own layers
// are mounted, i.e. a container of it exists.
var ErrInUse = errors.New("in use by a container")

// Config configures a Store.
type Config struct {
	// Root holds the store's content, e.g. /var/lib/skiff/images. Several
	// processes (the node agent, `skiff images`) may share one Root.
	Root string
	// RegistriesFile is the k3s-format registries.yaml with mirrors and
	// credentials; it may not exist. It is read on every pull, so edits
	// apply without a restart.
	RegistriesFile string
	// Logger receives one line per pull, import, removal and collection.
	Logger *slog.Logger
	// GCMinAge keeps images pulled or imported more recently than this
	// from garbage collection (the kubelet's default is 2 minutes), so an
	// image pulled for a container about to be created is not collected.
	GCMinAge time.Duration
	// DiskUsage reports the used and total bytes of the filesystem holding
	// path; nil means statfs. Tests fake it.
	DiskUsage func(path string) (used, total uint64, err error)
}

// Image is one image in the store.
type Image struct {
	// ID is the config digest, "sha256:<hex>".
	ID string `json:"id"`
	// RepoTags are normalised tags, e.g. "docker.io/library/busybox:latest".
	RepoTags []string `json:"repoTags,omitempty"`
	// RepoDigests are "docker.io/library/busybox@sha256:<manifest digest>",
	// the form reported as a container's imageID.
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Size is the image's content size: compressed layers plus config, as
	// a registry stores it.
	Size int64 `json:"size"`
	// DiffIDs are the uncompressed layer digests, lowest layer first.
	DiffIDs []string `json:"diffIDs"`
	// Config is what a container of the image runs by default.
	Config ImageConfig `json:"config"`
	// Created is the image's creation time from its config.
	Created time.Time `json:"created,omitempty"`
	// Pulled is when the image was pulled or imported.
	Pulled time.Time `json:"pulled"`
	// LastUsed is when a root filesystem was last resolved from it.
	LastUsed time.Time `json:"lastUsed,omitempty"`
}

// ImageConfig is the part of the OCI image config a runtime needs.
type ImageConfig struct {
	Env          []string `json:"env,omitempty"`
	Entrypoint   []string `json:"entrypoint,omitempty"`
	Cmd          []string `json:"cmd,omitempty"`
	WorkingDir   string   `json:"workingDir,omitempty"`
	User         string   `json:"user,omitempty"`
	ExposedPorts []string `json:"exposedPorts,omitempty"`
	// StopSignal is the signal that asks the container to stop, if not
	// SIGTERM.
	StopSignal string `json:"stopSignal,omitempty"`
}

// Rootfs is what a runtime needs to build a container's root filesystem.
type Rootfs struct {
	// ImageID is the repo digest form reported in container status.
	ImageID string
	// LayerDirs are unpacked layer directories, LOWEST first, each with
	// overlayfs whiteouts; overlay's lowerdir= lists them in reverse.
	// Directories must not be written to: other images share them.
	LayerDirs []string
	Config    ImageConfig
}

// Store is an image store on a local directory. Its methods are safe for
// concurrent use, also by several processes sharing Root.
type Store struct {
	root      string
	regsFile  string
	log       *slog.Logger
	minAge    time.Duration
	diskUsage func(string) (uint64, uint64, error)
	now       func() time.Time

	// mu serialises index writers within the process; the flock on
	// Root/lock serialises them across processes.
	mu sync.Mutex
	// cacheMu guards the parsed index and the stat it was read at.
	cacheMu   sync.Mutex
	cache     *index
	cacheStat fileStat

	pulls   pullGroup
	unpacks singleflight.Group
}

// index is the JSON index file.
type index struct {
	Images []*Image `json:"images"`
}

type fileStat struct {
	ino, size uint64
	mtime     int64
}

// New opens (creating when missing) the store at cfg.Root.
func New(cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("image store: root is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		root: cfg.Root, regsFile: cfg.RegistriesFile, log: cfg.Logger,
		minAge: cfg.GCMinAge, diskUsage: cfg.DiskUsage, now: time.Now,
	}
	if s.diskUsage == nil {
		s.diskUsage = statfsUsage
	}
	for _, d := range []string{s.root, s.path("blobs", "sha256"), s.path("layers"), s.path("tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	s.cleanTmp()
	if _, err := LoadRegistries(s.regsFile); err != nil {
		// Pulls report it; the store itself still works for present images.
		s.log.Warn("registries file is invalid; pulls will fail until it is fixed", "err", err)
	}
	if _, err := s.load(); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return s, nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func layerHex(diffID string) string { return strings.TrimPrefix(diffID, "sha256:") }

// layerDir is the unpacked root of a layer.
func (s *Store) layerDir(diffID string) string { return s.path("layers", layerHex(diffID), "fs") }

// cleanTmp removes work directories of processes that are gone (a crash
// mid-unpack); directories of live processes sharing Root are theirs.
func (s *Store) cleanTmp() {
	entries, err := os.ReadDir(s.path("tmp"))
	if err != nil {
		return
	}
	for _, e := range entries {
		parts := strings.SplitN(e.Name(), "-", 3)
		if len(parts) < 2 {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || (pid != os.Getpid() && unix.Kill(pid, 0) == nil) {
			continue
		}
		if err := os.RemoveAll(s.path("tmp", e.Name())); err == nil {
			s.log.Info("removed leftover work directory", "dir", e.Name())
		}
	}
}

// tempDir makes a work directory named after this process, so cleanTmp
// of another process leaves it alone.
func (s *Store) tempDir(kind string) (string, error) {
	return os.MkdirTemp(s.path("tmp"), fmt.Sprintf("%s-%d-", kind, os.Getpid()))
}

// load returns the index, re-reading the file only when it changed.
func (s *Store) load() (*index, error) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	var st unix.Stat_t
	err := unix.Stat(s.path("index.json"), &st)
	if errors.Is(err, unix.ENOENT) {
		s.cache, s.cacheStat = &index{}, fileStat{}
		return s.cache, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat index: %w", err)
	}
	fs := fileStat{ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano()}
	if s.cache != nil && fs == s.cacheStat {
		return s.cache, nil
	}
	ix, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	s.cache, s.cacheStat = ix, fs
	return ix, nil
}

func (s *Store) readIndex() (*index, error) {
	data, err := os.ReadFile(s.path("index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &index{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	ix := &index{}
	if err := json.Unmarshal(data, ix); err != nil {
		return nil, fmt.Errorf("parse index %s: %w", s.path("index.json"), err)
	}
	return ix, nil
}

// update changes the index under the process mutex and the file lock,
// starting from the file as it is now, and replaces it atomically.
func (s *Store) update(fn func(ix *index) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lock, err := os.OpenFile(s.path("lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock index: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN) //nolint:errcheck // closing unlocks too
	ix, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(ix); err != nil {
		return err
	}
	sort.Slice(ix.Images, func(i, j int) bool { return ix.Images[i].ID < ix.Images[j].ID })
	data, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	if err := writeFileAtomic(s.path("index.json"), data); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	s.cacheMu.Lock()
	s.cache = nil // re-read with its new stat on the next load
	s.cacheMu.Unlock()
	return nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, so readers see the old or the new content.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// find looks an image up by tag, digest reference, ID or ID prefix.
func find(ix *index, s string) (*Image, bool) {
	if ref, err := ParseRef(s); err == nil {
		want := ref.String()
		for _, img := range ix.Images {
			if slices.Contains(img.RepoTags, want) || slices.Contains(img.RepoDigests, want) {
				return img, true
			}
		}
	}
	hexID, ok := idPrefix(s)
	if !ok {
		return nil, false
	}
	var found *Image
	for _, img := range ix.Images {
		if strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), hexID) {
			if found != nil {
				return nil, false // ambiguous
			}
			found = img
		}
	}
	return found, found != nil
}

func cloneImage(img *Image) Image {
	c := *img
	c.RepoTags = slices.Clone(img.RepoTags)
	c.RepoDigests = slices.Clone(img.RepoDigests)
	c.DiffIDs = slices.Clone(img.DiffIDs)
	c.Config.Env = slices.Clone(img.Config.Env)
	c.Config.Entrypoint = slices.Clone(img.Config.Entrypoint)
	c.Config.Cmd = slices.Clone(img.Config.Cmd)
	c.Config.ExposedPorts = slices.Clone(img.Config.ExposedPorts)
	return c
}

// Get finds an image by tag ("busybox", "reg:5000/x:v1"), digest reference
// ("busybox@sha256:..."), ID ("sha256:...") or unique ID prefix.
func (s *Store) Get(ref string) (Image, bool) {
	ix, err := s.load()
	if err != nil {
		s.log.Warn("read image index", "err", err)
		return Image{}, false
	}
	img, ok := find(ix, ref)
	if !ok {
		return Image{}, false
	}
	return cloneImage(img), true
}

// List returns every image, ordered by first tag (untagged last) and ID.
func (s *Store) List() ([]Image, error) {
	ix, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(ix.Images))
	for _, img := range ix.Images {
		out = append(out, cloneImage(img))
	}
	key := func(img Image) string {
		if len(img.RepoTags) > 0 {
			return "0" + img.RepoTags[0]
		}
		return "1" + img.ID
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out, nil
}

// imageID is the repo digest of img to report for ref: the one in ref's
// repository, else the first, else the config digest.
func imageID(img *Image, ref string) string {
	if r, err := ParseRef(ref); err == nil {
		for _, d := range img.RepoDigests {
			if strings.HasPrefix(d, r.Name()+"@") {
				return d
			}
		}
	}
	if len(img.RepoDigests) > 0 {
		return img.RepoDigests[0]
	}
	return img.ID
}

// ImageStatus reports whether image is present and its ID in the repo
// digest form.
func (s *Store) ImageStatus(_ context.Context, image string) (string, bool, error) {
	ix, err := s.load()
	if err != nil {
		return "", false, err
	}
	img, ok := find(ix, image)
	if !ok {
		return "", false, nil
	}
	return imageID(img, image), true, nil
}

// Rootfs resolves ref to its layer directories and config and records the
// image as used now (for garbage collection).
func (s *Store) Rootfs(_ context.Context, ref string) (Rootfs, error) {
	var out Rootfs
	err := s.update(func(ix *index) error {
		img, ok := find(ix, ref)
		if !ok {
			return fmt.Errorf("image %q: %w", ref, ErrNotFound)
		}
		seen := map[string]bool{}
		// A layer repeated in one image is kept at its top position only:
		// the upper copy hides the lower one completely.
		for i := len(img.DiffIDs) - 1; i >= 0; i-- {
			d := img.DiffIDs[i]
			if seen[d] {
				continue
			}
			seen[d] = true
			dir := s.layerDir(d)
			if _, err := os.Stat(dir); err != nil {
				return fmt.Errorf("image %q: layer %s is missing; remove and pull the image again: %w", ref, d, err)
			}
			out.LayerDirs = append(out.LayerDirs, dir)
		}
		slices.Reverse(out.LayerDirs)
		out.ImageID = imageID(img, ref)
		c := cloneImage(img)
		out.Config = c.Config
		img.LastUsed = s.now()
		return nil
	})
	if err != nil {
		return Rootfs{}, err
	}
	return out, nil
}

// Remove untags ref when it is one of several tags of its image; otherwise
// (the last tag, a digest reference or an ID) it deletes the image, and
// the layers no other image uses.
func (s *Store) Remove(ref string) error {
	var drop []string
	var removed *Image
	err := s.update(func(ix *index) error {
		img, ok := find(ix, ref)
		if !ok {
			return fmt.Errorf("image %q: %w", ref, ErrNotFound)
		}
		if r, err := ParseRef(ref); err == nil && r.Tag != "" && len(img.RepoTags) > 1 && slices.Contains(img.RepoTags, r.String()) {
			img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return t == r.String() })
			return nil
		}
		if mounted := s.mountedLayers(ix, img); len(mounted) > 0 {
			return fmt.Errorf("image %q: %w (layer %s is mounted)", ref, ErrInUse, mounted[0])
		}
		removed = img
		drop = s.deleteLocked(ix, img)
		return nil
	})
	if err != nil {
		return err
	}
	if removed != nil {
		s.log.Info("removed image", "image", ref, "id", removed.ID, "layers", len(drop))
	}
	s.removeLayers(drop)
	return nil
}

// deleteLocked takes img out of ix and renames the layers no remaining
// image uses out of layers/ (so they vanish atomically); it returns the
// renamed directories, which the caller deletes after the lock.
func (s *Store) deleteLocked(ix *index, img *Image) []string {
	ix.Images = slices.DeleteFunc(ix.Images, func(i *Image) bool { return i == img })
	used := map[string]bool{}
	for _, other := range ix.Images {
		for _, d := range other.DiffIDs {
			used[d] = true
		}
	}
	var drop []string
	for _, d := range img.DiffIDs {
		if used[d] {
			continue
		}
		used[d] = true // a layer repeated in img is dropped once
		tmp, err := s.tempDir("remove")
		if err != nil {
			s.log.Warn("remove layer", "layer", d, "err", err)
			continue
		}
		if err := os.Rename(s.path("layers", layerHex(d)), filepath.Join(tmp, "layer")); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove layer", "layer", d, "err", err)
		}
		drop = append(drop, tmp)
	}
	os.Remove(s.path("blobs", "sha256", strings.TrimPrefix(img.ID, "sha256:")))
	for _, rd := range img.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@sha256:"); ok && !digestInUse(ix, "sha256:"+d) {
			os.Remove(s.path("blobs", "sha256", d))
		}
	}
	return drop
}

// mountedLayers are the layers only img has that appear in a mount of
// this mount namespace (an overlay lowerdir of a container's root).
func (s *Store) mountedLayers(ix *index, img *Image) []string {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	others := otherLayers(ix, img)
	var out []string
	for _, d := range img.DiffIDs {
		if !slices.Contains(others, d) && bytes.Contains(info, []byte(s.layerDir(d))) {
			out = append(out, d)
		}
	}
	return out
}

func digestInUse(ix *index, d string) bool {
	for _, img := range ix.Images {
		for _, rd := range img.RepoDigests {
			if strings.HasSuffix(rd, "@"+d) {
				return true
			}
		}
	}
	return false
}

func (s *Store) removeLayers(dirs []string) {
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			s.log.Warn("delete layer", "dir", d, "err", err)
		}
	}
}

// layerSize is the content size of an unpacked layer, recorded at unpack.
func (s *Store) layerSize(diffID string) int64 {
	b, err := os.ReadFile(s.path("layers", layerHex(diffID), "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func statfsUsage(path string) (used, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	total = st.Blocks * uint64(st.Bsize)
	used = total - st.Bavail*uint64(st.Bsize)
	return used, total, nil
}

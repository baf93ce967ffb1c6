package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// Import loads the images of an archive: a `docker save` tarball (the
// legacy layout and the OCI layout newer Docker writes), or an OCI image
// layout in a tar. The archive may be gzip-compressed.
func (s *Store) Import(ctx context.Context, archivePath string) ([]Image, error) {
	tmp, err := s.tempDir("import")
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archivePath, err)
	}
	defer os.RemoveAll(tmp)
	a, err := extractArchive(ctx, archivePath, tmp)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archivePath, err)
	}
	var srcs []*source
	switch {
	case a.has("oci-layout") && a.has("index.json"):
		srcs, err = a.ociSources()
	case a.has("manifest.json"):
		srcs, err = a.dockerSources()
	default:
		err = errors.New("neither a docker-save archive (manifest.json) nor an OCI layout (oci-layout, index.json)")
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", archivePath, err)
	}
	var out []Image
	for _, src := range srcs {
		img, err := s.install(ctx, src, nil)
		if err != nil {
			return out, fmt.Errorf("import %s: image %s: %w", archivePath, src.display, err)
		}
		s.log.Info("imported image", "archive", archivePath, "id", img.ID, "tags", img.RepoTags)
		out = append(out, img)
	}
	return out, nil
}

// archive is an extracted tar. Symlinks are not created on disk but kept
// here and resolved inside the archive (docker save links shared layers).
type archive struct {
	dir   string
	files map[string]bool
	links map[string]string
}

func extractArchive(ctx context.Context, file, dir string) (*archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := decompress(&ctxReader{ctx: ctx, r: f, count: func(int64) {}})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	a := &archive{dir: dir, files: map[string]bool{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, errors.New("empty archive")
			}
			return a, nil
		}
		if err != nil && n == 0 {
			return nil, fmt.Errorf("not a tar archive (docker save or OCI layout): %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", cutShort(err))
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives
			p := filepath.Join(dir, "f", name)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return nil, err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("read archive: %s: %w", name, cutShort(err))
			}
			a.files[name] = true
		case tar.TypeSymlink:
			a.links[name] = path.Join(path.Dir(name), hdr.Linkname)
		case tar.TypeLink:
			a.links[name] = strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
		}
	}
}

// cutShort says what an unexpected end of an archive means: the file is
// incomplete (an interrupted copy or download).
func cutShort(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("archive cut short: %w", err)
	}
	return err
}

// resolve follows archive-internal links.
func (a *archive) resolve(name string) (string, bool) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	for range 16 {
		if a.files[name] {
			return filepath.Join(a.dir, "f", name), true
		}
		target, ok := a.links[name]
		if !ok {
			return "", false
		}
		name = strings.TrimPrefix(path.Clean("/"+target), "/")
	}
	return "", false
}

func (a *archive) has(name string) bool { _, ok := a.resolve(name); return ok }

func (a *archive) read(name string) ([]byte, error) {
	p, ok := a.resolve(name)
	if !ok {
		return nil, fmt.Errorf("archive has no %s", name)
	}
	return os.ReadFile(p)
}

// dockerManifestEntry is one image in a docker-save manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

func (a *archive) dockerManifest() ([]dockerManifestEntry, error) {
	data, err := a.read("manifest.json")
	if err != nil {
		return nil, err
	}
	var m []dockerManifestEntry
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest.json: %w", err)
	}
	return m, nil
}

// dockerSources reads a docker-save archive. It has no registry manifest,
// so one is made (layers as stored, uncompressed or gzip) to give the image
// a stable repo digest, as containerd does on import.
func (a *archive) dockerSources() ([]*source, error) {
	entries, err := a.dockerManifest()
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errors.New("manifest.json lists no images")
	}
	var out []*source
	for _, e := range entries {
		rawConfig, err := a.read(e.Config)
		if err != nil {
			return nil, err
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
		if err != nil {
			return nil, fmt.Errorf("parse config %s: %w", e.Config, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return nil, fmt.Errorf("config %s has %d diffIDs but manifest.json %d layers", e.Config, len(cfg.RootFS.DiffIDs), len(e.Layers))
		}
		m := v1.Manifest{
			SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
			Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(rawConfig)), Digest: mustHash(sha256Digest(rawConfig))},
		}
		src := &source{rawConfig: rawConfig, display: e.Config}
		for i, l := range e.Layers {
			p, ok := a.resolve(l)
			if !ok {
				return nil, fmt.Errorf("archive has no layer %s", l)
			}
			digest, size, gz, err := fileDigest(p)
			if err != nil {
				return nil, err
			}
			mt := types.DockerUncompressedLayer
			if gz {
				mt = types.DockerLayer
			}
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: size, Digest: mustHash(digest)})
			src.layers = append(src.layers, layerSource{
				diffID: cfg.RootFS.DiffIDs[i].String(), size: size,
				open: func() (io.ReadCloser, error) { return os.Open(p) },
			})
		}
		src.rawManifest, err = json.Marshal(m)
		if err != nil {
			return nil, err
		}
		digest := sha256Digest(src.rawManifest)
		for _, t := range e.RepoTags {
			ref, err := ParseRef(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: %w", err)
			}
			if len(src.tags) == 0 {
				src.display = ref.String()
			}
			src.tags = append(src.tags, ref.String())
			src.repoDigests = append(src.repoDigests, ref.WithDigest(digest).String())
		}
		out = append(out, src)
	}
	return out, nil
}

// ociSources reads an OCI image layout. Names come from the index's
// annotations: io.containerd.image.name, or org.opencontainers.image.ref.name
// when it is a full reference; a bare tag there is completed from
// manifest.json when the archive is a new-style docker save.
func (a *archive) ociSources() ([]*source, error) {
	idx, err := layout.ImageIndexFromPath(filepath.Join(a.dir, "f"))
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI index: %w", err)
	}
	// new-style docker save: config digest -> tags
	dockerTags := map[string][]string{}
	if a.has("manifest.json") {
		entries, err := a.dockerManifest()
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			d := "sha256:" + path.Base(e.Config)
			dockerTags[d] = append(dockerTags[d], e.RepoTags...)
		}
	}
	var out []*source
	for _, desc := range im.Manifests {
		img, err := platformImage(idx, desc)
		if err != nil {
			return nil, err
		}
		src, err := sourceFromImage(img, nil)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		src.display = desc.Digest.String()
		var names []string
		if n := desc.Annotations[annotationContainerdName]; n != "" {
			names = append(names, n)
		} else if n := desc.Annotations[annotationRefName]; strings.ContainsAny(n, "/:@") {
			names = append(names, n)
		} else {
			names = append(names, dockerTags[sha256Digest(src.rawConfig)]...)
		}
		for _, n := range names {
			ref, err := ParseRef(n)
			if err != nil {
				return nil, fmt.Errorf("index.json: %w", err)
			}
			src.display = ref.String()
			if ref.Tag != "" {
				src.tags = append(src.tags, ref.String())
			}
			src.repoDigests = append(src.repoDigests, ref.WithDigest(desc.Digest.String()).String())
		}
		out = append(out, src)
	}
	if len(out) == 0 {
		return nil, errors.New("index.json lists no images")
	}
	return out, nil
}

// platformImage is the image of desc, choosing linux/GOARCH from an index.
func platformImage(idx v1.ImageIndex, desc v1.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		return img, nil
	}
	child, err := idx.ImageIndex(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	cm, err := child.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	for _, d := range cm.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH && d.MediaType.IsImage() {
			return child.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("index %s has no image for linux/%s", desc.Digest, runtime.GOARCH)
}

func fileDigest(p string) (digest string, size int64, gz bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, false, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, false, err
	}
	var magic [2]byte
	if _, err := f.ReadAt(magic[:], 0); err == nil {
		gz = magic[0] == 0x1f && magic[1] == 0x8b
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), size, gz, nil
}

func mustHash(s string) v1.Hash {
	h, err := v1.NewHash(s)
	if err != nil {
		panic(err) // only called with digests computed here
	}
	return h
}

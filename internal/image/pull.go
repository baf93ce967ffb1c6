package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/skiff-sh/skiff/internal/cri"
)

// Pull fetches image from its mirrors or registry, unless every layer is
// already present, and records it under its tag (or digest). Concurrent
// callers of the same image share one pull; each gets the progress lines.
func (s *Store) Pull(ctx context.Context, image string, auth []cri.RegistryAuth, progress func(string)) (Image, error) {
	ref, err := ParseRef(image)
	if err != nil {
		return Image{}, err
	}
	return s.pulls.do(ctx, ref.String(), progress, func(ctx context.Context, progress func(string)) (Image, error) {
		return s.pull(ctx, ref, auth, progress)
	})
}

// PullImage is Pull for the kubelet: it returns the image ID in the repo
// digest form reported in container status.
func (s *Store) PullImage(ctx context.Context, image string, auth []cri.RegistryAuth, progress func(string)) (string, error) {
	img, err := s.Pull(ctx, image, auth, progress)
	if err != nil {
		return "", err
	}
	return imageID(&img, image), nil
}

func (s *Store) pull(ctx context.Context, ref Ref, auth []cri.RegistryAuth, progress func(string)) (Image, error) {
	regs, err := LoadRegistries(s.regsFile)
	if err != nil {
		return Image{}, fmt.Errorf("pull %q: %w", ref, err)
	}
	start := time.Now()
	var errs []error
	for _, ep := range regs.Endpoints(ref.Registry) {
		img, err := s.pullFrom(ctx, ref, ep, regs, auth, progress)
		if err == nil {
			s.log.Info("pulled image", "image", ref.String(), "id", img.ID, "from", ep.String(), "duration", time.Since(start).Round(time.Millisecond))
			return img, nil
		}
		if ctx.Err() != nil {
			return Image{}, fmt.Errorf("pull %q: %w", ref, ctx.Err())
		}
		s.log.Info("pull from endpoint failed", "image", ref.String(), "endpoint", ep.String(), "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	return Image{}, fmt.Errorf("pull %q: %w", ref, errors.Join(errs...))
}

func (s *Store) pullFrom(ctx context.Context, ref Ref, ep Endpoint, regs Registries, auth []cri.RegistryAuth, progress func(string)) (Image, error) {
	var nopts []name.Option
	if ep.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(ep.Host, nopts...)
	if err != nil {
		return Image{}, err
	}
	repo := reg.Repo(ref.Repository)
	var nref name.Reference = repo.Tag(ref.Tag)
	if ref.Digest != "" {
		nref = repo.Digest(ref.Digest)
	}
	cred, err := regs.credentials(ep.Host, auth)
	if err != nil {
		return Image{}, err
	}
	tlsCfg, err := regs.tlsConfig(ep.Host)
	if err != nil {
		return Image{}, err
	}
	var transport http.RoundTripper = remote.DefaultTransport
	if tlsCfg != nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsCfg
		transport = t
	}
	opts := []remote.Option{
		remote.WithContext(ctx), remote.WithAuth(cred), remote.WithTransport(transport),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
		remote.WithUserAgent("skiff"),
	}
	desc, err := remote.Get(nref, opts...)
	if err != nil {
		return Image{}, err
	}
	img, err := desc.Image()
	if err != nil {
		return Image{}, err
	}
	src, err := sourceFromImage(img, s.readBlob)
	if err != nil {
		return Image{}, err
	}
	src.display = ref.String()
	if ref.Tag != "" {
		src.tags = []string{ref.String()}
	}
	// The repo digest is the digest the reference resolved to: for a
	// multi-platform image the index, as containerd reports it.
	src.repoDigests = []string{ref.WithDigest(desc.Digest.String()).String()}
	return s.install(ctx, src, progress)
}

// source is an image to install, from a registry or an archive.
type source struct {
	display     string
	rawConfig   []byte
	rawManifest []byte
	layers      []layerSource
	tags        []string
	repoDigests []string
}

// layerSource is one layer blob, compressed or not.
type layerSource struct {
	diffID string
	// size is the blob's size, for progress.
	size int64
	open func() (io.ReadCloser, error)
}

// sourceFromImage reads img's manifest and config; local, when not nil,
// returns a blob the store already has (so a repeated pull of a present
// image fetches only its manifest).
func sourceFromImage(img v1.Image, local func(digest string) []byte) (*source, error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	var rawConfig []byte
	if local != nil {
		rawConfig = local(m.Config.Digest.String())
	}
	if rawConfig == nil {
		if rawConfig, err = img.RawConfigFile(); err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	if sha256Digest(rawConfig) != m.Config.Digest.String() {
		return nil, fmt.Errorf("config does not match its digest %s", m.Config.Digest)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("manifest has %d layers but config %d diffIDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	src := &source{rawConfig: rawConfig, rawManifest: rawManifest}
	for i, l := range m.Layers {
		digest := l.Digest
		src.layers = append(src.layers, layerSource{
			diffID: cfg.RootFS.DiffIDs[i].String(),
			size:   l.Size,
			open: func() (io.ReadCloser, error) {
				layer, err := img.LayerByDigest(digest)
				if err != nil {
					return nil, err
				}
				return layer.Compressed()
			},
		})
	}
	return src, nil
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// install unpacks the layers src needs and records the image. Layers
// already present are neither fetched nor unpacked again.
func (s *Store) install(ctx context.Context, src *source, progress func(string)) (Image, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(src.rawConfig))
	if err != nil {
		return Image{}, fmt.Errorf("parse config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(src.layers) {
		return Image{}, fmt.Errorf("config has %d diffIDs but the image %d layers", len(cfg.RootFS.DiffIDs), len(src.layers))
	}
	id := sha256Digest(src.rawConfig)
	for _, b := range [][]byte{src.rawConfig, src.rawManifest} {
		if err := s.writeBlob(b); err != nil {
			return Image{}, err
		}
	}
	img := &Image{ID: id, Created: cfg.Created.Time, Config: imageConfig(cfg)}
	img.Size = int64(len(src.rawConfig))
	for _, l := range src.layers {
		img.DiffIDs = append(img.DiffIDs, l.diffID)
		img.Size += l.size
	}
	// A concurrent Remove in another process may delete a shared layer
	// between unpacking and recording; the commit checks and retries.
	for attempt := 0; ; attempt++ {
		if err := s.fetchLayers(ctx, src, progress); err != nil {
			return Image{}, err
		}
		var out Image
		err := s.update(func(ix *index) error {
			for _, d := range img.DiffIDs {
				if _, err := os.Stat(s.layerDir(d)); err != nil {
					return errLayerGone
				}
			}
			out = s.record(ix, img, src.tags, src.repoDigests)
			return nil
		})
		if errors.Is(err, errLayerGone) && attempt < 2 {
			continue
		}
		if err != nil {
			return Image{}, err
		}
		return out, nil
	}
}

var errLayerGone = errors.New("a layer was removed while the image was being installed")

// record merges img into the index: tags move from any other image to
// this one, repo digests and tags accumulate.
func (s *Store) record(ix *index, img *Image, tags, digests []string) Image {
	for _, other := range ix.Images {
		if other.ID == img.ID {
			continue
		}
		other.RepoTags = slices.DeleteFunc(other.RepoTags, func(t string) bool { return slices.Contains(tags, t) })
	}
	var cur *Image
	for _, other := range ix.Images {
		if other.ID == img.ID {
			cur = other
		}
	}
	if cur == nil {
		cur = img
		ix.Images = append(ix.Images, cur)
	} else {
		cur.Size, cur.DiffIDs, cur.Config, cur.Created = img.Size, img.DiffIDs, img.Config, img.Created
	}
	cur.Pulled = s.now()
	for _, t := range tags {
		if !slices.Contains(cur.RepoTags, t) {
			cur.RepoTags = append(cur.RepoTags, t)
		}
	}
	for _, d := range digests {
		if !slices.Contains(cur.RepoDigests, d) {
			cur.RepoDigests = append(cur.RepoDigests, d)
		}
	}
	slices.Sort(cur.RepoTags)
	slices.Sort(cur.RepoDigests)
	return cloneImage(cur)
}

func imageConfig(cfg *v1.ConfigFile) ImageConfig {
	c := ImageConfig{
		Env: cfg.Config.Env, Entrypoint: cfg.Config.Entrypoint, Cmd: cfg.Config.Cmd,
		WorkingDir: cfg.Config.WorkingDir, User: cfg.Config.User, StopSignal: cfg.Config.StopSignal,
	}
	for p := range cfg.Config.ExposedPorts {
		c.ExposedPorts = append(c.ExposedPorts, p)
	}
	slices.Sort(c.ExposedPorts)
	return c
}

// readBlob returns a stored blob whose content matches digest, or nil.
func (s *Store) readBlob(digest string) []byte {
	b, err := os.ReadFile(s.path("blobs", "sha256", layerHex(digest)))
	if err != nil || sha256Digest(b) != digest {
		return nil
	}
	return b
}

func (s *Store) writeBlob(b []byte) error {
	p := s.path("blobs", "sha256", layerHex(sha256Digest(b)))
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := writeFileAtomic(p, b); err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	return nil
}

// fetchLayers unpacks the missing layers of src, up to three at a time.
func (s *Store) fetchLayers(ctx context.Context, src *source, progress func(string)) error {
	var missing []layerSource
	seen := map[string]bool{}
	for _, l := range src.layers {
		if seen[l.diffID] {
			continue
		}
		seen[l.diffID] = true
		if _, err := os.Stat(s.layerDir(l.diffID)); err != nil {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	p := newProgress(src.display, missing, progress)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, l := range missing {
		g.Go(func() error {
			_, err, _ := s.unpacks.Do(l.diffID, func() (any, error) {
				return nil, s.unpackLayer(gctx, l, p.add)
			})
			if err == nil {
				p.layerDone()
			}
			return err
		})
	}
	err := g.Wait()
	p.final(err)
	return err
}

// unpackLayer unpacks one layer into a work directory, checks its diffID
// and renames it into layers/, so a crash never leaves a partial layer.
func (s *Store) unpackLayer(ctx context.Context, l layerSource, count func(int64)) error {
	final := s.path("layers", layerHex(l.diffID))
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp, err := s.tempDir("unpack")
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	defer os.RemoveAll(tmp)
	rc, err := l.open()
	if err != nil {
		return fmt.Errorf("layer %s: open: %w", l.diffID, err)
	}
	defer rc.Close()
	zr, err := decompress(&ctxReader{ctx: ctx, r: rc, count: count})
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	defer zr.Close()
	dr := newDigestReader(zr)
	fsDir := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return err
	}
	size, err := unpackTar(fsDir, dr, func(msg string, args ...any) {
		s.log.Debug(msg, append(args, "layer", l.diffID)...)
	})
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	// Read to the end: the tar stream may end before the blob does, and
	// the registry client checks the blob's digest at EOF.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	if got := dr.digest(); got != l.diffID {
		return fmt.Errorf("layer %s: content has digest %s", l.diffID, got)
	}
	if err := os.WriteFile(filepath.Join(tmp, "size"), []byte(strconv.FormatInt(size, 10)), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return nil // another process unpacked it meanwhile
		}
		return fmt.Errorf("layer %s: %w", l.diffID, err)
	}
	s.log.Debug("unpacked layer", "layer", l.diffID, "bytes", size)
	return nil
}

// ctxReader stops a download when ctx ends and counts bytes for progress.
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	count func(int64)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.count(int64(n))
	return n, err
}

// progress turns byte counts into at most two lines a second.
type progress struct {
	display string
	fn      func(string)
	total   int64
	layers  int

	done, bytes atomic.Int64
	mu          sync.Mutex
	last        time.Time
}

func newProgress(display string, layers []layerSource, fn func(string)) *progress {
	p := &progress{display: display, fn: fn, layers: len(layers), last: time.Now()}
	for _, l := range layers {
		p.total += l.size
	}
	if fn != nil {
		fn(fmt.Sprintf("pulling %s: 0/%d layers, 0 B/%s", display, p.layers, humanBytes(p.total)))
	}
	return p
}

func (p *progress) add(n int64) {
	p.bytes.Add(n)
	p.maybe(false)
}

func (p *progress) layerDone() {
	p.done.Add(1)
	p.maybe(false)
}

func (p *progress) maybe(force bool) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !force && now.Sub(p.last) < 500*time.Millisecond {
		return
	}
	p.last = now
	p.fn(fmt.Sprintf("pulling %s: %d/%d layers, %s/%s", p.display, p.done.Load(), p.layers, humanBytes(p.bytes.Load()), humanBytes(p.total)))
}

func (p *progress) final(err error) {
	if err == nil {
		p.maybe(true)
	}
}

// humanBytes is a decimal size as registries and crictl show them.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%.1f PB", f/unit)
}

// pullGroup shares one pull between concurrent callers of the same image.
// The pull runs until every caller has given up.
type pullGroup struct {
	mu    sync.Mutex
	calls map[string]*pullCall
}

type pullCall struct {
	done    chan struct{}
	img     Image
	err     error
	waiters int
	cancel  context.CancelFunc
	subs    []func(string)
	subsMu  sync.Mutex
}

func (g *pullGroup) do(ctx context.Context, key string, progress func(string), fn func(context.Context, func(string)) (Image, error)) (Image, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*pullCall{}
	}
	c, ok := g.calls[key]
	if !ok {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &pullCall{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go func() {
			c.img, c.err = fn(pctx, c.broadcast)
			cancel()
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()
	if progress != nil {
		c.subsMu.Lock()
		c.subs = append(c.subs, progress)
		c.subsMu.Unlock()
	}
	select {
	case <-c.done:
		return c.img, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			c.cancel()
		}
		g.mu.Unlock()
		return Image{}, ctx.Err()
	}
}

func (c *pullCall) broadcast(line string) {
	c.subsMu.Lock()
	subs := slices.Clone(c.subs)
	c.subsMu.Unlock()
	for _, f := range subs {
		f(line)
	}
}

// Package imagetest builds Skiff's test images and serves them from a
// registry inside the test process, so the real pull path is tested with
// no registry outside the machine. It is an ordinary package (not a
// _test file) so tests of other packages and test/e2e can use it.
//
// Images are deterministic: the same inputs give the same digests in every
// process, so layers are shared between images built here (the busybox
// layer of the test server image is the busybox image's layer).
package imagetest

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the mtime of every file in the test images, for stable digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultPath is the PATH of the test images, as in Docker's images.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// File is one entry of a layer built by Layer. Header.Name is the path
// ("etc/passwd"); a zero Typeflag is a regular file with Body, Mode 0 is
// 0644 (0755 for directories), and ModTime defaults to a fixed time.
type File struct {
	Header tar.Header
	Body   string
}

// Reg is a regular file entry.
func Reg(name string, mode int64, body string) File {
	return File{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, Body: body}
}

// Dir is a directory entry.
func Dir(name string, mode int64) File {
	return File{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}}
}

// Symlink is a symbolic link entry.
func Symlink(name, target string) File {
	return File{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

// Whiteout deletes path from the layers below, in OCI form (".wh.NAME").
func Whiteout(path string) File {
	dir, base := filepath.Split(path)
	return Reg(dir+".wh."+base, 0o644, "")
}

// Layer builds a gzip-compressed layer from files, in the given order.
func Layer(t testing.TB, files ...File) v1.Layer {
	t.Helper()
	data := tarBytes(t, files)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		t.Fatalf("imagetest: build layer: %v", err)
	}
	return l
}

func tarBytes(t testing.TB, files []File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.Header
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("imagetest: tar %s: %v", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, f.Body); err != nil {
				t.Fatalf("imagetest: tar %s: %v", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("imagetest: tar: %v", err)
	}
	return buf.Bytes()
}

// Image stacks layers (lowest first) into an image for linux/GOARCH with
// the given config; Env defaults to DefaultPath.
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatalf("imagetest: append layers: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("imagetest: config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	if cfg.Env == nil {
		cfg.Env = []string{DefaultPath}
	}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("imagetest: set config: %v", err)
	}
	return img
}

// skip skips t when a prerequisite is missing, except under CI=true,
// where a missing prerequisite fails the test.
func skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("imagetest: "+format, args...)
	}
	t.Skipf("imagetest: "+format, args...)
}

// BusyboxLayer is the layer of Busybox: /bin/busybox from the host
// (Debian's busybox-static) with a link for every applet, /etc/passwd and
// /etc/group with root and nobody, and the usual mount points.
func BusyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	const bin = "/bin/busybox"
	body, err := os.ReadFile(bin)
	if err != nil {
		skip(t, "%s is needed for the busybox test image (apt-get install busybox-static): %v", bin, err)
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		skip(t, "%s --list: %v", bin, err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	files := []File{
		Dir("bin", 0o755), Dir("dev", 0o755), Dir("etc", 0o755), Dir("proc", 0o555),
		Dir("root", 0o700), Dir("sys", 0o555), Dir("tmp", 0o1777), Dir("usr", 0o755),
		Dir("usr/bin", 0o755), Dir("usr/sbin", 0o755), Dir("sbin", 0o755),
		Dir("var", 0o755), Dir("var/run", 0o755), Dir("home", 0o755),
		Reg("bin/busybox", 0o755, string(body)),
		Reg("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
		Reg("etc/group", 0o644, "root:x:0:\nnobody:x:65534:\n"),
		Reg("etc/hosts", 0o644, ""),
		Reg("etc/resolv.conf", 0o644, ""),
		Reg("etc/hostname", 0o644, ""),
	}
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		files = append(files, Symlink("bin/"+a, "busybox"))
	}
	return Layer(t, files...)
}

// Busybox is a busybox image: BusyboxLayer with Cmd ["sh"].
func Busybox(t testing.TB) v1.Image {
	t.Helper()
	return Image(t, v1.Config{Cmd: []string{"sh"}}, BusyboxLayer(t))
}

// TestServer is the test HTTP server image (test/images/testserver): the
// busybox layer, so exec works, and /testserver as the entrypoint.
func TestServer(t testing.TB) v1.Image {
	t.Helper()
	return TestServerVersion(t, "v1")
}

// TestServerVersion is TestServer with VERSION=version in its environment
// (served at /version): versions are different images sharing all layers,
// for rollouts.
func TestServerVersion(t testing.TB, version string) v1.Image {
	t.Helper()
	bin := TestServerBinary(t)
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	layer := Layer(t, Reg("testserver", 0o755, string(body)))
	return Image(t, v1.Config{
		Entrypoint:   []string{"/testserver"},
		Env:          []string{DefaultPath, "VERSION=" + version},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
	}, BusyboxLayer(t), layer)
}

// TestServerBinary builds test/images/testserver (static, -trimpath) and
// returns its path. The binary is cached in the temporary directory under
// a hash of its source and the Go version, so a test process (and the
// next) builds it once.
func TestServerBinary(t testing.TB) string {
	t.Helper()
	src := testServerSource(t)
	main, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // fallback when go is not on PATH
		if _, err := os.Stat(goBin); err != nil {
			skip(t, "the go tool is needed to build the test server image")
		}
	}
	key := sha256Hex(append(main, runtime.Version()+runtime.GOARCH...))[:16]
	out := filepath.Join(os.TempDir(), "skiff-imagetest-testserver-"+key)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	// Build in a module of its own, so the repository's go.mod (which
	// other work may be changing) plays no part.
	work, err := os.MkdirTemp(os.TempDir(), "skiff-imagetest-build-")
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	defer os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(work, "main.go"), main, 0o600); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte("module testserver\n\ngo 1.22\n"), 0o600); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	bin := filepath.Join(work, "testserver")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("imagetest: build testserver: %v\n%s", err, b)
	}
	// Rename within the temporary directory: concurrent builders race
	// harmlessly, each installing a complete binary.
	tmp, err := os.CreateTemp(os.TempDir(), "skiff-imagetest-bin-")
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	if err := os.WriteFile(tmp.Name(), data, 0o755); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	return out
}

// testServerSource finds test/images/testserver from this file's location,
// else from the working directory upwards.
func testServerSource(t testing.TB) string {
	t.Helper()
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for range 8 {
			p := filepath.Join(dir, "test", "images", "testserver")
			if _, err := os.Stat(filepath.Join(p, "main.go")); err == nil {
				return p
			}
			dir = filepath.Dir(dir)
		}
	}
	t.Fatalf("imagetest: cannot find test/images/testserver from %v", starts)
	return ""
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	user, pass string
	hook       func(*http.Request)
	addr       string
}

// WithBasicAuth makes the registry answer 401 with a Basic challenge to
// requests without these credentials.
func WithBasicAuth(user, pass string) RegistryOption {
	return func(o *registryOptions) { o.user, o.pass = user, pass }
}

// WithRequestHook calls hook with every request before it is served, e.g.
// to count blob downloads.
func WithRequestHook(hook func(*http.Request)) RegistryOption {
	return func(o *registryOptions) { o.hook = hook }
}

// WithListenAddr serves on addr (default "127.0.0.1:0").
func WithListenAddr(addr string) RegistryOption {
	return func(o *registryOptions) { o.addr = addr }
}

// StartRegistry serves an in-memory registry (plain HTTP) until the test
// ends and returns its "host:port".
func StartRegistry(t testing.TB, opts ...RegistryOption) string {
	t.Helper()
	o := registryOptions{addr: "127.0.0.1:0"}
	for _, opt := range opts {
		opt(&o)
	}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if o.user != "" {
		next := h
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(o.user+":"+o.pass))
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != want {
				w.Header().Set("WWW-Authenticate", `Basic realm="skiff-test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	if o.hook != nil {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.hook(r)
			next.ServeHTTP(w, r)
		})
	}
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatalf("imagetest: listen %s: %v", o.addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return l.Addr().String()
}

// Push writes img to ref ("127.0.0.1:5000/busybox:latest") over plain
// HTTP. opts add e.g. remote.WithAuth for a registry with credentials.
func Push(t testing.TB, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("imagetest: push %s: %v", ref, err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("imagetest: push %s: %v", ref, err)
	}
}

// WriteDockerArchive writes img tagged ref as a `docker save` tarball.
func WriteDockerArchive(t testing.TB, path, ref string, img v1.Image) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("imagetest: archive %s: %v", ref, err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatalf("imagetest: archive %s: %v", ref, err)
	}
}

package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/cri"
	"github.com/skiff-sh/skiff/internal/image/imagetest"
)

// requireRoot skips tests that unpack layers (chown, mknod, trusted
// xattrs) when not root, except under CI=true.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root")
	}
	t.Skip("this test needs root")
}

func newStore(t *testing.T, registries string) *Store {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Root: filepath.Join(dir, "images"), RegistriesFile: filepath.Join(dir, "registries.yaml")}
	if registries != "" {
		if err := os.WriteFile(cfg.RegistriesFile, []byte(registries), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requestLog records the requests a test registry served.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) hook(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
}

func (l *requestLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

func digestOf(t *testing.T, f func() (v1.Hash, error)) string {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func TestPullSharesLayers(t *testing.T) {
	requireRoot(t)
	var log requestLog
	host := imagetest.StartRegistry(t, imagetest.WithRequestHook(log.hook))
	busybox, server := imagetest.Busybox(t), imagetest.TestServer(t)
	imagetest.Push(t, host+"/busybox:latest", busybox)
	imagetest.Push(t, host+"/testserver:v1", server)
	layers, err := server.Layers()
	if err != nil {
		t.Fatal(err)
	}
	busyboxBlob := digestOf(t, layers[0].Digest)
	serverBlob := digestOf(t, layers[1].Digest)
	s := newStore(t, "")
	ctx := context.Background()

	var lines []string
	log.reset()
	img, err := s.Pull(ctx, host+"/busybox", nil, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if want := digestOf(t, busybox.ConfigName); img.ID != want {
		t.Errorf("got ID %s, want the config digest %s", img.ID, want)
	}
	wantDigest := host + "/busybox@" + digestOf(t, busybox.Digest)
	if !slices.Equal(img.RepoTags, []string{host + "/busybox:latest"}) || !slices.Equal(img.RepoDigests, []string{wantDigest}) {
		t.Errorf("got tags %v digests %v, want [%s/busybox:latest] [%s]", img.RepoTags, img.RepoDigests, host, wantDigest)
	}
	if len(lines) < 2 || !strings.Contains(lines[len(lines)-1], "1/1 layers") {
		t.Errorf("got progress %q, want lines ending with 1/1 layers", lines)
	}
	if n := log.count("/blobs/" + busyboxBlob); n != 1 {
		t.Errorf("busybox layer fetched %d times, want 1", n)
	}
	if !slices.Equal(img.Config.Cmd, []string{"sh"}) {
		t.Errorf("got Cmd %v, want [sh]", img.Config.Cmd)
	}

	// The test server image shares the busybox layer: only its own layer
	// is downloaded.
	log.reset()
	id, err := s.PullImage(ctx, host+"/testserver:v1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/testserver@" + digestOf(t, server.Digest); id != want {
		t.Errorf("PullImage = %s, want %s", id, want)
	}
	if n := log.count("/blobs/" + busyboxBlob); n != 0 {
		t.Errorf("shared busybox layer fetched %d times by the second image, want 0", n)
	}
	if n := log.count("/blobs/" + serverBlob); n != 1 {
		t.Errorf("test server layer fetched %d times, want 1", n)
	}

	rfs, err := s.Rootfs(ctx, host+"/testserver:v1")
	if err != nil {
		t.Fatal(err)
	}
	bfs, err := s.Rootfs(ctx, host+"/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if len(rfs.LayerDirs) != 2 || rfs.LayerDirs[0] != bfs.LayerDirs[0] {
		t.Fatalf("got layer dirs %v and busybox %v, want two with busybox's lowest", rfs.LayerDirs, bfs.LayerDirs)
	}
	if rfs.ImageID != id || !slices.Equal(rfs.Config.Entrypoint, []string{"/testserver"}) || !slices.Contains(rfs.Config.Env, "VERSION=v1") {
		t.Errorf("got rootfs %+v, want image ID %s, entrypoint /testserver, VERSION=v1", rfs, id)
	}
	fi, err := os.Stat(filepath.Join(rfs.LayerDirs[1], "testserver"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("testserver in top layer: %v, %v, want mode 0755", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(rfs.LayerDirs[0], "bin", "sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh: got link %q, %v, want busybox", target, err)
	}
	if fi, err := os.Stat(filepath.Join(rfs.LayerDirs[0], "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: got %v, %v, want drwxrwxrwt", fi.Mode(), err)
	}

	// Pulling again downloads no layer and keeps the image.
	log.reset()
	if _, err := s.Pull(ctx, host+"/testserver:v1", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := log.count("/blobs/"); n != 0 {
		t.Errorf("a second pull fetched %d blobs, want 0", n)
	}
	for _, ref := range []string{host + "/testserver:v1", id, img.ID, img.ID[len("sha256:") : len("sha256:")+12]} {
		if _, ok := s.Get(ref); !ok {
			t.Errorf("Get(%q) found nothing", ref)
		}
	}
	if got, present, err := s.ImageStatus(ctx, host+"/testserver:v1"); err != nil || !present || got != id {
		t.Errorf("ImageStatus = %q, %v, %v, want %q, true", got, present, err, id)
	}
	if _, present, err := s.ImageStatus(ctx, host+"/testserver:v2"); err != nil || present {
		t.Errorf("ImageStatus of a missing tag = %v, %v, want absent", present, err)
	}

	// Another store on the same root (the CLI beside the agent) sees both.
	s2, err := New(Config{Root: s.root})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := s2.List(); err != nil || len(list) != 2 {
		t.Errorf("second store lists %d images (%v), want 2", len(list), err)
	}
}

func TestPullConcurrentCallersShareOnePull(t *testing.T) {
	requireRoot(t)
	var log requestLog
	host := imagetest.StartRegistry(t, imagetest.WithRequestHook(log.hook))
	imagetest.Push(t, host+"/busybox:latest", imagetest.Busybox(t))
	s := newStore(t, "")
	log.reset()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Pull(context.Background(), host+"/busybox:latest", nil, nil)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Callers that arrive after the shared pull finished pull again, but
	// find the layer present: it is fetched exactly once.
	if n := log.count("/blobs/sha256"); n > 2 { // config + one layer
		t.Errorf("4 concurrent pulls fetched %d blobs, want the config and the layer once", n)
	}
}

func TestPullThroughMirror(t *testing.T) {
	requireRoot(t)
	var upstreamLog, mirrorLog requestLog
	upstream := imagetest.StartRegistry(t, imagetest.WithRequestHook(upstreamLog.hook))
	mirror := imagetest.StartRegistry(t, imagetest.WithRequestHook(mirrorLog.hook))
	imagetest.Push(t, mirror+"/team/busybox:1.0", imagetest.Busybox(t))
	// A dead first mirror (nothing listens on port 1) is skipped.
	s := newStore(t, fmt.Sprintf("mirrors:\n  %q:\n    endpoint: [\"http://%s\", \"http://%s\"]\n", upstream, "127.0.0.1:1", mirror))
	img, err := s.Pull(context.Background(), upstream+"/team/busybox:1.0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := upstream + "/team/busybox:1.0"; !slices.Equal(img.RepoTags, []string{want}) {
		t.Errorf("got tags %v, want [%s]: a mirrored image keeps its own name", img.RepoTags, want)
	}
	if n := upstreamLog.count("/"); n != 0 {
		t.Errorf("upstream served %d requests, want 0 (the mirror had the image)", n)
	}
	if n := mirrorLog.count("/manifests/1.0"); n == 0 {
		t.Errorf("mirror served no manifest")
	}

	// An image the mirror lacks comes from the registry itself.
	imagetest.Push(t, upstream+"/only/upstream:v1", imagetest.Busybox(t))
	if _, err := s.Pull(context.Background(), upstream+"/only/upstream:v1", nil, nil); err != nil {
		t.Fatalf("fallback to the registry: %v", err)
	}
}

func TestPullBasicAuth(t *testing.T) {
	requireRoot(t)
	host := imagetest.StartRegistry(t, imagetest.WithBasicAuth("alice", "s3cret"))
	imagetest.Push(t, host+"/private/busybox:latest", imagetest.Busybox(t),
		remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	ref := host + "/private/busybox"

	s := newStore(t, "")
	_, err := s.Pull(context.Background(), ref, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous pull: got %v, want unauthorized", err)
	}
	if _, err := s.Pull(context.Background(), ref, []cri.RegistryAuth{{Server: host, Username: "alice", Password: "wrong"}}, nil); err == nil {
		t.Fatal("pull with a wrong password succeeded")
	}
	if _, err := s.Pull(context.Background(), ref, []cri.RegistryAuth{{Server: "other:1", Username: "x"}, {Server: "http://" + host, Username: "alice", Password: "s3cret"}}, nil); err != nil {
		t.Fatalf("pull with a pull secret: %v", err)
	}

	s2 := newStore(t, fmt.Sprintf("configs:\n  %q:\n    auth:\n      username: alice\n      password: s3cret\n", host))
	if _, err := s2.Pull(context.Background(), ref, nil, nil); err != nil {
		t.Fatalf("pull with registries.yaml credentials: %v", err)
	}
}

func TestPullErrors(t *testing.T) {
	host := imagetest.StartRegistry(t)
	s := newStore(t, "mirrors: [bad")
	if _, err := s.Pull(context.Background(), host+"/x:1", nil, nil); err == nil || !strings.Contains(err.Error(), "registries") {
		t.Errorf("bad registries.yaml: got %v, want an error about it", err)
	}
	s = newStore(t, "")
	_, err := s.Pull(context.Background(), host+"/missing:1", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
		t.Errorf("missing image: got %v, want NAME_UNKNOWN", err)
	}
	if _, err := s.Pull(context.Background(), "127.0.0.1:1/nothing:1", nil, nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable registry: got %v, want connection refused", err)
	}
	if _, err := s.Pull(context.Background(), "Bad Name", nil, nil); err == nil {
		t.Errorf("invalid reference: got no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Pull(ctx, host+"/missing:1", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pull: got %v, want context.Canceled", err)
	}
	if _, err := s.Rootfs(context.Background(), "nothing:here"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rootfs of a missing image: got %v, want ErrNotFound", err)
	}
}

func TestImportArchives(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	img := imagetest.TestServerVersion(t, "v9")
	docker := filepath.Join(dir, "docker.tar")
	imagetest.WriteDockerArchive(t, docker, "example.com/app:v9", img)
	oci := filepath.Join(dir, "oci.tar")
	imagetest.WriteOCIArchive(t, oci, "example.com/oci/app:v1", imagetest.Busybox(t))

	s := newStore(t, "")
	ctx := context.Background()
	got, err := s.Import(ctx, docker)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[0].RepoTags, []string{"example.com/app:v9"}) || got[0].ID != digestOf(t, img.ConfigName) {
		t.Fatalf("docker archive: got %+v, want example.com/app:v9 with ID %s", got, digestOf(t, img.ConfigName))
	}
	if len(got[0].RepoDigests) != 1 || !strings.HasPrefix(got[0].RepoDigests[0], "example.com/app@sha256:") {
		t.Errorf("docker archive: got repo digests %v, want one for example.com/app", got[0].RepoDigests)
	}
	rfs, err := s.Rootfs(ctx, "example.com/app:v9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rfs.LayerDirs[1], "testserver")); err != nil {
		t.Errorf("imported image lacks /testserver: %v", err)
	}

	got, err = s.Import(ctx, oci)
	if err != nil {
		t.Fatal(err)
	}
	busybox := imagetest.Busybox(t)
	wantDigest := "example.com/oci/app@" + digestOf(t, busybox.Digest)
	if len(got) != 1 || !slices.Equal(got[0].RepoTags, []string{"example.com/oci/app:v1"}) || !slices.Equal(got[0].RepoDigests, []string{wantDigest}) {
		t.Fatalf("OCI archive: got %+v, want example.com/oci/app:v1 and %s", got, wantDigest)
	}
	if _, err := s.Rootfs(ctx, "example.com/oci/app:v1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("got %d images, want 2", len(list))
	}

	for name, content := range map[string]string{"empty": "", "garbage": "not a tar at all, clearly", "no manifest": ""} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if name == "no manifest" {
			imagetest.WriteOCIArchive(t, p, "x/y:z", busybox)
			// Truncate it: a corrupt archive.
			b, _ := os.ReadFile(p)
			content = string(b[:len(b)/2])
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Import(ctx, p); err == nil {
			t.Errorf("import of %s archive: got no error", name)
		}
	}
	if _, err := s.Import(ctx, filepath.Join(dir, "missing.tar")); err == nil {
		t.Errorf("import of a missing file: got no error")
	}
}

func TestRemoveDeletesUnreferencedLayers(t *testing.T) {
	requireRoot(t)
	host := imagetest.StartRegistry(t)
	imagetest.Push(t, host+"/busybox:a", imagetest.Busybox(t))
	imagetest.Push(t, host+"/busybox:b", imagetest.Busybox(t))
	imagetest.Push(t, host+"/testserver:v1", imagetest.TestServer(t))
	s := newStore(t, "")
	ctx := context.Background()
	for _, ref := range []string{host + "/busybox:a", host + "/busybox:b", host + "/testserver:v1"} {
		if _, err := s.Pull(ctx, ref, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	server, _ := s.Rootfs(ctx, host+"/testserver:v1")
	busyboxDir, serverDir := server.LayerDirs[0], server.LayerDirs[1]
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	// Removing one of two tags only untags.
	if err := s.Remove(host + "/busybox:a"); err != nil {
		t.Fatal(err)
	}
	if img, ok := s.Get(host + "/busybox:b"); !ok || !slices.Equal(img.RepoTags, []string{host + "/busybox:b"}) {
		t.Fatalf("after untagging a: got %+v, %v, want busybox with tag b only", img, ok)
	}
	if _, ok := s.Get(host + "/busybox:a"); ok {
		t.Errorf("busybox:a still found")
	}
	// The test server's own layer goes, the shared one stays.
	if err := s.Remove(host + "/testserver:v1"); err != nil {
		t.Fatal(err)
	}
	if exists(serverDir) || !exists(busyboxDir) {
		t.Errorf("after removing testserver: its layer exists=%v (want false), busybox layer exists=%v (want true)", exists(serverDir), exists(busyboxDir))
	}
	if err := s.Remove(host + "/busybox:b"); err != nil {
		t.Fatal(err)
	}
	if exists(busyboxDir) {
		t.Errorf("busybox layer still exists after its last image was removed")
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("got %d images, want 0", len(list))
	}
	if err := s.Remove(host + "/busybox:b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a missing image: got %v, want ErrNotFound", err)
	}
	if entries, _ := os.ReadDir(s.path("tmp")); len(entries) != 0 {
		t.Errorf("work directories left behind: %v", entries)
	}
}

func TestGC(t *testing.T) {
	requireRoot(t)
	host := imagetest.StartRegistry(t)
	imagetest.Push(t, host+"/busybox:latest", imagetest.Busybox(t))
	imagetest.Push(t, host+"/testserver:v1", imagetest.TestServer(t))
	unique := imagetest.Image(t, v1.Config{Cmd: []string{"x"}}, imagetest.Layer(t, imagetest.Reg("data", 0o644, strings.Repeat("x", 5000))))
	imagetest.Push(t, host+"/unique:v1", unique)

	var mu sync.Mutex
	used, total := uint64(90), uint64(100)
	s := newStore(t, "")
	s.diskUsage = func(string) (uint64, uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		return used, total, nil
	}
	ctx := context.Background()
	// Used in this order: unique is the least recently used, testserver
	// the most.
	for _, ref := range []string{"/unique:v1", "/busybox:latest", "/testserver:v1"} {
		if _, err := s.Pull(ctx, host+ref, nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rootfs(ctx, host+ref); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	server, _ := s.Get(host + "/testserver:v1")
	inUse := func(id string) bool { return id == server.RepoDigests[0] }

	// 90% used, 85/80: free 10 bytes; the unique image's 5000 go first.
	if err := s.GC(ctx, 85, 80, inUse); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(host + "/unique:v1"); ok {
		t.Errorf("least recently used image was kept")
	}
	if _, ok := s.Get(host + "/busybox:latest"); !ok {
		t.Errorf("busybox was removed though enough was freed before it")
	}

	// Below the high threshold nothing happens.
	mu.Lock()
	used = 84
	mu.Unlock()
	if err := s.GC(ctx, 85, 80, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("below the threshold: got %d images, want 2", len(list))
	}

	// Above it again: busybox shares its only layer with the in-use test
	// server, so removing it frees nothing, and GC says so.
	mu.Lock()
	used = 95
	mu.Unlock()
	err := s.GC(ctx, 85, 80, inUse)
	if err == nil || !strings.Contains(err.Error(), "wanted to free") {
		t.Errorf("got %v, want an error saying not enough was freed", err)
	}
	if _, ok := s.Get(host + "/testserver:v1"); !ok {
		t.Errorf("the image in use was removed")
	}
	if _, ok := s.Get(host + "/busybox:latest"); ok {
		t.Errorf("unused busybox was kept")
	}
	if _, err := s.Rootfs(ctx, host+"/testserver:v1"); err != nil {
		t.Errorf("in-use image broken by GC: %v", err)
	}

	// Images younger than GCMinAge are kept.
	s.minAge = time.Hour
	if err := s.GC(ctx, 85, 80, func(string) bool { return false }); err == nil {
		t.Errorf("GC with only young images: got no error")
	}
	if _, ok := s.Get(host + "/testserver:v1"); !ok {
		t.Errorf("an image younger than GCMinAge was removed")
	}
}

func TestWhiteoutsAndOverlay(t *testing.T) {
	requireRoot(t)
	lower := imagetest.Layer(t,
		imagetest.Dir("d", 0o755), imagetest.Reg("d/gone", 0o644, "lower"), imagetest.Reg("d/kept", 0o644, "lower"),
		imagetest.Dir("o", 0o755), imagetest.Reg("o/hidden", 0o644, "lower"),
	)
	upper := imagetest.Layer(t,
		imagetest.Whiteout("d/gone"),
		imagetest.Reg("o/.wh..wh..opq", 0o644, ""), imagetest.Reg("o/new", 0o644, "upper"),
	)
	img := imagetest.Image(t, v1.Config{}, lower, upper)
	archive := filepath.Join(t.TempDir(), "wh.tar")
	imagetest.WriteDockerArchive(t, archive, "example.com/whiteout:v1", img)
	s := newStore(t, "")
	ctx := context.Background()
	if _, err := s.Import(ctx, archive); err != nil {
		t.Fatal(err)
	}
	rfs, err := s.Rootfs(ctx, "example.com/whiteout:v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rfs.LayerDirs) != 2 {
		t.Fatalf("got %d layer dirs, want 2", len(rfs.LayerDirs))
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(rfs.LayerDirs[1], "d", "gone"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout: got mode %o rdev %d, want a 0:0 character device", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(rfs.LayerDirs[1], "o"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque dir: got xattr %q, %v, want y", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(rfs.LayerDirs[1], "o", ".wh..wh..opq")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opaque marker file was written as a file: %v", err)
	}

	// The proof: overlayfs with these layers shows what the image means.
	mnt := t.TempDir()
	opts := "lowerdir=" + rfs.LayerDirs[1] + ":" + rfs.LayerDirs[0]
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	check := func(rel string, want bool) {
		_, err := os.Stat(filepath.Join(mnt, rel))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v (%v)", rel, got, want, err)
		}
	}
	if err := s.Remove("example.com/whiteout:v1"); !errors.Is(err, ErrInUse) {
		t.Errorf("removing an image whose layers are mounted: got %v, want ErrInUse", err)
	}
	check("d/gone", false)
	check("d/kept", true)
	check("o/hidden", false)
	check("o/new", true)
}

func TestGCPrunesOldOrphanLayers(t *testing.T) {
	s := newStore(t, "")
	s.diskUsage = func(string) (uint64, uint64, error) { return 1, 100, nil }
	old, fresh := s.path("layers", strings.Repeat("a", 64)), s.path("layers", strings.Repeat("b", 64))
	for _, d := range []string{old, fresh} {
		if err := os.MkdirAll(filepath.Join(d, "fs"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * orphanAge)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if err := s.GC(context.Background(), 85, 80, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old unreferenced layer: got %v, want it deleted", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh unreferenced layer (maybe a pull in progress) was deleted: %v", err)
	}
}

package kubelet

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// requireRoot skips a test that mounts unless it runs as root; under
// CI=true a missing prerequisite fails instead.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting tmpfs needs root")
		}
		t.Skip("mounting tmpfs needs root")
	}
}

// newTestVolumeManager returns a manager over a fake clientset holding
// objs, with pods under a temporary directory and a fake clock.
func newTestVolumeManager(t *testing.T, objs ...runtime.Object) (*volumeManager, *fake.Clientset, *clocktesting.FakeClock) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	podsDir := filepath.Join(t.TempDir(), "pods")
	m := newVolumeManager(cs, podsDir, nil)
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC))
	m.clock = clk
	t.Cleanup(func() { unmountAllUnder(t, podsDir) })
	return m, cs, clk
}

// unmountAllUnder removes mounts a failed test left under dir.
func unmountAllUnder(t *testing.T, dir string) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return
	}
	mounts, _ := mountsUnder(real)
	for _, mp := range mounts {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", mp, err)
		}
	}
}

// volumePod is a pod with the given volumes and one container "app".
func volumePod(uid string, vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: types.UID(uid)},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
			Volumes:    vols,
		},
	}
}

// isTmpfsMount reports whether dir is a tmpfs mount point and returns its
// super options.
func isTmpfsMount(t *testing.T, dir string) (bool, string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 10 || unescapeMountinfo(fields[4]) != real {
			continue
		}
		// Fields after the "-" separator: fstype, source, super options.
		for i, f := range fields {
			if f == "-" && i+3 < len(fields) {
				return fields[i+1] == "tmpfs", fields[i+3]
			}
		}
	}
	return false, ""
}

func TestEmptyDirVolumeSetupAndTeardown(t *testing.T) {
	m, _, _ := newTestVolumeManager(t)
	pod := volumePod("uid-ed", corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(m.podsDir, "uid-ed", "volumes", "kubernetes.io~empty-dir", "cache")
	if paths["cache"] != want {
		t.Fatalf("path: got %q, want %q", paths["cache"], want)
	}
	fi, err := os.Stat(want)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Fatalf("emptyDir: got %v (%v), want a 0777 directory", fi.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(want, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Setup again keeps the data.
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(want, "data")); err != nil {
		t.Fatalf("second Setup lost the data: %v", err)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.podsDir, "uid-ed")); !os.IsNotExist(err) {
		t.Errorf("pod dir after Teardown: got err %v, want not exist", err)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
	if err := m.Teardown("../escape"); err == nil {
		t.Error("Teardown of uid ../escape: got no error, want one")
	}
}

func TestEmptyDirVolumeMemoryIsTmpfs(t *testing.T) {
	requireRoot(t)
	m, _, _ := newTestVolumeManager(t)
	size := resource.MustParse("8Mi")
	pod := volumePod("uid-mem", corev1.Volume{Name: "shm", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}})
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["shm"]
	ok, opts := isTmpfsMount(t, dir)
	if !ok || !strings.Contains(opts, "size=8192k") {
		t.Fatalf("mountinfo for %s: tmpfs %v options %q, want tmpfs with size=8192k", dir, ok, opts)
	}
	// Idempotent: a second Setup does not stack a second tmpfs.
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if mounts, _ := mountsUnder(real); len(mounts) != 1 {
		t.Fatalf("mounts after second Setup: got %v, want one", mounts)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := mountsUnder(real); len(mounts) != 0 {
		t.Errorf("mounts after Teardown: got %v, want none", mounts)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dir after Teardown: got err %v, want not exist", err)
	}
}

func TestHostPathVolumeTypes(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "dir")
	file := filepath.Join(base, "file")
	sock := filepath.Join(base, "sock")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	block := ""
	for _, c := range []string{"/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/ram0"} {
		if fi, err := os.Stat(c); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
			block = c
			break
		}
	}

	for _, tc := range []struct {
		name    string
		typ     corev1.HostPathType
		path    string
		wantErr string
		// check runs after a successful Setup.
		check func(t *testing.T)
	}{
		{name: "unset existing", typ: corev1.HostPathUnset, path: file},
		{name: "unset missing is created", typ: corev1.HostPathUnset, path: filepath.Join(base, "new-unset"), check: isDirAt(filepath.Join(base, "new-unset"))},
		{name: "directory", typ: corev1.HostPathDirectory, path: dir},
		{name: "directory is a file", typ: corev1.HostPathDirectory, path: file, wantErr: "hostPath type check failed: " + file + " is not a directory"},
		{name: "directory missing", typ: corev1.HostPathDirectory, path: filepath.Join(base, "nope"), wantErr: "is not a directory"},
		{name: "directoryOrCreate creates", typ: corev1.HostPathDirectoryOrCreate, path: filepath.Join(base, "a", "b"), check: isDirAt(filepath.Join(base, "a", "b"))},
		{name: "directoryOrCreate existing", typ: corev1.HostPathDirectoryOrCreate, path: dir},
		{name: "directoryOrCreate is a file", typ: corev1.HostPathDirectoryOrCreate, path: file, wantErr: "is not a directory"},
		{name: "file", typ: corev1.HostPathFile, path: file},
		{name: "file is a dir", typ: corev1.HostPathFile, path: dir, wantErr: "hostPath type check failed: " + dir + " is not a file"},
		{name: "file missing", typ: corev1.HostPathFile, path: filepath.Join(base, "nope"), wantErr: "is not a file"},
		{name: "fileOrCreate creates", typ: corev1.HostPathFileOrCreate, path: filepath.Join(base, "created"), check: func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(base, "created"))
			if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
				t.Errorf("created file: got %v (%v), want an empty regular file", fi, err)
			}
		}},
		{name: "fileOrCreate without parent", typ: corev1.HostPathFileOrCreate, path: filepath.Join(base, "noparent", "f"), wantErr: "no such file or directory"},
		{name: "fileOrCreate is a dir", typ: corev1.HostPathFileOrCreate, path: dir, wantErr: "is not a file"},
		{name: "socket", typ: corev1.HostPathSocket, path: sock},
		{name: "socket is a file", typ: corev1.HostPathSocket, path: file, wantErr: "is not a socket file"},
		{name: "charDevice", typ: corev1.HostPathCharDev, path: "/dev/null"},
		{name: "charDevice is a file", typ: corev1.HostPathCharDev, path: file, wantErr: "is not a character device"},
		{name: "blockDevice", typ: corev1.HostPathBlockDev, path: block},
		{name: "blockDevice is a char device", typ: corev1.HostPathBlockDev, path: "/dev/null", wantErr: "hostPath type check failed: /dev/null is not a block device"},
		{name: "relative path", typ: corev1.HostPathUnset, path: "rel", wantErr: "must be an absolute path"},
		{name: "invalid type", typ: "Bogus", path: dir, wantErr: "Bogus is an invalid volume type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path == "" {
				t.Skip("no block device on this machine")
			}
			m, _, _ := newTestVolumeManager(t)
			pod := volumePod("uid-hp", corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: tc.path, Type: ptr.To(tc.typ)}}})
			paths, err := m.Setup(context.Background(), pod)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), `MountVolume.SetUp failed for volume "host" : `) {
					t.Errorf("got %q, want upstream's MountVolume.SetUp prefix", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if paths["host"] != tc.path {
				t.Errorf("path: got %q, want %q", paths["host"], tc.path)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// isDirAt checks that p is a directory.
func isDirAt(p string) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			t.Errorf("%s: got %v (%v), want a directory", p, fi, err)
		}
	}
}

// fileMode is the permission bits of p, symlinks followed.
func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestConfigMapVolume(t *testing.T) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"},
		Data:       map[string]string{"app.conf": "a=1", "other": "o"},
		BinaryData: map[string][]byte{"blob": {0, 1, 2, 255}},
	}
	m, _, _ := newTestVolumeManager(t, cm)
	ctx := context.Background()

	t.Run("all keys with defaultMode", func(t *testing.T) {
		pod := volumePod("uid-cm1", corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](0o600)}}})
		paths, err := m.Setup(ctx, pod)
		if err != nil {
			t.Fatal(err)
		}
		dir := paths["c"]
		if want := filepath.Join(m.podsDir, "uid-cm1", "volumes", "kubernetes.io~configmap", "c"); dir != want {
			t.Fatalf("path: got %q, want %q", dir, want)
		}
		if got := readVolumeFile(t, dir, "app.conf"); got != "a=1" {
			t.Errorf("app.conf: got %q, want a=1", got)
		}
		if got := readVolumeFile(t, dir, "blob"); got != "\x00\x01\x02\xff" {
			t.Errorf("blob: got %q, want binary data", got)
		}
		if got := fileMode(t, filepath.Join(dir, "other")); got != 0o600 {
			t.Errorf("mode: got %o, want 600", got)
		}
	})
	t.Run("items with modes", func(t *testing.T) {
		pod := volumePod("uid-cm2", corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"},
			Items: []corev1.KeyToPath{
				{Key: "app.conf", Path: "etc/app.conf", Mode: ptr.To[int32](0o400)},
				{Key: "blob", Path: "bin"},
			}}}})
		paths, err := m.Setup(ctx, pod)
		if err != nil {
			t.Fatal(err)
		}
		dir := paths["c"]
		if got := readVolumeFile(t, dir, "etc/app.conf"); got != "a=1" {
			t.Errorf("etc/app.conf: got %q, want a=1", got)
		}
		if got := fileMode(t, filepath.Join(dir, "etc/app.conf")); got != 0o400 {
			t.Errorf("item mode: got %o, want 400", got)
		}
		if got := fileMode(t, filepath.Join(dir, "bin")); got != 0o644 {
			t.Errorf("default mode: got %o, want 644", got)
		}
		if _, err := os.Lstat(filepath.Join(dir, "other")); !os.IsNotExist(err) {
			t.Errorf("key not in items was projected: %v", err)
		}
	})
	for _, tc := range []struct {
		name    string
		src     corev1.ConfigMapVolumeSource
		wantErr string
		want    int // files in the volume
	}{
		{"optional missing is empty", corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Optional: ptr.To(true)}, "", 0},
		{"missing", corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}},
			`MountVolume.SetUp failed for volume "c" : configmap "missing" not found`, 0},
		{"missing key", corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "nokey", Path: "x"}}},
			"configmap references non-existent config key: nokey", 0},
		{"optional missing key skipped", corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Optional: ptr.To(true),
			Items: []corev1.KeyToPath{{Key: "nokey", Path: "x"}, {Key: "other", Path: "y"}}}, "", 1},
		{"item escaping", corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "other", Path: "../x"}}},
			"must not contain '..'", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid := "uid-" + strings.ReplaceAll(tc.name, " ", "-")
			src := tc.src
			paths, err := m.Setup(ctx, volumePod(uid, corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &src}}))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ts, err := os.Readlink(filepath.Join(paths["c"], "..data"))
			if err != nil {
				t.Fatal(err)
			}
			files, err := listFiles(filepath.Join(paths["c"], ts))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != tc.want {
				t.Errorf("files: got %v, want %d", files, tc.want)
			}
		})
	}
}

func TestConfigMapVolumeUpdateReachesFile(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"k": "v1"}}
	m, cs, clk := newTestVolumeManager(t, cm)
	ctx := context.Background()
	pod := volumePod("uid-upd", corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}})
	paths, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["c"]
	if got := readVolumeFile(t, dir, "k"); got != "v1" {
		t.Fatalf("k: got %q, want v1", got)
	}
	before, _ := os.Readlink(filepath.Join(dir, "..data"))

	upd := cm.DeepCopy()
	upd.Data["k"] = "v2"
	if _, err := cs.CoreV1().ConfigMaps("default").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	gets := func() int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "get" && a.GetResource().Resource == "configmaps" {
				n++
			}
		}
		return n
	}
	n := gets()
	clk.Step(5 * time.Second)
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := gets(); got != n {
		t.Errorf("configmap GETs within the refresh interval: got %d, want %d", got, n)
	}
	if got := readVolumeFile(t, dir, "k"); got != "v1" {
		t.Errorf("k within the refresh interval: got %q, want v1", got)
	}

	clk.Step(6 * time.Second)
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, dir, "k"); got != "v2" {
		t.Errorf("k after the refresh interval: got %q, want v2", got)
	}
	after, _ := os.Readlink(filepath.Join(dir, "..data"))
	if after == before {
		t.Errorf("..data: still %q, want a new timestamped directory", after)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "k")); link != "..data/k" {
		t.Errorf("k: got link %q, want ..data/k", link)
	}
	if _, err := os.Stat(filepath.Join(dir, before)); !os.IsNotExist(err) {
		t.Errorf("old timestamped directory %s: got err %v, want removed", before, err)
	}

	// Unchanged content past the interval rewrites nothing.
	clk.Step(11 * time.Second)
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != after {
		t.Errorf("..data after a no-change refresh: got %q, want %q", again, after)
	}
}

func TestConfigMapVolumeFailureIsRetried(t *testing.T) {
	m, cs, clk := newTestVolumeManager(t)
	ctx := context.Background()
	pod := volumePod("uid-retry", corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "late"}}}})
	if _, err := m.Setup(ctx, pod); err == nil {
		t.Fatal("got no error for a missing configmap, want one")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The error is remembered until the retry interval passes.
	if _, err := m.Setup(ctx, pod); err == nil || !strings.Contains(err.Error(), `configmap "late" not found`) {
		t.Fatalf("before the retry interval: got %v, want the remembered not-found error", err)
	}
	clk.Step(volumeRetryInterval)
	paths, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatalf("after the retry interval: %v", err)
	}
	if got := readVolumeFile(t, paths["c"], "k"); got != "v" {
		t.Errorf("k: got %q, want v", got)
	}
}

func TestSecretVolumeOnTmpfs(t *testing.T) {
	requireRoot(t)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("hunter2"), "user": []byte("me")}}
	m, _, _ := newTestVolumeManager(t, sec)
	pod := volumePod("uid-sec", corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: "creds", DefaultMode: ptr.To[int32](0o400),
		Items: []corev1.KeyToPath{{Key: "password", Path: "pw"}, {Key: "user", Path: "user", Mode: ptr.To[int32](0o440)}}}}})
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["s"]
	if want := filepath.Join(m.podsDir, "uid-sec", "volumes", "kubernetes.io~secret", "s"); dir != want {
		t.Fatalf("path: got %q, want %q", dir, want)
	}
	if ok, _ := isTmpfsMount(t, dir); !ok {
		t.Fatalf("%s is not a tmpfs mount", dir)
	}
	if got := readVolumeFile(t, dir, "pw"); got != "hunter2" {
		t.Errorf("pw: got %q, want hunter2", got)
	}
	if got := fileMode(t, filepath.Join(dir, "pw")); got != 0o400 {
		t.Errorf("pw mode: got %o, want 400", got)
	}
	if got := fileMode(t, filepath.Join(dir, "user")); got != 0o440 {
		t.Errorf("user mode: got %o, want 440", got)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	realPods, _ := filepath.EvalSymlinks(m.podsDir)
	if mounts, _ := mountsUnder(realPods); len(mounts) != 0 {
		t.Errorf("mounts after Teardown: got %v, want none", mounts)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("secret dir after Teardown: got err %v, want not exist", err)
	}
}

func TestSecretVolumeMissing(t *testing.T) {
	m, _, _ := newTestVolumeManager(t)
	pod := volumePod("uid-nosec", corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}})
	_, err := m.Setup(context.Background(), pod)
	// Without root the tmpfs mount fails first; with root the GET does.
	if os.Geteuid() == 0 {
		if err == nil || err.Error() != `MountVolume.SetUp failed for volume "s" : secret "nope" not found` {
			t.Fatalf("got %v, want upstream's secret not found", err)
		}
	} else if err == nil {
		t.Fatal("got no error, want one")
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestDownwardAPIVolumePayload(t *testing.T) {
	pod := volumePod("uid-dw")
	pod.Labels = map[string]string{"tier": "web", "app": "a \"quoted\"\nvalue"}
	pod.Annotations = map[string]string{"b": "2", "a": "ünï"}
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")},
	}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}}}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	field := func(p string) *corev1.ObjectFieldSelector { return &corev1.ObjectFieldSelector{FieldPath: p} }
	res := func(c, r, div string) *corev1.ResourceFieldSelector {
		s := &corev1.ResourceFieldSelector{ContainerName: c, Resource: r}
		if div != "" {
			s.Divisor = resource.MustParse(div)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		item    corev1.DownwardAPIVolumeFile
		want    string
		wantErr string
	}{
		{name: "name", item: corev1.DownwardAPIVolumeFile{FieldRef: field("metadata.name")}, want: "web"},
		{name: "namespace", item: corev1.DownwardAPIVolumeFile{FieldRef: field("metadata.namespace")}, want: "default"},
		{name: "uid", item: corev1.DownwardAPIVolumeFile{FieldRef: field("metadata.uid")}, want: "uid-dw"},
		{name: "labels", item: corev1.DownwardAPIVolumeFile{FieldRef: field("metadata.labels")}, want: "app=\"a \\\"quoted\\\"\\nvalue\"\ntier=\"web\""},
		{name: "annotations", item: corev1.DownwardAPIVolumeFile{FieldRef: field("metadata.annotations")}, want: "a=\"ünï\"\nb=\"2\""},
		{name: "one label", item: corev1.DownwardAPIVolumeFile{FieldRef: field("metadata.labels['tier']")}, want: "web"},
		{name: "status field", item: corev1.DownwardAPIVolumeFile{FieldRef: field("status.podIP")}, wantErr: "unsupported fieldPath: status.podIP"},
		{name: "requests.cpu millicores", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("app", "requests.cpu", "1m")}, want: "250"},
		{name: "requests.cpu rounds up", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("app", "requests.cpu", "")}, want: "1"},
		{name: "requests.memory Mi", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("app", "requests.memory", "1Mi")}, want: "64"},
		{name: "limits.memory bytes", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("app", "limits.memory", "")}, want: "104857600"},
		{name: "limits.cpu unset is allocatable", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("app", "limits.cpu", "")}, want: "2"},
		{name: "init container limits.cpu", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("init", "limits.cpu", "")}, want: "2"},
		{name: "init container limits.cpu m", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("init", "limits.cpu", "1m")}, want: "1500"},
		{name: "unknown container", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("nope", "limits.cpu", "")}, wantErr: "container nope not found"},
		{name: "unknown resource", item: corev1.DownwardAPIVolumeFile{ResourceFieldRef: res("app", "limits.gpu", "")}, wantErr: "unsupported container resource : limits.gpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			item := tc.item
			item.Path = "f"
			got, err := downwardAPIPayload([]corev1.DownwardAPIVolumeFile{item}, 0o644, pod, alloc)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got["f"].Data) != tc.want {
				t.Errorf("got %q, want %q", got["f"].Data, tc.want)
			}
		})
	}
}

func TestDownwardAPIVolumeSetup(t *testing.T) {
	m, _, clk := newTestVolumeManager(t)
	m.nodeAllocatable = func() corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}
	}
	pod := volumePod("uid-dwv", corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}, Mode: ptr.To[int32](0o600)},
			{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
		}}}})
	pod.Labels = map[string]string{"v": "1"}
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["info"]
	if want := filepath.Join(m.podsDir, "uid-dwv", "volumes", "kubernetes.io~downward-api", "info"); dir != want {
		t.Fatalf("path: got %q, want %q", dir, want)
	}
	if got := readVolumeFile(t, dir, "mem"); got != "2048" {
		t.Errorf("mem: got %q, want 2048", got)
	}
	if got := fileMode(t, filepath.Join(dir, "labels")); got != 0o600 {
		t.Errorf("labels mode: got %o, want 600", got)
	}
	// A label change reaches the file at the next refresh.
	pod.Labels = map[string]string{"v": "2"}
	clk.Step(volumeRefreshInterval)
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if got := readVolumeFile(t, dir, "labels"); got != `v="2"` {
		t.Errorf("labels: got %q, want v=\"2\"", got)
	}
}

// projectedTestObjects are a configMap and a secret for projected volumes.
func projectedTestObjects() []runtime.Object {
	return []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"conf": "c"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "default"}, Data: map[string][]byte{"token": []byte("t")}},
	}
}

func TestProjectedVolumePayload(t *testing.T) {
	m, _, _ := newTestVolumeManager(t, projectedTestObjects()...)
	pod := volumePod("uid-pp")
	cmSrc := func(name string, optional bool) corev1.VolumeProjection {
		return corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: ptr.To(optional)}}
	}
	secSrc := func(name string, items ...corev1.KeyToPath) corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items}}
	}
	dwSrc := corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
		{Path: "podname", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}
	for _, tc := range []struct {
		name    string
		sources []corev1.VolumeProjection
		want    map[string]string
		wantErr string
	}{
		{"all three", []corev1.VolumeProjection{cmSrc("cfg", false), secSrc("sec", corev1.KeyToPath{Key: "token", Path: "auth/token"}), dwSrc},
			map[string]string{"conf": "c", "auth/token": "t", "podname": "web"}, ""},
		{"optional missing skipped", []corev1.VolumeProjection{cmSrc("missing", true), dwSrc}, map[string]string{"podname": "web"}, ""},
		{"missing configmap", []corev1.VolumeProjection{cmSrc("missing", false)}, nil, `configmap "missing" not found`},
		{"missing secret", []corev1.VolumeProjection{secSrc("nosec")}, nil, `secret "nosec" not found`},
		{"duplicate path", []corev1.VolumeProjection{cmSrc("cfg", false), cmSrc("cfg", false)}, nil, `duplicate path "conf"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.projectedPayload(context.Background(), pod, &corev1.ProjectedVolumeSource{Sources: tc.sources, DefaultMode: ptr.To[int32](0o440)})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr && !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d files, want %d", len(got), len(tc.want))
			}
			for p, data := range tc.want {
				if string(got[p].Data) != data || got[p].Mode != 0o440 {
					t.Errorf("%s: got %q mode %o, want %q mode 440", p, got[p].Data, got[p].Mode, data)
				}
			}
		})
	}
}

func TestProjectedVolumeSetup(t *testing.T) {
	requireRoot(t)
	m, _, _ := newTestVolumeManager(t, projectedTestObjects()...)
	pod := volumePod("uid-proj", corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}}})
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["all"]
	if want := filepath.Join(m.podsDir, "uid-proj", "volumes", "kubernetes.io~projected", "all"); dir != want {
		t.Fatalf("path: got %q, want %q", dir, want)
	}
	if ok, _ := isTmpfsMount(t, dir); !ok {
		t.Errorf("%s is not a tmpfs mount", dir)
	}
	for p, want := range map[string]string{"conf": "c", "token": "t", "ns": "default"} {
		if got := readVolumeFile(t, dir, p); got != want {
			t.Errorf("%s: got %q, want %q", p, got, want)
		}
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestVolumeUnsupportedType(t *testing.T) {
	m, _, _ := newTestVolumeManager(t)
	pod := volumePod("uid-nfs", corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		NFS: &corev1.NFSVolumeSource{Server: "nfs.example", Path: "/x"}}})
	_, err := m.Setup(context.Background(), pod)
	want := `MountVolume.SetUp failed for volume "data" : volume type nfs is not supported`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestVolumePersistentVolumeClaim(t *testing.T) {
	dir := t.TempDir()
	bound := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv1"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	pending := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "wait", Namespace: "default"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(dir, "pv1"), Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}}}
	m, _, _ := newTestVolumeManager(t, bound, pending, pv)
	for _, tc := range []struct {
		claim, want, err string
	}{
		{"data", filepath.Join(dir, "pv1"), ""},
		{"wait", "", `MountVolume.SetUp failed for volume "v" : persistentvolumeclaim "wait" is not bound (phase Pending)`},
		{"nope", "", `MountVolume.SetUp failed for volume "v" : persistentvolumeclaim "nope" not found`},
	} {
		pod := volumePod("uid-"+tc.claim, corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: tc.claim}}})
		paths, err := m.Setup(context.Background(), pod)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("claim %s: got %v, want %q", tc.claim, err, tc.err)
			}
			continue
		}
		if err != nil || paths["v"] != tc.want {
			t.Errorf("claim %s: got %v %v, want %s", tc.claim, paths, err, tc.want)
		}
		if st, err := os.Stat(tc.want); err != nil || !st.IsDir() {
			t.Errorf("claim %s: the hostPath directory was not created: %v", tc.claim, err)
		}
	}
}

func TestVolumeContainerMounts(t *testing.T) {
	base := t.TempDir()
	pods := filepath.Join(base, "pods", "uid", "volumes")
	data := filepath.Join(pods, "kubernetes.io~empty-dir", "data")
	cfg := filepath.Join(pods, "kubernetes.io~configmap", "cfg")
	host := filepath.Join(base, "host")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{data, cfg, host, outside} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "app.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(data, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app.conf", filepath.Join(cfg, "link")); err != nil {
		t.Fatal(err)
	}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		t.Fatal(err)
	}
	real := func(p string) string { return filepath.Join(realBase, strings.TrimPrefix(p, base)) }
	hostPaths := map[string]string{"data": data, "cfg": cfg, "host": host}
	prop := func(p corev1.MountPropagationMode) *corev1.MountPropagationMode { return &p }

	for _, tc := range []struct {
		name    string
		vm      corev1.VolumeMount
		want    Mount
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "plain", vm: corev1.VolumeMount{Name: "data", MountPath: "/data"},
			want: Mount{ContainerPath: "/data", HostPath: data, Propagation: "private"}},
		{name: "readOnly", vm: corev1.VolumeMount{Name: "host", MountPath: "/h", ReadOnly: true},
			want: Mount{ContainerPath: "/h", HostPath: host, ReadOnly: true, Propagation: "private"}},
		{name: "configmap always read-only", vm: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/cfg"},
			want: Mount{ContainerPath: "/etc/cfg", HostPath: cfg, ReadOnly: true, Propagation: "private"}},
		{name: "None", vm: corev1.VolumeMount{Name: "host", MountPath: "/h", MountPropagation: prop(corev1.MountPropagationNone)},
			want: Mount{ContainerPath: "/h", HostPath: host, Propagation: "private"}},
		{name: "HostToContainer", vm: corev1.VolumeMount{Name: "host", MountPath: "/h", MountPropagation: prop(corev1.MountPropagationHostToContainer)},
			want: Mount{ContainerPath: "/h", HostPath: host, Propagation: "rslave"}},
		{name: "Bidirectional", vm: corev1.VolumeMount{Name: "host", MountPath: "/h", MountPropagation: prop(corev1.MountPropagationBidirectional)},
			want: Mount{ContainerPath: "/h", HostPath: host, Propagation: "rshared"}},
		{name: "bad propagation", vm: corev1.VolumeMount{Name: "host", MountPath: "/h", MountPropagation: prop("Sideways")},
			wantErr: `invalid mount propagation mode "Sideways"`},
		{name: "subPath created", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "sub/dir"},
			want: Mount{ContainerPath: "/d", HostPath: real(filepath.Join(data, "sub/dir")), Propagation: "private"},
			check: func(t *testing.T) {
				if got := fileMode(t, filepath.Join(data, "sub/dir")); got != 0o777 {
					t.Errorf("subPath mode: got %o, want the volume's 777", got)
				}
			}},
		{name: "subPath file of a configmap", vm: corev1.VolumeMount{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "link"},
			want: Mount{ContainerPath: "/etc/app.conf", HostPath: real(filepath.Join(cfg, "app.conf")), ReadOnly: true, Propagation: "private"}},
		{name: "subPath absolute", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "/etc"},
			wantErr: "error SubPath `/etc` must not be an absolute path"},
		{name: "subPath backstep", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "a/../../x"},
			wantErr: "unable to provision SubPath `a/../../x`: must not contain '..'"},
		{name: "subPath symlink escape", vm: corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "escape"},
			wantErr: "not within volume path"},
		{name: "unknown volume", vm: corev1.VolumeMount{Name: "nope", MountPath: "/n"},
			wantErr: `cannot find volume "nope" to mount into container "app"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{tc.vm}}
			got, err := containerMounts(c, hostPaths)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// statGid is the group of p, symlinks not followed.
func statGid(t *testing.T, p string) (uint32, os.FileMode) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(p)
	return st.Gid, fi.Mode()
}

func TestEmptyDirVolumeFSGroup(t *testing.T) {
	requireRoot(t)
	m, _, _ := newTestVolumeManager(t)
	pod := volumePod("uid-fsg", corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](4321)}
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	gid, mode := statGid(t, paths["cache"])
	if gid != 4321 || mode&os.ModeSetgid == 0 || mode.Perm() != 0o777 {
		t.Errorf("emptyDir: got gid %d mode %v, want gid 4321, setgid, 0777", gid, mode)
	}
}

func TestConfigMapVolumeFSGroup(t *testing.T) {
	requireRoot(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	m, _, clk := newTestVolumeManager(t, cm)
	pod := volumePod("uid-fsgcm", corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptr.To[int32](0o400)}}})
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](4321)}
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	dir := paths["c"]
	ts, _ := os.Readlink(filepath.Join(dir, "..data"))
	for _, p := range []string{dir, filepath.Join(dir, ts), filepath.Join(dir, ts, "k"), filepath.Join(dir, "k"), filepath.Join(dir, "..data")} {
		if gid, _ := statGid(t, p); gid != 4321 {
			t.Errorf("%s: got gid %d, want 4321", p, gid)
		}
	}
	if _, mode := statGid(t, filepath.Join(dir, ts)); mode&os.ModeSetgid == 0 {
		t.Errorf("timestamped dir: got mode %v, want setgid", mode)
	}
	if got := fileMode(t, filepath.Join(dir, "k")); got != 0o440 {
		t.Errorf("k: got mode %o, want 440 (0400 plus the group's read)", got)
	}
	// The group's bits do not make every refresh a rewrite.
	clk.Step(volumeRefreshInterval)
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != ts {
		t.Errorf("..data after an unchanged refresh: got %q, want %q", again, ts)
	}
}

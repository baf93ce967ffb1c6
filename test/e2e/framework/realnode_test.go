//go:build e2e

package framework

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/image"
)

func TestRegistriesYAML(t *testing.T) {
	regs, err := image.ParseRegistries(registriesYAML("10.213.7.1:41234"))
	if err != nil {
		t.Fatalf("the image store rejects our registries.yaml: %v", err)
	}
	m, ok := regs.Mirrors["10.213.7.1:41234"]
	if !ok || len(m.Endpoints) != 1 || m.Endpoints[0] != "http://10.213.7.1:41234" {
		t.Errorf("got mirrors %+v, want 10.213.7.1:41234 -> [http://10.213.7.1:41234]", regs.Mirrors)
	}
}

func TestInCgroupRoot(t *testing.T) {
	tests := []struct {
		name, cgroup string
		want         bool
	}{
		{"v1 container below the root", "12:pids:/skiff-e2e-ab/pod1/c1\n11:memory:/user.slice\n", true},
		{"v2 root itself", "0::/skiff-e2e-ab\n", true},
		{"another root with the same prefix", "12:pids:/skiff-e2e-abc/pod1\n", false},
		{"elsewhere", "12:pids:/user.slice\n0::/init.scope\n", false},
		{"root as a lower component", "12:pids:/x/skiff-e2e-ab\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := inCgroupRoot(tc.cgroup, "skiff-e2e-ab"); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func needRealNodeTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			SkipOrFail(t, "needs %s", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		SkipOrFail(t, "needs /bin/busybox")
	}
}

// TestNodeNet checks the namespace's plumbing: the node reaches the host
// end and has a default route through it, and remove leaves nothing.
func TestNodeNet(t *testing.T) {
	needRealNodeTools(t)
	n, err := createNodeNet(t.Context(), "t"+strconv.Itoa(os.Getpid()%100000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.remove() })
	if n.Subnet < 1 || n.Subnet > 250 || n.Inode == 0 {
		t.Errorf("got subnet %d inode %d, want 1..250 and the namespace's inode", n.Subnet, n.Inode)
	}
	nsenter := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("in %s: %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nsenter("/bin/busybox", "ping", "-c", "1", "-W", "5", n.HostIP())
	if out := nsenter("ip", "route", "show", "default"); !strings.Contains(out, "via "+n.HostIP()+" dev eth0") {
		t.Errorf("default route in the namespace: got %q, want via %s dev eth0", out, n.HostIP())
	}
	if err := n.remove(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{n.Path(), filepath.Join("/sys/class/net", n.HostIf)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after remove: got %v, want it gone", p, err)
		}
	}
	if err := n.remove(); err != nil {
		t.Errorf("second remove: got %v, want nil", err)
	}
}

// TestRemoveRecord leaves behind what a crashed real node would (a process
// in its cgroups, one in its namespace, one naming its data directory,
// nested cgroups) and checks that removeRecord clears all of it.
func TestRemoveRecord(t *testing.T) {
	needRealNodeTools(t)
	id := "r" + strconv.Itoa(os.Getpid()%100000)
	n, err := createNodeNet(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	rec := record{Net: n, CgroupRoot: dirPrefix + id, DataDir: filepath.Join(t.TempDir(), "data")}
	t.Cleanup(func() { _ = removeRecord(rec) })

	cgroup := filepath.Join(cgroupCheckRoot, "pids", rec.CgroupRoot, "pod", "ctr")
	if err := os.MkdirAll(cgroup, 0o755); err != nil {
		t.Skipf("no pids cgroup hierarchy to test with: %v", err)
	}
	start := func(cmd *exec.Cmd) *exec.Cmd {
		t.Helper()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
		return cmd
	}
	inCgroup := start(exec.Command("/bin/busybox", "sleep", "3600"))
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(inCgroup.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	inNetns := start(exec.Command("nsenter", "--net="+n.Path(), "--", "/bin/busybox", "sleep", "3600"))
	// A loop, so that sh itself (whose $0 names the directory) keeps
	// running rather than exec'ing its command.
	namesDir := start(exec.Command("/bin/busybox", "sh", "-c", "while :; do sleep 1; done", rec.DataDir))
	// nsenter execs sleep once it has entered the namespace.
	deadline := time.Now().Add(5 * time.Second)
	for len(nodeProcesses(rec, n.Inode)) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := nodeProcesses(rec, n.Inode); len(got) < 3 {
		t.Fatalf("node processes before removal: got %v, want the 3 started", got)
	}

	if err := removeRecord(rec); err != nil {
		t.Fatal(err)
	}
	for name, cmd := range map[string]*exec.Cmd{"in cgroup": inCgroup, "in namespace": inNetns, "naming data dir": namesDir} {
		if state, _, err := procStat(cmd.Process.Pid); err == nil && state != "Z" {
			t.Errorf("process %s (pid %d) still runs", name, cmd.Process.Pid)
		}
	}
	if dirs := cgroupDirs(rec.CgroupRoot); len(dirs) != 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	if _, err := os.Stat(n.Path()); !os.IsNotExist(err) {
		t.Errorf("namespace %s: got %v, want it gone", n.Name, err)
	}
}

// TestRemoveStaleRealNode checks that RemoveStale's hook finds the record
// of a crashed run and removes its namespace.
func TestRemoveStaleRealNode(t *testing.T) {
	needRealNodeTools(t)
	dir := t.TempDir()
	r, err := newRealNode(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.remove() })
	if b, err := os.ReadFile(filepath.Join(dir, registriesFile)); err != nil || !strings.Contains(string(b), "http://"+r.regAddr) {
		t.Errorf("registries.yaml: got %q (%v), want a plain-HTTP mirror of %s", b, err, r.regAddr)
	}
	if err := removeStaleRealNode(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Net.Path()); !os.IsNotExist(err) {
		t.Errorf("namespace %s: got %v, want it gone", r.Net.Name, err)
	}
	if err := removeStaleRealNode(t.TempDir()); err != nil {
		t.Errorf("directory without a real node: got %v, want nil", err)
	}
}

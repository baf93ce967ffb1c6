package kubelet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestStatsNanoCores(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur uint64
		elapsed   time.Duration
		want      uint64
		wantOK    bool
	}{
		{"one core for ten seconds", 5e9, 15e9, 10 * time.Second, 1e9, true},
		{"a quarter core", 0, 250e6, time.Second, 250e6, true},
		{"idle", 7, 7, 10 * time.Second, 0, true},
		{"two cores over half a second", 1e9, 2e9, 500 * time.Millisecond, 2e9, true},
		{"counter reset", 9e9, 1e9, time.Second, 0, false},
		{"no time passed", 1, 2, 0, 0, false},
	} {
		got, ok := nanoCores(tc.prev, tc.cur, tc.elapsed)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: got %d %v, want %d %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

const (
	v1MemoryStat = "cache 4096\nrss 1000\ninactive_file 7\ntotal_cache 409600\ntotal_rss 1048576\ntotal_inactive_file 204800\ntotal_active_file 8192\n"
	v2MemoryStat = "anon 2097152\nfile 409600\nkernel 1000\ninactive_anon 0\nactive_anon 2097152\ninactive_file 102400\nactive_file 307200\n"
)

func TestStatsMemoryFigures(t *testing.T) {
	for _, tc := range []struct {
		name             string
		usage            uint64
		stat             string
		inactive, rssKey string
		wantWS, wantRSS  uint64
	}{
		{"v1 less inactive file", 3 << 20, v1MemoryStat, "total_inactive_file", "total_rss", 3<<20 - 204800, 1048576},
		{"v2 less inactive file", 4 << 20, v2MemoryStat, "inactive_file", "anon", 4<<20 - 102400, 2097152},
		{"inactive above usage is zero", 1000, v1MemoryStat, "total_inactive_file", "total_rss", 0, 1048576},
		{"no memory.stat", 5000, "", "inactive_file", "anon", 5000, 0},
		{"v1 keys not taken from the non-total lines", 300000, "inactive_file 7\nrss 5\n", "total_inactive_file", "total_rss", 300000, 0},
	} {
		ws, rss := memoryFigures(tc.usage, []byte(tc.stat), tc.inactive, tc.rssKey)
		if ws != tc.wantWS || rss != tc.wantRSS {
			t.Errorf("%s: got working set %d rss %d, want %d %d", tc.name, ws, rss, tc.wantWS, tc.wantRSS)
		}
	}
}

func TestStatsKeyedValue(t *testing.T) {
	cpuStat := "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 0\n"
	for _, tc := range []struct {
		data, key string
		want      uint64
		wantOK    bool
	}{
		{cpuStat, "usage_usec", 123456, true},
		{cpuStat, "system_usec", 23456, true},
		{cpuStat, "usage", 0, false},
		{"usage_usec x\n", "usage_usec", 0, false},
		{"", "usage_usec", 0, false},
	} {
		got, ok := keyedValue([]byte(tc.data), tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%q in %q: got %d %v, want %d %v", tc.key, tc.data, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestStatsProcStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       uint64
		wantOK     bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"busy time without idle and iowait", "cpu  100 20 30 5000 40 5 6 7 0 0\ncpu0 50 10 15 2500 20 2 3 3 0 0\nbtime 1700000000\n",
			(100 + 20 + 30 + 5 + 6 + 7) * 10_000_000, true},
		{"old kernel without steal", "cpu  1 2 3 4 5 6 7\n", 19 * 10_000_000, true},
		{"too few fields", "cpu  1 1 1 100\ncpu0 1\n", 0, false},
		{"steal field", "cpu  1 0 0 0 0 0 0 2\n", 3 * 10_000_000, true},
		{"no cpu line", "intr 1 2 3\n", 0, false},
	} {
		got, ok := procStatCPU([]byte(tc.data))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: got %d %v, want %d %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestStatsParseMeminfo(t *testing.T) {
	const full = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    5000000 kB\nBuffers:          100000 kB\nAnonPages:       2000000 kB\nHugePages_Total:       0\n"
	for _, tc := range []struct {
		name, data string
		want       meminfo
		wantOK     bool
	}{
		{"full", full, meminfo{usage: 7000000 * 1024, workingSet: 3000000 * 1024, rss: 2000000 * 1024, available: 5000000 * 1024}, true},
		{"no MemAvailable", "MemTotal: 10 kB\nMemFree: 5 kB\n", meminfo{}, false},
		{"available above total", "MemTotal: 10 kB\nMemFree: 20 kB\nMemAvailable: 20 kB\n", meminfo{available: 20 * 1024}, true},
	} {
		got, ok := parseMeminfo([]byte(tc.data))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestStatsPodsToSample(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sandboxes := []Sandbox{
		{ID: "s1", PodUID: "u1", Namespace: "b", Name: "web", State: SandboxReady, CreatedAt: t0},
		{ID: "s2", PodUID: "u2", Namespace: "a", Name: "db", State: SandboxReady, CreatedAt: t0},
		{ID: "s3", PodUID: "u3", Namespace: "a", Name: "gone", State: SandboxNotReady, CreatedAt: t0},
	}
	containers := []Container{
		{ID: "c1", PodUID: "u1", Name: "side", State: ContainerRunning},
		{ID: "c2", PodUID: "u1", Name: "app", State: ContainerRunning},
		{ID: "c3", PodUID: "u1", Name: "init", State: ContainerExited},
		{ID: "c4", PodUID: "u3", Name: "app", State: ContainerRunning},
	}
	got := podsToSample(sandboxes, containers)
	var names []string
	for _, p := range got {
		n := p.namespace + "/" + p.name + ":"
		for _, c := range p.containers {
			n += c.Name + ","
		}
		names = append(names, n)
	}
	want := []string{"a/db:", "b/web:app,side,"}
	if len(names) != len(want) || names[0] != want[0] || names[1] != want[1] {
		t.Errorf("got %q, want %q", names, want)
	}
}

// statsRuntime lists fixed sandboxes and containers.
type statsRuntime struct {
	Runtime
	sandboxes  []Sandbox
	containers []Container
	err        error
}

func (r *statsRuntime) ListSandboxes(context.Context) ([]Sandbox, error)    { return r.sandboxes, r.err }
func (r *statsRuntime) ListContainers(context.Context) ([]Container, error) { return r.containers, nil }

// fakeCgroups writes a cgroup tree under a temp dir, v1 or v2 layout.
type fakeCgroups struct {
	t     *testing.T
	mount string
	proc  string
	v2    bool
	mu    sync.Mutex
	clock time.Time
}

func newFakeCgroups(t *testing.T, v2 bool) *fakeCgroups {
	dir := t.TempDir()
	f := &fakeCgroups{t: t, mount: filepath.Join(dir, "cgroup"), proc: filepath.Join(dir, "proc"), v2: v2, clock: time.Unix(2000, 0)}
	if v2 {
		f.write(filepath.Join(f.mount, "cgroup.controllers"), "cpu memory\n")
	} else {
		f.write(filepath.Join(f.mount, "cpuacct", "cpuacct.usage"), "0\n")
	}
	f.setNode(0)
	return f
}

func (f *fakeCgroups) write(p, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// set writes a cgroup's cumulative CPU (ns) and memory usage.
func (f *fakeCgroups) set(dir string, cpuNanos, usage uint64) {
	if f.v2 {
		base := filepath.Join(f.mount, dir)
		f.write(filepath.Join(base, "cpu.stat"), "usage_usec "+strconv.FormatUint(cpuNanos/1000, 10)+"\nuser_usec 1\n")
		f.write(filepath.Join(base, "memory.current"), strconv.FormatUint(usage, 10)+"\n")
		f.write(filepath.Join(base, "memory.stat"), v2MemoryStat)
		return
	}
	f.write(filepath.Join(f.mount, "cpuacct", dir, "cpuacct.usage"), strconv.FormatUint(cpuNanos, 10)+"\n")
	f.write(filepath.Join(f.mount, "memory", dir, "memory.usage_in_bytes"), strconv.FormatUint(usage, 10)+"\n")
	f.write(filepath.Join(f.mount, "memory", dir, "memory.stat"), v1MemoryStat)
}

// setNode writes /proc/stat with busy jiffies and a fixed /proc/meminfo.
func (f *fakeCgroups) setNode(jiffies uint64) {
	f.write(filepath.Join(f.proc, "stat"), "cpu  "+strconv.FormatUint(jiffies, 10)+" 0 0 900 0 0 0 0 0 0\nbtime 1700000000\n")
	f.write(filepath.Join(f.proc, "meminfo"), "MemTotal: 4000 kB\nMemFree: 1000 kB\nMemAvailable: 3000 kB\nAnonPages: 500 kB\n")
}

func (f *fakeCgroups) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *fakeCgroups) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

func TestStatsSummaryFromCgroups(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run("v2="+strconv.FormatBool(v2), func(t *testing.T) {
			f := newFakeCgroups(t, v2)
			rt := &statsRuntime{
				sandboxes: []Sandbox{{ID: "sb", PodUID: types.UID("uid1"), Namespace: "ns", Name: "busy", State: SandboxReady, CreatedAt: time.Unix(1500, 0)}},
				containers: []Container{{ID: "cid1", PodUID: "uid1", Name: "burn", State: ContainerRunning, StartedAt: time.Unix(1600, 0)},
					{ID: "cid0", PodUID: "uid1", Name: "old", State: ContainerExited}},
			}
			pod := "/k8s/kubepods/burstable/poduid1"
			f.set(pod, 1e9, 3<<20)
			f.set(pod+"/cid1", 1e9, 3<<20)
			s := NewStats(StatsConfig{NodeName: "n1", CgroupRoot: "k8s", Runtime: rt, CgroupMount: f.mount, Proc: f.proc,
				Logger: testLogger(t), Now: f.now})
			if err := s.sample(context.Background()); err != nil {
				t.Fatal(err)
			}
			sum, _ := s.Summary(context.Background())
			if len(sum.Pods) != 1 || len(sum.Pods[0].Containers) != 1 {
				t.Fatalf("got %d pods, want 1 pod with 1 container: %+v", len(sum.Pods), sum.Pods)
			}
			if c := sum.Pods[0].Containers[0].CPU; c == nil || c.UsageNanoCores != nil || *c.UsageCoreNanoSeconds != 1e9 {
				t.Errorf("first sample: got cpu %+v, want 1e9 ns and no rate", c)
			}
			// Half a core for ten seconds; the node busy for 20 s of CPU.
			f.advance(10 * time.Second)
			f.set(pod, 6e9, 3<<20)
			f.set(pod+"/cid1", 6e9, 3<<20)
			f.setNode(2000)
			if err := s.sample(context.Background()); err != nil {
				t.Fatal(err)
			}
			sum, err := s.Summary(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p := sum.Pods[0]
			if p.PodRef != (PodReference{Name: "busy", Namespace: "ns", UID: "uid1"}) || !p.StartTime.Equal(ptrTime(time.Unix(1500, 0))) {
				t.Errorf("got podRef %+v start %v, want ns/busy uid1 at 1500", p.PodRef, p.StartTime)
			}
			c := p.Containers[0]
			if c.Name != "burn" || c.CPU == nil || c.CPU.UsageNanoCores == nil || *c.CPU.UsageNanoCores != 5e8 {
				t.Errorf("got container %q cpu %+v, want burn at 5e8 nanocores", c.Name, c.CPU)
			}
			inactive := uint64(204800)
			if v2 {
				inactive = 102400
			}
			if m := c.Memory; m == nil || *m.UsageBytes != 3<<20 || *m.WorkingSetBytes != 3<<20-inactive {
				t.Errorf("got memory %+v, want usage %d working set %d", m, 3<<20, 3<<20-inactive)
			}
			if p.CPU == nil || p.CPU.UsageNanoCores == nil || *p.CPU.UsageNanoCores != 5e8 {
				t.Errorf("got pod cpu %+v, want 5e8 nanocores", p.CPU)
			}
			n := sum.Node
			if n.NodeName != "n1" || n.CPU == nil || n.CPU.UsageNanoCores == nil || *n.CPU.UsageNanoCores != 2e9 {
				t.Errorf("got node %q cpu %+v, want n1 at 2e9 nanocores (20 s busy in 10 s)", n.NodeName, n.CPU)
			}
			if n.Memory == nil || *n.Memory.WorkingSetBytes != 1000*1024 || *n.Memory.AvailableBytes != 3000*1024 {
				t.Errorf("got node memory %+v, want working set 1000 KiB, available 3000 KiB", n.Memory)
			}
			if !n.StartTime.Equal(ptrTime(time.Unix(1700000000, 0))) {
				t.Errorf("got node start %v, want btime", n.StartTime)
			}
		})
	}
}

func ptrTime(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

func TestStatsSummaryEndpoint(t *testing.T) {
	f := newFakeCgroups(t, false)
	rt := &statsRuntime{sandboxes: []Sandbox{{ID: "sb", PodUID: "u9", Namespace: "default", Name: "p", State: SandboxReady}},
		containers: []Container{{ID: "c9", PodUID: "u9", Name: "app", State: ContainerRunning}}}
	f.set("/r/kubepods/besteffort/podu9", 10, 100)
	f.set("/r/kubepods/besteffort/podu9/c9", 10, 100)
	stats := NewStats(StatsConfig{NodeName: "n", CgroupRoot: "r", Runtime: rt, CgroupMount: f.mount, Proc: f.proc, Logger: testLogger(t), Now: f.now})
	ca := newTestCA(t)
	for _, tc := range []struct {
		name  string
		stats *Stats
		user  string
		code  int
	}{
		{"served", stats, APIServerClientUser, http.StatusOK},
		{"no stats source", nil, APIServerClientUser, http.StatusNotFound},
		{"other user", stats, "someone", http.StatusForbidden},
	} {
		srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:10250", Runtime: rt, ClientCA: ca.pool(), Stats: tc.stats,
			Pods: func(context.Context, string, string) (*corev1.Pod, error) { return nil, nil }, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(srv.Handler())
		ts.TLS = srv.TLSConfig()
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.StartTLS()
		cert := ca.client(t, tc.user)
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}, Timeout: 10 * time.Second}
		resp, err := cl.Get(ts.URL + "/stats/summary?only_cpu_and_memory=true")
		if err != nil {
			ts.Close()
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: got %d %s, want %d", tc.name, resp.StatusCode, body, tc.code)
			continue
		}
		if tc.code != http.StatusOK {
			continue
		}
		// Upstream's field names, as metrics-server decodes them.
		var raw struct {
			Node struct {
				NodeName string `json:"nodeName"`
				Memory   struct {
					WorkingSetBytes *uint64 `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"node"`
			Pods []struct {
				PodRef struct {
					Name, Namespace string
				} `json:"podRef"`
				Containers []struct {
					Name string `json:"name"`
					CPU  struct {
						UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds"`
					} `json:"cpu"`
				} `json:"containers"`
			} `json:"pods"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("%s: %v in %s", tc.name, err, body)
		}
		if raw.Node.NodeName != "n" || raw.Node.Memory.WorkingSetBytes == nil || len(raw.Pods) != 1 ||
			raw.Pods[0].PodRef.Name != "p" || len(raw.Pods[0].Containers) != 1 || raw.Pods[0].Containers[0].CPU.UsageCoreNanoSeconds == nil ||
			*raw.Pods[0].Containers[0].CPU.UsageCoreNanoSeconds != 10 {
			t.Errorf("%s: got %s, want node n and pod p with container app at 10 ns", tc.name, body)
		}
	}
}

func TestStatsRuntimeFailure(t *testing.T) {
	f := newFakeCgroups(t, true)
	rt := &statsRuntime{err: errors.New("runtime down")}
	s := NewStats(StatsConfig{NodeName: "n", CgroupRoot: "r", Runtime: rt, CgroupMount: f.mount, Proc: f.proc, Logger: testLogger(t), Now: f.now})
	if sum, err := s.Summary(t.Context()); err == nil || !s.failing {
		t.Fatalf("runtime failing: got %+v, %v, want an error and the failure remembered", sum, err)
	}
	rt.err = nil
	sum, err := s.Summary(t.Context())
	if err != nil || sum.Node.NodeName != "n" || len(sum.Pods) != 0 || s.failing {
		t.Errorf("runtime back: got %+v, %v, want node n without pods", sum, err)
	}
	// A later failure keeps the last summary.
	rt.err = errors.New("down again")
	if err := s.sample(t.Context()); err == nil {
		t.Error("sample with the runtime failing: got no error")
	}
	if sum, err := s.Summary(t.Context()); err != nil || sum == nil {
		t.Errorf("after a failed sample: got %v, %v, want the last summary", sum, err)
	}
}

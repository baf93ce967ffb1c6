package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The summary API (GET /stats/summary on the kubelet server), as
// upstream's kubelet serves it for metrics-server: the node's and every
// running pod's and container's CPU and memory, read from cgroups. CPU
// usage in cores is a rate, so a sampling loop reads every cgroup each
// housekeeping interval, as cAdvisor does, and the rate is the difference
// between the last two samples of a cgroup. The handler answers with the
// latest snapshot.
//
// Only the subset of upstream's stats/v1alpha1 types that metrics-server
// and kubectl top use is declared here, with upstream's JSON names
// (k8s.io/kubelet is not a dependency).

// Summary is the answer of /stats/summary.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats are the node's own figures.
type NodeStats struct {
	NodeName  string       `json:"nodeName"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// PodStats are one pod's figures and its containers'.
type PodStats struct {
	PodRef     PodReference     `json:"podRef"`
	StartTime  metav1.Time      `json:"startTime"`
	Containers []ContainerStats `json:"containers"`
	CPU        *CPUStats        `json:"cpu,omitempty"`
	Memory     *MemoryStats     `json:"memory,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// ContainerStats are one container's figures.
type ContainerStats struct {
	Name      string       `json:"name"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
}

// CPUStats are CPU usage: a rate over the last sampling interval in
// billionths of a core, and the cumulative time.
type CPUStats struct {
	Time                 metav1.Time `json:"time"`
	UsageNanoCores       *uint64     `json:"usageNanoCores,omitempty"`
	UsageCoreNanoSeconds *uint64     `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats are memory usage in bytes. The working set is usage less
// the inactive file cache, what the kernel cannot easily reclaim; it is
// the figure kubectl top and eviction use.
type MemoryStats struct {
	Time            metav1.Time `json:"time"`
	AvailableBytes  *uint64     `json:"availableBytes,omitempty"`
	UsageBytes      *uint64     `json:"usageBytes,omitempty"`
	WorkingSetBytes *uint64     `json:"workingSetBytes,omitempty"`
	RSSBytes        *uint64     `json:"rssBytes,omitempty"`
}

// DefaultHousekeepingInterval is how often cgroups are sampled, as
// cAdvisor's housekeeping in upstream's kubelet (10 s).
const DefaultHousekeepingInterval = 10 * time.Second

// StatsConfig configures a Stats sampler.
type StatsConfig struct {
	NodeName string
	// CgroupRoot is the runtime's cgroup root, relative to each
	// hierarchy ("skiff"): pods are under <root>/kubepods.
	CgroupRoot string
	// Runtime names the pods and containers whose cgroups are read.
	Runtime Runtime
	// Interval is the sampling period (DefaultHousekeepingInterval).
	Interval time.Duration
	// CgroupMount is where the cgroup hierarchies are mounted
	// (/sys/fs/cgroup) and Proc where procfs is (/proc); tests change them.
	CgroupMount, Proc string
	Logger            *slog.Logger
	Now               func() time.Time
}

// Stats samples the cgroups of a node's pods and serves the summary API.
// Build it with NewStats and run Run; Summary is safe for concurrent use.
type Stats struct {
	cfg StatsConfig
	log *slog.Logger
	v2  bool

	mu sync.Mutex
	// prev holds the last sample of each cgroup (relative path, "" for
	// the node) for the CPU rate.
	prev map[string]cgroupSample
	// latest is the last summary built; nil before the first sample.
	latest *Summary
	// bootTime is the node's start.
	bootTime time.Time
	// failing is set while sampling fails, so it is logged once.
	failing bool
}

// NewStats returns a sampler for the node's cgroups. It reads nothing yet.
func NewStats(cfg StatsConfig) *Stats {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultHousekeepingInterval
	}
	if cfg.CgroupMount == "" {
		cfg.CgroupMount = "/sys/fs/cgroup"
	}
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	_, err := os.Stat(filepath.Join(cfg.CgroupMount, "cgroup.controllers"))
	s := &Stats{cfg: cfg, log: cfg.Logger.With("component", "kubelet-stats"), v2: err == nil, prev: map[string]cgroupSample{}}
	s.bootTime = bootTime(cfg.Proc, cfg.Now())
	return s
}

// Run samples every interval until ctx ends: once at once, and again one
// second later so a rate is known soon after start.
func (s *Stats) Run(ctx context.Context) error {
	s.sample(ctx)
	first := time.NewTimer(time.Second)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-first.C:
	}
	s.sample(ctx)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sample(ctx)
		}
	}
}

// Summary returns the latest summary, sampling now when there is none
// yet.
func (s *Stats) Summary(ctx context.Context) (*Summary, error) {
	s.mu.Lock()
	latest := s.latest
	s.mu.Unlock()
	if latest != nil {
		return latest, nil
	}
	if err := s.sample(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest, nil
}

// PodMemoryUsage is each pod's memory working set by UID from the latest
// sample, or nil before the first.
func (s *Stats) PodMemoryUsage(ctx context.Context) map[types.UID]uint64 {
	sum, err := s.Summary(ctx)
	if err != nil || sum == nil {
		return nil
	}
	out := make(map[types.UID]uint64, len(sum.Pods))
	for _, p := range sum.Pods {
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			out[types.UID(p.PodRef.UID)] = *p.Memory.WorkingSetBytes
		}
	}
	return out
}

// sample reads every cgroup once and stores the summary built from it.
func (s *Stats) sample(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Interval)
	defer cancel()
	sandboxes, err := s.cfg.Runtime.ListSandboxes(ctx)
	if err != nil {
		return s.failed(fmt.Errorf("list sandboxes: %w", err))
	}
	containers, err := s.cfg.Runtime.ListContainers(ctx)
	if err != nil {
		return s.failed(fmt.Errorf("list containers: %w", err))
	}
	s.failed(nil)
	now := s.cfg.Now()
	node := s.readNode(now)
	pods := podsToSample(sandboxes, containers)

	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{"": true}
	sum := &Summary{Node: NodeStats{NodeName: s.cfg.NodeName, StartTime: metav1.NewTime(s.bootTime)}, Pods: []PodStats{}}
	if node.ok {
		sum.Node.CPU = cpuStats(s.prev[""], node.cgroupSample, s.prev[""].ok)
		sum.Node.Memory = &MemoryStats{Time: metav1.NewTime(now), AvailableBytes: u64(node.available),
			UsageBytes: u64(node.usage), WorkingSetBytes: u64(node.workingSet), RSSBytes: u64(node.rss)}
		s.prev[""] = node.cgroupSample
	}
	for _, p := range pods {
		podDir := s.podCgroup(p.uid)
		if podDir == "" {
			continue
		}
		ps := PodStats{PodRef: PodReference{Name: p.name, Namespace: p.namespace, UID: string(p.uid)},
			StartTime: metav1.NewTime(p.start), Containers: []ContainerStats{}}
		if smp, ok := s.readCgroup(podDir, now); ok {
			ps.CPU = cpuStats(s.prev[podDir], smp, s.prev[podDir].ok)
			ps.Memory = memoryStats(smp)
			s.prev[podDir], seen[podDir] = smp, true
		}
		for _, c := range p.containers {
			dir := path.Join(podDir, c.ID)
			cs := ContainerStats{Name: c.Name, StartTime: metav1.NewTime(c.StartedAt)}
			if smp, ok := s.readCgroup(dir, now); ok {
				cs.CPU = cpuStats(s.prev[dir], smp, s.prev[dir].ok)
				cs.Memory = memoryStats(smp)
				s.prev[dir], seen[dir] = smp, true
			}
			ps.Containers = append(ps.Containers, cs)
		}
		sum.Pods = append(sum.Pods, ps)
	}
	for k := range s.prev {
		if !seen[k] {
			delete(s.prev, k)
		}
	}
	s.latest = sum
	return nil
}

// failed logs a sampling failure once, not every interval, and its end;
// it returns err.
func (s *Stats) failed(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil && !s.failing:
		s.log.Warn("stats sampling failed; the summary API keeps the last figures", "err", err)
	case err == nil && s.failing:
		s.log.Info("stats sampling works again")
	}
	s.failing = err != nil
	return err
}

// sampledPod is a pod with a ready sandbox and its running containers.
type sampledPod struct {
	uid             types.UID
	namespace, name string
	start           time.Time
	containers      []Container
}

// podsToSample picks the pods whose cgroups are read: those with a ready
// sandbox, each with its running containers, ordered by namespace and
// name.
func podsToSample(sandboxes []Sandbox, containers []Container) []sampledPod {
	byUID := map[types.UID]*sampledPod{}
	var out []*sampledPod
	for _, sb := range sandboxes {
		if sb.State != SandboxReady {
			continue
		}
		if p := byUID[sb.PodUID]; p != nil {
			if sb.CreatedAt.After(p.start) {
				p.start = sb.CreatedAt
			}
			continue
		}
		p := &sampledPod{uid: sb.PodUID, namespace: sb.Namespace, name: sb.Name, start: sb.CreatedAt}
		byUID[sb.PodUID] = p
		out = append(out, p)
	}
	for _, c := range containers {
		if p := byUID[c.PodUID]; p != nil && c.State == ContainerRunning {
			p.containers = append(p.containers, c)
		}
	}
	res := make([]sampledPod, 0, len(out))
	for _, p := range out {
		sort.Slice(p.containers, func(i, j int) bool { return p.containers[i].Name < p.containers[j].Name })
		res = append(res, *p)
	}
	sort.Slice(res, func(i, j int) bool {
		if res[i].namespace != res[j].namespace {
			return res[i].namespace < res[j].namespace
		}
		return res[i].name < res[j].name
	})
	return res
}

// podCgroup finds the pod's cgroup, relative to the hierarchies, under
// any of the QoS parents the kubelet places pods in; "" when it has none.
func (s *Stats) podCgroup(uid types.UID) string {
	for _, qos := range []string{"kubepods", "kubepods/burstable", "kubepods/besteffort"} {
		dir := path.Join("/", s.cfg.CgroupRoot, qos, "pod"+string(uid))
		if _, err := os.Stat(s.memoryPath(dir)); err == nil {
			return dir
		}
	}
	return ""
}

// memoryPath is the memory hierarchy's directory of a cgroup.
func (s *Stats) memoryPath(dir string) string {
	if s.v2 {
		return filepath.Join(s.cfg.CgroupMount, dir)
	}
	return filepath.Join(s.cfg.CgroupMount, "memory", dir)
}

// cgroupSample is one reading of a cgroup (or of the node).
type cgroupSample struct {
	ok bool
	at time.Time
	// cpu is the cumulative CPU time in nanoseconds.
	cpu                    uint64
	usage, workingSet, rss uint64
}

// readCgroup reads a cgroup's CPU and memory, v1 or v2.
func (s *Stats) readCgroup(dir string, now time.Time) (cgroupSample, bool) {
	smp := cgroupSample{at: now}
	if s.v2 {
		base := filepath.Join(s.cfg.CgroupMount, dir)
		cpu, err := os.ReadFile(filepath.Join(base, "cpu.stat"))
		if err != nil {
			return smp, false
		}
		usec, ok := keyedValue(cpu, "usage_usec")
		if !ok {
			return smp, false
		}
		smp.cpu = usec * 1000
		cur, err := readUint(filepath.Join(base, "memory.current"))
		if err != nil {
			return smp, false
		}
		stat, _ := os.ReadFile(filepath.Join(base, "memory.stat"))
		smp.usage = cur
		smp.workingSet, smp.rss = memoryFigures(cur, stat, "inactive_file", "anon")
		smp.ok = true
		return smp, true
	}
	cpu, err := readUint(filepath.Join(s.cfg.CgroupMount, "cpuacct", dir, "cpuacct.usage"))
	if err != nil {
		return smp, false
	}
	smp.cpu = cpu
	mem := filepath.Join(s.cfg.CgroupMount, "memory", dir)
	usage, err := readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	if err != nil {
		return smp, false
	}
	stat, _ := os.ReadFile(filepath.Join(mem, "memory.stat"))
	smp.usage = usage
	smp.workingSet, smp.rss = memoryFigures(usage, stat, "total_inactive_file", "total_rss")
	smp.ok = true
	return smp, true
}

// nodeSample is the node's reading: CPU from /proc/stat, memory from
// /proc/meminfo.
type nodeSample struct {
	cgroupSample
	available uint64
}

func (s *Stats) readNode(now time.Time) nodeSample {
	n := nodeSample{cgroupSample: cgroupSample{at: now}}
	stat, err := os.ReadFile(filepath.Join(s.cfg.Proc, "stat"))
	if err != nil {
		return n
	}
	cpu, ok := procStatCPU(stat)
	if !ok {
		return n
	}
	meminfo, err := os.ReadFile(filepath.Join(s.cfg.Proc, "meminfo"))
	if err != nil {
		return n
	}
	m, ok := parseMeminfo(meminfo)
	if !ok {
		return n
	}
	n.cpu = cpu
	n.usage, n.workingSet, n.rss, n.available = m.usage, m.workingSet, m.rss, m.available
	n.ok = true
	return n
}

// cpuStats builds the CPU figures of cur; the rate needs a previous
// sample (hasPrev).
func cpuStats(prev, cur cgroupSample, hasPrev bool) *CPUStats {
	c := &CPUStats{Time: metav1.NewTime(cur.at), UsageCoreNanoSeconds: u64(cur.cpu)}
	if hasPrev {
		if rate, ok := nanoCores(prev.cpu, cur.cpu, cur.at.Sub(prev.at)); ok {
			c.UsageNanoCores = u64(rate)
		}
	}
	return c
}

func memoryStats(smp cgroupSample) *MemoryStats {
	return &MemoryStats{Time: metav1.NewTime(smp.at), UsageBytes: u64(smp.usage),
		WorkingSetBytes: u64(smp.workingSet), RSSBytes: u64(smp.rss)}
}

// nanoCores is the CPU rate between two cumulative readings in
// nanoseconds of CPU time, taken elapsed apart: billionths of a core. A
// counter that went backwards (a cgroup recreated) or no elapsed time
// gives no rate.
func nanoCores(prevNanos, curNanos uint64, elapsed time.Duration) (uint64, bool) {
	if elapsed <= 0 || curNanos < prevNanos {
		return 0, false
	}
	delta := float64(curNanos - prevNanos)
	return uint64(delta / elapsed.Seconds()), true
}

// memoryFigures derives the working set and RSS from a cgroup's usage
// and its memory.stat, as cAdvisor does: working set = usage less the
// inactive file cache, never below zero.
func memoryFigures(usage uint64, stat []byte, inactiveKey, rssKey string) (workingSet, rss uint64) {
	workingSet = usage
	if inactive, ok := keyedValue(stat, inactiveKey); ok {
		if inactive < usage {
			workingSet = usage - inactive
		} else {
			workingSet = 0
		}
	}
	rss, _ = keyedValue(stat, rssKey)
	return workingSet, rss
}

// keyedValue reads key's value from a "key value" per line file
// (memory.stat, cpu.stat).
func keyedValue(data []byte, key string) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// userHZ is the unit of /proc/stat's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

// procStatCPU sums the busy CPU time of all CPUs from /proc/stat's "cpu"
// line (user, nice, system, irq, softirq, steal; not idle or iowait) in
// nanoseconds.
func procStatCPU(data []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		var busy uint64
		for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, false
			}
			busy += n
		}
		if len(f) > 8 { // steal
			if n, err := strconv.ParseUint(f[8], 10, 64); err == nil {
				busy += n
			}
		}
		return busy * (1e9 / userHZ), true
	}
	return 0, false
}

// meminfo are the node's memory figures in bytes.
type meminfo struct {
	usage, workingSet, rss, available uint64
}

// parseMeminfo derives the node's memory from /proc/meminfo: usage is
// MemTotal - MemFree, the working set MemTotal - MemAvailable (what
// cannot be reclaimed), RSS the anonymous pages, available MemAvailable.
func parseMeminfo(data []byte) (meminfo, bool) {
	vals := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		vals[k] = n
	}
	total, okT := vals["MemTotal"]
	free, okF := vals["MemFree"]
	avail, okA := vals["MemAvailable"]
	if !okT || !okF || !okA {
		return meminfo{}, false
	}
	return meminfo{usage: sub0(total, free), workingSet: sub0(total, avail), rss: vals["AnonPages"], available: avail}, true
}

func sub0(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// readUint reads a file holding one unsigned number.
func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// bootTime reads the node's boot time from /proc/stat's btime; now when
// it cannot.
func bootTime(proc string, now time.Time) time.Time {
	data, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return now
	}
	if v, ok := keyedValue(data, "btime"); ok {
		return time.Unix(int64(v), 0)
	}
	return now
}

func u64(v uint64) *uint64 { return &v }

// serveStatsSummary answers GET /stats/summary. Upstream's only_cpu_and_
// memory parameter is accepted; the summary holds nothing else anyway.
func (s *Server) serveStatsSummary(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stats == nil {
		http.Error(w, "the summary API is not served by this node", http.StatusNotFound)
		return
	}
	sum, err := s.cfg.Stats.Summary(r.Context())
	if err != nil {
		http.Error(w, fmt.Sprintf("failed to get summary: %v", err), http.StatusInternalServerError)
		return
	}
	data, err := json.Marshal(sum)
	if err != nil {
		http.Error(w, fmt.Sprintf("failed to encode summary: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

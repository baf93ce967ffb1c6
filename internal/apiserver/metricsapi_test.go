package apiserver

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-sh/skiff/internal/apiserver/openapi"
	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// summaryJSON is a kubelet summary as internal/kubelet writes it: node n1,
// pod ns/web (uid u1) with containers app and side, and ns/new whose
// container has no CPU rate yet.
const summaryJSON = `{
 "node": {"nodeName": "n1", "startTime": "2024-01-01T00:00:00Z",
  "cpu": {"time": "2024-01-01T10:00:00Z", "usageNanoCores": 1500000000, "usageCoreNanoSeconds": 99},
  "memory": {"time": "2024-01-01T10:00:00Z", "workingSetBytes": 2147483648, "usageBytes": 3000000000, "availableBytes": 1}},
 "pods": [
  {"podRef": {"name": "web", "namespace": "ns", "uid": "u1"}, "startTime": "2024-01-01T09:00:00Z",
   "containers": [
    {"name": "app", "cpu": {"time": "2024-01-01T10:00:01Z", "usageNanoCores": 250000000}, "memory": {"time": "2024-01-01T10:00:01Z", "workingSetBytes": 1048576}},
    {"name": "side", "cpu": {"time": "2024-01-01T10:00:02Z", "usageNanoCores": 1000}, "memory": {"time": "2024-01-01T10:00:02Z", "workingSetBytes": 4096}}]},
  {"podRef": {"name": "new", "namespace": "ns", "uid": "u2"}, "startTime": "2024-01-01T09:59:59Z",
   "containers": [{"name": "app", "cpu": {"time": "2024-01-01T10:00:00Z", "usageCoreNanoSeconds": 5}, "memory": {"time": "2024-01-01T10:00:00Z", "workingSetBytes": 1}}]}
 ]}`

func decodeSummary(t *testing.T) *kubeletSummary {
	t.Helper()
	var s kubeletSummary
	if err := json.Unmarshal([]byte(summaryJSON), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestMetricsNodeMetrics(t *testing.T) {
	sum := decodeSummary(t)
	now := time.Date(2024, 1, 1, 10, 0, 5, 0, time.UTC)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}}
	m, ok := nodeMetrics(node, sum, now)
	if !ok {
		t.Fatal("nodeMetrics: got no metrics, want n1's")
	}
	cpu, mem := m.Usage[corev1.ResourceCPU], m.Usage[corev1.ResourceMemory]
	if cpu.MilliValue() != 1500 || mem.Value() != 2<<30 || m.Name != "n1" || m.Labels["zone"] != "a" || m.Kind != "NodeMetrics" {
		t.Errorf("got %s cpu %s memory %s labels %v kind %q, want n1 1500m 2Gi zone=a NodeMetrics", m.Name, cpu.String(), mem.String(), m.Labels, m.Kind)
	}
	if got := mem.String(); got != "2Gi" {
		t.Errorf("memory: got %s, want 2Gi", got)
	}
	if !m.Timestamp.Time.Equal(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)) || m.Window.Duration != metricsWindow {
		t.Errorf("got timestamp %v window %v, want the CPU sample's time and %v", m.Timestamp, m.Window, metricsWindow)
	}
	if _, ok := nodeMetrics(node, nil, now); ok {
		t.Error("no summary: got metrics, want none")
	}
	noRate := &kubeletSummary{}
	noRate.Node.Memory = sum.Node.Memory
	if _, ok := nodeMetrics(node, noRate, now); ok {
		t.Error("summary without a CPU rate: got metrics, want none")
	}
}

func TestMetricsPodMetrics(t *testing.T) {
	sum := decodeSummary(t)
	now := time.Now()
	pod := func(name, uid string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)},
			Status: corev1.PodStatus{Phase: phase}}
	}
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		wantOK bool
		want   map[string]int64 // container -> milli CPU
	}{
		{"running pod", pod("web", "u1", corev1.PodRunning), true, map[string]int64{"app": 250, "side": 1}},
		{"pending pod", pod("web", "u1", corev1.PodPending), false, nil},
		{"a container without a rate", pod("new", "u2", corev1.PodRunning), false, nil},
		{"a recreated pod of the same name", pod("web", "u9", corev1.PodRunning), false, nil},
		{"a pod the node does not report", pod("other", "u3", corev1.PodRunning), false, nil},
	} {
		m, ok := podMetrics(tc.pod, sum, now)
		if ok != tc.wantOK {
			t.Errorf("%s: got ok %v, want %v", tc.name, ok, tc.wantOK)
			continue
		}
		if !ok {
			continue
		}
		got := map[string]int64{}
		for _, c := range m.Containers {
			q := c.Usage[corev1.ResourceCPU]
			got[c.Name] = q.MilliValue()
		}
		if len(got) != len(tc.want) || got["app"] != tc.want["app"] || got["side"] != tc.want["side"] {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
		if !m.Timestamp.Time.Equal(time.Date(2024, 1, 1, 10, 0, 2, 0, time.UTC)) || m.Kind != "PodMetrics" || m.Namespace != "ns" {
			t.Errorf("%s: got timestamp %v kind %q namespace %q, want the latest container sample, PodMetrics, ns", tc.name, m.Timestamp, m.Kind, m.Namespace)
		}
	}
}

// fakeKubeletNode is a node whose kubelet is the fake at rawURL.
func fakeKubeletNode(t *testing.T, name, rawURL string) *corev1.Node {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(portStr)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	return n
}

func TestMetricsSourceScrapeAndCache(t *testing.T) {
	var hits atomic.Int32
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/stats/summary" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(summaryJSON))
	})
	src := newMetricsSource(k.clientTLS)
	clock := time.Now()
	src.now = func() time.Time { return clock }
	node := fakeKubeletNode(t, "n1", k.url)

	// A node that listens nowhere, as a simulated node's kubelet port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := fakeKubeletNode(t, "sim-1", "https://"+l.Addr().String())
	l.Close()

	start := time.Now()
	got := src.summaries(t.Context(), []*corev1.Node{node, dead})
	if took := time.Since(start); took > kubeletDialTimeout+time.Second {
		t.Errorf("scrape with a dead node: took %v, want at most the %v dial timeout", took, kubeletDialTimeout)
	}
	if got["n1"] == nil || got["n1"].Node.NodeName != "n1" || len(got["n1"].Pods) != 2 {
		t.Fatalf("got %+v, want n1's summary", got["n1"])
	}
	if _, ok := got["sim-1"]; ok {
		t.Error("dead node: got a summary, want none")
	}
	if u := <-k.users; u != "kube-apiserver-kubelet-client" {
		t.Errorf("kubelet saw client %q, want the API server's kubelet-client identity", u)
	}

	clock = clock.Add(metricsResolution - time.Second)
	start = time.Now()
	src.summaries(t.Context(), []*corev1.Node{node, dead})
	if n := hits.Load(); n != 1 {
		t.Errorf("within the resolution: got %d scrapes, want 1", n)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("within the resolution the dead node's failure is remembered: took %v", took)
	}

	clock = clock.Add(2 * time.Second)
	if got := src.summaries(t.Context(), []*corev1.Node{node}); got["n1"] == nil || hits.Load() != 2 {
		t.Errorf("after the resolution: got %d scrapes (summary %v), want 2", hits.Load(), got["n1"] != nil)
	}
	if _, ok := src.nodes["sim-1"]; ok {
		t.Error("a node no longer listed is still remembered after the resolution")
	}

	if got := newMetricsSource(nil).summaries(t.Context(), []*corev1.Node{node}); len(got) != 0 {
		t.Errorf("no kubelet client certificate: got %d summaries, want none", len(got))
	}
}

func TestMetricsDiscovery(t *testing.T) {
	d := newDiscovery(slices.Concat(registry.All(), metricsResources()), "127.0.0.1:6443")
	var groups metav1.APIGroupList
	if err := json.Unmarshal(d.groupList, &groups); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range groups.Groups {
		if g.Name == metricsGroup && g.PreferredVersion.Version == metricsVersion {
			found = true
		}
	}
	if !found {
		t.Errorf("/apis: got no %s/%s group", metricsGroup, metricsVersion)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(d.resources[schema.GroupVersion{Group: metricsGroup, Version: metricsVersion}], &list); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, r := range list.APIResources {
		kinds[r.Name] = r.Kind + "/" + strconv.FormatBool(r.Namespaced) + "/" + r.Verbs.String()
	}
	if kinds["nodes"] != "NodeMetrics/false/[get list]" || kinds["pods"] != "PodMetrics/true/[get list]" {
		t.Errorf("/apis/%s/%s: got %v, want nodes NodeMetrics cluster-scoped and pods PodMetrics namespaced, get and list", metricsGroup, metricsVersion, kinds)
	}
	var agg apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(d.aggGroups, &agg); err != nil {
		t.Fatal(err)
	}
	var aggKinds []string
	for _, g := range agg.Items {
		if g.Name != metricsGroup {
			continue
		}
		for _, v := range g.Versions {
			for _, r := range v.Resources {
				aggKinds = append(aggKinds, v.Version+"/"+r.Resource+"/"+r.ResponseKind.Kind+"/"+string(r.Scope))
			}
		}
	}
	if want := []string{"v1beta1/nodes/NodeMetrics/Cluster", "v1beta1/pods/PodMetrics/Namespaced"}; !slices.Equal(aggKinds, want) {
		t.Errorf("aggregated discovery: got %v, want %v", aggKinds, want)
	}
}

func TestMetricsRequestRefused(t *testing.T) {
	s := &Server{log: discardLogger(), metricsSrc: newMetricsSource(nil)}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/apis/metrics.k8s.io/v1/nodes", http.StatusNotFound},
		{http.MethodGet, "/apis/metrics.k8s.io/v1beta1/widgets", http.StatusNotFound},
		{http.MethodGet, "/apis/metrics.k8s.io/v1beta1/namespaces/ns/nodes", http.StatusNotFound},
		{http.MethodGet, "/apis/metrics.k8s.io/v1beta1/nodes/n1/status", http.StatusNotFound},
		{http.MethodGet, "/apis/metrics.k8s.io/v1beta1/nodes?watch=true", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/web", http.StatusMethodNotAllowed},
		{http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=a%3D%3D%3Db", http.StatusBadRequest},
		{http.MethodGet, "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=spec.nodeName%3Dn1", http.StatusBadRequest},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		_, err := s.metricsRequest(r, parseRequest(r))
		if code := int(statusFor(err).Code); err == nil || code != tc.code {
			t.Errorf("%s %s: got %v (%d), want %d", tc.method, tc.path, err, code, tc.code)
		}
	}
}

func TestMetricsTable(t *testing.T) {
	sum := decodeSummary(t)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	m, ok := podMetrics(p, sum, time.Now())
	if !ok {
		t.Fatal("no pod metrics")
	}
	tbl := metricsTable(&metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{m}})
	if len(tbl.Rows) != 1 || len(tbl.ColumnDefinitions) != 4 {
		t.Fatalf("got %d rows and %d columns, want 1 and 4", len(tbl.Rows), len(tbl.ColumnDefinitions))
	}
	cells := tbl.Rows[0].Cells
	// 250m + 1000n summed over the containers; 1Mi + 4Ki.
	if cells[0] != "web" || cells[1] != "250001u" || cells[2] != "1028Ki" || cells[3] != "10s" {
		t.Errorf("got row %v, want web 250001u 1028Ki 10s", cells)
	}
}

func TestMetricsOpenAPI(t *testing.T) {
	plain := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(plain); err != nil {
		t.Fatal(err)
	}
	if got := withMetricsOpenAPI(registry.All(), plain); len(got) != len(registry.All()) {
		t.Errorf("a scheme without the metrics types: got %d resources, want %d (no metrics)", len(got), len(registry.All()))
	}
	full := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(full); err != nil {
		t.Fatal(err)
	}
	if err := metricsv1beta1.AddToScheme(full); err != nil {
		t.Fatal(err)
	}
	sp, err := openapi.New(withMetricsOpenAPI(registry.All(), full), full)
	if err != nil {
		t.Fatalf("openapi with the metrics types: %v", err)
	}
	rec := httptest.NewRecorder()
	sp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi/v3/apis/metrics.k8s.io/v1beta1", nil))
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET /openapi/v3/apis/metrics.k8s.io/v1beta1: %d %v", rec.Code, err)
	}
	for _, p := range []string{"/apis/metrics.k8s.io/v1beta1/nodes/{name}", "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("openapi v3 metrics.k8s.io/v1beta1: no path %s", p)
		}
	}
}

func TestMetricsSourceSlowKubelet(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		_, _ = w.Write([]byte(summaryJSON))
	})
	src := newMetricsSource(k.clientTLS)
	src.wait = 200 * time.Millisecond
	node := fakeKubeletNode(t, "n1", k.url)
	start := time.Now()
	if got := src.summaries(t.Context(), []*corev1.Node{node}); len(got) != 0 {
		t.Errorf("a kubelet slower than the wait: got %d summaries, want none", len(got))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a kubelet slower than the wait held the request %v", took)
	}
	close(release)
	// The scrape goes on without the request and fills the cache.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := src.summaries(t.Context(), []*corev1.Node{node})
		if got["n1"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow scrape never reached the cache")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("got %d scrapes, want 1 (the later requests use the cached one)", n)
	}
}

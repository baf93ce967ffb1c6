package apiserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
	"github.com/skiff-sh/skiff/internal/storage"
)

// The resource metrics API (metrics.k8s.io/v1beta1), which upstream
// clusters get from metrics-server through API aggregation and Skiff
// serves itself: NodeMetrics and PodMetrics built from each node's kubelet
// summary API (GET /stats/summary), scraped when asked and kept for the
// metric resolution, so `kubectl top` and autoscalers see at most 15 s old
// figures and a busy client does not become a scrape storm. A node whose
// kubelet does not answer (a simulated node, a dead one) has no metrics;
// it never holds up the answer longer than the scrape timeout.

// Metrics API constants.
const (
	metricsGroup   = "metrics.k8s.io"
	metricsVersion = "v1beta1"
	// metricsResolution is how long a node's summary is reused, as
	// metrics-server's --metric-resolution (15 s).
	metricsResolution = 15 * time.Second
	// metricsScrapeTimeout bounds one kubelet scrape, as metrics-server's
	// --kubelet-request-timeout (10 s).
	metricsScrapeTimeout = 10 * time.Second
	// metricsScrapeConcurrency bounds the kubelets scraped at once.
	metricsScrapeConcurrency = 8
	// metricsWindow is the interval the CPU rate is taken over: the
	// kubelet's housekeeping interval.
	metricsWindow = 10 * time.Second
	// metricsSummaryLimit bounds a kubelet's summary answer.
	metricsSummaryLimit = 64 << 20
)

// metricsResources are the metrics API's resources, for discovery.
func metricsResources() []registry.Resource {
	verbs := []string{"get", "list"}
	return []registry.Resource{
		{Group: metricsGroup, Versions: []string{metricsVersion}, Name: "nodes", Kind: "NodeMetrics", Verbs: verbs},
		{Group: metricsGroup, Versions: []string{metricsVersion}, Name: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: verbs},
	}
}

// withMetricsOpenAPI adds the metrics resources to those the OpenAPI
// documents describe when the scheme knows their types (the composition
// root registers k8s.io/metrics' v1beta1 types); without them the
// documents are built as before, since the generator needs each type.
func withMetricsOpenAPI(all []registry.Resource, scheme *runtime.Scheme) []registry.Resource {
	for _, kind := range []string{"NodeMetrics", "NodeMetricsList", "PodMetrics", "PodMetricsList"} {
		if !scheme.Recognizes(metricsv1beta1.SchemeGroupVersion.WithKind(kind)) {
			return all
		}
	}
	return slices.Concat(all, metricsResources())
}

// kubeletSummary is the part of the kubelet's stats/v1alpha1 Summary the
// metrics API reads, with upstream's JSON names.
type kubeletSummary struct {
	Node struct {
		NodeName string         `json:"nodeName"`
		CPU      *kubeletCPU    `json:"cpu"`
		Memory   *kubeletMemory `json:"memory"`
	} `json:"node"`
	Pods []kubeletPod `json:"pods"`
}

type kubeletPod struct {
	PodRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"podRef"`
	Containers []kubeletContainer `json:"containers"`
}

type kubeletContainer struct {
	Name   string         `json:"name"`
	CPU    *kubeletCPU    `json:"cpu"`
	Memory *kubeletMemory `json:"memory"`
}

type kubeletCPU struct {
	Time           metav1.Time `json:"time"`
	UsageNanoCores *uint64     `json:"usageNanoCores"`
}

type kubeletMemory struct {
	Time            metav1.Time `json:"time"`
	WorkingSetBytes *uint64     `json:"workingSetBytes"`
}

// usage turns a CPU rate and a working set into a ResourceList as
// metrics-server writes it: CPU in nanocores, memory in bytes. ok is
// false when either is missing (no rate is known yet).
func usage(cpu *kubeletCPU, mem *kubeletMemory) (corev1.ResourceList, time.Time, bool) {
	if cpu == nil || cpu.UsageNanoCores == nil || mem == nil || mem.WorkingSetBytes == nil {
		return nil, time.Time{}, false
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(*cpu.UsageNanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(*mem.WorkingSetBytes), resource.BinarySI),
	}, cpu.Time.Time, true
}

// nodeMetrics builds a node's NodeMetrics from its kubelet's summary;
// false when the summary has no usable node figures.
func nodeMetrics(node *corev1.Node, sum *kubeletSummary, now time.Time) (metricsv1beta1.NodeMetrics, bool) {
	if sum == nil {
		return metricsv1beta1.NodeMetrics{}, false
	}
	u, ts, ok := usage(sum.Node.CPU, sum.Node.Memory)
	if !ok {
		return metricsv1beta1.NodeMetrics{}, false
	}
	return metricsv1beta1.NodeMetrics{
		TypeMeta: metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: metricsGroup + "/" + metricsVersion},
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels,
			CreationTimestamp: metav1.NewTime(now)},
		Timestamp: metav1.NewTime(ts), Window: metav1.Duration{Duration: metricsWindow}, Usage: u,
	}, true
}

// podMetrics builds a pod's PodMetrics from its node's summary, as
// metrics-server does: only running pods, and only when every container
// the summary lists has both CPU and memory figures.
func podMetrics(pod *corev1.Pod, sum *kubeletSummary, now time.Time) (metricsv1beta1.PodMetrics, bool) {
	if sum == nil || pod.Status.Phase != corev1.PodRunning {
		return metricsv1beta1.PodMetrics{}, false
	}
	for i := range sum.Pods {
		p := &sum.Pods[i]
		if p.PodRef.Namespace != pod.Namespace || p.PodRef.Name != pod.Name || (p.PodRef.UID != "" && p.PodRef.UID != string(pod.UID)) {
			continue
		}
		if len(p.Containers) == 0 {
			return metricsv1beta1.PodMetrics{}, false
		}
		out := metricsv1beta1.PodMetrics{
			TypeMeta: metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metricsGroup + "/" + metricsVersion},
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels,
				CreationTimestamp: metav1.NewTime(now)},
			Window:     metav1.Duration{Duration: metricsWindow},
			Containers: []metricsv1beta1.ContainerMetrics{},
		}
		var latest time.Time
		for _, c := range p.Containers {
			u, ts, ok := usage(c.CPU, c.Memory)
			if !ok {
				return metricsv1beta1.PodMetrics{}, false
			}
			if ts.After(latest) {
				latest = ts
			}
			out.Containers = append(out.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: u})
		}
		out.Timestamp = metav1.NewTime(latest)
		return out, true
	}
	return metricsv1beta1.PodMetrics{}, false
}

// metricsSource scrapes kubelets' summaries and keeps each for the
// resolution. It is safe for concurrent use.
type metricsSource struct {
	client *http.Client // nil: the server has no kubelet client certificate
	now    func() time.Time
	// wait bounds how long a request waits for scrapes
	// (metricsScrapeTimeout).
	wait time.Duration
	// sem bounds the scrapes running at once.
	sem chan struct{}

	mu    sync.Mutex
	nodes map[string]*nodeScrape
}

// nodeScrape is the last scrape of one node; its mutex makes concurrent
// requests share one scrape.
type nodeScrape struct {
	mu  sync.Mutex
	at  time.Time
	sum *kubeletSummary
	err error
}

func newMetricsSource(kubeletTLS *tls.Config) *metricsSource {
	m := &metricsSource{now: time.Now, wait: metricsScrapeTimeout, nodes: map[string]*nodeScrape{},
		sem: make(chan struct{}, metricsScrapeConcurrency)}
	if kubeletTLS == nil {
		return m
	}
	tlsCfg := kubeletTLS.Clone()
	if tlsCfg.RootCAs == nil {
		// As for pods/log: kubelet serving certificates are self-signed.
		tlsCfg.InsecureSkipVerify = true
	}
	m.client = &http.Client{
		Timeout: metricsScrapeTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: kubeletDialTimeout}).DialContext,
			TLSClientConfig:       tlsCfg,
			TLSHandshakeTimeout:   kubeletTLSTimeout,
			ResponseHeaderTimeout: metricsScrapeTimeout,
			MaxIdleConnsPerHost:   1,
			IdleConnTimeout:       2 * metricsResolution,
		},
	}
	return m
}

// summaries returns the summary of each node that answered within the
// wait. Scrapes run apart from the request, at most
// metricsScrapeConcurrency at once across all requests, so one that
// outlives the wait (or the client) still fills the cache for the next.
func (m *metricsSource) summaries(ctx context.Context, nodes []*corev1.Node) map[string]*kubeletSummary {
	var mu sync.Mutex
	out := make(map[string]*kubeletSummary, len(nodes))
	done := make(chan struct{})
	var wg sync.WaitGroup
	scrapeCtx := context.WithoutCancel(ctx)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.sem <- struct{}{}
			defer func() { <-m.sem }()
			if sum, err := m.summary(scrapeCtx, n); err == nil {
				mu.Lock()
				out[n.Name] = sum
				mu.Unlock()
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	wait := time.NewTimer(m.wait)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
	case <-ctx.Done():
	}
	m.prune(nodes)
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(out)
}

// summary returns the node's summary, scraping it when the last scrape
// (or failure) is older than the resolution.
func (m *metricsSource) summary(ctx context.Context, node *corev1.Node) (*kubeletSummary, error) {
	m.mu.Lock()
	e := m.nodes[node.Name]
	if e == nil {
		e = &nodeScrape{}
		m.nodes[node.Name] = e
	}
	m.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := m.now()
	if !e.at.IsZero() && now.Sub(e.at) < metricsResolution {
		return e.sum, e.err
	}
	sum, err := m.scrape(ctx, node)
	e.at, e.sum, e.err = now, sum, err
	return sum, err
}

// prune forgets nodes that are no longer listed, when every node was.
func (m *metricsSource) prune(listed []*corev1.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.nodes) <= len(listed) {
		return
	}
	keep := make(map[string]bool, len(listed))
	for _, n := range listed {
		keep[n.Name] = true
	}
	now := m.now()
	for name, e := range m.nodes {
		if !keep[name] && e.mu.TryLock() {
			if now.Sub(e.at) > metricsResolution {
				delete(m.nodes, name)
			}
			e.mu.Unlock()
		}
	}
}

// scrape asks the node's kubelet for its summary.
func (m *metricsSource) scrape(ctx context.Context, node *corev1.Node) (*kubeletSummary, error) {
	if m.client == nil {
		return nil, fmt.Errorf("node %q: the API server has no client certificate for kubelets", node.Name)
	}
	loc, err := kubeletURL(node, "/stats/summary", map[string][]string{"only_cpu_and_memory": {"true"}})
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, metricsScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", node.Name, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %q: scrape kubelet: %w", node.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, kubeletErrorLimit))
		return nil, fmt.Errorf("node %q: scrape kubelet: status %d", node.Name, resp.StatusCode)
	}
	var sum kubeletSummary
	if err := json.NewDecoder(io.LimitReader(resp.Body, metricsSummaryLimit)).Decode(&sum); err != nil {
		return nil, fmt.Errorf("node %q: decode kubelet summary: %w", node.Name, err)
	}
	return &sum, nil
}

// serveMetricsAPI serves /apis/metrics.k8s.io/...: discovery, then get and
// list of nodes and pods.
func (s *Server) serveMetricsAPI(w http.ResponseWriter, r *http.Request) {
	info := requestInfoFrom(r.Context())
	if s.serveDiscovery(w, r, info) {
		return
	}
	obj, err := s.metricsRequest(r, info)
	if err != nil {
		writeError(w, r, err)
		return
	}
	o, err := negotiate(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	switch o.as {
	case "":
	case "Table":
		obj = metricsTable(obj)
	default:
		writeError(w, r, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", schema.GroupResource{}, "",
			"only the following media types are accepted: application/json, application/yaml", 0, false))
		return
	}
	o.proto = false // the metrics types are served as JSON, as metrics-server's clients ask
	data, ct, err := o.encode(obj)
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	writeBytes(w, http.StatusOK, ct, data)
}

// metricsRequest answers one get or list with the object to write.
func (s *Server) metricsRequest(r *http.Request, info *requestInfo) (any, error) {
	// Errors name the resources as metrics-server's storage does.
	gr := schema.GroupResource{Group: metricsGroup, Resource: strings.TrimSuffix(info.Resource, "s") + "metrics"}
	if info.Version != metricsVersion || info.Subresource != "" ||
		(info.Resource != "nodes" && info.Resource != "pods") ||
		(info.Resource == "nodes" && info.Namespace != "") {
		return nil, notFoundPath()
	}
	if info.Verb != "get" && info.Verb != "list" {
		return nil, apierrors.NewMethodNotSupported(gr, info.Verb)
	}
	q := r.URL.Query()
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	var fsel fields.Selector
	if v := q.Get("fieldSelector"); v != "" {
		if fsel, err = fields.ParseSelector(v); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		for _, req := range fsel.Requirements() {
			if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("%q is not a known field selector: only %q, %q", req.Field, "metadata.name", "metadata.namespace"))
			}
		}
	}
	ctx, now := r.Context(), time.Now()
	if info.Resource == "nodes" {
		nodes, err := s.metricsNodes(ctx, info.Name, sel, fsel)
		if err != nil {
			return nil, err
		}
		sums := s.metricsSrc.summaries(ctx, nodes)
		list := &metricsv1beta1.NodeMetricsList{TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: metricsGroup + "/" + metricsVersion},
			Items: []metricsv1beta1.NodeMetrics{}}
		for _, n := range nodes {
			if m, ok := nodeMetrics(n, sums[n.Name], now); ok {
				list.Items = append(list.Items, m)
			}
		}
		if info.Name != "" {
			if len(list.Items) == 0 {
				return nil, apierrors.NewNotFound(gr, info.Name)
			}
			return &list.Items[0], nil
		}
		return list, nil
	}
	pods, err := s.metricsPods(ctx, info.Namespace, info.Name, sel, fsel)
	if err != nil {
		return nil, err
	}
	nodes, err := s.metricsNodesOf(ctx, pods)
	if err != nil {
		return nil, err
	}
	sums := s.metricsSrc.summaries(ctx, nodes)
	list := &metricsv1beta1.PodMetricsList{TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: metricsGroup + "/" + metricsVersion},
		Items: []metricsv1beta1.PodMetrics{}}
	for _, p := range pods {
		if m, ok := podMetrics(p, sums[p.Spec.NodeName], now); ok {
			list.Items = append(list.Items, m)
		}
	}
	if info.Name != "" {
		if len(list.Items) == 0 {
			// metrics-server names the pod by namespace and name.
			return nil, apierrors.NewNotFound(gr, info.Namespace+"/"+info.Name)
		}
		return &list.Items[0], nil
	}
	return list, nil
}

// metricsNodes lists the nodes asked for (one when name is set; a missing
// one is a NotFound).
func (s *Server) metricsNodes(ctx context.Context, name string, sel labels.Selector, fsel fields.Selector) ([]*corev1.Node, error) {
	st := s.storages[schema.GroupResource{Resource: "nodes"}]
	if name != "" {
		obj, err := st.GetObject(ctx, "", name, "")
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: metricsGroup, Resource: "nodemetrics"}, name)
		}
		if err != nil {
			return nil, err
		}
		n, ok := obj.(*corev1.Node)
		if !ok {
			return nil, apierrors.NewInternalError(fmt.Errorf("nodes store holds %T", obj))
		}
		return []*corev1.Node{n}, nil
	}
	res, err := st.List(ctx, storage.ListOptions{Label: sel, ResourceVersion: "0"})
	if err != nil {
		return nil, err
	}
	var out []*corev1.Node
	for _, it := range res.Items {
		obj, err := st.Decode(it)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if n, ok := obj.(*corev1.Node); ok && matchesMeta(fsel, n.Name, "") {
			out = append(out, n)
		}
	}
	return out, nil
}

// metricsPods lists the pods asked for, ordered by namespace and name (one
// when name is set; a missing one is a NotFound of its metrics).
func (s *Server) metricsPods(ctx context.Context, namespace, name string, sel labels.Selector, fsel fields.Selector) ([]*corev1.Pod, error) {
	st := s.storages[schema.GroupResource{Resource: "pods"}]
	if name != "" {
		obj, err := st.GetObject(ctx, namespace, name, "")
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: metricsGroup, Resource: "podmetrics"}, name)
		}
		if err != nil {
			return nil, err
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, apierrors.NewInternalError(fmt.Errorf("pods store holds %T", obj))
		}
		return []*corev1.Pod{p}, nil
	}
	res, err := st.List(ctx, storage.ListOptions{Namespace: namespace, Label: sel, ResourceVersion: "0"})
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, it := range res.Items {
		obj, err := st.Decode(it)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if p, ok := obj.(*corev1.Pod); ok && matchesMeta(fsel, p.Name, p.Namespace) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// metricsNodesOf reads the nodes the pods are bound to; nodes that are gone
// are left out.
func (s *Server) metricsNodesOf(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	st := s.storages[schema.GroupResource{Resource: "nodes"}]
	seen := map[string]bool{}
	var out []*corev1.Node
	for _, p := range pods {
		name := p.Spec.NodeName
		if name == "" || seen[name] || p.Status.Phase != corev1.PodRunning {
			continue
		}
		seen[name] = true
		obj, err := st.GetObject(ctx, "", name, "")
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n, ok := obj.(*corev1.Node); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// matchesMeta applies a field selector over metadata.name and
// metadata.namespace.
func matchesMeta(sel fields.Selector, name, namespace string) bool {
	if sel == nil {
		return true
	}
	return sel.Matches(fields.Set{"metadata.name": name, "metadata.namespace": namespace})
}

// metricsTable renders metrics as the Table metrics-server answers for
// `kubectl get nodemetrics|podmetrics`: name, cpu, memory and window, the
// pod figures summed over its containers.
func metricsTable(obj any) *metav1.Table {
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"},
			{Name: "cpu", Type: "string", Format: "quantity"},
			{Name: "memory", Type: "string", Format: "quantity"},
			{Name: "Window", Type: "string", Format: "duration"},
		},
		Rows: []metav1.TableRow{},
	}
	row := func(meta metav1.ObjectMeta, u corev1.ResourceList, window metav1.Duration) {
		partial := &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
			ObjectMeta: meta,
		}
		raw, _ := json.Marshal(partial)
		cpu, mem := u[corev1.ResourceCPU], u[corev1.ResourceMemory]
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{meta.Name, cpu.String(), mem.String(), window.Duration.String()},
			Object: runtime.RawExtension{Raw: raw},
		})
	}
	sumPod := func(p *metricsv1beta1.PodMetrics) corev1.ResourceList {
		u := corev1.ResourceList{}
		for _, c := range p.Containers {
			for k, v := range c.Usage {
				q := u[k]
				q.Add(v)
				u[k] = q
			}
		}
		return u
	}
	switch v := obj.(type) {
	case *metricsv1beta1.NodeMetrics:
		row(v.ObjectMeta, v.Usage, v.Window)
	case *metricsv1beta1.NodeMetricsList:
		for i := range v.Items {
			row(v.Items[i].ObjectMeta, v.Items[i].Usage, v.Items[i].Window)
		}
	case *metricsv1beta1.PodMetrics:
		row(v.ObjectMeta, sumPod(v), v.Window)
	case *metricsv1beta1.PodMetricsList:
		for i := range v.Items {
			row(v.Items[i].ObjectMeta, sumPod(&v.Items[i]), v.Items[i].Window)
		}
	}
	return t
}

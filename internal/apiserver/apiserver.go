package apiserver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiff-sh/skiff/internal/apiserver/openapi"
	"github.com/skiff-sh/skiff/internal/apiserver/registry"
	"github.com/skiff-sh/skiff/internal/apiserver/strategy"
	"github.com/skiff-sh/skiff/internal/auth"
	"github.com/skiff-sh/skiff/internal/defaults"
	"github.com/skiff-sh/skiff/internal/storage"
)

// Config configures a Server.
type Config struct {
	Store         *storage.Store
	Scheme        *runtime.Scheme
	Authenticator auth.Authenticator
	Authorizer    auth.Authorizer
	// ServiceCIDR is the range Service cluster IPs come from.
	ServiceCIDR *net.IPNet
	// NodePortMin and NodePortMax bound NodePort allocation.
	NodePortMin, NodePortMax int
	// MaxInFlight bounds concurrent non-watch requests; more get 429.
	MaxInFlight int
	// Profiling serves Go's profiles at /debug/pprof/ to authorized
	// clients, as upstream's --profiling does.
	Profiling bool
	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int64
	// PublicAddress is announced in discovery (host:port).
	PublicAddress string
	Version       version.Info
	Logger        *slog.Logger
	// TypeConverter types objects for managed fields; nil builds the one
	// for the built-in types (about 0.1 s of CPU, so callers may build it
	// concurrently with other start-up work).
	TypeConverter managedfields.TypeConverter
	// KubeletClientTLS carries the client certificate pods/log presents to
	// kubelets (the kube-apiserver-kubelet-client identity); nil answers
	// pods/log with 503. Kubelet serving certificates are verified only
	// when it has RootCAs.
	KubeletClientTLS *tls.Config
	// ServiceAccountsOptional admits pods whose service account does not
	// exist (without the API credentials volume) instead of refusing
	// them: for servers that run no serviceaccount controller.
	ServiceAccountsOptional bool
}

// Server serves the Kubernetes API. Build it with New, mount Handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	endpoints map[schema.GroupVersionResource]*endpoint
	storages  map[schema.GroupResource]*storage.Resource
	// openapi is built by BuildOpenAPI from openapiResources; openapiDone
	// is closed when it (or openapiErr) is set.
	openapiResources []registry.Resource
	openapiOnce      sync.Once
	openapi          *openapi.Spec
	openapiErr       error
	openapiDone      chan struct{}
	metrics          *metrics
	discovery        *discovery
	alloc            *allocator
	inflight         chan struct{}
	// metricsSrc scrapes kubelets for the metrics.k8s.io API.
	metricsSrc *metricsSource
	// ready is set once the post-start bootstrap finished.
	ready atomic.Bool
	// fieldSets keeps decoded managedFields sets for ownedUpdate.
	fieldSets *fieldSetCache
}

// endpoint is one resource at one served version.
type endpoint struct {
	res        *registry.Resource
	gvk        schema.GroupVersionKind // as served
	storageGVK schema.GroupVersionKind
	store      *storage.Resource
	// managers keep managedFields of storage-version objects on updates;
	// appliers run server-side apply on served-version objects. Both per
	// subresource ("" and "status").
	managers, appliers map[string]*managedfields.FieldManager
	// reset holds, per subresource with a manager, the fields its
	// strategy resets in the storage version (see ownedUpdate).
	reset map[string]*fieldpath.Set
}

// managerSub is the subresource the field manager of sub records: updates
// through subresources without a manager of their own (scale) are
// recorded as updates of the main resource.
func (e *endpoint) managerSub(sub string) string {
	if e.managers[sub] != nil {
		return sub
	}
	return ""
}

func (e *endpoint) gr() schema.GroupResource { return e.res.GroupResource() }

// storageKey maps resources that share storage to their storage's name.
func storageKey(r *registry.Resource) schema.GroupResource {
	if r.Group == "events.k8s.io" && r.Name == "events" {
		return schema.GroupResource{Resource: "events"}
	}
	return r.GroupResource()
}

// New builds a server and registers every resource with the store; call
// it before the store runs.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 400
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 3 << 20
	}
	if cfg.Authorizer == nil {
		cfg.Authorizer = auth.AlwaysAllow{}
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		endpoints: map[schema.GroupVersionResource]*endpoint{},
		storages:  map[schema.GroupResource]*storage.Resource{},
		metrics:   newMetrics(),
		fieldSets: &fieldSetCache{},
		inflight:  make(chan struct{}, cfg.MaxInFlight),
	}
	all := registry.All()
	typeConverter := cfg.TypeConverter
	if typeConverter == nil {
		typeConverter = applyconfigurations.NewTypeConverter(cfg.Scheme)
	}
	for i := range all {
		r := &all[i]
		if r.Name == "bindings" || r.Name == "selfsubjectreviews" {
			// Bindings are a create-only verb on pods, self-subject reviews
			// answer with the caller's identity; no storage of their own.
			continue
		}
		sk := storageKey(r)
		st := s.storages[sk]
		storageGVK := r.StorageGVK()
		if sk != r.GroupResource() {
			storageGVK = schema.GroupVersionKind{Version: "v1", Kind: r.Kind}
		}
		if st == nil {
			gvk := storageGVK
			namespaced := r.Namespaced
			st = cfg.Store.Register(storage.ResourceConfig{
				GroupResource: sk,
				GVK:           gvk,
				Namespaced:    namespaced,
				New: func() runtime.Object {
					obj, err := cfg.Scheme.New(gvk)
					if err != nil {
						panic(fmt.Sprintf("scheme lacks %v", gvk))
					}
					return obj
				},
				Attrs: attrs,
			})
			s.storages[sk] = st
		}
		for _, v := range r.Versions {
			gvk := schema.GroupVersionKind{Group: r.Group, Version: v, Kind: r.Kind}
			if _, err := cfg.Scheme.New(gvk); err != nil {
				return nil, fmt.Errorf("resource %s: %w", r.Name, err)
			}
			ep := &endpoint{res: r, gvk: gvk, storageGVK: storageGVK, store: st,
				managers: map[string]*managedfields.FieldManager{}, appliers: map[string]*managedfields.FieldManager{},
				reset: map[string]*fieldpath.Set{}}
			for _, sub := range []string{"", "status"} {
				if sub == "status" && !r.HasSubresource("status") {
					continue
				}
				var err error
				if ep.managers[sub], err = newFieldManager(typeConverter, cfg.Scheme, storageGVK, sub); err != nil {
					return nil, err
				}
				if ep.appliers[sub], err = newFieldManager(typeConverter, cfg.Scheme, gvk, sub); err != nil {
					return nil, err
				}
				ep.reset[sub] = strategy.ResetFields(storageGVK, sub)[fieldpath.APIVersion(storageGVK.GroupVersion().String())]
			}
			s.endpoints[gvk.GroupVersion().WithResource(r.Name)] = ep
		}
	}
	s.openapiDone = make(chan struct{})
	s.openapiResources = withMetricsOpenAPI(all, cfg.Scheme)
	s.discovery = newDiscovery(slices.Concat(all, metricsResources()), cfg.PublicAddress)
	s.metricsSrc = newMetricsSource(cfg.KubeletClientTLS)
	s.alloc = newAllocator(cfg.Store.Client(), cfg.ServiceCIDR, cfg.NodePortMin, cfg.NodePortMax)
	return s, nil
}

// BuildOpenAPI generates the OpenAPI documents, once; /openapi/v2 and
// /openapi/v3 wait for it. Nothing else needs them, and generating them
// takes about half a second of CPU, so the caller runs it once the server
// is ready: on two cores, building them beside start-up made a restart
// with 10,000 stored pods wait for them.
func (s *Server) BuildOpenAPI() {
	s.openapiOnce.Do(func() {
		defer close(s.openapiDone)
		start := time.Now()
		s.openapi, s.openapiErr = openapi.New(s.openapiResources, s.cfg.Scheme)
		if s.openapiErr != nil {
			s.log.Error("build openapi", "err", s.openapiErr)
			return
		}
		// The generation's garbage is large; give it back to the OS.
		debug.FreeOSMemory()
		s.log.Debug("openapi documents built", "elapsed", time.Since(start).Round(time.Millisecond))
	})
}

// serveOpenAPI serves the documents once they are built.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.openapiDone:
	case <-r.Context().Done():
		return
	}
	if s.openapiErr != nil {
		writeError(w, r, apierrors.NewInternalError(s.openapiErr))
		return
	}
	s.openapi.ServeHTTP(w, r)
}

// attrs computes the labels and selectable fields of an object.
func attrs(obj runtime.Object) (labels.Set, fields.Set) {
	var l labels.Set
	if m, ok := obj.(interface{ GetLabels() map[string]string }); ok {
		l = m.GetLabels()
	}
	return l, strategy.Fields(obj)
}

func newFieldManager(tc managedfields.TypeConverter, scheme *runtime.Scheme, gvk schema.GroupVersionKind, sub string) (*managedfields.FieldManager, error) {
	fm, err := managedfields.NewDefaultFieldManager(tc, scheme, defaulter{}, scheme, gvk, gvk.GroupVersion(), sub, resetFilters(gvk, sub))
	if err != nil {
		return nil, fmt.Errorf("field manager for %v: %w", gvk, err)
	}
	return fm, nil
}

// defaulter adapts the defaults package to the field manager.
type defaulter struct{}

func (defaulter) Default(obj runtime.Object) { defaults.Default(obj) }

func resetFilters(gvk schema.GroupVersionKind, sub string) map[fieldpath.APIVersion]fieldpath.Filter {
	sets := strategy.ResetFields(gvk, sub)
	if len(sets) == 0 {
		return nil
	}
	out := make(map[fieldpath.APIVersion]fieldpath.Filter, len(sets))
	for v, set := range sets {
		out[v] = fieldpath.NewExcludeSetFilter(set)
	}
	return out
}

// endpoint returns the endpoint serving a request, or a 404.
func (s *Server) endpoint(info *requestInfo) (*endpoint, error) {
	gvr := schema.GroupVersionResource{Group: info.Group, Version: info.Version, Resource: info.Resource}
	ep := s.endpoints[gvr]
	if ep == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: info.Group, Resource: info.Resource}, "")
	}
	return ep, nil
}

// Storage returns the store of a resource, for the server's own bootstrap.
func (s *Server) Storage(gr schema.GroupResource) *storage.Resource { return s.storages[gr] }

// SetReady marks the post-start bootstrap done; /readyz waits for it.
func (s *Server) SetReady() { s.ready.Store(true) }

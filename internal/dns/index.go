package dns

import (
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Index is the cluster's DNS data, kept current by informer events: the
// namespaces, the Services and the ready endpoints of their
// EndpointSlices, with a reverse map of IP -> names for PTR. A query reads
// it under a read lock; no query scans the cluster.
//
// The zero Index is not usable; use NewIndex.
type Index struct {
	mu         sync.RWMutex
	namespaces map[string]struct{}
	services   map[string]*service          // "ns/name"
	slices     map[string]*slice            // "ns/slice-name"
	bySvc      map[string]map[string]*slice // "ns/name" -> slices of that Service
	reverse    map[netip.Addr][]ptrTarget
	owned      map[string][]netip.Addr // "ns/name" -> addresses it put in reverse
	serial     uint32
}

// service is what DNS needs of a Service.
type service struct {
	name, namespace string
	externalName    string // set for type ExternalName
	headless        bool   // clusterIP None
	ips             []netip.Addr
	ports           []port
}

// port is a Service or EndpointSlice port; port -1 stands for a slice
// without ports, as CoreDNS does, so its endpoints still have addresses.
type port struct {
	name, protocol string
	port           int32
}

// slice is what DNS needs of an EndpointSlice: its Service and its ready
// endpoints, one per address.
type slice struct {
	service   string // "ns/name"
	endpoints []endpoint
	ports     []port
}

type endpoint struct {
	addr     netip.Addr
	hostname string // spec hostname, or the dashed address
}

// ptrTarget is one name an address points back to: the Service itself
// (host "") or one of its endpoints.
type ptrTarget struct {
	service string // "ns/name"
	host    string
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{
		namespaces: map[string]struct{}{},
		services:   map[string]*service{},
		slices:     map[string]*slice{},
		bySvc:      map[string]map[string]*slice{},
		reverse:    map[netip.Addr][]ptrTarget{},
		owned:      map[string][]netip.Addr{},
	}
}

// SetSerial records when the data last changed, the zone's SOA serial.
func (ix *Index) SetSerial(s uint32) {
	ix.mu.Lock()
	ix.serial = s
	ix.mu.Unlock()
}

// Serial is the zone's SOA serial.
func (ix *Index) Serial() uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.serial
}

// SetNamespace records that a namespace exists.
func (ix *Index) SetNamespace(name string) {
	ix.mu.Lock()
	ix.namespaces[strings.ToLower(name)] = struct{}{}
	ix.mu.Unlock()
}

// DeleteNamespace forgets a namespace.
func (ix *Index) DeleteNamespace(name string) {
	ix.mu.Lock()
	delete(ix.namespaces, strings.ToLower(name))
	ix.mu.Unlock()
}

// SetService adds or replaces a Service.
func (ix *Index) SetService(svc *corev1.Service) {
	s := &service{name: strings.ToLower(svc.Name), namespace: strings.ToLower(svc.Namespace)}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		s.externalName = svc.Spec.ExternalName
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		s.headless = true
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, v := range ips {
			if a, err := netip.ParseAddr(v); err == nil {
				s.ips = append(s.ips, a.Unmap())
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		s.ports = append(s.ports, port{name: p.Name, protocol: string(p.Protocol), port: p.Port})
	}
	key := s.namespace + "/" + s.name
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.services[key] = s
	ix.reindex(key)
}

// DeleteService forgets a Service.
func (ix *Index) DeleteService(namespace, name string) {
	key := strings.ToLower(namespace) + "/" + strings.ToLower(name)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.services, key)
	ix.reindex(key)
}

// SetEndpointSlice adds or replaces an EndpointSlice. Slices of type FQDN
// and slices without the kubernetes.io/service-name label carry nothing
// DNS answers.
func (ix *Index) SetEndpointSlice(es *discoveryv1.EndpointSlice) {
	skey := strings.ToLower(es.Namespace) + "/" + es.Name
	svcName := es.Labels[discoveryv1.LabelServiceName]
	if svcName == "" || es.AddressType == discoveryv1.AddressTypeFQDN {
		ix.DeleteEndpointSlice(es.Namespace, es.Name)
		return
	}
	sl := &slice{service: strings.ToLower(es.Namespace) + "/" + strings.ToLower(svcName)}
	for _, p := range es.Ports {
		np := port{port: -1}
		if p.Name != nil {
			np.name = *p.Name
		}
		if p.Protocol != nil {
			np.protocol = string(*p.Protocol)
		} else {
			np.protocol = string(corev1.ProtocolTCP)
		}
		if p.Port != nil {
			np.port = *p.Port
		}
		sl.ports = append(sl.ports, np)
	}
	for _, e := range es.Endpoints {
		// Per the API, an unknown readiness is to be taken as ready.
		if e.Conditions.Ready != nil && !*e.Conditions.Ready {
			continue
		}
		for _, a := range e.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			addr = addr.Unmap()
			ep := endpoint{addr: addr, hostname: dashed(addr)}
			if e.Hostname != nil && *e.Hostname != "" {
				ep.hostname = strings.ToLower(*e.Hostname)
			}
			sl.endpoints = append(sl.endpoints, ep)
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.slices[skey]; ok && old.service != sl.service {
		ix.unlinkSlice(skey, old)
	}
	ix.slices[skey] = sl
	m := ix.bySvc[sl.service]
	if m == nil {
		m = map[string]*slice{}
		ix.bySvc[sl.service] = m
	}
	m[skey] = sl
	ix.reindex(sl.service)
}

// DeleteEndpointSlice forgets an EndpointSlice.
func (ix *Index) DeleteEndpointSlice(namespace, name string) {
	skey := strings.ToLower(namespace) + "/" + name
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.slices[skey]; ok {
		ix.unlinkSlice(skey, old)
	}
}

func (ix *Index) unlinkSlice(skey string, sl *slice) {
	delete(ix.slices, skey)
	if m := ix.bySvc[sl.service]; m != nil {
		delete(m, skey)
		if len(m) == 0 {
			delete(ix.bySvc, sl.service)
		}
	}
	ix.reindex(sl.service)
}

// reindex recomputes the reverse entries of one Service: its cluster IPs
// point at the Service's name, its ready endpoints at their own names
// (CoreDNS answers both, the cluster IP first). The work is proportional
// to that Service's endpoints. The caller holds the write lock.
func (ix *Index) reindex(key string) {
	for _, a := range ix.owned[key] {
		kept := ix.reverse[a][:0]
		for _, t := range ix.reverse[a] {
			if t.service != key {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			delete(ix.reverse, a)
		} else {
			ix.reverse[a] = kept
		}
	}
	delete(ix.owned, key)
	var own []netip.Addr
	if s := ix.services[key]; s != nil {
		for _, a := range s.ips {
			ix.reverse[a] = append(ix.reverse[a], ptrTarget{service: key})
			own = append(own, a)
		}
	}
	for _, sl := range ix.bySvc[key] {
		for _, e := range sl.endpoints {
			ix.reverse[e.addr] = append(ix.reverse[e.addr], ptrTarget{service: key, host: e.hostname})
			own = append(own, e.addr)
		}
	}
	if len(own) > 0 {
		ix.owned[key] = own
	}
}

// dashed is an address written as a DNS label: 10.0.0.1 -> 10-0-0-1,
// fd00::1 -> fd00--1.
func dashed(a netip.Addr) string {
	r := '.'
	if a.Is6() {
		r = ':'
	}
	return strings.ReplaceAll(a.String(), string(r), "-")
}

package proxy

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocol is a transport protocol a Service port forwards, in the lower
// case nftables and iptables spell it.
type Protocol string

// Protocols a Service port may use.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// Number is the IANA protocol number (what "meta l4proto" compares).
func (p Protocol) Number() uint8 {
	switch p {
	case UDP:
		return 17
	case SCTP:
		return 132
	default:
		return 6
	}
}

// ServicePortName names one port of one Service, as kube-proxy does
// ("ns/name:port"), with the protocol so that a TCP and a UDP port of the
// same name and number are two entries.
type ServicePortName struct {
	Namespace string
	Name      string
	Port      string // the Service port's name, "" for a single unnamed port
	Protocol  Protocol
}

// String returns "namespace/name:port/protocol".
func (n ServicePortName) String() string {
	return fmt.Sprintf("%s/%s:%s/%s", n.Namespace, n.Name, n.Port, n.Protocol)
}

// Endpoint is one backend of a Service port: where DNAT sends a connection.
type Endpoint struct {
	IP   netip.Addr
	Port uint16
	// Local is true when the endpoint runs on this node
	// (endpoints[].nodeName is the node's name).
	Local bool
}

// String returns "ip:port".
func (e Endpoint) String() string { return netip.AddrPortFrom(e.IP, e.Port).String() }

// Filter is what happens to traffic for a destination that has no endpoint
// to forward to.
type Filter int

// Filters, as kube-proxy applies them.
const (
	// FilterNone: the destination has endpoints; traffic is forwarded.
	FilterNone Filter = iota
	// FilterReject: the Service has no usable endpoint anywhere; new
	// connections are refused (TCP reset, ICMP port unreachable).
	FilterReject
	// FilterDrop: the Service has endpoints, but none this traffic may use
	// (a Local traffic policy and no endpoint on this node); packets are
	// dropped.
	FilterDrop
)

// String returns "none", "reject" or "drop".
func (f Filter) String() string {
	switch f {
	case FilterReject:
		return "reject"
	case FilterDrop:
		return "drop"
	default:
		return "none"
	}
}

// ServicePort is everything a backend programs for one port of one
// Service. It is a value: two ServicePorts that are Equal program the same
// rules, which is what lets a backend skip unchanged Services.
type ServicePort struct {
	Name     ServicePortName
	Protocol Protocol
	// ClusterIP and Port are the virtual address ("internal" traffic).
	ClusterIP netip.Addr
	Port      uint16
	// NodePort, when not zero, is captured on every address of
	// Ruleset.NodeIPs ("external" traffic).
	NodePort uint16
	// ExternalIPs (spec.externalIPs) and LoadBalancerIPs
	// (status.loadBalancer.ingress[].ip) are captured on Port ("external"
	// traffic).
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr

	// ClusterEndpoints are the endpoints for the Cluster traffic policy:
	// the ready ones, or the serving and terminating ones when none is
	// ready. Empty when no policy of the port uses them.
	ClusterEndpoints []Endpoint
	// LocalEndpoints are the endpoints for the Local traffic policy: this
	// node's ready ones, or its serving and terminating ones when none is
	// ready. Empty when no policy of the port uses them.
	LocalEndpoints []Endpoint
	// LocalReady is true when LocalEndpoints are ready endpoints, false
	// when they are the serving and terminating fallback (or none): a
	// health check reports only ready ones, so load balancers drain a node
	// whose endpoints are terminating.
	LocalReady bool
	// HasEndpoints is true when the Service has a usable endpoint on any
	// node; false means every destination of the port rejects.
	HasEndpoints bool

	// InternalLocal is spec.internalTrafficPolicy Local: ClusterIP traffic
	// uses LocalEndpoints.
	InternalLocal bool
	// ExternalLocal is spec.externalTrafficPolicy Local on a port that
	// takes external traffic: traffic from outside the node uses
	// LocalEndpoints and keeps its client address (no masquerade); traffic
	// from pods or from the node itself is short-circuited to
	// ClusterEndpoints.
	ExternalLocal bool

	// Affinity is the ClientIP session affinity timeout, 0 for none.
	Affinity time.Duration

	// Scheduler is the Service's SchedulerAnnotation when it names a
	// known algorithm, "" otherwise. Only the userspace backend uses it;
	// the kernel backends always pick at random, as kube-proxy does.
	Scheduler Scheduler

	// HealthCheckNodePort is spec.healthCheckNodePort of a LoadBalancer
	// Service with externalTrafficPolicy Local, 0 otherwise: the port on
	// which the node tells load balancers whether it has local endpoints.
	HealthCheckNodePort uint16
}

// SchedulerAnnotation on a Service chooses how the userspace backend
// spreads new connections over the endpoints, with the names of the IPVS
// scheduling algorithms. Unset, or an unknown name: round robin.
const SchedulerAnnotation = "skiff.sh/proxy-scheduler"

// Scheduler is an IPVS scheduling algorithm's name.
type Scheduler string

// The schedulers the userspace backend implements, with IPVS's names and
// meanings.
const (
	// RoundRobin takes the endpoints in turn.
	RoundRobin Scheduler = "rr"
	// LeastConnection takes the endpoint with the fewest open connections.
	LeastConnection Scheduler = "lc"
	// DestinationHashing maps the connection's destination address to an
	// endpoint by a hash.
	DestinationHashing Scheduler = "dh"
	// SourceHashing maps the client's address to an endpoint by a hash, so
	// a client keeps its endpoint while the endpoints stay the same.
	SourceHashing Scheduler = "sh"
	// ShortestExpectedDelay takes the endpoint with the fewest open
	// connections plus one, over its weight (all weights are 1).
	ShortestExpectedDelay Scheduler = "sed"
	// NeverQueue takes an idle endpoint when there is one, else as
	// ShortestExpectedDelay.
	NeverQueue Scheduler = "nq"
)

// Known reports whether s is one of the schedulers above.
func (s Scheduler) Known() bool {
	switch s {
	case RoundRobin, LeastConnection, DestinationHashing, SourceHashing, ShortestExpectedDelay, NeverQueue:
		return true
	}
	return false
}

// External reports whether the port takes traffic from outside the
// cluster network: a NodePort, an external IP or a load balancer IP.
func (s *ServicePort) External() bool {
	return s.NodePort != 0 || len(s.ExternalIPs) > 0 || len(s.LoadBalancerIPs) > 0
}

// InternalEndpoints are the endpoints ClusterIP traffic is spread over.
func (s *ServicePort) InternalEndpoints() []Endpoint {
	if s.InternalLocal {
		return s.LocalEndpoints
	}
	return s.ClusterEndpoints
}

// ExternalEndpoints are the endpoints traffic from outside the cluster is
// spread over (NodePort, external and load balancer IPs).
func (s *ServicePort) ExternalEndpoints() []Endpoint {
	if s.ExternalLocal {
		return s.LocalEndpoints
	}
	return s.ClusterEndpoints
}

// InternalFilter says what happens to ClusterIP traffic that cannot be
// forwarded.
func (s *ServicePort) InternalFilter() Filter {
	switch {
	case !s.HasEndpoints:
		return FilterReject
	case len(s.InternalEndpoints()) == 0:
		return FilterDrop
	default:
		return FilterNone
	}
}

// ExternalFilter says what happens to external traffic (from outside the
// node, not short-circuited) that cannot be forwarded.
func (s *ServicePort) ExternalFilter() Filter {
	switch {
	case !s.HasEndpoints:
		return FilterReject
	case len(s.ExternalEndpoints()) == 0:
		return FilterDrop
	default:
		return FilterNone
	}
}

// Equal reports whether two ServicePorts program the same rules.
func (s *ServicePort) Equal(o *ServicePort) bool {
	return s.Name == o.Name && s.Protocol == o.Protocol && s.ClusterIP == o.ClusterIP &&
		s.Port == o.Port && s.NodePort == o.NodePort &&
		equalAddrs(s.ExternalIPs, o.ExternalIPs) && equalAddrs(s.LoadBalancerIPs, o.LoadBalancerIPs) &&
		equalEndpoints(s.ClusterEndpoints, o.ClusterEndpoints) &&
		equalEndpoints(s.LocalEndpoints, o.LocalEndpoints) &&
		s.HasEndpoints == o.HasEndpoints && s.LocalReady == o.LocalReady && s.InternalLocal == o.InternalLocal &&
		s.ExternalLocal == o.ExternalLocal && s.Affinity == o.Affinity &&
		s.Scheduler == o.Scheduler && s.HealthCheckNodePort == o.HealthCheckNodePort
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalEndpoints(a, b []Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Ruleset is the backend-neutral description of what one node programs:
// the output of Compile, the input of a Backend.
type Ruleset struct {
	// NodeIPs are the node's addresses, where NodePorts are captured.
	NodeIPs []netip.Addr
	// Services holds one entry per Service port that has a virtual IP,
	// sorted by name.
	Services []*ServicePort
}

// Endpoints counts the distinct endpoints programmed (over every port).
func (r *Ruleset) Endpoints() int {
	n := 0
	for _, s := range r.Services {
		n += len(s.ClusterEndpoints)
		for _, e := range s.LocalEndpoints {
			if !containsEndpoint(s.ClusterEndpoints, e) {
				n++
			}
		}
	}
	return n
}

func containsEndpoint(list []Endpoint, e Endpoint) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

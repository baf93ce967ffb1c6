package proxy

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// DefaultAffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds
// when the Service leaves it unset (3 hours, as upstream).
const DefaultAffinityTimeout = 10800 * time.Second

// Node is what the compiler needs to know about the node it programs.
type Node struct {
	// Name is the node's name, compared with endpoints[].nodeName.
	Name string
	// IPs are the node's addresses, where NodePorts are captured.
	IPs []netip.Addr
}

// Compile turns Services and EndpointSlices into the rules one node
// programs. It is pure: it reads its arguments, never mutates them, and the
// same input gives the same output. Only IPv4 is compiled for now.
//
// The rules are kube-proxy's: headless and ExternalName Services get
// nothing; endpoints are the ready ones, or the serving and terminating ones
// when none is ready; a Service port's endpoints come from the
// EndpointSlices labelled kubernetes.io/service-name with a port of the same
// name and protocol, which carries the (per slice) resolved target port, so
// named target ports and Services without a selector need nothing more;
// internal and external traffic policies choose between the cluster-wide and
// this node's endpoints.
func Compile(node Node, services []*corev1.Service, endpointSlices []*discoveryv1.EndpointSlice) *Ruleset {
	bySvc := map[[2]string][]*discoveryv1.EndpointSlice{}
	for _, es := range endpointSlices {
		if es.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		key := [2]string{es.Namespace, name}
		bySvc[key] = append(bySvc[key], es)
	}
	// Slices in name order, so that duplicate endpoints resolve the same
	// way whatever order the informer listed them in.
	for _, list := range bySvc {
		slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}

	rs := &Ruleset{NodeIPs: ipv4Only(node.IPs)}
	for _, svc := range services {
		clusterIP, ok := virtualIP(svc)
		if !ok {
			continue
		}
		for i := range svc.Spec.Ports {
			sp := compilePort(node.Name, svc, &svc.Spec.Ports[i], clusterIP, bySvc[[2]string{svc.Namespace, svc.Name}])
			rs.Services = append(rs.Services, sp)
		}
	}
	slices.SortFunc(rs.Services, func(a, b *ServicePort) int { return cmp.Compare(a.Name.String(), b.Name.String()) })
	return rs
}

// virtualIP returns the Service's IPv4 ClusterIP, or false when the Service
// gets no rules (ExternalName, headless, not yet allocated, IPv6).
func virtualIP(svc *corev1.Service) (netip.Addr, bool) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	return ip, true
}

func compilePort(nodeName string, svc *corev1.Service, port *corev1.ServicePort, clusterIP netip.Addr, epSlices []*discoveryv1.EndpointSlice) *ServicePort {
	proto := protocolOf(port.Protocol)
	sp := &ServicePort{
		Name:      ServicePortName{Namespace: svc.Namespace, Name: svc.Name, Port: port.Name, Protocol: proto},
		Protocol:  proto,
		ClusterIP: clusterIP,
		Port:      uint16(port.Port),
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		sp.NodePort = uint16(port.NodePort)
	}
	sp.ExternalIPs = parseIPv4s(svc.Spec.ExternalIPs)
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		var ips []string
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			// ipMode Proxy: the load balancer delivers to the node with
			// the node as destination, so the node must not capture the
			// address itself.
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			ips = append(ips, ing.IP)
		}
		sp.LoadBalancerIPs = parseIPv4s(ips)
	}
	sp.InternalLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	sp.ExternalLocal = sp.External() && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		sp.Affinity = DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			sp.Affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}

	if sched := Scheduler(svc.Annotations[SchedulerAnnotation]); sched.Known() {
		sp.Scheduler = sched
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && sp.ExternalLocal && svc.Spec.HealthCheckNodePort > 0 && svc.Spec.HealthCheckNodePort < 65536 {
		sp.HealthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
	}

	all := collectEndpoints(nodeName, port.Name, proto, epSlices)
	categorize(sp, all)
	return sp
}

// candidate is an endpoint with the conditions the categorization needs.
type candidate struct {
	Endpoint
	ready, serving, terminating bool
}

// collectEndpoints gathers the Service port's endpoints from its slices: the
// slice port with the Service port's name and protocol gives the number.
// An endpoint listed twice (two slices during a rollout) counts once, ready
// winning over not ready.
func collectEndpoints(nodeName, portName string, proto Protocol, epSlices []*discoveryv1.EndpointSlice) []candidate {
	var out []candidate
	seen := map[Endpoint]int{}
	for _, es := range epSlices {
		var number uint16
		for _, p := range es.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			pp := TCP
			if p.Protocol != nil {
				pp = protocolOf(*p.Protocol)
			}
			if name == portName && pp == proto && p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
				number = uint16(*p.Port)
				break
			}
		}
		if number == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			// Only the first address is used, as upstream consumers do.
			if len(ep.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !ip.Is4() {
				continue
			}
			c := candidate{
				Endpoint: Endpoint{IP: ip, Port: number, Local: ep.NodeName != nil && *ep.NodeName == nodeName},
				// Unset conditions mean ready and serving, not
				// terminating (the EndpointSlice API's defaults).
				ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
				serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
				terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
			}
			if i, dup := seen[c.Endpoint]; dup {
				if c.ready && !out[i].ready {
					out[i] = c
				}
				continue
			}
			seen[c.Endpoint] = len(out)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return cmp.Compare(a.Port, b.Port)
	})
	return out
}

// categorize fills the endpoint lists of sp as kube-proxy's
// CategorizeEndpoints does (without topology hints).
func categorize(sp *ServicePort, all []candidate) {
	usesCluster := !sp.InternalLocal || sp.External()
	usesLocal := sp.InternalLocal || sp.ExternalLocal

	if usesCluster {
		sp.ClusterEndpoints = pick(all, func(c candidate) bool { return c.ready })
		if len(sp.ClusterEndpoints) == 0 {
			sp.ClusterEndpoints = pick(all, func(c candidate) bool { return c.serving && c.terminating })
		}
		sp.HasEndpoints = len(sp.ClusterEndpoints) > 0
	}
	if !usesLocal {
		return
	}
	var localReady, localServingTerminating bool
	for _, c := range all {
		switch {
		case c.ready:
			sp.HasEndpoints = true
			localReady = localReady || c.Local
		case c.serving && c.terminating:
			sp.HasEndpoints = true
			localServingTerminating = localServingTerminating || c.Local
		}
	}
	switch {
	case localReady:
		sp.LocalEndpoints = pick(all, func(c candidate) bool { return c.Local && c.ready })
		sp.LocalReady = true
	case localServingTerminating:
		sp.LocalEndpoints = pick(all, func(c candidate) bool { return c.Local && c.serving && c.terminating })
	}
}

func pick(all []candidate, keep func(candidate) bool) []Endpoint {
	var out []Endpoint
	for _, c := range all {
		if keep(c) {
			out = append(out, c.Endpoint)
		}
	}
	return out
}

func protocolOf(p corev1.Protocol) Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return UDP
	case corev1.ProtocolSCTP:
		return SCTP
	default:
		return TCP
	}
}

func parseIPv4s(list []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

func ipv4Only(list []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, ip := range list {
		if ip.Is4() && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

package kubelet

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// The pure half of turning a pod spec into runtime configuration: DNS,
// cgroups, resources, security and the environment, as upstream's kubelet
// computes them. Values the API holds (configMaps, secrets, services) are
// fetched by the caller and passed in.

// CPU shares and quota, as upstream's kubelet converts them.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	quotaPeriod   = 100000 // microseconds
	minQuotaPerio = 1000
)

// podDNS returns a pod's resolv.conf, or nil for the node's own.
func podDNS(pod *corev1.Pod, clusterDNS []string, domain string) *DNSConfig {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	var dns *DNSConfig
	switch policy {
	case corev1.DNSClusterFirstWithHostNet:
		dns = clusterFirstDNS(pod.Namespace, clusterDNS, domain)
	case corev1.DNSClusterFirst:
		if !pod.Spec.HostNetwork {
			dns = clusterFirstDNS(pod.Namespace, clusterDNS, domain)
		}
	case corev1.DNSNone:
		dns = &DNSConfig{}
	}
	if c := pod.Spec.DNSConfig; c != nil {
		if dns == nil {
			return nil // dnsConfig merges into the node's: left to the runtime's copy
		}
		dns.Servers = append(dns.Servers, c.Nameservers...)
		dns.Searches = append(dns.Searches, c.Searches...)
		for _, o := range c.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			dns.Options = slices.DeleteFunc(dns.Options, func(s string) bool {
				name, _, _ := strings.Cut(s, ":")
				return name == o.Name
			})
			dns.Options = append(dns.Options, opt)
		}
	}
	return dns
}

func clusterFirstDNS(ns string, servers []string, domain string) *DNSConfig {
	return &DNSConfig{
		Servers:  slices.Clone(servers),
		Searches: []string{ns + ".svc." + domain, "svc." + domain, domain},
		Options:  []string{"ndots:5"},
	}
}

// qosClass is the pod's QoS class as upstream computes it when the status
// does not carry one.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	for _, c := range allContainers(pod) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[r]; ok && !q.IsZero() {
				addQuantity(requests, r, q)
			}
			q, ok := c.Resources.Limits[r]
			if ok && !q.IsZero() {
				addQuantity(limits, r, q)
			} else {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed {
		for r, q := range requests {
			if l := limits[r]; l.Cmp(q) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(limits) == 2 {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func addQuantity(l corev1.ResourceList, r corev1.ResourceName, q resource.Quantity) {
	sum := l[r]
	sum.Add(q)
	l[r] = sum
}

// cgroupParent is the pod's cgroup under the runtime's root, named as
// upstream's cgroupfs driver names it.
func cgroupParent(qos corev1.PodQOSClass, uid types.UID) string {
	switch qos {
	case corev1.PodQOSGuaranteed:
		return "kubepods/pod" + string(uid)
	case corev1.PodQOSBestEffort:
		return "kubepods/besteffort/pod" + string(uid)
	}
	return "kubepods/burstable/pod" + string(uid)
}

// containerResources converts requests and limits into cgroup settings.
// memoryCapacity is the node's, for the OOM score of burstable pods.
func containerResources(c *corev1.Container, qos corev1.PodQOSClass, memoryCapacity int64) Resources {
	var r Resources
	req := c.Resources.Requests.Cpu().MilliValue()
	if req == 0 {
		if l, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			req = l.MilliValue()
		}
	}
	r.CPUShares = uint64(max(minShares, min(maxShares, req*sharesPerCPU/1000)))
	if l, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && !l.IsZero() {
		r.CPUPeriod = quotaPeriod
		r.CPUQuota = max(minQuotaPerio, l.MilliValue()*quotaPeriod/1000)
	}
	if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !l.IsZero() {
		r.MemoryLimit = l.Value()
	}
	switch qos {
	case corev1.PodQOSGuaranteed:
		r.OOMScoreAdj = -997
	case corev1.PodQOSBestEffort:
		r.OOMScoreAdj = 1000
	default:
		adj := 1000
		if memoryCapacity > 0 {
			adj = 1000 - int(1000*c.Resources.Requests.Memory().Value()/memoryCapacity)
		}
		r.OOMScoreAdj = max(2, min(999, adj))
	}
	return r
}

// containerSecurity merges the pod's security context with the
// container's, the container's settings winning.
func containerSecurity(pod *corev1.Pod, c *corev1.Container) Security {
	var s Security
	if p := pod.Spec.SecurityContext; p != nil {
		s.RunAsUser, s.RunAsGroup = p.RunAsUser, p.RunAsGroup
		s.SupplementalGroups = slices.Clone(p.SupplementalGroups)
		if p.FSGroup != nil {
			s.SupplementalGroups = append(s.SupplementalGroups, *p.FSGroup)
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		return s
	}
	if sc.RunAsUser != nil {
		s.RunAsUser = sc.RunAsUser
	}
	if sc.RunAsGroup != nil {
		s.RunAsGroup = sc.RunAsGroup
	}
	s.Privileged = sc.Privileged != nil && *sc.Privileged
	if caps := sc.Capabilities; caps != nil {
		for _, a := range caps.Add {
			s.CapAdd = append(s.CapAdd, strings.TrimPrefix(string(a), "CAP_"))
		}
		for _, d := range caps.Drop {
			s.CapDrop = append(s.CapDrop, strings.TrimPrefix(string(d), "CAP_"))
		}
	}
	s.ReadOnlyRootFilesystem = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	s.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	return s
}

// portMappings lists the pod's hostPorts.
func portMappings(pod *corev1.Pod) []PortMapping {
	var out []PortMapping
	for _, c := range allContainers(pod) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := string(p.Protocol)
			if proto == "" {
				proto = string(corev1.ProtocolTCP)
			}
			out = append(out, PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIP: p.HostIP})
		}
	}
	return out
}

// serviceEnv returns the {SVC}_SERVICE_HOST style variables, and the
// docker-link ones, of services, as upstream's kubelet makes them for
// pods with enableServiceLinks.
func serviceEnv(services []*corev1.Service) []EnvVar {
	var out []EnvVar
	sorted := slices.Clone(services)
	slices.SortFunc(sorted, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range sorted {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		first := s.Spec.Ports[0]
		out = append(out,
			EnvVar{Name: name + "_SERVICE_HOST", Value: ip},
			EnvVar{Name: name + "_SERVICE_PORT", Value: strconv.Itoa(int(first.Port))})
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				pn := strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))
				out = append(out, EnvVar{Name: name + "_SERVICE_PORT_" + pn, Value: strconv.Itoa(int(p.Port))})
			}
		}
		proto := strings.ToLower(string(first.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, EnvVar{Name: name + "_PORT", Value: fmt.Sprintf("%s://%s:%d", proto, ip, first.Port)})
		for _, p := range s.Spec.Ports {
			pr := strings.ToLower(string(p.Protocol))
			if pr == "" {
				pr = "tcp"
			}
			prefix := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(pr))
			out = append(out,
				EnvVar{Name: prefix, Value: fmt.Sprintf("%s://%s:%d", pr, ip, p.Port)},
				EnvVar{Name: prefix + "_PROTO", Value: pr},
				EnvVar{Name: prefix + "_PORT", Value: strconv.Itoa(int(p.Port))},
				EnvVar{Name: prefix + "_ADDR", Value: ip})
		}
	}
	return out
}

// expandEnv replaces $(NAME) references with the values of variables
// defined before, as upstream does: "$$" escapes a "$", and a reference to
// an unknown variable is left as written.
func expandEnv(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// fieldRefValue resolves a downward-API field of the pod.
func fieldRefValue(pod *corev1.Pod, path string, podIPs []string, hostIPs []string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	first := func(l []string) string {
		if len(l) == 0 {
			return ""
		}
		return l[0]
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return first(podIPs), nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "status.hostIP":
		return first(hostIPs), nil
	case "status.hostIPs":
		return strings.Join(hostIPs, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// resourceFieldValue resolves a container's requests or limits, limits
// falling back to the node's allocatable, as upstream.
func resourceFieldValue(c *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	var q resource.Quantity
	switch kind {
	case "limits":
		var set bool
		q, set = c.Resources.Limits[corev1.ResourceName(name)]
		if !set || q.IsZero() {
			q = allocatable[corev1.ResourceName(name)]
		}
	case "requests":
		q = c.Resources.Requests[corev1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		v := math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
		return strconv.FormatInt(int64(v), 10), nil
	}
	v := math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	return strconv.FormatInt(int64(v), 10), nil
}

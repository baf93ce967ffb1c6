package validation

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	kubeletPort                  = 10250
	maxClientIPAffinitySeconds   = 86400
	annotationLBSourceRanges     = "service.beta.kubernetes.io/load-balancer-source-ranges"
	annotationTopologyMode       = "service.kubernetes.io/topology-mode"
	annotationTopologyAwareHints = "service.kubernetes.io/topology-aware-hints"
)

var (
	supportedServiceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort}
	supportedAffinities   = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
)

func isHeadlessService(s *corev1.Service) bool {
	return len(s.Spec.ClusterIPs) == 1 && s.Spec.ClusterIPs[0] == corev1.ClusterIPNone
}

// withSyncedClusterIPs returns the Service upstream validates: its storage
// layer copies clusterIP into clusterIPs (and back) before validation runs.
func withSyncedClusterIPs(s *corev1.Service) *corev1.Service {
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		return s
	}
	switch {
	case s.Spec.ClusterIP != "" && len(s.Spec.ClusterIPs) == 0:
		c := s.DeepCopy()
		c.Spec.ClusterIPs = []string{c.Spec.ClusterIP}
		return c
	case s.Spec.ClusterIP == "" && len(s.Spec.ClusterIPs) > 0:
		c := s.DeepCopy()
		c.Spec.ClusterIP = c.Spec.ClusterIPs[0]
		return c
	}
	return s
}

// externallyAccessible mirrors upstream's apiservice.ExternallyAccessible.
func externallyAccessible(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort ||
		(s.Spec.Type == corev1.ServiceTypeClusterIP && len(s.Spec.ExternalIPs) > 0)
}

func needsHealthCheck(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// validateService is core's ValidateService.
func validateService(service *corev1.Service) field.ErrorList {
	service = withSyncedClusterIPs(service)
	metaPath := field.NewPath("metadata")
	allErrs := validateObjectMeta(&service.ObjectMeta, true, nameIsDNS1035Label, metaPath)

	hints, hintsSet := service.Annotations[annotationTopologyAwareHints]
	mode, modeSet := service.Annotations[annotationTopologyMode]
	if modeSet && hintsSet && mode != hints {
		allErrs = append(allErrs, field.Invalid(metaPath.Child("annotations").Key(annotationTopologyMode), mode,
			fmt.Sprintf("must match annotations[%s] when both are specified", annotationTopologyAwareHints)))
	}

	specPath := field.NewPath("spec")
	headless := isHeadlessService(service)
	if len(service.Spec.Ports) == 0 && !headless && service.Spec.Type != corev1.ServiceTypeExternalName {
		allErrs = append(allErrs, field.Required(specPath.Child("ports"), ""))
	}
	switch service.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		for i, port := range service.Spec.Ports {
			if port.Port == kubeletPort {
				allErrs = append(allErrs, field.Invalid(specPath.Child("ports").Index(i), port.Port,
					fmt.Sprintf("may not expose port %v externally since it is used by kubelet", kubeletPort)))
			}
		}
		if headless {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), service.Spec.ClusterIPs[0], "may not be set to 'None' for LoadBalancer services"))
		}
	case corev1.ServiceTypeNodePort:
		if headless {
			allErrs = append(allErrs, field.Invalid(specPath.Child("clusterIPs").Index(0), service.Spec.ClusterIPs[0], "may not be set to 'None' for NodePort services"))
		}
	case corev1.ServiceTypeExternalName:
		if len(service.Spec.ClusterIPs) > 0 || service.Spec.ClusterIP != "" {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(service.Spec.IPFamilies) > 0 {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if service.Spec.IPFamilyPolicy != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// A CNAME may end in a dot to mark it fully qualified.
		if cname := strings.TrimSuffix(service.Spec.ExternalName, "."); cname != "" {
			allErrs = append(allErrs, validateDNS1123Subdomain(cname, specPath.Child("externalName"))...)
		} else {
			allErrs = append(allErrs, field.Required(specPath.Child("externalName"), ""))
		}
	}

	portNames := map[string]bool{}
	for i := range service.Spec.Ports {
		allErrs = append(allErrs, validateServicePort(&service.Spec.Ports[i], len(service.Spec.Ports) > 1, portNames, specPath.Child("ports").Index(i))...)
	}
	if service.Spec.Selector != nil {
		allErrs = append(allErrs, validateLabels(service.Spec.Selector, specPath.Child("selector"))...)
	}
	allErrs = append(allErrs, validateEnum(service.Spec.SessionAffinity, supportedAffinities, specPath.Child("sessionAffinity"))...)
	switch service.Spec.SessionAffinity {
	case corev1.ServiceAffinityClientIP:
		allErrs = append(allErrs, validateClientIPAffinityConfig(service.Spec.SessionAffinityConfig, specPath.Child("sessionAffinityConfig"))...)
	case corev1.ServiceAffinityNone:
		if service.Spec.SessionAffinityConfig != nil {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("sessionAffinityConfig"), fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
		}
	}
	allErrs = append(allErrs, validateServiceClusterIPsRelatedFields(service)...)
	for i, ip := range service.Spec.ExternalIPs {
		p := specPath.Child("externalIPs").Index(i)
		if errs := validateIP(p, ip); len(errs) != 0 {
			allErrs = append(allErrs, errs...)
		} else {
			allErrs = append(allErrs, validateNonSpecialIP(ip, p)...)
		}
	}
	allErrs = append(allErrs, validateEnum(service.Spec.Type, supportedServiceTypes, specPath.Child("type"))...)
	if service.Spec.Type == corev1.ServiceTypeClusterIP {
		for i, port := range service.Spec.Ports {
			if port.NodePort != 0 {
				allErrs = append(allErrs, field.Forbidden(specPath.Child("ports").Index(i).Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
		}
	}
	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	nodePorts, ports := map[protoPort]bool{}, map[protoPort]bool{}
	for i, port := range service.Spec.Ports {
		p := specPath.Child("ports").Index(i)
		if port.NodePort != 0 {
			key := protoPort{port.Protocol, port.NodePort}
			if nodePorts[key] {
				allErrs = append(allErrs, field.Duplicate(p.Child("nodePort"), port.NodePort))
			}
			nodePorts[key] = true
		}
	}
	for i, port := range service.Spec.Ports {
		key := protoPort{port.Protocol, port.Port}
		if ports[key] {
			allErrs = append(allErrs, field.Duplicate(specPath.Child("ports").Index(i), internalValue(corev1.ServicePort{Protocol: port.Protocol, Port: port.Port})))
		}
		ports[key] = true
	}
	if len(service.Spec.LoadBalancerSourceRanges) > 0 {
		p := specPath.Child("LoadBalancerSourceRanges")
		if service.Spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
		}
		for i, v := range service.Spec.LoadBalancerSourceRanges {
			allErrs = append(allErrs, validateCIDR(p.Index(i), strings.TrimSpace(v))...)
		}
	} else if v, ok := service.Annotations[annotationLBSourceRanges]; ok {
		p := field.NewPath("metadata", "annotations").Key(annotationLBSourceRanges)
		if service.Spec.Type != corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, field.Forbidden(p, "may only be used when `type` is 'LoadBalancer'"))
		}
		if v = strings.TrimSpace(v); v != "" {
			for _, c := range strings.Split(v, ",") {
				allErrs = append(allErrs, validateCIDR(p, strings.TrimSpace(c))...)
			}
		}
	}
	if service.Spec.AllocateLoadBalancerNodePorts != nil && service.Spec.Type != corev1.ServiceTypeLoadBalancer {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
	}
	if service.Spec.Type == corev1.ServiceTypeLoadBalancer && service.Spec.AllocateLoadBalancerNodePorts == nil {
		// Upstream reports this one without the "spec." prefix.
		allErrs = append(allErrs, field.Required(field.NewPath("allocateLoadBalancerNodePorts"), ""))
	}
	if service.Spec.LoadBalancerClass != nil {
		if service.Spec.Type == corev1.ServiceTypeLoadBalancer {
			allErrs = append(allErrs, validateQualifiedName(*service.Spec.LoadBalancerClass, specPath.Child("loadBalancerClass"))...)
		} else {
			allErrs = append(allErrs, field.Forbidden(specPath.Child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
		}
	}
	allErrs = append(allErrs, validateServiceTrafficPolicies(service)...)
	return allErrs
}

func validateServicePort(sp *corev1.ServicePort, requireName bool, names map[string]bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if requireName && sp.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if sp.Name != "" {
		allErrs = append(allErrs, validateDNS1123Label(sp.Name, fldPath.Child("name"))...)
		if names[sp.Name] {
			allErrs = append(allErrs, field.Duplicate(fldPath.Child("name"), sp.Name))
		} else {
			names[sp.Name] = true
		}
	}
	for _, msg := range validation.IsValidPortNum(int(sp.Port)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), sp.Port, msg))
	}
	if sp.Protocol == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("protocol"), ""))
	} else if !isProtocolSupported(sp.Protocol) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), sp.Protocol, supportedPortProtocols))
	}
	allErrs = append(allErrs, validatePortNumOrName(sp.TargetPort, fldPath.Child("targetPort"))...)
	if sp.AppProtocol != nil {
		allErrs = append(allErrs, validateQualifiedName(*sp.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return allErrs
}

func validateClientIPAffinityConfig(cfg *corev1.SessionAffinityConfig, fldPath *field.Path) field.ErrorList {
	detail := fmt.Sprintf("when session affinity type is %s", corev1.ServiceAffinityClientIP)
	switch {
	case cfg == nil:
		return field.ErrorList{field.Required(fldPath, detail)}
	case cfg.ClientIP == nil:
		return field.ErrorList{field.Required(fldPath.Child("clientIP"), detail)}
	case cfg.ClientIP.TimeoutSeconds == nil:
		return field.ErrorList{field.Required(fldPath.Child("clientIP").Child("timeoutSeconds"), detail)}
	}
	if t := *cfg.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
		return field.ErrorList{field.Invalid(fldPath.Child("clientIP").Child("timeoutSeconds"), cfg.ClientIP.TimeoutSeconds,
			fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds))}
	}
	return nil
}

// validateServiceTrafficPolicies covers external and internal traffic
// policy and trafficDistribution. healthCheckNodePort is allocated by the
// server before validation upstream, so its absence is not reported here.
func validateServiceTrafficPolicies(service *corev1.Service) field.ErrorList {
	var allErrs field.ErrorList
	specPath := field.NewPath("spec")
	etp := service.Spec.ExternalTrafficPolicy
	if !externallyAccessible(service) {
		if etp != "" {
			allErrs = append(allErrs, field.Invalid(specPath.Child("externalTrafficPolicy"), etp, "may only be set for externally-accessible services"))
		}
	} else {
		allErrs = append(allErrs, validateEnum(etp,
			[]corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal},
			specPath.Child("externalTrafficPolicy"))...)
	}
	hc := service.Spec.HealthCheckNodePort
	if !needsHealthCheck(service) {
		if hc != 0 {
			allErrs = append(allErrs, field.Invalid(specPath.Child("healthCheckNodePort"), hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		}
	} else if hc != 0 {
		for _, msg := range validation.IsValidPortNum(int(hc)) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("healthCheckNodePort"), hc, msg))
		}
	}
	itpPath := specPath.Child("internalTrafficPolicy")
	if service.Spec.InternalTrafficPolicy == nil {
		switch service.Spec.Type {
		case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeClusterIP:
			allErrs = append(allErrs, field.Required(itpPath, ""))
		}
	} else if p := *service.Spec.InternalTrafficPolicy; p != corev1.ServiceInternalTrafficPolicyCluster && p != corev1.ServiceInternalTrafficPolicyLocal {
		allErrs = append(allErrs, field.NotSupported(itpPath, p,
			[]corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}))
	}
	if td := service.Spec.TrafficDistribution; td != nil {
		supported := []string{corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameZone, corev1.ServiceTrafficDistributionPreferSameNode}
		ok := false
		for _, s := range supported {
			if *td == s {
				ok = true
			}
		}
		if !ok {
			allErrs = append(allErrs, field.NotSupported(specPath.Child("trafficDistribution"), *td, supported))
		}
	}
	return allErrs
}

// validateServiceClusterIPsRelatedFields is core's function of that name.
func validateServiceClusterIPsRelatedFields(service *corev1.Service) field.ErrorList {
	if service.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var allErrs field.ErrorList
	specPath := field.NewPath("spec")
	ipsPath := specPath.Child("clusterIPs")
	famPath := specPath.Child("ipFamilies")
	if service.Spec.ClusterIP != "" {
		if len(service.Spec.ClusterIPs) == 0 {
			allErrs = append(allErrs, field.Required(ipsPath, ""))
		} else if service.Spec.ClusterIPs[0] != service.Spec.ClusterIP {
			allErrs = append(allErrs, field.Invalid(ipsPath, service.Spec.ClusterIPs, "first value must match `clusterIP`"))
		}
	} else if len(service.Spec.ClusterIPs) != 0 {
		allErrs = append(allErrs, field.Invalid(ipsPath, service.Spec.ClusterIPs, "must be empty when `clusterIP` is not specified"))
	}
	families := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	seen := map[corev1.IPFamily]bool{}
	for i, f := range service.Spec.IPFamilies {
		if f != corev1.IPv4Protocol && f != corev1.IPv6Protocol {
			allErrs = append(allErrs, field.NotSupported(famPath.Index(i), f, families))
		}
		if seen[f] {
			allErrs = append(allErrs, field.Duplicate(famPath.Index(i), f))
		}
		seen[f] = true
	}
	if p := service.Spec.IPFamilyPolicy; p != nil {
		switch *p {
		case corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack:
		default:
			allErrs = append(allErrs, field.NotSupported(specPath.Child("ipFamilyPolicy"), p,
				[]corev1.IPFamilyPolicy{corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack}))
		}
	}
	invalid := false
	for i, ip := range service.Spec.ClusterIPs {
		if i == 0 && ip == corev1.ClusterIPNone {
			if len(service.Spec.ClusterIPs) > 1 {
				invalid = true
				allErrs = append(allErrs, field.Invalid(ipsPath, service.Spec.ClusterIPs, "'None' must be the first and only value"))
			}
			continue
		}
		errs := validateIP(ipsPath.Index(i), ip)
		invalid = invalid || len(errs) != 0
		allErrs = append(allErrs, errs...)
	}
	if len(service.Spec.ClusterIPs) > 2 {
		allErrs = append(allErrs, field.Invalid(ipsPath, service.Spec.ClusterIPs, "may only hold up to 2 values"))
	}
	if invalid {
		return allErrs
	}
	if len(service.Spec.ClusterIPs) > 1 {
		v4 := 0
		for _, ip := range service.Spec.ClusterIPs {
			if net.ParseIP(ip).To4() != nil {
				v4++
			}
		}
		if v4 != 1 || len(service.Spec.ClusterIPs) != 2 {
			allErrs = append(allErrs, field.Invalid(ipsPath, service.Spec.ClusterIPs, "may specify no more than one IP for each IP family"))
		}
	}
	if !isHeadlessService(service) {
		for i, ip := range service.Spec.ClusterIPs {
			if i >= len(service.Spec.IPFamilies) {
				break
			}
			isV6 := net.ParseIP(ip).To4() == nil
			if service.Spec.IPFamilies[i] == corev1.IPv4Protocol && isV6 {
				allErrs = append(allErrs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv4 value as indicated by `ipFamilies[%v]`", i)))
			}
			if service.Spec.IPFamilies[i] == corev1.IPv6Protocol && !isV6 {
				allErrs = append(allErrs, field.Invalid(ipsPath.Index(i), ip, fmt.Sprintf("expected an IPv6 value as indicated by `ipFamilies[%v]`", i)))
			}
		}
	}
	return allErrs
}

// validateServiceUpdate adds upstream's rule that an allocated clusterIP
// (and IP family) never changes except to or from ExternalName.
func validateServiceUpdate(service, old *corev1.Service) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&service.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	service = withAllocatedValues(service, old)
	s, o := withSyncedClusterIPs(service), withSyncedClusterIPs(old)
	allErrs = append(allErrs, validateUpgradeDowngradeClusterIPs(o, s)...)
	allErrs = append(allErrs, validateUpgradeDowngradeIPFamilies(o, s)...)
	if o.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		deref(o.Spec.LoadBalancerClass, "\x00") != deref(s.Spec.LoadBalancerClass, "\x00") {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "loadBalancerClass"), s.Spec.LoadBalancerClass, "may not change once set"))
	}
	if needsHealthCheck(o) && needsHealthCheck(s) && s.Spec.HealthCheckNodePort != o.Spec.HealthCheckNodePort {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "healthCheckNodePort"), "field is immutable"))
	}
	return append(allErrs, validateService(service)...)
}

// withAllocatedValues returns the Service upstream validates on update: an
// update that omits the allocated clusterIP(s) or health check port keeps the
// stored ones (upstream's storage patches them in before validation), so
// "kubectl replace" of a manifest without clusterIP works.
func withAllocatedValues(service, old *corev1.Service) *corev1.Service {
	keepIPs := service.Spec.Type != corev1.ServiceTypeExternalName && old.Spec.Type != corev1.ServiceTypeExternalName &&
		service.Spec.ClusterIP == "" && len(service.Spec.ClusterIPs) == 0 && (old.Spec.ClusterIP != "" || len(old.Spec.ClusterIPs) > 0)
	keepHC := needsHealthCheck(service) && needsHealthCheck(old) && service.Spec.HealthCheckNodePort == 0
	if !keepIPs && !keepHC {
		return service
	}
	c := service.DeepCopy()
	if keepIPs {
		c.Spec.ClusterIP = old.Spec.ClusterIP
		c.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
	}
	if keepHC {
		c.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
	return c
}

func validateUpgradeDowngradeClusterIPs(old, service *corev1.Service) field.ErrorList {
	if service.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if isHeadlessService(old) && isHeadlessService(service) {
		return nil
	}
	var allErrs field.ErrorList
	ipsPath := field.NewPath("spec", "clusterIPs")
	oldIPs, newIPs := old.Spec.ClusterIPs, service.Spec.ClusterIPs
	switch {
	case len(oldIPs) == len(newIPs):
		for i, ip := range oldIPs {
			if ip != newIPs[i] {
				allErrs = append(allErrs, field.Invalid(ipsPath.Index(i), newIPs, "may not change once set"))
			}
		}
	case len(oldIPs) > len(newIPs):
		if len(newIPs) == 0 {
			allErrs = append(allErrs, field.Invalid(ipsPath.Index(0), newIPs, "primary clusterIP can not be unset"))
		}
		if len(oldIPs) > 0 && len(newIPs) > 0 && newIPs[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
		}
		if len(newIPs) == 1 && (service.Spec.IPFamilyPolicy == nil || *service.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), service.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary clusterIP"))
		}
	default:
		if len(oldIPs) > 0 && newIPs[0] != oldIPs[0] {
			allErrs = append(allErrs, field.Invalid(ipsPath.Index(0), newIPs, "may not change once set"))
		}
	}
	return allErrs
}

func validateUpgradeDowngradeIPFamilies(old, service *corev1.Service) field.ErrorList {
	if service.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if isHeadlessService(old) || isHeadlessService(service) {
		return nil
	}
	var allErrs field.ErrorList
	famPath := field.NewPath("spec", "ipFamilies")
	oldF, newF := old.Spec.IPFamilies, service.Spec.IPFamilies
	switch {
	case len(oldF) == len(newF):
		for i, f := range oldF {
			if f != newF[i] {
				allErrs = append(allErrs, field.Invalid(famPath.Index(0), newF, "may not change once set"))
			}
		}
	case len(oldF) > len(newF):
		if len(service.Spec.ClusterIPs) == 0 {
			allErrs = append(allErrs, field.Invalid(famPath.Index(0), newF, "primary ipFamily can not be unset"))
		}
		if len(newF) > 0 && newF[0] != oldF[0] {
			allErrs = append(allErrs, field.Invalid(famPath.Index(0), service.Spec.ClusterIPs, "may not change once set"))
		}
		if len(newF) == 1 && (service.Spec.IPFamilyPolicy == nil || *service.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), service.Spec.IPFamilyPolicy, "must be set to 'SingleStack' when releasing the secondary ipFamily"))
		}
	default:
		if len(oldF) > 0 && len(newF) > 0 && newF[0] != oldF[0] {
			allErrs = append(allErrs, field.Invalid(famPath.Index(0), service.Spec.ClusterIPs, "may not change once set"))
		}
	}
	return allErrs
}

func validateServiceStatusUpdate(service, old *corev1.Service) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&service.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	ingPath := field.NewPath("status", "loadBalancer").Child("ingress")
	for i, ing := range service.Status.LoadBalancer.Ingress {
		p := ingPath.Index(i)
		if ing.IP != "" {
			allErrs = append(allErrs, validateIP(p.Child("ip"), ing.IP)...)
		}
		if ing.IPMode != nil && ing.IP == "" {
			allErrs = append(allErrs, field.Forbidden(p.Child("ipMode"), "may not be specified when `ip` is not set"))
		} else if ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP && *ing.IPMode != corev1.LoadBalancerIPModeProxy {
			allErrs = append(allErrs, field.NotSupported(p.Child("ipMode"), ing.IPMode, []corev1.LoadBalancerIPMode{corev1.LoadBalancerIPModeProxy, corev1.LoadBalancerIPModeVIP}))
		}
		allErrs = append(allErrs, validateLoadBalancerHostname(ing.Hostname, p.Child("hostname"))...)
	}
	return allErrs
}

func validateLoadBalancerHostname(h string, fldPath *field.Path) field.ErrorList {
	if h == "" {
		return nil
	}
	allErrs := validateDNS1123Subdomain(h, fldPath)
	if net.ParseIP(h) != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, h, "must be a DNS name, not an IP address"))
	}
	return allErrs
}

// validateNonSpecialIP rejects addresses that cannot be a service endpoint.
func validateNonSpecialIP(addr string, fldPath *field.Path) field.ErrorList {
	ip := net.ParseIP(addr)
	if ip == nil {
		return field.ErrorList{field.Invalid(fldPath, addr, "must be a valid IP address")}
	}
	var allErrs field.ErrorList
	if ip.IsUnspecified() {
		allErrs = append(allErrs, field.Invalid(fldPath, addr, fmt.Sprintf("may not be unspecified (%v)", addr)))
	}
	if ip.IsLoopback() {
		allErrs = append(allErrs, field.Invalid(fldPath, addr, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if ip.IsLinkLocalUnicast() {
		allErrs = append(allErrs, field.Invalid(fldPath, addr, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if ip.IsLinkLocalMulticast() {
		allErrs = append(allErrs, field.Invalid(fldPath, addr, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return allErrs
}

// Endpoints

func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	allErrs := validateObjectMeta(&ep.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	subsetsPath := field.NewPath("subsets")
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		p := subsetsPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j := range ss.Ports {
			port := &ss.Ports[j]
			pp := p.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				allErrs = append(allErrs, validateDNS1123Label(port.Name, pp.Child("name"))...)
			}
			for _, msg := range validation.IsValidPortNum(int(port.Port)) {
				allErrs = append(allErrs, field.Invalid(pp.Child("port"), port.Port, msg))
			}
			if port.Protocol == "" {
				allErrs = append(allErrs, field.Required(pp.Child("protocol"), ""))
			} else if !isProtocolSupported(port.Protocol) {
				allErrs = append(allErrs, field.NotSupported(pp.Child("protocol"), port.Protocol, supportedPortProtocols))
			}
			if port.AppProtocol != nil {
				allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return allErrs
}

func validateEndpointAddress(a *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	allErrs := validateIP(fldPath.Child("ip"), a.IP)
	if a.Hostname != "" {
		allErrs = append(allErrs, validateDNS1123Label(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil {
		allErrs = append(allErrs, validateName(*a.NodeName, nameIsDNSSubdomain, fldPath.Child("nodeName"))...)
	}
	return append(allErrs, validateNonSpecialIP(a.IP, fldPath.Child("ip"))...)
}

// EndpointSlice

const (
	maxEndpointSliceEndpoints = 1000
	maxEndpointAddresses      = 100
	maxEndpointSlicePorts     = 20000
)

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := validateObjectMeta(&es.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	typePath := field.NewPath("addressType")
	types := []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
	switch es.AddressType {
	case "":
		allErrs = append(allErrs, field.Required(typePath, ""))
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN:
	default:
		allErrs = append(allErrs, field.NotSupported(typePath, es.AddressType, types))
	}
	epPath := field.NewPath("endpoints")
	if len(es.Endpoints) > maxEndpointSliceEndpoints {
		allErrs = append(allErrs, field.TooMany(epPath, len(es.Endpoints), maxEndpointSliceEndpoints))
	} else {
		for i, ep := range es.Endpoints {
			p := epPath.Index(i)
			addrPath := p.Child("addresses")
			if len(ep.Addresses) == 0 {
				allErrs = append(allErrs, field.Required(addrPath, "must contain at least 1 address"))
			} else if len(ep.Addresses) > maxEndpointAddresses {
				allErrs = append(allErrs, field.TooMany(addrPath, len(ep.Addresses), maxEndpointAddresses))
			}
			for j, addr := range ep.Addresses {
				ap := addrPath.Index(j)
				switch es.AddressType {
				case discoveryv1.AddressTypeIPv4:
					if ip := net.ParseIP(addr); ip == nil || ip.To4() == nil || strings.Contains(addr, ":") {
						allErrs = append(allErrs, field.Invalid(ap, addr, "must be a valid IPv4 address"))
					} else {
						allErrs = append(allErrs, validateNonSpecialIP(addr, ap)...)
					}
				case discoveryv1.AddressTypeIPv6:
					if ip := net.ParseIP(addr); ip == nil || !strings.Contains(addr, ":") {
						allErrs = append(allErrs, field.Invalid(ap, addr, "must be a valid IPv6 address"))
					} else {
						allErrs = append(allErrs, validateNonSpecialIP(addr, ap)...)
					}
				case discoveryv1.AddressTypeFQDN:
					allErrs = append(allErrs, validation.IsFullyQualifiedDomainName(ap, addr)...)
				}
			}
			if ep.NodeName != nil {
				allErrs = append(allErrs, validateName(*ep.NodeName, nameIsDNSSubdomain, p.Child("nodeName"))...)
			}
			if ep.Hostname != nil {
				allErrs = append(allErrs, validateDNS1123Label(*ep.Hostname, p.Child("hostname"))...)
			}
		}
	}
	portsPath := field.NewPath("ports")
	if len(es.Ports) > maxEndpointSlicePorts {
		return append(allErrs, field.TooMany(portsPath, len(es.Ports), maxEndpointSlicePorts))
	}
	names := map[string]bool{}
	for i, port := range es.Ports {
		p := portsPath.Index(i)
		name := deref(port.Name, "")
		if name != "" {
			allErrs = append(allErrs, validateDNS1123Label(name, p.Child("name"))...)
		}
		if names[name] {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), port.Name))
		}
		names[name] = true
		if port.Protocol == nil {
			allErrs = append(allErrs, field.Required(p.Child("protocol"), ""))
		} else if !isProtocolSupported(*port.Protocol) {
			allErrs = append(allErrs, field.NotSupported(p.Child("protocol"), *port.Protocol, supportedPortProtocols))
		}
		if port.AppProtocol != nil {
			allErrs = append(allErrs, validateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return allErrs
}

func validateEndpointSliceUpdate(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&es.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateEndpointSlice(es)...)
	return append(allErrs, validateImmutableField(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
}

package strategy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

// prepareServiceUpdate applies upstream's service update rules in its order:
// allocated values the client omitted are kept (so re-applying the original
// manifest is idempotent), clusterIP and clusterIPs are reconciled, status
// is kept, and fields that the new type no longer uses are dropped when the
// client did not change them.
func prepareServiceUpdate(svc, old *corev1.Service) {
	patchAllocatedValues(svc, old)
	normalizeClusterIPs(svc, old)
	svc.Status = old.Status
	dropTypeDependentFields(svc, old)
	trimForDualStackDowngrade(svc, old)
}

func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName
}

func needsNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

func needsHealthCheckNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

func patchAllocatedValues(svc, old *corev1.Service) {
	if needsClusterIP(old) && needsClusterIP(svc) {
		if svc.Spec.ClusterIP == "" {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
		}
		if len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		}
	}
	if needsNodePort(old) && needsNodePort(svc) {
		// Ports are matched by name: other properties of a port may have
		// changed.
		byName := map[string]int32{}
		for _, p := range old.Spec.Ports {
			byName[p.Name] = p.NodePort
		}
		for i := range svc.Spec.Ports {
			if svc.Spec.Ports[i].NodePort == 0 {
				svc.Spec.Ports[i].NodePort = byName[svc.Spec.Ports[i].Name]
			}
		}
	}
	if needsHealthCheckNodePort(old) && needsHealthCheckNodePort(svc) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

// normalizeClusterIPs keeps the singular clusterIP and the plural clusterIPs
// consistent for clients that only know the singular field. old is nil on
// create.
func normalizeClusterIPs(svc, old *corev1.Service) {
	if old == nil {
		if svc.Spec.ClusterIP != "" && len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		}
		return
	}
	// An old client patching something else drops clusterIPs.
	if len(old.Spec.ClusterIPs) > 0 && len(svc.Spec.ClusterIPs) == 0 && old.Spec.ClusterIP == svc.Spec.ClusterIP {
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
	}
	if old.Spec.ClusterIP == svc.Spec.ClusterIP {
		return
	}
	if !slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs) {
		// The client changed both; validation judges.
		return
	}
	if old.Spec.ClusterIP != "" && svc.Spec.ClusterIP == "" {
		svc.Spec.ClusterIPs = nil
	} else {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
}

// dropTypeDependentFields wipes fields a type change made meaningless, but
// only those the client left as they were (a changed value is for
// validation to reject).
func dropTypeDependentFields(svc, old *corev1.Service) {
	if needsClusterIP(old) && !needsClusterIP(svc) {
		if old.Spec.ClusterIP == svc.Spec.ClusterIP && slices.Equal(old.Spec.ClusterIPs, svc.Spec.ClusterIPs) {
			svc.Spec.ClusterIP = ""
			svc.Spec.ClusterIPs = nil
		}
		if apiequality.Semantic.DeepEqual(old.Spec.IPFamilies, svc.Spec.IPFamilies) {
			svc.Spec.IPFamilies = nil
		}
		if policyOf(old) == policyOf(svc) {
			svc.Spec.IPFamilyPolicy = nil
		}
	}
	if needsNodePort(old) && !needsNodePort(svc) && nodePortsSubset(svc, old) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if needsHealthCheckNodePort(old) && !needsHealthCheckNodePort(svc) &&
		old.Spec.HealthCheckNodePort == svc.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if a, b := old.Spec.AllocateLoadBalancerNodePorts, svc.Spec.AllocateLoadBalancerNodePorts; a != nil && b != nil && *a == *b {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
		if apiequality.Semantic.DeepEqual(old.Spec.LoadBalancerClass, svc.Spec.LoadBalancerClass) {
			svc.Spec.LoadBalancerClass = nil
		}
	}
	if needsNodePort(old) && !needsNodePort(svc) && old.Spec.ExternalTrafficPolicy == svc.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
	// Load-balancer status no longer applies; de-provisioning is the
	// controller's business.
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		svc.Status.LoadBalancer = corev1.LoadBalancerStatus{}
	}
}

func policyOf(svc *corev1.Service) corev1.IPFamilyPolicy {
	if svc.Spec.IPFamilyPolicy == nil {
		return ""
	}
	return *svc.Spec.IPFamilyPolicy
}

// nodePortsSubset reports whether svc adds no node port old did not have:
// ports may be added, removed or changed otherwise.
func nodePortsSubset(svc, old *corev1.Service) bool {
	had := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		if p.NodePort != 0 {
			had[p.NodePort] = true
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !had[p.NodePort] {
			return false
		}
	}
	return true
}

// trimForDualStackDowngrade drops the secondary IP and family when a
// dual-stack service is switched to SingleStack.
func trimForDualStackDowngrade(svc, old *corev1.Service) {
	wasDual := policyOf(old) == corev1.IPFamilyPolicyRequireDualStack || policyOf(old) == corev1.IPFamilyPolicyPreferDualStack
	if !wasDual || policyOf(svc) != corev1.IPFamilyPolicySingleStack {
		return
	}
	if len(svc.Spec.ClusterIPs) > 1 {
		svc.Spec.ClusterIPs = svc.Spec.ClusterIPs[:1]
	}
	if len(svc.Spec.IPFamilies) > 1 {
		svc.Spec.IPFamilies = svc.Spec.IPFamilies[:1]
	}
}

package resourcequota

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/quota"
)

func newZero() *resource.Quantity { return resource.NewQuantity(0, resource.DecimalSI) }

// known reports whether the controller can compute usage of name: the
// object counts and compute resources of the kinds it tracks.
func known(name corev1.ResourceName, objects map[schema.GroupResource][]runtime.Object) bool {
	switch name {
	case corev1.ResourcePods, corev1.ResourceServices, corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
		corev1.ResourceConfigMaps, corev1.ResourceSecrets, corev1.ResourcePersistentVolumeClaims, corev1.ResourceRequestsStorage,
		corev1.ResourceReplicationControllers, corev1.ResourceQuotas,
		corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
		corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceRequestsEphemeralStorage, corev1.ResourceLimitsEphemeralStorage:
		return true
	}
	for gr := range objects {
		if quota.CountName(gr) == name {
			return true
		}
	}
	return false
}

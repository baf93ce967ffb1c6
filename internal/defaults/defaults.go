package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Default applies upstream defaulting in place to obj, a typed k8s.io/api object of any served kind
// (e.g. *appsv1.Deployment, *corev1.Pod, *autoscalingv2.HorizontalPodAutoscaler, *autoscalingv1.HorizontalPodAutoscaler).
// Unknown kinds are left unchanged. It is idempotent.
//
// Served kinds that upstream does not default (Binding, both Events,
// ServiceAccount, ControllerRevision, Lease, Ingress, PodDisruptionBudget, Role,
// ClusterRole) have no case below and are returned as they came.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	// core/v1
	case *corev1.Pod:
		defaultPod(o)
	case *corev1.PodTemplate:
		defaultPodTemplateSpec(&o.Template)
	case *corev1.ReplicationController:
		defaultReplicationController(o)
	case *corev1.Service:
		defaultService(o)
	case *corev1.Endpoints:
		defaultEndpoints(o)
	case *corev1.Secret:
		defaultSecret(o)
	case *corev1.ConfigMap:
		defaultConfigMap(o)
	case *corev1.Namespace:
		defaultNamespace(o)
	case *corev1.Node:
		defaultNode(o)
	case *corev1.PersistentVolume:
		defaultPersistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		defaultPersistentVolumeClaim(o)
	case *corev1.LimitRange:
		defaultLimitRange(o)
	case *corev1.ResourceQuota:
		defaultResourceQuota(o)

	// apps/v1
	case *appsv1.Deployment:
		defaultDeployment(o)
	case *appsv1.ReplicaSet:
		defaultReplicaSet(o)
	case *appsv1.StatefulSet:
		defaultStatefulSet(o)
	case *appsv1.DaemonSet:
		defaultDaemonSet(o)

	// batch/v1
	case *batchv1.Job:
		defaultJob(o)
	case *batchv1.CronJob:
		defaultCronJob(o)

	// autoscaling
	case *autoscalingv2.HorizontalPodAutoscaler:
		defaultHPAv2(o)
	case *autoscalingv1.HorizontalPodAutoscaler:
		defaultHPAv1(o)

	// networking.k8s.io/v1
	case *networkingv1.NetworkPolicy:
		defaultNetworkPolicy(o)
	case *networkingv1.IngressClass:
		defaultIngressClass(o)

	// discovery.k8s.io/v1
	case *discoveryv1.EndpointSlice:
		defaultEndpointSlice(o)

	// rbac.authorization.k8s.io/v1
	case *rbacv1.RoleBinding:
		defaultRoleBinding(o)
	case *rbacv1.ClusterRoleBinding:
		defaultClusterRoleBinding(o)

	// scheduling.k8s.io/v1
	case *schedulingv1.PriorityClass:
		defaultPriorityClass(o)

	// storage.k8s.io/v1
	case *storagev1.StorageClass:
		defaultStorageClass(o)
	}
}

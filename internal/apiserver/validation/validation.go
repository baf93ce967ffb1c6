package validation

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateCreate validates a new object (a typed k8s.io/api object, already
// defaulted, with its namespace set from the URL for namespaced kinds). An
// empty list means a real cluster would accept the create.
func ValidateCreate(obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = validatePodCreate(o)
	case *corev1.PodTemplate:
		errs = validatePodTemplate(o)
	case *corev1.ReplicationController:
		errs = validateReplicationController(o)
	case *corev1.Service:
		errs = validateService(o)
	case *corev1.Endpoints:
		errs = validateEndpoints(o)
	case *corev1.ConfigMap:
		errs = validateConfigMap(o)
	case *corev1.Secret:
		errs = validateSecret(o)
	case *corev1.ServiceAccount:
		errs = validateServiceAccount(o)
	case *corev1.Namespace:
		errs = validateNamespace(o)
	case *corev1.Node:
		errs = validateNode(o)
	case *corev1.PersistentVolume:
		errs = validatePersistentVolume(o)
	case *corev1.PersistentVolumeClaim:
		errs = validatePersistentVolumeClaim(o)
	case *corev1.LimitRange:
		errs = validateLimitRange(o)
	case *corev1.ResourceQuota:
		errs = validateResourceQuota(o)
	case *corev1.Event:
		errs = legacyValidateEvent(fromCoreEvent(o))
	case *eventsv1.Event:
		errs = validateStrictEvent(fromEventsEvent(o))
	case *corev1.Binding:
		errs = validateBinding(o)
	case *policyv1.Eviction:
		// Evictions carry only delete options; the server checks the pod.
		return nil
	case *appsv1.Deployment:
		errs = validateDeployment(o)
	case *appsv1.ReplicaSet:
		errs = validateReplicaSet(o)
	case *appsv1.StatefulSet:
		errs = validateStatefulSet(o)
	case *appsv1.DaemonSet:
		errs = validateDaemonSet(o)
	case *appsv1.ControllerRevision:
		errs = validateControllerRevision(o)
	case *batchv1.Job:
		errs = validateJob(o)
	case *batchv1.CronJob:
		errs = validateCronJobCreate(o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		errs = validateHPA(o)
	case *autoscalingv1.HorizontalPodAutoscaler:
		errs = validateObjectMeta(&o.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
		errs = append(errs, validateHPAv1Spec(&o.Spec, field.NewPath("spec"), minReplicasLowerBound)...)
	case *autoscalingv1.Scale:
		errs = validateScale(o)
	case *coordinationv1.Lease:
		errs = validateLease(o)
	case *discoveryv1.EndpointSlice:
		errs = validateEndpointSlice(o)
	case *networkingv1.Ingress:
		errs = validateIngressCreate(o)
	case *networkingv1.IngressClass:
		errs = validateIngressClass(o)
	case *networkingv1.NetworkPolicy:
		errs = validateNetworkPolicy(o)
	case *policyv1.PodDisruptionBudget:
		errs = validatePDBSpec(&o.Spec, field.NewPath("spec"))
	case *rbacv1.Role:
		errs = validateRole(o)
	case *rbacv1.ClusterRole:
		errs = validateClusterRole(o)
	case *rbacv1.RoleBinding:
		errs = validateRoleBinding(o)
	case *rbacv1.ClusterRoleBinding:
		errs = validateClusterRoleBinding(o)
	case *schedulingv1.PriorityClass:
		errs = validatePriorityClass(o)
	case *storagev1.StorageClass:
		errs = validateStorageClass(o)
	}
	if len(errs) != 0 {
		return dedupe(errs)
	}
	// Upstream's generic registry checks every object's metadata once the
	// kind's own validation has passed.
	m, namespaced, err := objectMeta(obj)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("metadata"), err)}
	}
	return apimachineryvalidation.ValidateObjectMetaAccessor(m, namespaced, nameIsPathSegment, field.NewPath("metadata"))
}

// ValidateUpdate validates an update of old to obj through the main
// resource, including the fields upstream makes immutable (selectors,
// clusterIPs, most of a pod's or job's spec, roleRef, ...).
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	common, err := validateCommonUpdate(obj, old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath(""), err)}
	}
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = validatePodUpdate(o, old.(*corev1.Pod))
	case *corev1.PodTemplate:
		errs = validatePodTemplateUpdate(o, old.(*corev1.PodTemplate))
	case *corev1.ReplicationController:
		errs = validateReplicationControllerUpdate(o, old.(*corev1.ReplicationController))
	case *corev1.Service:
		errs = validateServiceUpdate(o, old.(*corev1.Service))
	case *corev1.Endpoints:
		errs = validateObjectMetaUpdate(&o.ObjectMeta, &old.(*corev1.Endpoints).ObjectMeta, field.NewPath("metadata"))
		errs = append(errs, validateEndpoints(o)...)
	case *corev1.ConfigMap:
		errs = validateConfigMapUpdate(o, old.(*corev1.ConfigMap))
	case *corev1.Secret:
		errs = validateSecretUpdate(o, old.(*corev1.Secret))
	case *corev1.ServiceAccount:
		errs = validateServiceAccountUpdate(o, old.(*corev1.ServiceAccount))
	case *corev1.Namespace:
		errs = validateNamespace(o)
		errs = append(errs, validateObjectMetaUpdate(&o.ObjectMeta, &old.(*corev1.Namespace).ObjectMeta, field.NewPath("metadata"))...)
	case *corev1.Node:
		errs = validateNode(o)
		errs = append(errs, validateNodeUpdate(o, old.(*corev1.Node))...)
	case *corev1.PersistentVolume:
		errs = validatePersistentVolumeUpdate(o, old.(*corev1.PersistentVolume))
	case *corev1.PersistentVolumeClaim:
		errs = validatePersistentVolumeClaimUpdate(o, old.(*corev1.PersistentVolumeClaim))
	case *corev1.LimitRange:
		errs = validateLimitRange(o)
		errs = append(errs, validateObjectMetaUpdate(&o.ObjectMeta, &old.(*corev1.LimitRange).ObjectMeta, field.NewPath("metadata"))...)
	case *corev1.ResourceQuota:
		errs = validateResourceQuotaUpdate(o, old.(*corev1.ResourceQuota))
	case *corev1.Event:
		errs = legacyValidateEvent(fromCoreEvent(o))
	case *eventsv1.Event:
		errs = validateEventsEventUpdate(o, old.(*eventsv1.Event))
	case *appsv1.Deployment:
		errs = validateDeploymentUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		errs = validateReplicaSetUpdate(o, old.(*appsv1.ReplicaSet))
	case *appsv1.StatefulSet:
		errs = validateStatefulSetUpdate(o, old.(*appsv1.StatefulSet))
	case *appsv1.DaemonSet:
		errs = validateDaemonSetUpdate(o, old.(*appsv1.DaemonSet))
	case *appsv1.ControllerRevision:
		errs = validateControllerRevisionUpdate(o, old.(*appsv1.ControllerRevision))
	case *batchv1.Job:
		errs = validateJobUpdate(o, old.(*batchv1.Job))
	case *batchv1.CronJob:
		errs = validateCronJobUpdate(o, old.(*batchv1.CronJob))
	case *autoscalingv2.HorizontalPodAutoscaler:
		errs = validateHPAUpdate(o, old.(*autoscalingv2.HorizontalPodAutoscaler))
	case *autoscalingv1.HorizontalPodAutoscaler:
		o1 := old.(*autoscalingv1.HorizontalPodAutoscaler)
		errs = validateObjectMetaUpdate(&o.ObjectMeta, &o1.ObjectMeta, field.NewPath("metadata"))
		errs = append(errs, validateHPAv1Spec(&o.Spec, field.NewPath("spec"), hpaLowerBound(o1.Spec.MinReplicas))...)
	case *autoscalingv1.Scale:
		errs = validateScale(o)
	case *coordinationv1.Lease:
		errs = validateObjectMetaUpdate(&o.ObjectMeta, &old.(*coordinationv1.Lease).ObjectMeta, field.NewPath("metadata"))
		errs = append(errs, validateLeaseSpec(&o.Spec, field.NewPath("spec"))...)
	case *discoveryv1.EndpointSlice:
		errs = validateEndpointSliceUpdate(o, old.(*discoveryv1.EndpointSlice))
	case *networkingv1.Ingress:
		errs = validateIngressUpdate(o, old.(*networkingv1.Ingress))
	case *networkingv1.IngressClass:
		errs = validateIngressClassUpdate(o, old.(*networkingv1.IngressClass))
	case *networkingv1.NetworkPolicy:
		errs = validateNetworkPolicyUpdate(o, old.(*networkingv1.NetworkPolicy))
	case *policyv1.PodDisruptionBudget:
		errs = validatePDBSpec(&o.Spec, field.NewPath("spec"))
	case *rbacv1.Role:
		errs = validateRole(o)
		errs = append(errs, validateObjectMetaUpdate(&o.ObjectMeta, &old.(*rbacv1.Role).ObjectMeta, field.NewPath("metadata"))...)
	case *rbacv1.ClusterRole:
		errs = validateClusterRole(o)
		errs = append(errs, validateObjectMetaUpdate(&o.ObjectMeta, &old.(*rbacv1.ClusterRole).ObjectMeta, field.NewPath("metadata"))...)
	case *rbacv1.RoleBinding:
		ob := old.(*rbacv1.RoleBinding)
		errs = validateRoleBinding(o)
		errs = append(errs, validateObjectMetaUpdate(&o.ObjectMeta, &ob.ObjectMeta, field.NewPath("metadata"))...)
		errs = append(errs, validateRoleRefUnchanged(o.RoleRef, ob.RoleRef)...)
	case *rbacv1.ClusterRoleBinding:
		ob := old.(*rbacv1.ClusterRoleBinding)
		errs = validateClusterRoleBinding(o)
		errs = append(errs, validateObjectMetaUpdate(&o.ObjectMeta, &ob.ObjectMeta, field.NewPath("metadata"))...)
		errs = append(errs, validateRoleRefUnchanged(o.RoleRef, ob.RoleRef)...)
	case *schedulingv1.PriorityClass:
		errs = validatePriorityClass(o)
		errs = append(errs, validatePriorityClassUpdate(o, old.(*schedulingv1.PriorityClass))...)
	case *storagev1.StorageClass:
		errs = validateStorageClass(o)
		errs = append(errs, validateStorageClassUpdate(o, old.(*storagev1.StorageClass))...)
	}
	return dedupe(append(common, errs...))
}

// ValidateStatusUpdate validates an update through the /status subresource:
// the metadata rules plus each kind's status rules (non-negative counts,
// counts not above replicas, legal container state transitions, ...).
func ValidateStatusUpdate(obj, old runtime.Object) field.ErrorList {
	common, err := validateCommonUpdate(obj, old)
	if err != nil {
		return field.ErrorList{field.InternalError(field.NewPath(""), err)}
	}
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = validatePodStatusUpdate(o, old.(*corev1.Pod))
	case *corev1.ReplicationController:
		errs = validateReplicationControllerStatusUpdate(o, old.(*corev1.ReplicationController))
	case *corev1.Service:
		errs = validateServiceStatusUpdate(o, old.(*corev1.Service))
	case *corev1.Namespace:
		errs = validateNamespaceStatusUpdate(o, old.(*corev1.Namespace))
	case *corev1.Node:
		errs = validateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.PersistentVolume:
		errs = validateObjectMetaUpdate(&o.ObjectMeta, &old.(*corev1.PersistentVolume).ObjectMeta, field.NewPath("metadata"))
		if o.ResourceVersion == "" {
			errs = append(errs, field.Required(field.NewPath("resourceVersion"), ""))
		}
	case *corev1.PersistentVolumeClaim:
		errs = validatePersistentVolumeClaimStatusUpdate(o, old.(*corev1.PersistentVolumeClaim))
	case *corev1.ResourceQuota:
		errs = validateResourceQuotaStatusUpdate(o, old.(*corev1.ResourceQuota))
	case *appsv1.Deployment:
		errs = validateDeploymentStatusUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		errs = validateReplicaSetStatusUpdate(o, old.(*appsv1.ReplicaSet))
	case *appsv1.StatefulSet:
		errs = validateStatefulSetStatusUpdate(o, old.(*appsv1.StatefulSet))
	case *appsv1.DaemonSet:
		errs = validateDaemonSetStatusUpdate(o, old.(*appsv1.DaemonSet))
	case *batchv1.Job:
		errs = validateJobStatusUpdate(o, old.(*batchv1.Job))
	case *autoscalingv2.HorizontalPodAutoscaler:
		errs = validateObjectMetaUpdate(&o.ObjectMeta, &old.(*autoscalingv2.HorizontalPodAutoscaler).ObjectMeta, field.NewPath("metadata"))
		errs = append(errs, validateHPAStatus(o.Status.CurrentReplicas, o.Status.DesiredReplicas)...)
	case *autoscalingv1.HorizontalPodAutoscaler:
		errs = validateObjectMetaUpdate(&o.ObjectMeta, &old.(*autoscalingv1.HorizontalPodAutoscaler).ObjectMeta, field.NewPath("metadata"))
		errs = append(errs, validateHPAStatus(o.Status.CurrentReplicas, o.Status.DesiredReplicas)...)
	case *networkingv1.Ingress:
		errs = validateIngressStatusUpdate(o, old.(*networkingv1.Ingress))
	case *policyv1.PodDisruptionBudget:
		errs = validatePDBStatusUpdate(o, old.(*policyv1.PodDisruptionBudget))
	default:
		m, _, _ := objectMeta(obj)
		oldM, _, _ := objectMeta(old)
		errs = apimachineryvalidation.ValidateObjectMetaAccessorUpdate(m, oldM, field.NewPath("metadata"))
	}
	return dedupe(append(common, errs...))
}

// validateCommonUpdate is the metadata check upstream's generic registry
// runs before every update: the object's metadata is valid on its own and
// its immutable parts did not change.
func validateCommonUpdate(obj, old runtime.Object) (field.ErrorList, error) {
	if reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return nil, fmt.Errorf("cannot update a %T with a %T", old, obj)
	}
	m, namespaced, err := objectMeta(obj)
	if err != nil {
		return nil, err
	}
	oldM, _, err := objectMeta(old)
	if err != nil {
		return nil, err
	}
	fldPath := field.NewPath("metadata")
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(m, namespaced, nameIsPathSegment, fldPath)
	return append(errs, apimachineryvalidation.ValidateObjectMetaAccessorUpdate(m, oldM, fldPath)...), nil
}

// objectMeta returns an object's metadata and whether its kind is
// namespaced. For a type this package does not know, the object's own
// namespace decides.
func objectMeta(obj runtime.Object) (metav1.Object, bool, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, false, err
	}
	switch obj.(type) {
	case *corev1.Namespace, *corev1.Node, *corev1.PersistentVolume,
		*rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding,
		*schedulingv1.PriorityClass, *storagev1.StorageClass, *networkingv1.IngressClass:
		return m, false, nil
	case *corev1.Pod, *corev1.PodTemplate, *corev1.ReplicationController, *corev1.Service, *corev1.Endpoints,
		*corev1.ConfigMap, *corev1.Secret, *corev1.ServiceAccount, *corev1.PersistentVolumeClaim,
		*corev1.LimitRange, *corev1.ResourceQuota, *corev1.Event, *eventsv1.Event, *corev1.Binding,
		*policyv1.Eviction, *policyv1.PodDisruptionBudget,
		*appsv1.Deployment, *appsv1.ReplicaSet, *appsv1.StatefulSet, *appsv1.DaemonSet, *appsv1.ControllerRevision,
		*batchv1.Job, *batchv1.CronJob, *autoscalingv2.HorizontalPodAutoscaler, *autoscalingv1.HorizontalPodAutoscaler,
		*autoscalingv1.Scale, *coordinationv1.Lease, *discoveryv1.EndpointSlice,
		*networkingv1.Ingress, *networkingv1.NetworkPolicy, *rbacv1.Role, *rbacv1.RoleBinding:
		return m, true, nil
	}
	return m, m.GetNamespace() != "", nil
}

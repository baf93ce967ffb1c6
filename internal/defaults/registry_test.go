package defaults

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// sample is a small object of one served kind and whether upstream defaulting
// changes it.
type sample struct {
	obj       runtime.Object
	defaulted bool
}

// samples holds one object per served group/version/kind. Objects are nearly
// empty, so they also check that Default copes with unset optional parts
// (nil templates, no ports).
func samples() map[schema.GroupVersionKind]sample {
	core := func(kind string) schema.GroupVersionKind { return schema.GroupVersionKind{Version: "v1", Kind: kind} }
	gvk := func(group, version, kind string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
	}
	return map[schema.GroupVersionKind]sample{
		core("Binding"):               {&corev1.Binding{Target: corev1.ObjectReference{Name: "node"}}, false},
		core("ConfigMap"):             {&corev1.ConfigMap{}, true},
		core("Endpoints"):             {&corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 1}}}}}, true},
		core("Event"):                 {&corev1.Event{Reason: "Started", Type: "Normal"}, false},
		core("LimitRange"):            {&corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: "Container"}}}}, true},
		core("Namespace"):             {&corev1.Namespace{}, true},
		core("Node"):                  {&corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{"cpu": q("1")}}}, true},
		core("PersistentVolumeClaim"): {&corev1.PersistentVolumeClaim{}, true},
		core("PersistentVolume"):      {&corev1.PersistentVolume{}, true},
		core("Pod"):                   {&corev1.Pod{}, true},
		core("PodTemplate"):           {&corev1.PodTemplate{}, true},
		core("ReplicationController"): {&corev1.ReplicationController{}, true},
		core("ResourceQuota"):         {&corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"cpu": q("100u")}}}, true},
		core("Secret"):                {&corev1.Secret{}, true},
		core("ServiceAccount"):        {&corev1.ServiceAccount{AutomountServiceAccountToken: ptr.To(false)}, false},
		core("Service"):               {&corev1.Service{}, true},

		gvk("apps", "v1", "ControllerRevision"): {&appsv1.ControllerRevision{Revision: 1}, false},
		gvk("apps", "v1", "DaemonSet"):          {&appsv1.DaemonSet{}, true},
		gvk("apps", "v1", "Deployment"):         {&appsv1.Deployment{}, true},
		gvk("apps", "v1", "ReplicaSet"):         {&appsv1.ReplicaSet{}, true},
		gvk("apps", "v1", "StatefulSet"):        {&appsv1.StatefulSet{}, true},

		gvk("authentication.k8s.io", "v1", "SelfSubjectReview"): {&authenticationv1.SelfSubjectReview{}, false},

		gvk("autoscaling", "v2", "HorizontalPodAutoscaler"): {&autoscalingv2.HorizontalPodAutoscaler{}, true},
		gvk("autoscaling", "v1", "HorizontalPodAutoscaler"): {&autoscalingv1.HorizontalPodAutoscaler{}, true},

		gvk("batch", "v1", "CronJob"): {&batchv1.CronJob{}, true},
		gvk("batch", "v1", "Job"):     {&batchv1.Job{}, true},

		gvk("coordination.k8s.io", "v1", "Lease"): {&coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a")}}, false},

		gvk("discovery.k8s.io", "v1", "EndpointSlice"): {&discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{}}}, true},

		gvk("events.k8s.io", "v1", "Event"): {&eventsv1.Event{Reason: "Started", Type: "Normal"}, false},

		gvk("networking.k8s.io", "v1", "IngressClass"):  {&networkingv1.IngressClass{Spec: networkingv1.IngressClassSpec{Parameters: &networkingv1.IngressClassParametersReference{}}}, true},
		gvk("networking.k8s.io", "v1", "Ingress"):       {&networkingv1.Ingress{Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "a"}}}}, false},
		gvk("networking.k8s.io", "v1", "NetworkPolicy"): {&networkingv1.NetworkPolicy{}, true},

		gvk("policy", "v1", "PodDisruptionBudget"): {&policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{}}}, false},

		gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"): {&rbacv1.ClusterRoleBinding{}, true},
		gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"):        {&rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}}}}, false},
		gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"):        {&rbacv1.RoleBinding{}, true},
		gvk("rbac.authorization.k8s.io", "v1", "Role"):               {&rbacv1.Role{Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}}}}, false},

		gvk("scheduling.k8s.io", "v1", "PriorityClass"): {&schedulingv1.PriorityClass{}, true},

		gvk("storage.k8s.io", "v1", "StorageClass"): {&storagev1.StorageClass{}, true},
	}
}

// TestEveryServedKind fails when the registry serves a kind this package has
// no answer for, and checks that Default dispatches each kind: kinds upstream
// defaults change, the others stay exactly as they were.
func TestEveryServedKind(t *testing.T) {
	all := samples()
	for _, r := range registry.All() {
		for _, v := range r.Versions {
			gvk := schema.GroupVersionKind{Group: r.Group, Version: v, Kind: r.Kind}
			s, ok := all[gvk]
			if !ok {
				t.Errorf("%s: served kind has no sample; decide its defaults and add one", gvk)
				continue
			}
			got := s.obj.DeepCopyObject()
			Default(got)
			if changed := !reflect.DeepEqual(got, s.obj); changed != s.defaulted {
				t.Errorf("%s: got changed=%v, want changed=%v\n%s", gvk, changed, s.defaulted, diff.Diff(s.obj, got))
			}
			again := got.DeepCopyObject()
			Default(again)
			if !reflect.DeepEqual(again, got) {
				t.Errorf("%s: not idempotent:\n%s", gvk, diff.Diff(got, again))
			}
		}
	}
}

// TestUnknownKind checks that objects Default does not know are untouched.
func TestUnknownKind(t *testing.T) {
	in := &corev1.PodList{Items: []corev1.Pod{{}}}
	got := in.DeepCopy()
	Default(got)
	if !reflect.DeepEqual(got, in) {
		t.Errorf("Default(PodList): got %v, want unchanged %v", got, in)
	}
	Default(nil) // must not panic
}

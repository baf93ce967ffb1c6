package printers

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Placeholders upstream prints for absent values.
const (
	none    = "<none>"
	unknown = "<unknown>"
	unset   = "<unset>"
)

// Row renders the cells of obj (a typed object from k8s.io/api, e.g. *corev1.Pod) for the columns that
// ColumnDefinitions returns for its kind; len(cells) == len(columns). now is the reference time for ages
// (pass it in: no clock reads inside). For an unknown kind: name and creationTimestamp (as the RFC3339 string).
func Row(obj runtime.Object, now time.Time) ([]interface{}, error) {
	if obj == nil {
		return nil, errors.New("print row: nil object")
	}
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("print row: nil %T", obj)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return podRow(o, now), nil
	case *corev1.PodTemplate:
		return podTemplateRow(o), nil
	case *corev1.ReplicationController:
		return replicationControllerRow(o, now), nil
	case *corev1.Service:
		return serviceRow(o, now), nil
	case *corev1.Endpoints:
		return endpointsRow(o, now), nil
	case *corev1.Node:
		return nodeRow(o, now), nil
	case *corev1.Event:
		return coreEventRow(o, now), nil
	case *eventsv1.Event:
		return eventsEventRow(o, now), nil
	case *corev1.Namespace:
		return []interface{}{o.Name, string(o.Status.Phase), age(o.CreationTimestamp, now)}, nil
	case *corev1.Secret:
		return secretRow(o, now), nil
	case *corev1.ServiceAccount:
		return []interface{}{o.Name, age(o.CreationTimestamp, now)}, nil
	case *corev1.PersistentVolume:
		return persistentVolumeRow(o, now), nil
	case *corev1.PersistentVolumeClaim:
		return persistentVolumeClaimRow(o, now), nil
	case *corev1.ConfigMap:
		return []interface{}{o.Name, int64(len(o.Data) + len(o.BinaryData)), age(o.CreationTimestamp, now)}, nil
	case *corev1.ResourceQuota:
		return resourceQuotaRow(o, now), nil
	case *appsv1.Deployment:
		return deploymentRow(o, now), nil
	case *appsv1.ReplicaSet:
		return replicaSetRow(o, now), nil
	case *appsv1.StatefulSet:
		return statefulSetRow(o, now), nil
	case *appsv1.DaemonSet:
		return daemonSetRow(o, now), nil
	case *appsv1.ControllerRevision:
		return controllerRevisionRow(o, now)
	case *batchv1.Job:
		return jobRow(o, now), nil
	case *batchv1.CronJob:
		return cronJobRow(o, now), nil
	case *autoscalingv2.HorizontalPodAutoscaler:
		return hpaV2Row(o, now), nil
	case *autoscalingv1.HorizontalPodAutoscaler:
		return hpaV1Row(o, now), nil
	case *networkingv1.Ingress:
		return ingressRow(o, now), nil
	case *networkingv1.IngressClass:
		return ingressClassRow(o, now), nil
	case *networkingv1.NetworkPolicy:
		return []interface{}{o.Name, metav1.FormatLabelSelector(&o.Spec.PodSelector), age(o.CreationTimestamp, now)}, nil
	case *discoveryv1.EndpointSlice:
		return endpointSliceRow(o, now), nil
	case *coordinationv1.Lease:
		return leaseRow(o, now), nil
	case *rbacv1.RoleBinding:
		return roleBindingRow(o.Name, o.RoleRef, o.Subjects, o.CreationTimestamp, now), nil
	case *rbacv1.ClusterRoleBinding:
		return roleBindingRow(o.Name, o.RoleRef, o.Subjects, o.CreationTimestamp, now), nil
	case *storagev1.StorageClass:
		return storageClassRow(o, now), nil
	case *policyv1.PodDisruptionBudget:
		return podDisruptionBudgetRow(o, now), nil
	case *schedulingv1.PriorityClass:
		return priorityClassRow(o, now), nil
	}
	return defaultRow(obj)
}

// defaultRow mirrors upstream's default table convertor, used for every kind
// without a printer of its own.
func defaultRow(obj runtime.Object) ([]interface{}, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("print row for %T: %w", obj, err)
	}
	return []interface{}{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
}

// age is the elapsed time from t to now as upstream's AGE columns show it.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// microAge is age for the microsecond timestamps of events.
func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// containerCells lays the containers out on one line each for the
// CONTAINERS and IMAGES columns.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	i := make([]string, len(containers))
	for idx := range containers {
		n[idx] = containers[idx].Name
		i[idx] = containers[idx].Image
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

// listWithMore joins the first max items of a list of count items and says
// how many were left out; an empty list is "<unset>".
func listWithMore(items []string, count, max int) string {
	s := strings.Join(items, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", s, count-max)
	}
	if s == "" {
		return unset
	}
	return s
}

func boolPtrString(b *bool) string {
	if b == nil {
		return unset
	}
	if *b {
		return "True"
	}
	return "False"
}

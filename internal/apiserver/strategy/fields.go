package strategy

import (
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// Field labels of the object metadata, accepted for every kind.
const (
	fieldName      = "metadata.name"
	fieldNamespace = "metadata.namespace"
)

// podHostAlias is the label old v1 clients send for spec.nodeName; upstream
// rewrites it, Fields answers it directly.
const podHostAlias = "spec.host"

var (
	coreEventFields = []string{
		"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
		"involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
		"involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
		fieldNamespace, fieldName,
	}
	eventsEventFields = []string{
		"reason", "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
		"regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
		"reportingController", "source", "type", fieldNamespace, fieldName,
	}
)

// selectable lists, per kind with its own field label conversion upstream,
// the labels it accepts. Every other kind accepts metadata.name and
// metadata.namespace.
func selectable(gk schema.GroupKind) ([]string, bool) {
	switch gk {
	case schema.GroupKind{Kind: "Pod"}:
		return []string{fieldName, fieldNamespace, "spec.nodeName", "spec.restartPolicy",
			"spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
			"status.podIP", "status.podIPs", "status.nominatedNodeName", podHostAlias}, true
	case schema.GroupKind{Kind: "Node"}:
		return []string{fieldName, "spec.unschedulable"}, true
	case schema.GroupKind{Kind: "ReplicationController"}:
		return []string{fieldName, fieldNamespace, "status.replicas"}, true
	case schema.GroupKind{Kind: "Event"}:
		return slices.Clone(coreEventFields), true
	case schema.GroupKind{Kind: "Namespace"}:
		return []string{"status.phase", fieldName}, true
	case schema.GroupKind{Kind: "Secret"}:
		return []string{"type", fieldNamespace, fieldName}, true
	case schema.GroupKind{Kind: "Service"}:
		return []string{fieldNamespace, fieldName, "spec.clusterIP", "spec.type"}, true
	case schema.GroupKind{Group: "batch", Kind: "Job"}:
		return []string{fieldName, fieldNamespace, "status.successful"}, true
	case schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}:
		return slices.Clone(eventsEventFields), true
	}
	return []string{fieldName, fieldNamespace}, false
}

// SelectableFields returns the field labels a field selector may use for
// the group kind, as upstream's field label conversion functions accept
// them. Fields may omit a listed label (upstream accepts status.podIPs but
// never sets it; metadata.namespace of a cluster-scoped object): a missing
// label compares as the empty string, as upstream's does.
func SelectableFields(gk schema.GroupKind) []string {
	s, _ := selectable(gk)
	return s
}

// FieldLabelError returns nil when label is selectable for the group kind,
// and otherwise the error upstream returns for it, whose text becomes the
// message of the 400 response. Kinds with their own conversion function say
// "field label not supported: <label>" (the Job wording differs); the others
// use apimachinery's default.
func FieldLabelError(gk schema.GroupKind, label string) error {
	labels, custom := selectable(gk)
	if slices.Contains(labels, label) {
		return nil
	}
	switch {
	case gk == schema.GroupKind{Group: "batch", Kind: "Job"}:
		return fmt.Errorf("field label %q not supported for batchv1.Job", label)
	case custom:
		return fmt.Errorf("field label not supported: %s", label)
	default:
		return fmt.Errorf("%q is not a known field selector: only %q, %q", label, fieldName, fieldNamespace)
	}
}

// Fields returns the selectable fields of obj for field selectors, with the
// values upstream's ToSelectableFields compute: metadata.name, and
// metadata.namespace for namespaced kinds, plus the per-kind fields (pod
// node, phase, IP...; event involved object, reason, source...; secret type;
// node unschedulable; ...). An Event answers both the core/v1 and the
// events.k8s.io/v1 labels, because the two resources share one storage and a
// selector may be evaluated on either form.
func Fields(obj runtime.Object) fields.Set {
	switch o := obj.(type) {
	case *corev1.Pod:
		return podFields(o)
	case *corev1.Node:
		return fields.Set{fieldName: o.Name, "spec.unschedulable": strconv.FormatBool(o.Spec.Unschedulable)}
	case *corev1.ReplicationController:
		return withMeta(&o.ObjectMeta, true, fields.Set{"status.replicas": strconv.Itoa(int(o.Status.Replicas))})
	case *corev1.Namespace:
		return withMeta(&o.ObjectMeta, false, fields.Set{"status.phase": string(o.Status.Phase)})
	case *corev1.Secret:
		return withMeta(&o.ObjectMeta, true, fields.Set{"type": string(o.Type)})
	case *corev1.Service:
		return withMeta(&o.ObjectMeta, true, fields.Set{
			"spec.clusterIP": o.Spec.ClusterIP,
			"spec.type":      string(o.Spec.Type),
		})
	case *corev1.Event:
		source := o.Source.Component
		if source == "" {
			source = o.ReportingController
		}
		return withMeta(&o.ObjectMeta, true, eventFields(o.InvolvedObject, o.Reason, o.ReportingController, source, o.Type))
	case *eventsv1.Event:
		source := o.DeprecatedSource.Component
		if source == "" {
			source = o.ReportingController
		}
		return withMeta(&o.ObjectMeta, true, eventFields(o.Regarding, o.Reason, o.ReportingController, source, o.Type))
	case *batchv1.Job:
		return withMeta(&o.ObjectMeta, true, fields.Set{"status.successful": strconv.Itoa(int(o.Status.Succeeded))})
	case *appsv1.ReplicaSet:
		// Upstream computes status.replicas too, though only the removed
		// extensions/v1beta1 accepted the label.
		return withMeta(&o.ObjectMeta, true, fields.Set{"status.replicas": strconv.Itoa(int(o.Status.Replicas))})
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return fields.Set{}
	}
	set := fields.Set{fieldName: m.GetName()}
	if m.GetNamespace() != "" || namespaced(obj) {
		set[fieldNamespace] = m.GetNamespace()
	}
	return set
}

func podFields(pod *corev1.Pod) fields.Set {
	ip := pod.Status.PodIP
	if len(pod.Status.PodIPs) > 0 {
		ip = pod.Status.PodIPs[0].IP
	}
	return withMeta(&pod.ObjectMeta, true, fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		podHostAlias:               pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             ip,
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	})
}

// eventFields holds both the core/v1 and the events.k8s.io/v1 labels of an
// event; reportingComponent is the core/v1 name of reportingController.
func eventFields(ref corev1.ObjectReference, reason, controller, source, typ string) fields.Set {
	return fields.Set{
		"involvedObject.kind":            ref.Kind,
		"involvedObject.namespace":       ref.Namespace,
		"involvedObject.name":            ref.Name,
		"involvedObject.uid":             string(ref.UID),
		"involvedObject.apiVersion":      ref.APIVersion,
		"involvedObject.resourceVersion": ref.ResourceVersion,
		"involvedObject.fieldPath":       ref.FieldPath,
		"regarding.kind":                 ref.Kind,
		"regarding.namespace":            ref.Namespace,
		"regarding.name":                 ref.Name,
		"regarding.uid":                  string(ref.UID),
		"regarding.apiVersion":           ref.APIVersion,
		"regarding.resourceVersion":      ref.ResourceVersion,
		"regarding.fieldPath":            ref.FieldPath,
		"reason":                         reason,
		"reportingComponent":             controller,
		"reportingController":            controller,
		"source":                         source,
		"type":                           typ,
	}
}

func withMeta(m *metav1.ObjectMeta, namespaced bool, set fields.Set) fields.Set {
	set[fieldName] = m.Name
	if namespaced {
		set[fieldNamespace] = m.Namespace
	}
	return set
}

// namespaced reports whether the served resource of obj's kind is
// namespaced; unknown kinds count as cluster-scoped.
func namespaced(obj runtime.Object) bool {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return false
	}
	r := lookup(gvks[0].GroupKind())
	return r != nil && r.Namespaced
}

package strategy

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

func TestFields(t *testing.T) {
	ref := corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-0", UID: "u1", APIVersion: "v1", ResourceVersion: "42", FieldPath: "spec.containers{web}"}
	tests := []struct {
		name string
		obj  runtime.Object
		want fields.Set
	}{
		{
			name: "pod",
			obj: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default"},
				Spec: corev1.PodSpec{NodeName: "node-1", RestartPolicy: corev1.RestartPolicyAlways, SchedulerName: "default-scheduler",
					ServiceAccountName: "default", HostNetwork: true},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.5", PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}, {IP: "fd00::5"}}, NominatedNodeName: "node-2"},
			},
			want: fields.Set{
				"metadata.name": "web-0", "metadata.namespace": "default", "spec.nodeName": "node-1", "spec.host": "node-1",
				"spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler", "spec.serviceAccountName": "default",
				"spec.hostNetwork": "true", "status.phase": "Running", "status.podIP": "10.244.0.5", "status.nominatedNodeName": "node-2",
			},
		},
		{
			name: "pod defaults",
			obj:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}},
			want: fields.Set{
				"metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "", "spec.host": "",
				"spec.restartPolicy": "", "spec.schedulerName": "", "spec.serviceAccountName": "",
				"spec.hostNetwork": "false", "status.phase": "", "status.podIP": "", "status.nominatedNodeName": "",
			},
		},
		{
			name: "core event falls back to reporting controller for source",
			obj: &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "web-0.1", Namespace: "default"}, InvolvedObject: ref,
				Reason: "Pulled", Type: "Normal", ReportingController: "kubelet",
			},
			want: fields.Set{
				"metadata.name": "web-0.1", "metadata.namespace": "default",
				"involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web-0",
				"involvedObject.uid": "u1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "42",
				"involvedObject.fieldPath": "spec.containers{web}",
				"regarding.kind":           "Pod", "regarding.namespace": "default", "regarding.name": "web-0",
				"regarding.uid": "u1", "regarding.apiVersion": "v1", "regarding.resourceVersion": "42",
				"regarding.fieldPath": "spec.containers{web}",
				"reason":              "Pulled", "reportingComponent": "kubelet", "reportingController": "kubelet", "source": "kubelet", "type": "Normal",
			},
		},
		{
			name: "events.k8s.io event uses deprecated source",
			obj: &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"}, Regarding: ref, Reason: "Scheduled",
				Type: "Normal", ReportingController: "default-scheduler", DeprecatedSource: corev1.EventSource{Component: "scheduler"},
			},
			want: fields.Set{
				"metadata.name": "e", "metadata.namespace": "default",
				"involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web-0",
				"involvedObject.uid": "u1", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "42",
				"involvedObject.fieldPath": "spec.containers{web}",
				"regarding.kind":           "Pod", "regarding.namespace": "default", "regarding.name": "web-0",
				"regarding.uid": "u1", "regarding.apiVersion": "v1", "regarding.resourceVersion": "42",
				"regarding.fieldPath": "spec.containers{web}",
				"reason":              "Scheduled", "reportingComponent": "default-scheduler", "reportingController": "default-scheduler",
				"source": "scheduler", "type": "Normal",
			},
		},
		{
			name: "secret",
			obj:  &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Type: corev1.SecretTypeTLS},
			want: fields.Set{"metadata.name": "s", "metadata.namespace": "ns", "type": "kubernetes.io/tls"},
		},
		{
			name: "node",
			obj:  &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Unschedulable: true}},
			want: fields.Set{"metadata.name": "n", "spec.unschedulable": "true"},
		},
		{
			name: "namespace",
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: fields.Set{"metadata.name": "n", "status.phase": "Active"},
		},
		{
			name: "service",
			obj:  &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Spec: corev1.ServiceSpec{ClusterIP: "None", Type: corev1.ServiceTypeClusterIP}},
			want: fields.Set{"metadata.name": "s", "metadata.namespace": "ns", "spec.clusterIP": "None", "spec.type": "ClusterIP"},
		},
		{
			name: "replication controller",
			obj:  &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns"}, Status: corev1.ReplicationControllerStatus{Replicas: 3}},
			want: fields.Set{"metadata.name": "rc", "metadata.namespace": "ns", "status.replicas": "3"},
		},
		{
			name: "namespaced kind without own fields",
			obj:  &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"}},
			want: fields.Set{"metadata.name": "d", "metadata.namespace": "ns"},
		},
		{
			name: "cluster-scoped kind without own fields",
			obj:  &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin"}},
			want: fields.Set{"metadata.name": "admin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fields(tt.obj); !apiequality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFieldSelectorMatches(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	tests := []struct {
		selector string
		want     bool
	}{
		{"spec.nodeName=node-1", true},
		{"spec.host=node-1", true},
		{"spec.nodeName=node-2", false},
		{"status.phase!=Succeeded,status.phase!=Failed", true},
		{"status.podIPs=10.0.0.1", false},
	}
	for _, tt := range tests {
		sel, err := fields.ParseSelector(tt.selector)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.selector, err)
		}
		if got := sel.Matches(Fields(pod)); got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.selector, got, tt.want)
		}
	}
}

func TestFieldLabelError(t *testing.T) {
	tests := []struct {
		gk    schema.GroupKind
		label string
		want  string
	}{
		{schema.GroupKind{Kind: "Pod"}, "spec.nodeName", ""},
		{schema.GroupKind{Kind: "Pod"}, "status.podIPs", ""},
		{schema.GroupKind{Kind: "Pod"}, "foo", "field label not supported: foo"},
		{schema.GroupKind{Kind: "Node"}, "metadata.namespace", "field label not supported: metadata.namespace"},
		{schema.GroupKind{Kind: "Node"}, "spec.unschedulable", ""},
		{schema.GroupKind{Kind: "Secret"}, "type", ""},
		{schema.GroupKind{Kind: "Event"}, "involvedObject.name", ""},
		{schema.GroupKind{Kind: "Event"}, "regarding.name", "field label not supported: regarding.name"},
		{schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, "regarding.name", ""},
		{schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, "involvedObject.name", "field label not supported: involvedObject.name"},
		{schema.GroupKind{Group: "batch", Kind: "Job"}, "status.successful", ""},
		{schema.GroupKind{Group: "batch", Kind: "Job"}, "status.failed", `field label "status.failed" not supported for batchv1.Job`},
		{schema.GroupKind{Group: "apps", Kind: "Deployment"}, "metadata.namespace", ""},
		{schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, "status.replicas", `"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"`},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, "metadata.namespace", ""},
	}
	for _, tt := range tests {
		err := FieldLabelError(tt.gk, tt.label)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%v %q: got %q, want %q", tt.gk, tt.label, got, tt.want)
		}
	}
}

func TestSelectableFieldsAreAnsweredByFields(t *testing.T) {
	// Every label but the ones upstream accepts without ever setting must
	// have a value in Fields, or selectors on it could never match.
	neverSet := map[string]bool{"status.podIPs": true}
	objs := map[schema.GroupKind]runtime.Object{
		{Kind: "Pod"}:                           &corev1.Pod{},
		{Kind: "Node"}:                          &corev1.Node{},
		{Kind: "Event"}:                         &corev1.Event{},
		{Group: "events.k8s.io", Kind: "Event"}: &eventsv1.Event{},
		{Kind: "Secret"}:                        &corev1.Secret{},
		{Kind: "Service"}:                       &corev1.Service{},
		{Kind: "Namespace"}:                     &corev1.Namespace{},
		{Kind: "ReplicationController"}:         &corev1.ReplicationController{},
	}
	for gk, obj := range objs {
		set := Fields(obj)
		for _, l := range SelectableFields(gk) {
			if _, ok := set[l]; !ok && !neverSet[l] {
				t.Errorf("%v: label %q: got no value in Fields, want one", gk, l)
			}
		}
	}
}

func TestResetFields(t *testing.T) {
	set := func(paths ...fieldpath.Path) *fieldpath.Set { return fieldpath.NewSet(paths...) }
	status := fieldpath.MakePathOrDie("status")
	spec := fieldpath.MakePathOrDie("spec")
	tests := []struct {
		name        string
		gvk         schema.GroupVersionKind
		subresource string
		want        map[fieldpath.APIVersion]*fieldpath.Set
	}{
		{"pod main", schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, "",
			map[fieldpath.APIVersion]*fieldpath.Set{"v1": set(status)}},
		{"pod status", schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, "status",
			map[fieldpath.APIVersion]*fieldpath.Set{"v1": set(spec, fieldpath.MakePathOrDie("metadata", "deletionTimestamp"), fieldpath.MakePathOrDie("metadata", "ownerReferences"))}},
		{"deployment status", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "status",
			map[fieldpath.APIVersion]*fieldpath.Set{"apps/v1": set(spec, fieldpath.MakePathOrDie("metadata", "labels"))}},
		{"hpa every served version", schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"}, "",
			map[fieldpath.APIVersion]*fieldpath.Set{"autoscaling/v2": set(status), "autoscaling/v1": set(status)}},
		{"namespace status", schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, "status",
			map[fieldpath.APIVersion]*fieldpath.Set{"v1": set(spec)}},
		{"namespace finalize", schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, "finalize",
			map[fieldpath.APIVersion]*fieldpath.Set{"v1": set(status)}},
		{"configmap has none", schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, "", nil},
		{"scale is not status", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "scale", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResetFields(tt.gvk, tt.subresource)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for v, w := range tt.want {
				if g, ok := got[v]; !ok || !g.Equals(w) {
					t.Errorf("version %s: got %v, want %v", v, g, w)
				}
			}
		})
	}
}

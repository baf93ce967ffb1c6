package printers

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// now is the reference time of every test; objects are aged relative to it.
var now = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func agoPtr(d time.Duration) *metav1.Time {
	t := ago(d)
	return &t
}

func objMeta(name string, created time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(created)}
}

func ptr[T any](v T) *T { return &v }

// checkRow renders obj and compares every cell, type included.
func checkRow(t *testing.T, obj runtime.Object, want []interface{}) {
	t.Helper()
	got, err := Row(obj, now)
	if err != nil {
		t.Fatalf("Row: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells:\ngot  %#v\nwant %#v", got, want)
		for i := 0; i < len(got) && i < len(want); i++ {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("cell %d: got %#v, want %#v", i, got[i], want[i])
			}
		}
	}
}

// column is a compact expectation: a name, "*" suffix for a wide column.
func columnNames(cols []metav1.TableColumnDefinition) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
		if c.Priority == 1 {
			out[i] += "*"
		}
	}
	return out
}

func TestColumnDefinitions(t *testing.T) {
	tests := []struct {
		gk   schema.GroupKind
		want string // names in order, "*" marks -o wide columns
	}{
		{schema.GroupKind{Kind: "Pod"}, "Name,Ready,Status,Restarts,Age,IP*,Node*,Nominated Node*,Readiness Gates*"},
		{schema.GroupKind{Kind: "PodTemplate"}, "Name,Containers,Images,Pod Labels"},
		{schema.GroupKind{Kind: "ReplicationController"}, "Name,Desired,Current,Ready,Age,Containers*,Images*,Selector*"},
		{schema.GroupKind{Kind: "Service"}, "Name,Type,Cluster-IP,External-IP,Port(s),Age,Selector*"},
		{schema.GroupKind{Kind: "Endpoints"}, "Name,Endpoints,Age"},
		{schema.GroupKind{Kind: "Node"}, "Name,Status,Roles,Age,Version,Internal-IP*,External-IP*,OS-Image*,Kernel-Version*,Container-Runtime*"},
		{schema.GroupKind{Kind: "Event"}, "Last Seen,Type,Reason,Object,Subobject*,Source*,Message,First Seen*,Count*,Name*"},
		{schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, "Last Seen,Type,Reason,Object,Subobject*,Source*,Message,First Seen*,Count*,Name*"},
		{schema.GroupKind{Kind: "Namespace"}, "Name,Status,Age"},
		{schema.GroupKind{Kind: "Secret"}, "Name,Type,Data,Age"},
		{schema.GroupKind{Kind: "ServiceAccount"}, "Name,Age"},
		{schema.GroupKind{Kind: "PersistentVolume"}, "Name,Capacity,Access Modes,Reclaim Policy,Status,Claim,StorageClass,VolumeAttributesClass,Reason,Age,VolumeMode*"},
		{schema.GroupKind{Kind: "PersistentVolumeClaim"}, "Name,Status,Volume,Capacity,Access Modes,StorageClass,VolumeAttributesClass,Age,VolumeMode*"},
		{schema.GroupKind{Kind: "ConfigMap"}, "Name,Data,Age"},
		{schema.GroupKind{Kind: "ResourceQuota"}, "Name,Request,Limit,Age"},
		{schema.GroupKind{Kind: "LimitRange"}, "Name,Created At"},
		{schema.GroupKind{Kind: "Binding"}, "Name,Created At"},
		{schema.GroupKind{Group: "apps", Kind: "Deployment"}, "Name,Ready,Up-to-date,Available,Age,Containers*,Images*,Selector*"},
		{schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, "Name,Desired,Current,Ready,Age,Containers*,Images*,Selector*"},
		{schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, "Name,Ready,Age,Containers*,Images*"},
		{schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, "Name,Desired,Current,Ready,Up-to-date,Available,Node Selector,Age,Containers*,Images*,Selector*"},
		{schema.GroupKind{Group: "apps", Kind: "ControllerRevision"}, "Name,Controller,Revision,Age"},
		{schema.GroupKind{Group: "batch", Kind: "Job"}, "Name,Status,Completions,Duration,Age,Containers*,Images*,Selector*"},
		{schema.GroupKind{Group: "batch", Kind: "CronJob"}, "Name,Schedule,Timezone,Suspend,Active,Last Schedule,Age,Containers*,Images*,Selector*"},
		{schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}, "Name,Reference,Targets,MinPods,MaxPods,Replicas,Age"},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}, "Name,Class,Hosts,Address,Ports,Age"},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "IngressClass"}, "Name,Controller,Parameters,Age"},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, "Name,Pod-Selector,Age"},
		{schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}, "Name,AddressType,Ports,Endpoints,Age"},
		{schema.GroupKind{Group: "coordination.k8s.io", Kind: "Lease"}, "Name,Holder,Age"},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "Role"}, "Name,Created At"},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, "Name,Created At"},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}, "Name,Role,Age,Users*,Groups*,ServiceAccounts*"},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}, "Name,Role,Age,Users*,Groups*,ServiceAccounts*"},
		{schema.GroupKind{Group: "storage.k8s.io", Kind: "StorageClass"}, "Name,Provisioner,ReclaimPolicy,VolumeBindingMode,AllowVolumeExpansion,Age"},
		{schema.GroupKind{Group: "policy", Kind: "PodDisruptionBudget"}, "Name,Min Available,Max Unavailable,Allowed Disruptions,Age"},
		{schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"}, "Name,Value,Global-Default,Age,PreemptionPolicy"},
		{schema.GroupKind{Group: "example.com", Kind: "Widget"}, "Name,Created At"},
		// The group matters: a Deployment in the core group is unknown.
		{schema.GroupKind{Kind: "Deployment"}, "Name,Created At"},
	}
	for _, tt := range tests {
		t.Run(tt.gk.String(), func(t *testing.T) {
			cols := ColumnDefinitions(tt.gk)
			if got := strings.Join(columnNames(cols), ","); got != tt.want {
				t.Errorf("columns: got %s, want %s", got, tt.want)
			}
			for _, c := range cols {
				if c.Type == "" {
					t.Errorf("column %q: got empty Type", c.Name)
				}
				if c.Description == "" {
					t.Errorf("column %q: got empty Description", c.Name)
				}
				if c.Name == "Name" && c.Format != "name" {
					t.Errorf("column Name: got Format %q, want name", c.Format)
				}
			}
		})
	}
}

func TestColumnDetails(t *testing.T) {
	find := func(gk schema.GroupKind, name string) metav1.TableColumnDefinition {
		for _, c := range ColumnDefinitions(gk) {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("%v has no column %q", gk, name)
		return metav1.TableColumnDefinition{}
	}
	tests := []struct {
		gk                        schema.GroupKind
		column, wantType, wantDoc string
	}{
		{schema.GroupKind{Kind: "Pod"}, "Name", "string", metav1.ObjectMeta{}.SwaggerDoc()["name"]},
		{schema.GroupKind{Kind: "Pod"}, "Age", "string", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
		{schema.GroupKind{Kind: "Pod"}, "Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
		{schema.GroupKind{Kind: "Pod"}, "IP", "string", corev1.PodStatus{}.SwaggerDoc()["podIP"]},
		{schema.GroupKind{Kind: "Service"}, "Cluster-IP", "string", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]},
		{schema.GroupKind{Kind: "LimitRange"}, "Created At", "date", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
		{schema.GroupKind{Group: "batch", Kind: "CronJob"}, "Suspend", "boolean", ""},
		{schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, "Desired", "integer", ""},
		{schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"}, "Value", "integer", ""},
		{schema.GroupKind{Kind: "Event"}, "Object", "string", corev1.Event{}.SwaggerDoc()["involvedObject"]},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}, "Users", "string", "Users in the clusterRoleBinding"},
	}
	for _, tt := range tests {
		c := find(tt.gk, tt.column)
		if c.Type != tt.wantType {
			t.Errorf("%v %s: got Type %q, want %q", tt.gk, tt.column, c.Type, tt.wantType)
		}
		if tt.wantDoc != "" && c.Description != tt.wantDoc {
			t.Errorf("%v %s: got Description %q, want %q", tt.gk, tt.column, c.Description, tt.wantDoc)
		}
	}
}

// TestRowMatchesColumns renders a minimal object of every kind and checks
// that it yields exactly one cell per column of its kind.
func TestRowMatchesColumns(t *testing.T) {
	m := objMeta("x", time.Hour)
	tests := []struct {
		gk  schema.GroupKind
		obj runtime.Object
	}{
		{schema.GroupKind{Kind: "Pod"}, &corev1.Pod{ObjectMeta: m}},
		{schema.GroupKind{Kind: "PodTemplate"}, &corev1.PodTemplate{ObjectMeta: m}},
		{schema.GroupKind{Kind: "ReplicationController"}, &corev1.ReplicationController{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Service"}, &corev1.Service{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Endpoints"}, &corev1.Endpoints{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Node"}, &corev1.Node{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Event"}, &corev1.Event{ObjectMeta: m}},
		{schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, &eventsv1.Event{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Namespace"}, &corev1.Namespace{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Secret"}, &corev1.Secret{ObjectMeta: m}},
		{schema.GroupKind{Kind: "ServiceAccount"}, &corev1.ServiceAccount{ObjectMeta: m}},
		{schema.GroupKind{Kind: "PersistentVolume"}, &corev1.PersistentVolume{ObjectMeta: m}},
		{schema.GroupKind{Kind: "PersistentVolumeClaim"}, &corev1.PersistentVolumeClaim{ObjectMeta: m}},
		{schema.GroupKind{Kind: "ConfigMap"}, &corev1.ConfigMap{ObjectMeta: m}},
		{schema.GroupKind{Kind: "ResourceQuota"}, &corev1.ResourceQuota{ObjectMeta: m}},
		{schema.GroupKind{Kind: "LimitRange"}, &corev1.LimitRange{ObjectMeta: m}},
		{schema.GroupKind{Kind: "Binding"}, &corev1.Binding{ObjectMeta: m}},
		{schema.GroupKind{Group: "apps", Kind: "Deployment"}, &appsv1.Deployment{ObjectMeta: m}},
		{schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}, &appsv1.ReplicaSet{ObjectMeta: m}},
		{schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, &appsv1.StatefulSet{ObjectMeta: m}},
		{schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, &appsv1.DaemonSet{ObjectMeta: m}},
		{schema.GroupKind{Group: "apps", Kind: "ControllerRevision"}, &appsv1.ControllerRevision{ObjectMeta: m}},
		{schema.GroupKind{Group: "batch", Kind: "Job"}, &batchv1.Job{ObjectMeta: m}},
		{schema.GroupKind{Group: "batch", Kind: "CronJob"}, &batchv1.CronJob{ObjectMeta: m}},
		{schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: m}},
		{schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}, &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: m}},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}, &networkingv1.Ingress{ObjectMeta: m}},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "IngressClass"}, &networkingv1.IngressClass{ObjectMeta: m}},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, &networkingv1.NetworkPolicy{ObjectMeta: m}},
		{schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}, &discoveryv1.EndpointSlice{ObjectMeta: m}},
		{schema.GroupKind{Group: "coordination.k8s.io", Kind: "Lease"}, &coordinationv1.Lease{ObjectMeta: m}},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "Role"}, &rbacv1.Role{ObjectMeta: m}},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, &rbacv1.ClusterRole{ObjectMeta: m}},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}, &rbacv1.RoleBinding{ObjectMeta: m}},
		{schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}, &rbacv1.ClusterRoleBinding{ObjectMeta: m}},
		{schema.GroupKind{Group: "storage.k8s.io", Kind: "StorageClass"}, &storagev1.StorageClass{ObjectMeta: m}},
		{schema.GroupKind{Group: "policy", Kind: "PodDisruptionBudget"}, &policyv1.PodDisruptionBudget{ObjectMeta: m}},
		{schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"}, &schedulingv1.PriorityClass{ObjectMeta: m}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%T", tt.gk, tt.obj), func(t *testing.T) {
			cells, err := Row(tt.obj, now)
			if err != nil {
				t.Fatalf("Row: %v", err)
			}
			cols := ColumnDefinitions(tt.gk)
			if len(cells) != len(cols) {
				t.Fatalf("got %d cells, want %d (one per column %v)", len(cells), len(cols), columnNames(cols))
			}
			for i, c := range cols {
				if c.Format == "name" && cells[i] != "x" {
					t.Errorf("name column %d: got %#v, want \"x\"", i, cells[i])
				}
				switch cells[i].(type) {
				case string, int64, bool:
				default:
					t.Errorf("cell %d (%s): got type %T, want string, int64 or bool", i, c.Name, cells[i])
				}
			}
		})
	}
}

func TestDefaultRow(t *testing.T) {
	created := time.Date(2024, 3, 2, 1, 2, 3, 0, time.FixedZone("CET", 3600))
	lr := &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", CreationTimestamp: metav1.NewTime(created)}}
	checkRow(t, lr, []interface{}{"limits", "2024-03-02T00:02:03Z"})
	checkRow(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, []interface{}{"reader", "0001-01-01T00:00:00Z"})
}

func TestRowErrors(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
	}{
		{"nil interface", nil},
		{"typed nil", (*corev1.Pod)(nil)},
		{"no object meta", &metav1.Status{}},
		{"bad owner apiVersion", &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{
			Name:            "r",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "a/b/c", Kind: "StatefulSet", Name: "web", Controller: ptr(true)}},
		}}},
	}
	for _, tt := range tests {
		if cells, err := Row(tt.obj, now); err == nil {
			t.Errorf("%s: got cells %#v and no error, want an error", tt.name, cells)
		}
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		created metav1.Time
		want    string
	}{
		{metav1.Time{}, "<unknown>"},
		{ago(0), "0s"},
		{ago(90 * time.Second), "90s"},
		{ago(5 * time.Minute), "5m"},
		{ago(7*time.Minute + 30*time.Second), "7m30s"},
		{ago(3 * time.Hour), "3h"},
		{ago(5*time.Hour + 10*time.Minute), "5h10m"},
		{ago(30 * time.Hour), "30h"},
		{ago(50 * time.Hour), "2d2h"},
		{ago(10 * 24 * time.Hour), "10d"},
		{ago(-time.Second), "0s"},
		{ago(-time.Minute), "<invalid>"},
	}
	for _, tt := range tests {
		if got := age(tt.created, now); got != tt.want {
			t.Errorf("age(%v): got %q, want %q", tt.created, got, tt.want)
		}
	}
}

package validation

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newNamespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: clusterMeta("team-a"), Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

func TestNamespace(t *testing.T) {
	runCreate(t, newNamespace, []createCase[*corev1.Namespace]{
		{name: "valid"},
		{name: "dots not allowed", mutate: func(n *corev1.Namespace) { n.Name = "team.a" }, want: []fe{invalid("metadata.name")}},
		{name: "uppercase", mutate: func(n *corev1.Namespace) { n.Name = "TeamA" }, want: []fe{invalid("metadata.name")}},
		{name: "too long", mutate: func(n *corev1.Namespace) { n.Name = "a234567890123456789012345678901234567890123456789012345678901234" },
			want: []fe{invalid("metadata.name")}},
		{name: "namespace set on cluster object", mutate: func(n *corev1.Namespace) { n.Namespace = "default" },
			want: []fe{forbidden("metadata.namespace")}},
		{name: "bad spec finalizer", mutate: func(n *corev1.Namespace) { n.Spec.Finalizers = []corev1.FinalizerName{"cleanup"} },
			want: []fe{invalid("spec.finalizers")}},
	})
	n := newNamespace()
	n.Name = "team.a"
	expectMessage(t, ValidateCreate(n), `metadata.name: Invalid value: "team.a": must not contain dots`)
	runUpdate(t, newNamespace, true, []updateCase[*corev1.Namespace]{
		{name: "active"},
		{name: "terminating without deletion", mutate: func(n *corev1.Namespace) { n.Status.Phase = corev1.NamespaceTerminating },
			want: []fe{invalid("status.Phase")}},
	})
}

func newNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: clusterMeta("node-1"), Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: quantity("4"), corev1.ResourcePods: quantity("110")}}}
}

func TestNode(t *testing.T) {
	runCreate(t, newNode, []createCase[*corev1.Node]{
		{name: "valid"},
		{name: "bad name", mutate: func(n *corev1.Node) { n.Name = "Node_1" }, want: []fe{invalid("metadata.name")}},
		{name: "bad taint effect", mutate: func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "gpu", Effect: "Avoid"}} },
			want: []fe{notSupported("metadata.taints[0].effect")}},
		{name: "duplicate taint", mutate: func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}, {Key: "gpu", Value: "x", Effect: corev1.TaintEffectNoSchedule}}
		}, want: []fe{duplicate("metadata.taints[1]")}},
		{name: "bad pod CIDR", mutate: func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.1.0"} }, want: []fe{invalid("spec.podCIDRs[0]")}},
		{name: "fractional pods capacity", mutate: func(n *corev1.Node) { n.Status.Capacity[corev1.ResourcePods] = quantity("1.5") },
			want: []fe{invalid("status.capacity.pods")}},
	})
	runUpdate(t, newNode, false, []updateCase[*corev1.Node]{
		{name: "cordon", mutate: func(n *corev1.Node) { n.Spec.Unschedulable = true }},
		{name: "pod CIDR change", mutate: func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.2.0/24", []string{"10.244.2.0/24"} },
			want: []fe{forbidden("spec.podCIDRs")}},
	})
}

func newPV() *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: clusterMeta("pv-1"), Spec: corev1.PersistentVolumeSpec{
		Capacity:                      corev1.ResourceList{corev1.ResourceStorage: quantity("5Gi")},
		AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/pv-1"}},
		VolumeMode:                    ptr(corev1.PersistentVolumeFilesystem),
	}}
}

func TestPersistentVolume(t *testing.T) {
	runCreate(t, newPV, []createCase[*corev1.PersistentVolume]{
		{name: "valid"},
		{name: "no source", mutate: func(p *corev1.PersistentVolume) { p.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{} },
			want: []fe{required("spec")}},
		{name: "no capacity", mutate: func(p *corev1.PersistentVolume) { p.Spec.Capacity = nil },
			want: []fe{required("spec.capacity"), notSupported("spec.capacity")}},
		{name: "no access modes", mutate: func(p *corev1.PersistentVolume) { p.Spec.AccessModes = nil },
			want: []fe{required("spec.accessModes")}},
		{name: "bad reclaim policy", mutate: func(p *corev1.PersistentVolume) { p.Spec.PersistentVolumeReclaimPolicy = "Keep" },
			want: []fe{notSupported("spec.persistentVolumeReclaimPolicy")}},
		{name: "local without node affinity", mutate: func(p *corev1.PersistentVolume) {
			p.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/disk"}}
		}, want: []fe{required("spec.nodeAffinity")}},
	})
	runUpdate(t, newPV, false, []updateCase[*corev1.PersistentVolume]{
		{name: "claimRef set", mutate: func(p *corev1.PersistentVolume) {
			p.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
		}},
		{name: "source immutable", mutate: func(p *corev1.PersistentVolume) { p.Spec.HostPath.Path = "/srv/other" },
			want: []fe{forbidden("spec.persistentvolumesource")}},
	})
}

func newPVC() *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: objMeta("data"), Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: quantity("1Gi")}},
		VolumeMode:  ptr(corev1.PersistentVolumeFilesystem),
	}}
}

func TestPersistentVolumeClaim(t *testing.T) {
	runCreate(t, newPVC, []createCase[*corev1.PersistentVolumeClaim]{
		{name: "valid"},
		{name: "no access modes", mutate: func(p *corev1.PersistentVolumeClaim) { p.Spec.AccessModes = nil },
			want: []fe{required("spec.accessModes")}},
		{name: "unknown access mode", mutate: func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadMany"}
		},
			want: []fe{notSupported("spec.accessModes")}},
		{name: "no storage request", mutate: func(p *corev1.PersistentVolumeClaim) { p.Spec.Resources.Requests = nil },
			want: []fe{required("spec.resources[storage]")}},
		{name: "zero storage", mutate: func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = quantity("0")
		},
			want: []fe{invalid("spec.resources[storage]")}},
	})
	bound := func() *corev1.PersistentVolumeClaim {
		p := newPVC()
		p.Spec.VolumeName = "pv-1"
		p.Spec.StorageClassName = ptr("standard")
		p.Status.Phase = corev1.ClaimBound
		p.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: quantity("1Gi")}
		return p
	}
	runUpdate(t, bound, false, []updateCase[*corev1.PersistentVolumeClaim]{
		{name: "expand", mutate: func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = quantity("2Gi")
		}},
		{name: "shrink", mutate: func(p *corev1.PersistentVolumeClaim) {
			p.Spec.Resources.Requests[corev1.ResourceStorage] = quantity("500Mi")
		},
			want: []fe{forbidden("spec.resources.requests.storage")}},
		{name: "access modes immutable", mutate: func(p *corev1.PersistentVolumeClaim) {
			p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, want: []fe{forbidden("spec")}},
		{name: "storage class immutable", mutate: func(p *corev1.PersistentVolumeClaim) { p.Spec.StorageClassName = ptr("fast") },
			want: []fe{forbidden("spec")}},
	})
	runUpdate(t, newPVC, false, []updateCase[*corev1.PersistentVolumeClaim]{
		{name: "bind volume once", mutate: func(p *corev1.PersistentVolumeClaim) { p.Spec.VolumeName = "pv-1" }},
	})
}

func TestLimitRange(t *testing.T) {
	fresh := func() *corev1.LimitRange {
		return &corev1.LimitRange{ObjectMeta: objMeta("limits"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:           corev1.LimitTypeContainer,
			Default:        corev1.ResourceList{corev1.ResourceCPU: quantity("500m")},
			DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: quantity("100m")},
			Max:            corev1.ResourceList{corev1.ResourceCPU: quantity("1")},
		}}}}
	}
	runCreate(t, fresh, []createCase[*corev1.LimitRange]{
		{name: "valid"},
		{name: "default above max", mutate: func(l *corev1.LimitRange) { l.Spec.Limits[0].Default[corev1.ResourceCPU] = quantity("2") },
			want: []fe{invalid("spec.limits[0].default[cpu]")}},
		{name: "unknown type", mutate: func(l *corev1.LimitRange) { l.Spec.Limits[0].Type = "Node" },
			want: []fe{invalid("spec.limits[0].type")}},
		{name: "default on Pod type", mutate: func(l *corev1.LimitRange) { l.Spec.Limits[0].Type = corev1.LimitTypePod },
			want: []fe{forbidden("spec.limits[0].default"), forbidden("spec.limits[0].defaultRequest")}},
	})
}

func TestResourceQuota(t *testing.T) {
	fresh := func() *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: objMeta("quota"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourcePods: quantity("10"), corev1.ResourceRequestsCPU: quantity("4"), "count/deployments.apps": quantity("5"),
		}}}
	}
	runCreate(t, fresh, []createCase[*corev1.ResourceQuota]{
		{name: "valid"},
		{name: "unknown resource", mutate: func(r *corev1.ResourceQuota) { r.Spec.Hard["widgets"] = quantity("1") },
			want: []fe{invalid("spec.hard[widgets]")}},
		{name: "fractional pods", mutate: func(r *corev1.ResourceQuota) { r.Spec.Hard[corev1.ResourcePods] = quantity("1.5") },
			want: []fe{invalid("spec.hard[pods]")}},
		{name: "negative", mutate: func(r *corev1.ResourceQuota) { r.Spec.Hard[corev1.ResourceRequestsCPU] = quantity("-1") },
			want: []fe{invalid("spec.hard[requests.cpu]")}},
		{name: "conflicting scopes", mutate: func(r *corev1.ResourceQuota) {
			r.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort}
		}, want: []fe{invalid("spec.scopes")}},
	})
	runUpdate(t, fresh, false, []updateCase[*corev1.ResourceQuota]{
		{name: "scopes immutable", mutate: func(r *corev1.ResourceQuota) {
			r.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating}
		},
			want: []fe{invalid("spec.scopes")}},
	})
}

func TestCoreEvent(t *testing.T) {
	fresh := func() *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     objMeta("web.17a"),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
			Reason:         "Started", Message: "Started container", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "kubelet"}, Count: 1,
		}
	}
	runCreate(t, fresh, []createCase[*corev1.Event]{
		{name: "valid"},
		{name: "involved object in another namespace", mutate: func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" },
			want: []fe{invalid("involvedObject.namespace")}},
		{name: "new-style event without reportingComponent", mutate: func(e *corev1.Event) {
			e.EventTime = metav1.NewMicroTime(time.Unix(1700000000, 0))
			e.ReportingInstance, e.Action = "node-1", "Start"
			// Upstream also runs the qualified-name check on the empty value.
		}, want: []fe{required("reportingComponent"), invalid("reportingComponent"), invalid("reportingComponent")}},
		{name: "path-segment name checked once the rest passes", mutate: func(e *corev1.Event) { e.Name = "a/b" },
			want: []fe{invalid("metadata.name")}},
	})
}

func TestEventsEvent(t *testing.T) {
	fresh := func() *eventsv1.Event {
		return &eventsv1.Event{
			ObjectMeta:          objMeta("web.17b"),
			EventTime:           metav1.NewMicroTime(time.Unix(1700000000, 0)),
			ReportingController: "example.com/controller", ReportingInstance: "ctrl-1",
			Action: "Reconcile", Reason: "Synced", Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
			Type: corev1.EventTypeNormal,
		}
	}
	runCreate(t, fresh, []createCase[*eventsv1.Event]{
		{name: "valid"},
		{name: "no eventTime", mutate: func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} },
			want: []fe{required("eventTime")}},
		{name: "bad type", mutate: func(e *eventsv1.Event) { e.Type = "Info" }, want: []fe{invalid("type")}},
		{name: "deprecated count set", mutate: func(e *eventsv1.Event) { e.DeprecatedCount = 3 }, want: []fe{invalid("count")}},
		{name: "no action", mutate: func(e *eventsv1.Event) { e.Action = "" }, want: []fe{required("action")}},
	})
	runUpdate(t, fresh, false, []updateCase[*eventsv1.Event]{
		{name: "series added", mutate: func(e *eventsv1.Event) {
			e.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(time.Unix(1700000100, 0))}
		}},
		{name: "reason immutable", mutate: func(e *eventsv1.Event) { e.Reason = "Other" }, want: []fe{invalid("reason")}},
	})
}

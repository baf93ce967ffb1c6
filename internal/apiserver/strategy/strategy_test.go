package strategy

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var created = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func objMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "uid-1", CreationTimestamp: created}
}

func resources(cpuReq, cpuLim, memReq, memLim string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	set := func(l corev1.ResourceList, n corev1.ResourceName, v string) {
		if v != "" {
			l[n] = resource.MustParse(v)
		}
	}
	set(r.Requests, corev1.ResourceCPU, cpuReq)
	set(r.Limits, corev1.ResourceCPU, cpuLim)
	set(r.Requests, corev1.ResourceMemory, memReq)
	set(r.Limits, corev1.ResourceMemory, memLim)
	return r
}

func podWith(rs ...corev1.ResourceRequirements) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: objMeta("p")}
	for i, r := range rs {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: r})
	}
	return p
}

func TestPodQOSOnCreate(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"no resources", podWith(corev1.ResourceRequirements{}), corev1.PodQOSBestEffort},
		{"equal cpu and memory", podWith(resources("1", "1", "1Gi", "1Gi")), corev1.PodQOSGuaranteed},
		{"equal but different notation", podWith(resources("1000m", "1", "1024Mi", "1Gi")), corev1.PodQOSGuaranteed},
		{"request below limit", podWith(resources("500m", "1", "1Gi", "1Gi")), corev1.PodQOSBurstable},
		{"only cpu", podWith(resources("1", "1", "", "")), corev1.PodQOSBurstable},
		{"guaranteed and best effort containers", podWith(resources("1", "1", "1Gi", "1Gi"), corev1.ResourceRequirements{}), corev1.PodQOSBurstable},
		{"only other resources", podWith(corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}}), corev1.PodQOSBestEffort},
		{"client qos kept", func() *corev1.Pod {
			p := podWith(corev1.ResourceRequirements{})
			p.Status.QOSClass = corev1.PodQOSGuaranteed
			return p
		}(), corev1.PodQOSGuaranteed},
		{"pod level resources decide", func() *corev1.Pod {
			p := podWith(corev1.ResourceRequirements{})
			r := resources("1", "1", "1Gi", "1Gi")
			p.Spec.Resources = &r
			return p
		}(), corev1.PodQOSGuaranteed},
		{"init container counts", func() *corev1.Pod {
			p := podWith(resources("1", "1", "1Gi", "1Gi"))
			p.Spec.InitContainers = []corev1.Container{{Name: "i", Resources: resources("100m", "", "", "")}}
			return p
		}(), corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			PrepareForCreate(tt.pod)
			if got := tt.pod.Status.QOSClass; got != tt.want {
				t.Errorf("qosClass: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrepareForCreate(t *testing.T) {
	deleted := metav1.NewTime(created.Add(time.Hour))
	grace := int64(30)
	manual := true
	tests := []struct {
		name  string
		obj   runtime.Object
		check func(t *testing.T, obj runtime.Object)
	}{
		{
			name: "pod status replaced and generation 1",
			obj: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Generation: 7, DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: &grace},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "1.2.3.4"},
			},
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				want := corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort}
				if !apiequality.Semantic.DeepEqual(p.Status, want) {
					t.Errorf("status: got %+v, want %+v", p.Status, want)
				}
				if p.Generation != 1 {
					t.Errorf("generation: got %d, want 1", p.Generation)
				}
				if p.DeletionTimestamp != nil || p.DeletionGracePeriodSeconds != nil {
					t.Errorf("deletion: got %v/%v, want nil/nil", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
				}
			},
		},
		{
			name: "pod with scheduling gates gets SchedulingGated condition",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p"),
				Spec:       corev1.PodSpec{SchedulingGates: []corev1.PodSchedulingGate{{Name: "example.com/gate"}}},
			},
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				want := []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated",
					Message: "Scheduling is blocked due to non-empty scheduling gates", LastTransitionTime: created,
				}}
				if !apiequality.Semantic.DeepEqual(p.Status.Conditions, want) {
					t.Errorf("conditions: got %+v, want %+v", p.Status.Conditions, want)
				}
			},
		},
		{
			name: "pod affinity matchLabelKeys merged into selector",
			obj: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "web", "rev": "abc"}},
				Spec: corev1.PodSpec{
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
							MatchLabelKeys:    []string{"rev", "missing"},
							MismatchLabelKeys: []string{"app"},
							TopologyKey:       "kubernetes.io/hostname",
						}},
					}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
						MatchLabelKeys: []string{"rev"},
					}},
				},
			},
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				got := p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchExpressions
				want := []metav1.LabelSelectorRequirement{
					{Key: "rev", Operator: metav1.LabelSelectorOpIn, Values: []string{"abc"}},
					{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"web"}},
				}
				if !apiequality.Semantic.DeepEqual(got, want) {
					t.Errorf("affinity expressions: got %+v, want %+v", got, want)
				}
				gotTSC := p.Spec.TopologySpreadConstraints[0].LabelSelector.MatchExpressions
				wantTSC := []metav1.LabelSelectorRequirement{{Key: "rev", Operator: metav1.LabelSelectorOpIn, Values: []string{"abc"}}}
				if !apiequality.Semantic.DeepEqual(gotTSC, wantTSC) {
					t.Errorf("topology spread expressions: got %+v, want %+v", gotTSC, wantTSC)
				}
			},
		},
		{
			name: "namespace phase, finalizer and name label",
			obj: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{corev1.LabelMetadataName: "wrong"}},
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"example.com/f"}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
			},
			check: func(t *testing.T, obj runtime.Object) {
				ns := obj.(*corev1.Namespace)
				if ns.Status.Phase != corev1.NamespaceActive {
					t.Errorf("phase: got %q, want Active", ns.Status.Phase)
				}
				want := []corev1.FinalizerName{"example.com/f", "kubernetes"}
				if !apiequality.Semantic.DeepEqual(ns.Spec.Finalizers, want) {
					t.Errorf("finalizers: got %v, want %v", ns.Spec.Finalizers, want)
				}
				if got := ns.Labels[corev1.LabelMetadataName]; got != "team-a" {
					t.Errorf("name label: got %q, want team-a", got)
				}
			},
		},
		{
			name: "namespace kubernetes finalizer not duplicated",
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}},
			check: func(t *testing.T, obj runtime.Object) {
				if got := obj.(*corev1.Namespace).Spec.Finalizers; len(got) != 1 {
					t.Errorf("finalizers: got %v, want [kubernetes]", got)
				}
			},
		},
		{
			name: "node keeps status",
			obj:  &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Phase: corev1.NodeRunning, Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "1.2.3.4"}}}},
			check: func(t *testing.T, obj runtime.Object) {
				if got := obj.(*corev1.Node).Status.Addresses; len(got) != 1 {
					t.Errorf("addresses: got %v, want the client's", got)
				}
			},
		},
		{
			name: "service status cleared and clusterIPs filled",
			obj: &corev1.Service{
				ObjectMeta: objMeta("s"),
				Spec:       corev1.ServiceSpec{ClusterIP: "10.97.97.97"},
				Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "1.1.1.1"}}}},
			},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service)
				if len(s.Status.LoadBalancer.Ingress) != 0 {
					t.Errorf("status: got %+v, want empty", s.Status)
				}
				if want := []string{"10.97.97.97"}; !apiequality.Semantic.DeepEqual(s.Spec.ClusterIPs, want) {
					t.Errorf("clusterIPs: got %v, want %v", s.Spec.ClusterIPs, want)
				}
				if s.Generation != 0 {
					t.Errorf("generation: got %d, want 0", s.Generation)
				}
			},
		},
		{
			name: "persistent volume pending",
			obj:  &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv", CreationTimestamp: created}, Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.PersistentVolume).Status
				if s.Phase != corev1.VolumePending || s.LastPhaseTransitionTime == nil || !s.LastPhaseTransitionTime.Equal(&created) {
					t.Errorf("status: got %+v, want Pending at %v", s, created)
				}
			},
		},
		{
			name: "claim pending and data source mirrored",
			obj: &corev1.PersistentVolumeClaim{
				ObjectMeta: objMeta("c"),
				Spec:       corev1.PersistentVolumeClaimSpec{DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}},
				Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
			},
			check: func(t *testing.T, obj runtime.Object) {
				c := obj.(*corev1.PersistentVolumeClaim)
				if c.Status.Phase != corev1.ClaimPending {
					t.Errorf("phase: got %q, want Pending", c.Status.Phase)
				}
				want := &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "src"}
				if !apiequality.Semantic.DeepEqual(c.Spec.DataSourceRef, want) {
					t.Errorf("dataSourceRef: got %+v, want %+v", c.Spec.DataSourceRef, want)
				}
			},
		},
		{
			name: "job selector generated, status cleared",
			obj: &batchv1.Job{
				ObjectMeta: objMeta("pi"),
				Status:     batchv1.JobStatus{Succeeded: 3},
			},
			check: func(t *testing.T, obj runtime.Object) {
				j := obj.(*batchv1.Job)
				wantLabels := map[string]string{
					"job-name": "pi", "batch.kubernetes.io/job-name": "pi",
					"controller-uid": "uid-1", "batch.kubernetes.io/controller-uid": "uid-1",
				}
				if !apiequality.Semantic.DeepEqual(j.Spec.Template.Labels, wantLabels) {
					t.Errorf("template labels: got %v, want %v", j.Spec.Template.Labels, wantLabels)
				}
				wantSel := map[string]string{"batch.kubernetes.io/controller-uid": "uid-1"}
				if j.Spec.Selector == nil || !apiequality.Semantic.DeepEqual(j.Spec.Selector.MatchLabels, wantSel) {
					t.Errorf("selector: got %v, want %v", j.Spec.Selector, wantSel)
				}
				if j.Status.Succeeded != 0 || j.Generation != 1 {
					t.Errorf("status/generation: got %+v/%d, want empty/1", j.Status, j.Generation)
				}
			},
		},
		{
			name: "job with manual selector untouched",
			obj:  &batchv1.Job{ObjectMeta: objMeta("pi"), Spec: batchv1.JobSpec{ManualSelector: &manual}},
			check: func(t *testing.T, obj runtime.Object) {
				j := obj.(*batchv1.Job)
				if j.Spec.Selector != nil || j.Spec.Template.Labels != nil {
					t.Errorf("selector/labels: got %v/%v, want nil/nil", j.Spec.Selector, j.Spec.Template.Labels)
				}
			},
		},
		{
			name: "deployment status cleared, generation 1",
			obj:  &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Generation: 9}, Status: appsv1.DeploymentStatus{Replicas: 3}},
			check: func(t *testing.T, obj runtime.Object) {
				d := obj.(*appsv1.Deployment)
				if d.Status.Replicas != 0 || d.Generation != 1 {
					t.Errorf("status/generation: got %+v/%d, want empty/1", d.Status, d.Generation)
				}
			},
		},
		{
			name: "daemonset template generation annotation",
			obj:  &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "ds"}},
			check: func(t *testing.T, obj runtime.Object) {
				if got := obj.(*appsv1.DaemonSet).Annotations[appsv1.DeprecatedTemplateGeneration]; got != "1" {
					t.Errorf("template generation: got %q, want 1", got)
				}
			},
		},
		{
			name: "configmap generation untouched",
			obj:  &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Generation: 4}},
			check: func(t *testing.T, obj runtime.Object) {
				if got := obj.(*corev1.ConfigMap).Generation; got != 4 {
					t.Errorf("generation: got %d, want 4", got)
				}
			},
		},
		{
			name: "service account secret references cleaned",
			obj:  &corev1.ServiceAccount{ObjectMeta: objMeta("sa"), Secrets: []corev1.ObjectReference{{Name: "tok", Namespace: "x", UID: "u"}}},
			check: func(t *testing.T, obj runtime.Object) {
				want := []corev1.ObjectReference{{Name: "tok"}}
				if got := obj.(*corev1.ServiceAccount).Secrets; !apiequality.Semantic.DeepEqual(got, want) {
					t.Errorf("secrets: got %+v, want %+v", got, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			PrepareForCreate(tt.obj)
			tt.check(t, tt.obj)
		})
	}
}

func deployment(gen int64, replicas int32, labels, annotations map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default", Generation: gen, Labels: labels, Annotations: annotations, UID: "uid-1", CreationTimestamp: created},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
		Status:     appsv1.DeploymentStatus{Replicas: replicas, ObservedGeneration: gen},
	}
}

func TestGenerationOnUpdate(t *testing.T) {
	tests := []struct {
		name    string
		old     runtime.Object
		obj     runtime.Object
		wantGen int64
	}{
		{"deployment spec change", deployment(3, 1, nil, nil), deployment(0, 2, nil, nil), 4},
		{"deployment label change", deployment(3, 1, nil, nil), deployment(3, 1, map[string]string{"a": "b"}, nil), 3},
		{"deployment annotation change", deployment(3, 1, nil, nil), deployment(3, 1, nil, map[string]string{"a": "b"}), 4},
		{"client generation ignored", deployment(3, 1, nil, nil), deployment(100, 1, nil, nil), 3},
		{"pod spec change", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: corev1.PodSpec{ActiveDeadlineSeconds: nil}},
			&corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: ptr(int64(5))}}, 3},
		{"pod label change", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Generation: 2}},
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}}, 2},
		{"equal quantities are no change", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: resources("1", "", "", "")}}}},
			&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: resources("1000m", "", "", "")}}}}, 2},
		{"configmap keeps old generation", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Generation: 0}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Generation: 5}, Data: map[string]string{"a": "b"}}, 0},
		{"endpointslice label change", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Generation: 1}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}}, 2},
		{"endpointslice annotation change", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Generation: 1}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}}}, 1},
		{"job spec change", &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Generation: 1}},
			&batchv1.Job{Spec: batchv1.JobSpec{Suspend: ptr(true)}}, 2},
		{"pod template change", &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Generation: 1}},
			&corev1.PodTemplate{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "n"}}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			PrepareForUpdate(tt.obj, tt.old)
			m := tt.obj.(metav1.Object)
			if got := m.GetGeneration(); got != tt.wantGen {
				t.Errorf("generation: got %d, want %d", got, tt.wantGen)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPrepareForUpdate(t *testing.T) {
	deleted := metav1.NewTime(created.Add(time.Hour))
	tests := []struct {
		name  string
		old   runtime.Object
		obj   runtime.Object
		check func(t *testing.T, obj runtime.Object)
	}{
		{
			name: "status kept from old, system metadata kept",
			old: func() runtime.Object {
				d := deployment(3, 1, nil, nil)
				d.DeletionTimestamp = &deleted
				return d
			}(),
			obj: &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Status: appsv1.DeploymentStatus{Replicas: 42}},
			check: func(t *testing.T, obj runtime.Object) {
				d := obj.(*appsv1.Deployment)
				if d.Status.Replicas != 1 {
					t.Errorf("status.replicas: got %d, want 1 (old)", d.Status.Replicas)
				}
				if d.UID != "uid-1" || !d.CreationTimestamp.Equal(&created) || d.DeletionTimestamp == nil {
					t.Errorf("system metadata: got uid=%q created=%v deleted=%v, want old's", d.UID, d.CreationTimestamp, d.DeletionTimestamp)
				}
			},
		},
		{
			name: "namespace finalizers and status kept",
			old:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"kubernetes"}}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
			check: func(t *testing.T, obj runtime.Object) {
				ns := obj.(*corev1.Namespace)
				if len(ns.Spec.Finalizers) != 1 || ns.Status.Phase != corev1.NamespaceActive {
					t.Errorf("namespace: got finalizers %v phase %q, want [kubernetes] Active", ns.Spec.Finalizers, ns.Status.Phase)
				}
			},
		},
		{
			name: "service allocated values kept when omitted",
			old: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}},
			}},
			obj: &corev1.Service{Spec: corev1.ServiceSpec{
				Type:  corev1.ServiceTypeNodePort,
				Ports: []corev1.ServicePort{{Name: "http", Port: 8080}},
			}},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service)
				if s.Spec.ClusterIP != "10.96.0.20" || len(s.Spec.ClusterIPs) != 1 || s.Spec.Ports[0].NodePort != 30080 {
					t.Errorf("spec: got clusterIP %q clusterIPs %v nodePort %d, want the old allocation", s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.Ports[0].NodePort)
				}
			},
		},
		{
			name: "service NodePort to ClusterIP drops node ports",
			old: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}},
			}},
			obj: &corev1.Service{Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"},
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}},
			}},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service)
				if s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" {
					t.Errorf("spec: got nodePort %d externalTrafficPolicy %q, want 0 and empty", s.Spec.Ports[0].NodePort, s.Spec.ExternalTrafficPolicy)
				}
				if s.Spec.ClusterIP != "10.96.0.20" {
					t.Errorf("clusterIP: got %q, want kept", s.Spec.ClusterIP)
				}
			},
		},
		{
			name: "service to ExternalName drops cluster IPs",
			old:  &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}}},
			obj:  &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20"}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}}},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Service)
				if s.Spec.ClusterIP != "" || s.Spec.ClusterIPs != nil || s.Spec.IPFamilies != nil {
					t.Errorf("spec: got %q %v %v, want all cleared", s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies)
				}
			},
		},
		{
			name: "daemonset template change bumps template generation",
			old: &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Generation: 2, Annotations: map[string]string{appsv1.DeprecatedTemplateGeneration: "2"}},
				Status:     appsv1.DaemonSetStatus{NumberReady: 3},
			},
			obj: &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "x"}}}},
			check: func(t *testing.T, obj runtime.Object) {
				ds := obj.(*appsv1.DaemonSet)
				if got := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; got != "3" || ds.Generation != 3 || ds.Status.NumberReady != 3 {
					t.Errorf("got template generation %q generation %d ready %d, want 3, 3, 3", got, ds.Generation, ds.Status.NumberReady)
				}
			},
		},
		{
			name: "daemonset non-template change keeps template generation",
			old:  &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 2, Annotations: map[string]string{appsv1.DeprecatedTemplateGeneration: "2"}}},
			obj:  &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{MinReadySeconds: 5}},
			check: func(t *testing.T, obj runtime.Object) {
				ds := obj.(*appsv1.DaemonSet)
				if got := ds.Annotations[appsv1.DeprecatedTemplateGeneration]; got != "2" || ds.Generation != 3 {
					t.Errorf("got template generation %q generation %d, want 2, 3", got, ds.Generation)
				}
			},
		},
		{
			name: "pod status kept including qos",
			old:  &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSGuaranteed}},
			obj:  &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed}},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.Pod).Status
				if s.Phase != corev1.PodRunning || s.QOSClass != corev1.PodQOSGuaranteed {
					t.Errorf("status: got %q/%q, want Running/Guaranteed", s.Phase, s.QOSClass)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			PrepareForUpdate(tt.obj, tt.old)
			tt.check(t, tt.obj)
		})
	}
}

func TestPrepareForStatusUpdate(t *testing.T) {
	deleted := metav1.NewTime(created.Add(time.Hour))
	owner := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs-uid"}}
	tests := []struct {
		name  string
		old   runtime.Object
		obj   runtime.Object
		check func(t *testing.T, obj runtime.Object)
	}{
		{
			name: "pod spec, owners and deletion kept; qos and observed generations backfilled",
			old: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Generation: 4, OwnerReferences: owner, DeletionTimestamp: &deleted},
				Spec:       corev1.PodSpec{NodeName: "node-1"},
				Status: corev1.PodStatus{QOSClass: corev1.PodQOSBurstable, ObservedGeneration: 3, Conditions: []corev1.PodCondition{
					{Type: corev1.PodReady, ObservedGeneration: 3}, {Type: corev1.PodScheduled, ObservedGeneration: 2},
				}},
			},
			obj: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"new": "label"}},
				Spec:       corev1.PodSpec{NodeName: "elsewhere"},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled}, {Type: corev1.PodReady, ObservedGeneration: 4},
				}},
			},
			check: func(t *testing.T, obj runtime.Object) {
				p := obj.(*corev1.Pod)
				if p.Spec.NodeName != "node-1" {
					t.Errorf("spec.nodeName: got %q, want node-1", p.Spec.NodeName)
				}
				if !apiequality.Semantic.DeepEqual(p.OwnerReferences, owner) || p.DeletionTimestamp == nil {
					t.Errorf("owners/deletion: got %v/%v, want old's", p.OwnerReferences, p.DeletionTimestamp)
				}
				if p.Labels["new"] != "label" {
					t.Errorf("labels: got %v, want the new labels", p.Labels)
				}
				if p.Status.Phase != corev1.PodRunning || p.Status.QOSClass != corev1.PodQOSBurstable || p.Status.ObservedGeneration != 3 {
					t.Errorf("status: got %q/%q/%d, want Running/Burstable/3", p.Status.Phase, p.Status.QOSClass, p.Status.ObservedGeneration)
				}
				if got := []int64{p.Status.Conditions[0].ObservedGeneration, p.Status.Conditions[1].ObservedGeneration}; got[0] != 2 || got[1] != 4 {
					t.Errorf("condition observedGenerations: got %v, want [2 4]", got)
				}
				if p.Generation != 4 {
					t.Errorf("generation: got %d, want 4", p.Generation)
				}
			},
		},
		{
			name: "deployment spec and labels kept",
			old:  deployment(3, 1, map[string]string{"app": "web"}, nil),
			obj:  deployment(3, 5, map[string]string{"app": "other"}, nil),
			check: func(t *testing.T, obj runtime.Object) {
				d := obj.(*appsv1.Deployment)
				if *d.Spec.Replicas != 1 || d.Labels["app"] != "web" || d.Status.Replicas != 5 || d.Generation != 3 {
					t.Errorf("got replicas %d labels %v status %d generation %d, want 1, old labels, 5, 3", *d.Spec.Replicas, d.Labels, d.Status.Replicas, d.Generation)
				}
			},
		},
		{
			name: "job spec kept, status taken",
			old:  &batchv1.Job{Spec: batchv1.JobSpec{Parallelism: ptr(int32(1))}},
			obj:  &batchv1.Job{Spec: batchv1.JobSpec{Parallelism: ptr(int32(9))}, Status: batchv1.JobStatus{Succeeded: 1}},
			check: func(t *testing.T, obj runtime.Object) {
				j := obj.(*batchv1.Job)
				if *j.Spec.Parallelism != 1 || j.Status.Succeeded != 1 {
					t.Errorf("got parallelism %d succeeded %d, want 1, 1", *j.Spec.Parallelism, j.Status.Succeeded)
				}
			},
		},
		{
			name: "persistent volume keeps transition time while phase stays",
			old:  &corev1.PersistentVolume{Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound, LastPhaseTransitionTime: &created}},
			obj:  &corev1.PersistentVolume{Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound, Message: "m"}},
			check: func(t *testing.T, obj runtime.Object) {
				s := obj.(*corev1.PersistentVolume).Status
				if s.LastPhaseTransitionTime == nil || !s.LastPhaseTransitionTime.Equal(&created) {
					t.Errorf("lastPhaseTransitionTime: got %v, want %v", s.LastPhaseTransitionTime, created)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			PrepareForStatusUpdate(tt.obj, tt.old)
			tt.check(t, tt.obj)
		})
	}
}

func TestHasGeneration(t *testing.T) {
	tests := []struct {
		gk   schema.GroupKind
		want bool
	}{
		{schema.GroupKind{Kind: "Pod"}, true},
		{schema.GroupKind{Group: "apps", Kind: "Deployment"}, true},
		{schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"}, true},
		{schema.GroupKind{Kind: "ConfigMap"}, false},
		{schema.GroupKind{Kind: "Service"}, false},
		{schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}, false},
	}
	for _, tt := range tests {
		if got := HasGeneration(tt.gk); got != tt.want {
			t.Errorf("HasGeneration(%v): got %v, want %v", tt.gk, got, tt.want)
		}
	}
}

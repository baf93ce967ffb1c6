package convert

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/randfill"
)

func ptr[T any](v T) *T { return &v }

func qty(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

var ts = metav1.NewTime(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))

// fullHPA is an autoscaling/v2 HPA using everything v1 cannot express.
func fullHPA() *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{"owner": "team-a"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr(int32(2)),
			MaxReplicas:    10,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("500Mi")}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "rps"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: qty("100")}}},
				{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "queue", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"q": "jobs"}}},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: qty("30")}}},
				{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
					Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(60))}}},
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(50))}}},
			},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr(int32(300)),
					SelectPolicy:               ptr(autoscalingv2.MinChangePolicySelect),
					Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 10, PeriodSeconds: 60}},
					Tolerance:                  qty("50m"),
				},
			},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			ObservedGeneration: ptr(int64(3)),
			LastScaleTime:      &ts,
			CurrentReplicas:    3,
			DesiredReplicas:    4,
			CurrentMetrics: []autoscalingv2.MetricStatus{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
					Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageValue: qty("250m"), AverageUtilization: ptr(int32(62))}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{
					Metric: autoscalingv2.MetricIdentifier{Name: "rps"}, Current: autoscalingv2.MetricValueStatus{AverageValue: qty("120")}}},
			},
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{
				{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, LastTransitionTime: ts, Reason: "ReadyForNewScale", Message: "recommended size matches current size"},
				{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionTrue, LastTransitionTime: ts, Reason: "ValidMetricFound", ObservedGeneration: ptr(int64(3))},
			},
		},
	}
}

func TestHPAToV1(t *testing.T) {
	in := fullHPA()
	in.Annotations[metricSpecsAnnotation] = "stale"
	before := in.DeepCopy()

	obj, err := Convert(in, autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"))
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if !apiequality.Semantic.DeepEqual(in, before) {
		t.Errorf("input mutated: got %+v, want %+v", in, before)
	}
	out := obj.(*autoscalingv1.HorizontalPodAutoscaler)

	if got, want := out.APIVersion+" "+out.Kind, "autoscaling/v1 HorizontalPodAutoscaler"; got != want {
		t.Errorf("TypeMeta: got %q, want %q", got, want)
	}
	wantSpec := autoscalingv1.HorizontalPodAutoscalerSpec{
		ScaleTargetRef:                 autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		MinReplicas:                    ptr(int32(2)),
		MaxReplicas:                    10,
		TargetCPUUtilizationPercentage: ptr(int32(50)),
	}
	if !apiequality.Semantic.DeepEqual(out.Spec, wantSpec) {
		t.Errorf("spec: got %+v, want %+v", out.Spec, wantSpec)
	}
	wantStatus := autoscalingv1.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptr(int64(3)), LastScaleTime: &ts, CurrentReplicas: 3, DesiredReplicas: 4,
		CurrentCPUUtilizationPercentage: ptr(int32(62)),
	}
	if !apiequality.Semantic.DeepEqual(out.Status, wantStatus) {
		t.Errorf("status: got %+v, want %+v", out.Status, wantStatus)
	}

	// The encodings are upstream's, byte for byte, so that objects written
	// through either server read back alike.
	wantAnnotations := map[string]string{
		"owner": "team-a",
		metricSpecsAnnotation: `[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"500Mi"}},` +
			`{"type":"Pods","pods":{"metricName":"rps","targetAverageValue":"100"}},` +
			`{"type":"External","external":{"metricName":"queue","metricSelector":{"matchLabels":{"q":"jobs"}},"targetValue":"30"}},` +
			`{"type":"ContainerResource","containerResource":{"name":"cpu","targetAverageUtilization":60,"container":"app"}}]`,
		metricStatusesAnnotation: `[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":62,"currentAverageValue":"250m"}},` +
			`{"type":"Pods","pods":{"metricName":"rps","currentAverageValue":"120"}}]`,
		conditionsAnnotation: `[{"type":"AbleToScale","status":"True","lastTransitionTime":"2026-03-04T05:06:07Z","reason":"ReadyForNewScale","message":"recommended size matches current size"},` +
			`{"type":"ScalingActive","status":"True","lastTransitionTime":"2026-03-04T05:06:07Z","reason":"ValidMetricFound","observedGeneration":3}]`,
		behaviorSpecsAnnotation: `{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":"Min",` +
			`"Policies":[{"Type":"Percent","Value":10,"PeriodSeconds":60}],"Tolerance":"50m"}}`,
	}
	for k, want := range wantAnnotations {
		if got := out.Annotations[k]; got != want {
			t.Errorf("annotation %s:\n got %s\nwant %s", k, got, want)
		}
	}
	if len(out.Annotations) != len(wantAnnotations) {
		t.Errorf("annotations: got %d keys %v, want %d", len(out.Annotations), out.Annotations, len(wantAnnotations))
	}
}

func TestHPARoundTripThroughV1(t *testing.T) {
	in := fullHPA()
	v1, err := Convert(in, autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"))
	if err != nil {
		t.Fatalf("to v1: %v", err)
	}
	back, err := Convert(v1, autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"))
	if err != nil {
		t.Fatalf("to v2: %v", err)
	}
	want := fullHPA()
	want.TypeMeta = metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}
	if !apiequality.Semantic.DeepEqual(back, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
	}

	// And v1 -> v2 -> v1 gives the v1 object back, annotations included.
	again, err := Convert(back, autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"))
	if err != nil {
		t.Fatalf("to v1 again: %v", err)
	}
	if !apiequality.Semantic.DeepEqual(again, v1) {
		t.Errorf("v1 round trip:\n got %+v\nwant %+v", again, v1)
	}
}

func TestHPAToV2(t *testing.T) {
	ref := autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	cpu := func(p int32) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &p}}}
	}
	tests := []struct {
		name        string
		in          *autoscalingv1.HorizontalPodAutoscaler
		wantMetrics []autoscalingv2.MetricSpec
		wantCurrent []autoscalingv2.MetricStatus
		wantBehav   *autoscalingv2.HorizontalPodAutoscalerBehavior
		wantErr     bool
	}{
		{
			name:        "no target gets upstream's 80%",
			in:          &autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3}},
			wantMetrics: []autoscalingv2.MetricSpec{cpu(80)},
		},
		{
			name: "cpu target and current",
			in: &autoscalingv1.HorizontalPodAutoscaler{
				Spec:   autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3, TargetCPUUtilizationPercentage: ptr(int32(70))},
				Status: autoscalingv1.HorizontalPodAutoscalerStatus{CurrentCPUUtilizationPercentage: ptr(int32(12))},
			},
			wantMetrics: []autoscalingv2.MetricSpec{cpu(70)},
			wantCurrent: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(int32(12))}}}},
		},
		{
			name: "other metrics from annotation come before cpu; no default added",
			in: &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					metricSpecsAnnotation: `[{"type":"Object","object":{"target":{"kind":"Ingress","name":"main","apiVersion":"networking.k8s.io/v1"},"metricName":"hits","targetValue":"2k"}}]`,
				}},
				Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3, TargetCPUUtilizationPercentage: ptr(int32(70))},
			},
			wantMetrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
					DescribedObject: autoscalingv2.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"},
					Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: qty("2k")},
					Metric:          autoscalingv2.MetricIdentifier{Name: "hits"},
				}},
				cpu(70),
			},
		},
		{
			name: "behavior annotation as upstream writes it",
			in: &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					behaviorSpecsAnnotation: `{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}]},"ScaleDown":null}`,
				}},
				Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3},
			},
			wantMetrics: []autoscalingv2.MetricSpec{cpu(80)},
			wantBehav: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptr(int32(0)), SelectPolicy: ptr(autoscalingv2.MaxChangePolicySelect),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}},
			}},
		},
		{
			name: "malformed or empty behavior ignored",
			in: &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{behaviorSpecsAnnotation: `{"ScaleUp":`}},
				Spec:       autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3},
			},
			wantMetrics: []autoscalingv2.MetricSpec{cpu(80)},
		},
		{
			name: "malformed metrics annotation is an error",
			in: &autoscalingv1.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{metricSpecsAnnotation: `{`}},
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := Convert(tt.in, autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			out := obj.(*autoscalingv2.HorizontalPodAutoscaler)
			if !apiequality.Semantic.DeepEqual(out.Spec.Metrics, tt.wantMetrics) {
				t.Errorf("metrics: got %+v, want %+v", out.Spec.Metrics, tt.wantMetrics)
			}
			if !apiequality.Semantic.DeepEqual(out.Status.CurrentMetrics, tt.wantCurrent) {
				t.Errorf("current metrics: got %+v, want %+v", out.Status.CurrentMetrics, tt.wantCurrent)
			}
			if !apiequality.Semantic.DeepEqual(out.Spec.Behavior, tt.wantBehav) {
				t.Errorf("behavior: got %+v, want %+v", out.Spec.Behavior, tt.wantBehav)
			}
			if len(out.Annotations) != 0 {
				t.Errorf("annotations: got %v, want none (round-trip annotations dropped)", out.Annotations)
			}
		})
	}
}

func TestEventRoundTrips(t *testing.T) {
	f := randfill.NewWithSeed(1).NilChance(0.3).NumElements(1, 2)
	for i := 0; i < 200; i++ {
		var core corev1.Event
		f.Fill(&core)
		core.TypeMeta = metav1.TypeMeta{}
		ev, err := Convert(&core, eventsv1.SchemeGroupVersion.WithKind("Event"))
		if err != nil {
			t.Fatalf("to events.k8s.io: %v", err)
		}
		back, err := Convert(ev, corev1.SchemeGroupVersion.WithKind("Event"))
		if err != nil {
			t.Fatalf("to core: %v", err)
		}
		back.(*corev1.Event).TypeMeta = metav1.TypeMeta{}
		if !apiequality.Semantic.DeepEqual(back, &core) {
			t.Fatalf("core round trip %d:\n got %+v\nwant %+v", i, back, &core)
		}

		var events eventsv1.Event
		f.Fill(&events)
		events.TypeMeta = metav1.TypeMeta{}
		c, err := Convert(&events, corev1.SchemeGroupVersion.WithKind("Event"))
		if err != nil {
			t.Fatalf("to core: %v", err)
		}
		back2, err := Convert(c, eventsv1.SchemeGroupVersion.WithKind("Event"))
		if err != nil {
			t.Fatalf("to events.k8s.io: %v", err)
		}
		back2.(*eventsv1.Event).TypeMeta = metav1.TypeMeta{}
		if !apiequality.Semantic.DeepEqual(back2, &events) {
			t.Fatalf("events.k8s.io round trip %d:\n got %+v\nwant %+v", i, back2, &events)
		}
	}
}

func TestEventFieldMapping(t *testing.T) {
	first := metav1.NewTime(ts.Add(-time.Minute))
	micro := metav1.NewMicroTime(ts.Time)
	in := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web-0.17", Namespace: "default"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Name: "web-0", Namespace: "default"},
		Reason:              "BackOff",
		Message:             "Back-off restarting failed container",
		Source:              corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp:      first,
		LastTimestamp:       ts,
		Count:               5,
		Type:                corev1.EventTypeWarning,
		EventTime:           micro,
		Series:              &corev1.EventSeries{Count: 5, LastObservedTime: micro},
		Action:              "Restarting",
		Related:             &corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		ReportingController: "kubelet",
		ReportingInstance:   "node-1",
	}
	obj, err := Convert(in, eventsv1.SchemeGroupVersion.WithKind("Event"))
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	want := &eventsv1.Event{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta:               in.ObjectMeta,
		EventTime:                micro,
		Series:                   &eventsv1.EventSeries{Count: 5, LastObservedTime: micro},
		ReportingController:      "kubelet",
		ReportingInstance:        "node-1",
		Action:                   "Restarting",
		Reason:                   "BackOff",
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     "Back-off restarting failed container",
		Type:                     "Warning",
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: first,
		DeprecatedLastTimestamp:  ts,
		DeprecatedCount:          5,
	}
	if !apiequality.Semantic.DeepEqual(obj, want) {
		t.Errorf("got %+v, want %+v", obj, want)
	}
	if obj.(*eventsv1.Event).Related == in.Related {
		t.Errorf("related: got the input's pointer, want a copy")
	}
}

func TestConvertKinds(t *testing.T) {
	hpa := fullHPA()
	tests := []struct {
		name    string
		obj     runtime.Object
		target  schema.GroupVersionKind
		same    bool
		wantErr bool
		check   func(t *testing.T, out runtime.Object)
	}{
		{name: "same version returns the object", obj: hpa, target: autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"), same: true},
		{name: "same version of an unsupported kind", obj: &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}},
			target: appsv1.SchemeGroupVersion.WithKind("Deployment"), same: true},
		{name: "unsupported kind", obj: &corev1.Pod{}, target: eventsv1.SchemeGroupVersion.WithKind("Event"), wantErr: true},
		{name: "unrelated kinds", obj: hpa, target: eventsv1.SchemeGroupVersion.WithKind("Event"), wantErr: true},
		{name: "unknown version", obj: hpa, target: schema.GroupVersionKind{Group: "autoscaling", Version: "v2beta2", Kind: "HorizontalPodAutoscaler"}, wantErr: true},
		{
			name:   "hpa list",
			obj:    &autoscalingv2.HorizontalPodAutoscalerList{ListMeta: metav1.ListMeta{ResourceVersion: "9"}, Items: []autoscalingv2.HorizontalPodAutoscaler{*fullHPA()}},
			target: autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscalerList"),
			check: func(t *testing.T, out runtime.Object) {
				l := out.(*autoscalingv1.HorizontalPodAutoscalerList)
				if l.ResourceVersion != "9" || len(l.Items) != 1 || *l.Items[0].Spec.TargetCPUUtilizationPercentage != 50 {
					t.Errorf("got %+v, want resourceVersion 9 and one item with cpu 50", l)
				}
				if l.Kind != "HorizontalPodAutoscalerList" || l.Items[0].Kind != "" {
					t.Errorf("kinds: got list %q item %q, want HorizontalPodAutoscalerList and empty", l.Kind, l.Items[0].Kind)
				}
			},
		},
		{
			name:   "event list",
			obj:    &eventsv1.EventList{Items: []eventsv1.Event{{Note: "hello"}}},
			target: corev1.SchemeGroupVersion.WithKind("EventList"),
			check: func(t *testing.T, out runtime.Object) {
				l := out.(*corev1.EventList)
				if len(l.Items) != 1 || l.Items[0].Message != "hello" || l.APIVersion != "v1" {
					t.Errorf("got %+v, want one item with message hello in a v1 list", l)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Convert(tt.obj, tt.target)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if tt.same && out != tt.obj {
				t.Errorf("got a new object %p, want the input %p", out, tt.obj)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}
}

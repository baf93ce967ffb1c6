package convert

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	hpaV1         = autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler")
	hpaV1List     = autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscalerList")
	hpaV2         = autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler")
	hpaV2List     = autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscalerList")
	coreEvent     = corev1.SchemeGroupVersion.WithKind("Event")
	coreEventList = corev1.SchemeGroupVersion.WithKind("EventList")
	eventsEvent   = eventsv1.SchemeGroupVersion.WithKind("Event")
	eventsList    = eventsv1.SchemeGroupVersion.WithKind("EventList")
)

// Convert converts obj to the target group/version/kind when both are forms
// of the same stored resource: autoscaling/v1 <-> autoscaling/v2
// HorizontalPodAutoscaler, core/v1 <-> events.k8s.io/v1 Event, and the lists
// of both. The object's own version returns obj unchanged; any other pair is
// an error. The returned object has its TypeMeta set to the target.
func Convert(obj runtime.Object, target schema.GroupVersionKind) (runtime.Object, error) {
	src := kindOf(obj)
	if src == target {
		return obj, nil
	}
	var (
		out runtime.Object
		err error
	)
	switch in := obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		if target == hpaV1 {
			out, err = hpaToV1(in)
		}
	case *autoscalingv1.HorizontalPodAutoscaler:
		if target == hpaV2 {
			out, err = hpaToV2(in)
		}
	case *autoscalingv2.HorizontalPodAutoscalerList:
		if target == hpaV1List {
			out, err = hpaListToV1(in)
		}
	case *autoscalingv1.HorizontalPodAutoscalerList:
		if target == hpaV2List {
			out, err = hpaListToV2(in)
		}
	case *corev1.Event:
		if target == eventsEvent {
			out = eventToEvents(in)
		}
	case *eventsv1.Event:
		if target == coreEvent {
			out = eventToCore(in)
		}
	case *corev1.EventList:
		if target == eventsList {
			out = eventListToEvents(in)
		}
	case *eventsv1.EventList:
		if target == coreEventList {
			out = eventListToCore(in)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("convert %s to %s: %w", describe(src), describe(target), err)
	}
	if out == nil {
		return nil, fmt.Errorf("convert %s to %s: not supported", describe(src), describe(target))
	}
	out.GetObjectKind().SetGroupVersionKind(target)
	return out, nil
}

// kindOf names the kind of the supported Go types, whatever their TypeMeta
// says; other objects are known by their TypeMeta.
func kindOf(obj runtime.Object) schema.GroupVersionKind {
	switch obj.(type) {
	case *autoscalingv1.HorizontalPodAutoscaler:
		return hpaV1
	case *autoscalingv1.HorizontalPodAutoscalerList:
		return hpaV1List
	case *autoscalingv2.HorizontalPodAutoscaler:
		return hpaV2
	case *autoscalingv2.HorizontalPodAutoscalerList:
		return hpaV2List
	case *corev1.Event:
		return coreEvent
	case *corev1.EventList:
		return coreEventList
	case *eventsv1.Event:
		return eventsEvent
	case *eventsv1.EventList:
		return eventsList
	}
	if obj == nil {
		return schema.GroupVersionKind{}
	}
	return obj.GetObjectKind().GroupVersionKind()
}

func describe(gvk schema.GroupVersionKind) string {
	if gvk.Empty() {
		return "object of unknown kind"
	}
	return gvk.Kind + " " + gvk.GroupVersion().String()
}

func hpaListToV1(in *autoscalingv2.HorizontalPodAutoscalerList) (*autoscalingv1.HorizontalPodAutoscalerList, error) {
	out := &autoscalingv1.HorizontalPodAutoscalerList{ListMeta: *in.ListMeta.DeepCopy()}
	if in.Items != nil {
		out.Items = make([]autoscalingv1.HorizontalPodAutoscaler, len(in.Items))
	}
	for i := range in.Items {
		item, err := hpaToV1(&in.Items[i])
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out.Items[i] = *item
	}
	return out, nil
}

func hpaListToV2(in *autoscalingv1.HorizontalPodAutoscalerList) (*autoscalingv2.HorizontalPodAutoscalerList, error) {
	out := &autoscalingv2.HorizontalPodAutoscalerList{ListMeta: *in.ListMeta.DeepCopy()}
	if in.Items != nil {
		out.Items = make([]autoscalingv2.HorizontalPodAutoscaler, len(in.Items))
	}
	for i := range in.Items {
		item, err := hpaToV2(&in.Items[i])
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out.Items[i] = *item
	}
	return out, nil
}

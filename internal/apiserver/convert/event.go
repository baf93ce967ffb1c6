package convert

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
)

// eventToEvents maps a core/v1 Event to events.k8s.io/v1: the two carry the
// same data, the core fields that the new API deprecated under their
// deprecated* names.
func eventToEvents(src *corev1.Event) *eventsv1.Event {
	in := src.DeepCopy()
	out := &eventsv1.Event{
		ObjectMeta:               in.ObjectMeta,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out
}

// eventToCore is the inverse of eventToEvents.
func eventToCore(src *eventsv1.Event) *corev1.Event {
	in := src.DeepCopy()
	out := &corev1.Event{
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Action:              in.Action,
		Related:             in.Related,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out
}

func eventListToEvents(in *corev1.EventList) *eventsv1.EventList {
	out := &eventsv1.EventList{ListMeta: *in.ListMeta.DeepCopy()}
	if in.Items != nil {
		out.Items = make([]eventsv1.Event, len(in.Items))
	}
	for i := range in.Items {
		out.Items[i] = *eventToEvents(&in.Items[i])
	}
	return out
}

func eventListToCore(in *eventsv1.EventList) *corev1.EventList {
	out := &corev1.EventList{ListMeta: *in.ListMeta.DeepCopy()}
	if in.Items != nil {
		out.Items = make([]corev1.Event, len(in.Items))
	}
	for i := range in.Items {
		out.Items[i] = *eventToCore(&in.Items[i])
	}
	return out
}

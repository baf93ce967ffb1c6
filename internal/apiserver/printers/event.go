package printers

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// event holds what the event printer reads, in core/v1 terms. Both event
// APIs share one storage and one printer upstream; events.k8s.io names map
// onto core ones (regarding -> involvedObject, note -> message,
// deprecatedX -> X).
type event struct {
	name                string
	first, last         metav1.Time
	eventTime           metav1.MicroTime
	count               int32
	series              *corev1.EventSeries
	involved            corev1.ObjectReference
	typ, reason         string
	message             string
	source              corev1.EventSource
	reportingController string
	reportingInstance   string
}

func coreEventRow(e *corev1.Event, now time.Time) []interface{} {
	return eventRow(&event{
		name: e.Name, first: e.FirstTimestamp, last: e.LastTimestamp, eventTime: e.EventTime,
		count: e.Count, series: e.Series, involved: e.InvolvedObject,
		typ: e.Type, reason: e.Reason, message: e.Message, source: e.Source,
		reportingController: e.ReportingController, reportingInstance: e.ReportingInstance,
	}, now)
}

func eventsEventRow(e *eventsv1.Event, now time.Time) []interface{} {
	var series *corev1.EventSeries
	if e.Series != nil {
		series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return eventRow(&event{
		name: e.Name, first: e.DeprecatedFirstTimestamp, last: e.DeprecatedLastTimestamp, eventTime: e.EventTime,
		count: e.DeprecatedCount, series: series, involved: e.Regarding,
		typ: e.Type, reason: e.Reason, message: e.Note, source: e.DeprecatedSource,
		reportingController: e.ReportingController, reportingInstance: e.ReportingInstance,
	}, now)
}

// eventRow renders LAST SEEN, TYPE, REASON, OBJECT, SUBOBJECT, SOURCE,
// MESSAGE, FIRST SEEN, COUNT, NAME. Events of the new API carry only an
// eventTime and maybe a series, so the times and count fall back to those.
func eventRow(e *event, now time.Time) []interface{} {
	first := age(e.first, now)
	if e.first.IsZero() {
		first = microAge(e.eventTime, now)
	}
	last := age(e.last, now)
	if e.last.IsZero() {
		last = first
	}
	count := e.count
	if e.series != nil {
		last = microAge(e.series.LastObservedTime, now)
		count = e.series.Count
	} else if count == 0 {
		// A singleton event of the new API has no count: it happened once.
		count = 1
	}

	object := strings.ToLower(e.involved.Kind)
	if e.involved.Name != "" {
		object += "/" + e.involved.Name
	}
	return []interface{}{
		last, e.typ, e.reason, object, e.involved.FieldPath,
		eventSource(e.source, e.reportingController, e.reportingInstance),
		strings.TrimSpace(e.message), first, int64(count), e.name,
	}
}

// eventSource is "component, host", taking the reporting controller and
// instance when the deprecated source fields are empty, and leaving out an
// empty host.
func eventSource(s corev1.EventSource, controller, instance string) string {
	component := s.Component
	if component == "" {
		component = controller
	}
	host := s.Host
	if host == "" {
		host = instance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

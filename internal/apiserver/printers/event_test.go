package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func microAgo(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(-d)) }

func TestCoreEventRow(t *testing.T) {
	pod := corev1.ObjectReference{Kind: "Pod", Name: "web-0", FieldPath: "spec.containers{app}"}
	tests := []struct {
		name  string
		event corev1.Event
		want  []interface{}
	}{
		{
			name: "classic event with count",
			event: corev1.Event{
				InvolvedObject: pod, Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container\n",
				Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
				FirstTimestamp: ago(10 * time.Minute), LastTimestamp: ago(30 * time.Second), Count: 7,
			},
			want: []interface{}{"30s", "Warning", "BackOff", "pod/web-0", "spec.containers{app}", "kubelet, node-1",
				"Back-off restarting failed container", "10m", int64(7), "web-0.17c"},
		},
		{
			name: "new-style event: eventTime, reporting controller, no count",
			event: corev1.Event{
				InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1"}, Type: "Normal", Reason: "Starting",
				Message: "Starting kubelet.", EventTime: microAgo(3 * time.Hour), ReportingController: "kubelet",
			},
			want: []interface{}{"3h", "Normal", "Starting", "node/node-1", "", "kubelet", "Starting kubelet.", "3h", int64(1), "web-0.17c"},
		},
		{
			name: "series overrides last seen and count",
			event: corev1.Event{
				InvolvedObject: pod, Type: "Normal", Reason: "Pulled", EventTime: microAgo(time.Hour),
				ReportingController: "kubelet", ReportingInstance: "node-2",
				Series: &corev1.EventSeries{Count: 4, LastObservedTime: microAgo(2 * time.Minute)},
			},
			want: []interface{}{"2m", "Normal", "Pulled", "pod/web-0", "spec.containers{app}", "kubelet, node-2", "", "60m", int64(4), "web-0.17c"},
		},
		{
			name: "object without name, no times",
			event: corev1.Event{
				InvolvedObject: corev1.ObjectReference{Kind: "ClusterRole"}, Type: "Normal", Reason: "Sync",
				Source: corev1.EventSource{Host: "h"},
			},
			want: []interface{}{"<unknown>", "Normal", "Sync", "clusterrole", "", ", h", "", "<unknown>", int64(1), "web-0.17c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event
			e.ObjectMeta = objMeta("web-0.17c", time.Hour)
			checkRow(t, &e, tt.want)
		})
	}
}

func TestEventsAPIEventRow(t *testing.T) {
	e := &eventsv1.Event{
		ObjectMeta:          objMeta("web-0.18a", time.Hour),
		EventTime:           microAgo(20 * time.Minute),
		Series:              &eventsv1.EventSeries{Count: 3, LastObservedTime: microAgo(time.Minute)},
		ReportingController: "default-scheduler",
		ReportingInstance:   "default-scheduler-node-1",
		Action:              "Scheduling",
		Reason:              "FailedScheduling",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Name: "web-0"},
		Note:                "0/1 nodes are available.",
		Type:                "Warning",
	}
	checkRow(t, e, []interface{}{"60s", "Warning", "FailedScheduling", "pod/web-0", "",
		"default-scheduler, default-scheduler-node-1", "0/1 nodes are available.", "20m", int64(3), "web-0.18a"})

	legacy := &eventsv1.Event{
		ObjectMeta:               objMeta("legacy", time.Hour),
		Reason:                   "Created",
		Regarding:                corev1.ObjectReference{Kind: "Pod", Name: "p", FieldPath: "spec.containers{c}"},
		Note:                     "Created container c",
		Type:                     "Normal",
		DeprecatedSource:         corev1.EventSource{Component: "kubelet", Host: "node-3"},
		DeprecatedFirstTimestamp: ago(5 * time.Minute),
		DeprecatedLastTimestamp:  ago(4 * time.Minute),
		DeprecatedCount:          2,
	}
	checkRow(t, legacy, []interface{}{"4m", "Normal", "Created", "pod/p", "spec.containers{c}", "kubelet, node-3",
		"Created container c", "5m", int64(2), "legacy"})
}

package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running(name string, ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name: name, Ready: ready, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Hour)}},
	}
}

func waiting(name, reason string, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name: name, RestartCount: restarts,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
	}
}

func terminated(name, reason string, exitCode, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name: name,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: reason, ExitCode: exitCode, Signal: signal,
		}},
	}
}

// lastTerminated sets the time of the container's previous termination.
func lastTerminated(cs corev1.ContainerStatus, d time.Duration) corev1.ContainerStatus {
	cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: ago(d)}
	return cs
}

func condition(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: s}
}

func containers(names ...string) []corev1.Container {
	out := make([]corev1.Container, len(names))
	for i, n := range names {
		out[i] = corev1.Container{Name: n, Image: n + ":1"}
	}
	return out
}

func TestPodRow(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	type cells struct {
		ready, status, restarts string
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want cells
	}{
		{
			name: "pending without statuses",
			pod:  corev1.Pod{Spec: corev1.PodSpec{Containers: containers("app")}, Status: corev1.PodStatus{Phase: corev1.PodPending}},
			want: cells{"0/1", "Pending", "0"},
		},
		{
			name: "running and ready",
			pod: corev1.Pod{
				Spec:   corev1.PodSpec{Containers: containers("app", "proxy")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0), running("proxy", false, 0)}},
			},
			want: cells{"1/2", "Running", "0"},
		},
		{
			name: "crash loop with last restart time",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					lastTerminated(waiting("app", "CrashLoopBackOff", 3), 5*time.Minute),
				}},
			},
			want: cells{"0/1", "CrashLoopBackOff", "3 (5m ago)"},
		},
		{
			name: "restarts without a termination time",
			pod: corev1.Pod{
				Spec:   corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 2)}},
			},
			want: cells{"1/1", "Running", "2"},
		},
		{
			name: "restarts summed over containers, latest termination wins",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("a", "b")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					lastTerminated(running("a", true, 1), 2*time.Hour), lastTerminated(running("b", true, 4), 90*time.Second),
				}},
			},
			want: cells{"2/2", "Running", "5 (90s ago)"},
		},
		{
			name: "image pull error",
			pod: corev1.Pod{
				Spec:   corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{waiting("app", "ErrImagePull", 0)}},
			},
			want: cells{"0/1", "ErrImagePull", "0"},
		},
		{
			name: "first init container running",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{running("init", false, 0)},
					ContainerStatuses:     []corev1.ContainerStatus{waiting("app", "PodInitializing", 0)},
				},
			},
			want: cells{"0/1", "Init:0/1", "0"},
		},
		{
			name: "second of two init containers waiting to initialize",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("i1", "i2"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					terminated("i1", "Completed", 0, 0), waiting("i2", "PodInitializing", 0),
				}},
			},
			want: cells{"0/1", "Init:1/2", "0"},
		},
		{
			name: "init container back-off, restarts counted",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					lastTerminated(waiting("init", "CrashLoopBackOff", 4), 3*time.Minute),
				}},
			},
			want: cells{"0/1", "Init:CrashLoopBackOff", "4 (3m ago)"},
		},
		{
			name: "init container failed with reason",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					terminated("init", "Error", 1, 0),
				}},
			},
			want: cells{"0/1", "Init:Error", "0"},
		},
		{
			name: "init container failed with exit code only",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					terminated("init", "", 2, 0),
				}},
			},
			want: cells{"0/1", "Init:ExitCode:2", "0"},
		},
		{
			name: "init container killed by signal",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					terminated("init", "", 137, 9),
				}},
			},
			want: cells{"0/1", "Init:Signal:9", "0"},
		},
		{
			name: "init done, one-shot init restarts no longer counted",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					InitContainerStatuses: []corev1.ContainerStatus{func() corev1.ContainerStatus {
						cs := terminated("init", "Completed", 0, 0)
						cs.RestartCount = 2
						return cs
					}()},
					ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0)},
				},
			},
			want: cells{"1/1", "Running", "0"},
		},
		{
			name: "sidecar init container counts as a container",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always}},
					Containers:     containers("app"),
				},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions: []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionTrue)},
					InitContainerStatuses: []corev1.ContainerStatus{func() corev1.ContainerStatus {
						cs := lastTerminated(running("sidecar", true, 1), 10*time.Minute)
						cs.Started = ptr(true)
						return cs
					}()},
					ContainerStatuses: []corev1.ContainerStatus{running("app", true, 2)},
				},
			},
			want: cells{"2/2", "Running", "3 (10m ago)"},
		},
		{
			name: "sidecar started while a later init container runs",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: &always}, {Name: "migrate"}},
					Containers:     containers("app"),
				},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{
						func() corev1.ContainerStatus { cs := running("sidecar", true, 0); cs.Started = ptr(true); return cs }(),
						running("migrate", false, 0),
					},
				},
			},
			want: cells{"1/2", "Init:1/2", "0"},
		},
		{
			name: "completed",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("job")},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
					terminated("job", "Completed", 0, 0),
				}},
			},
			want: cells{"0/1", "Completed", "0"},
		},
		{
			name: "failed container without reason",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("job")},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					terminated("job", "", 3, 0),
				}},
			},
			want: cells{"0/1", "ExitCode:3", "0"},
		},
		{
			name: "container killed by signal",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("job")},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					terminated("job", "", 0, 15),
				}},
			},
			want: cells{"0/1", "Signal:15", "0"},
		},
		{
			name: "one completed, one running and pod ready",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("web", "setup")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions:        []corev1.PodCondition{condition(corev1.PodReady, corev1.ConditionTrue)},
					ContainerStatuses: []corev1.ContainerStatus{running("web", true, 0), terminated("setup", "Completed", 0, 0)},
				},
			},
			want: cells{"1/2", "Running", "0"},
		},
		{
			name: "one completed, one running, pod not ready",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("web", "setup")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions:        []corev1.PodCondition{condition(corev1.PodReady, corev1.ConditionFalse)},
					ContainerStatuses: []corev1.ContainerStatus{running("web", true, 0), terminated("setup", "Completed", 0, 0)},
				},
			},
			want: cells{"1/2", "NotReady", "0"},
		},
		{
			name: "one completed, one failed",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("a", "b")},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					terminated("a", "Completed", 0, 0), terminated("b", "Error", 1, 0),
				}},
			},
			want: cells{"0/2", "Error", "0"},
		},
		{
			name: "evicted",
			pod: corev1.Pod{
				Spec:   corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
			},
			want: cells{"0/1", "Evicted", "0"},
		},
		{
			name: "scheduling gated",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated},
				}},
			},
			want: cells{"0/1", "SchedulingGated", "0"},
		},
		{
			name: "terminating",
			pod: corev1.Pod{
				ObjectMeta: metaDeleted(),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0)}},
			},
			want: cells{"1/1", "Terminating", "0"},
		},
		{
			name: "deleted on a lost node",
			pod: corev1.Pod{
				ObjectMeta: metaDeleted(),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost", ContainerStatuses: []corev1.ContainerStatus{running("app", true, 0)}},
			},
			want: cells{"1/1", "Unknown", "0"},
		},
		{
			name: "deleted after completing",
			pod: corev1.Pod{
				ObjectMeta: metaDeleted(),
				Spec:       corev1.PodSpec{Containers: containers("job")},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
					terminated("job", "Completed", 0, 0),
				}},
			},
			want: cells{"0/1", "Completed", "0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := tt.pod
			if pod.Name == "" {
				pod.Name = "web-0"
				pod.CreationTimestamp = ago(4 * time.Hour)
			}
			checkRow(t, &pod, []interface{}{
				"web-0", tt.want.ready, tt.want.status, tt.want.restarts, "4h", "<none>", "<none>", "<none>", "<none>",
			})
		})
	}
}

// metaDeleted is the metadata of a pod being deleted.
func metaDeleted() metav1.ObjectMeta {
	m := objMeta("web-0", 4*time.Hour)
	m.DeletionTimestamp = agoPtr(time.Second)
	return m
}

func TestPodWideColumns(t *testing.T) {
	tests := []struct {
		name                       string
		spec                       corev1.PodSpec
		status                     corev1.PodStatus
		ip, node, nominated, gates string
	}{
		{
			name:   "scheduled with IP",
			spec:   corev1.PodSpec{NodeName: "node-1"},
			status: corev1.PodStatus{PodIP: "10.244.0.5", PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}, {IP: "fd00::5"}}},
			ip:     "10.244.0.5", node: "node-1", nominated: "<none>", gates: "<none>",
		},
		{
			name:   "podIPs only",
			status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "fd00::7"}}},
			ip:     "fd00::7", node: "<none>", nominated: "<none>", gates: "<none>",
		},
		{
			name:   "nominated",
			status: corev1.PodStatus{NominatedNodeName: "node-2"},
			ip:     "<none>", node: "<none>", nominated: "node-2", gates: "<none>",
		},
		{
			name: "readiness gates",
			spec: corev1.PodSpec{ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}}},
			status: corev1.PodStatus{Conditions: []corev1.PodCondition{
				condition("example.com/lb", corev1.ConditionTrue), condition("example.com/dns", corev1.ConditionFalse),
			}},
			ip: "<none>", node: "<none>", nominated: "<none>", gates: "1/2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Containers = containers("app")
			tt.status.Phase = corev1.PodRunning
			pod := &corev1.Pod{ObjectMeta: objMeta("p", 45*time.Second), Spec: tt.spec, Status: tt.status}
			checkRow(t, pod, []interface{}{"p", "0/1", "Running", "0", "45s", tt.ip, tt.node, tt.nominated, tt.gates})
		})
	}
}

package kubelet_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/sim"
)

// hookRuntime is the simulated runtime with scripted Exec results and a
// log of starts, execs and stops ("start:c", "exec:c:cmd", "stop:c:5s").
type hookRuntime struct {
	*sim.Runtime
	mu    sync.Mutex
	names map[string]string // container ID -> name
	log   []string
	// exec answers a command in a container; attempt is the container's
	// restart count.
	exec func(name string, attempt int, cmd []string, out io.Writer) int
	// attempts counts the containers created per name.
	attempts map[string]int
	attempt  map[string]int // container ID -> attempt
}

func newHookRuntime(exec func(name string, attempt int, cmd []string, out io.Writer) int) *hookRuntime {
	return &hookRuntime{Runtime: sim.New(sim.Options{}), names: map[string]string{},
		exec: exec, attempts: map[string]int{}, attempt: map[string]int{}}
}

func (r *hookRuntime) record(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *hookRuntime) entries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *hookRuntime) CreateContainer(ctx context.Context, sandboxID string, cfg kubelet.ContainerConfig) (string, error) {
	id, err := r.Runtime.CreateContainer(ctx, sandboxID, cfg)
	if err == nil {
		r.mu.Lock()
		r.names[id] = cfg.Name
		r.attempt[id] = int(cfg.Attempt)
		r.mu.Unlock()
	}
	return id, err
}

func (r *hookRuntime) name(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[id]
}

func (r *hookRuntime) StartContainer(ctx context.Context, id string) error {
	r.record("start:" + r.name(id))
	return r.Runtime.StartContainer(ctx, id)
}

func (r *hookRuntime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	r.record(fmt.Sprintf("stop:%s:%s", r.name(id), grace.Round(100*time.Millisecond)))
	return r.Runtime.StopContainer(ctx, id, grace)
}

func (r *hookRuntime) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	if _, err := r.Runtime.Exec(ctx, id, cmd, stdin, stdout, stderr, tty); err != nil {
		return -1, err
	}
	r.mu.Lock()
	name, attempt := r.names[id], r.attempt[id]
	r.mu.Unlock()
	r.record("exec:" + name + ":" + strings.Join(cmd, " "))
	return r.exec(name, attempt, cmd, stdout), nil
}

// eventLog records events as "Type Reason message".
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) Event(_ runtime.Object, typ, reason, msg string) {
	e.mu.Lock()
	e.events = append(e.events, typ+" "+reason+" "+msg)
	e.mu.Unlock()
}

func (e *eventLog) Eventf(o runtime.Object, typ, reason, format string, args ...any) {
	e.Event(o, typ, reason, fmt.Sprintf(format, args...))
}

func (e *eventLog) AnnotatedEventf(o runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	e.Event(o, typ, reason, fmt.Sprintf(format, args...))
}

func (e *eventLog) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.events, s)
}

func (e *eventLog) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.events, "; ")
}

func execHandler(cmd ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
}

func TestLivenessFailureRestartsContainer(t *testing.T) {
	for _, policy := range []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure} {
		t.Run(string(policy), func(t *testing.T) {
			// The first container fails its liveness probe; the restarted
			// one is healthy.
			rt := newHookRuntime(func(_ string, attempt int, _ []string, out io.Writer) int {
				if attempt == 0 {
					fmt.Fprint(out, "boom")
					return 1
				}
				return 0
			})
			events := &eventLog{}
			cs := fake.NewClientset()
			start(t, cs, func(c *kubelet.Config) { c.Runtime = rt; c.Recorder = events })
			p := pod("live", policy)
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: execHandler("check"), PeriodSeconds: 1, FailureThreshold: 2,
				TerminationGracePeriodSeconds: ptr.To(int64(7))}
			if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "restarted once and running", func() (bool, string) {
				p, err := getPod(t, cs, "live")
				if err != nil || len(p.Status.ContainerStatuses) == 0 {
					return false, fmt.Sprint(err)
				}
				s := p.Status.ContainerStatuses[0]
				return s.RestartCount == 1 && s.State.Running != nil && s.Ready && s.LastTerminationState.Terminated != nil &&
					p.Status.Phase == corev1.PodRunning, fmt.Sprintf("phase %s %+v", p.Status.Phase, s)
			})
			for _, want := range []string{
				"Warning Unhealthy Liveness probe failed: boom",
				"Normal Killing Container c failed liveness probe, will be restarted",
			} {
				if !events.has(want) {
					t.Errorf("events: missing %q in %s", want, events)
				}
			}
			// The probe's terminationGracePeriodSeconds is the kill's grace.
			if !slices.Contains(rt.entries(), "stop:c:7s") {
				t.Errorf("runtime log: got %v, want stop:c:7s", rt.entries())
			}
			// Two failures in a row were needed.
			var execs int
			for _, e := range rt.entries() {
				if e == "exec:c:check" {
					execs++
				}
			}
			if execs < 2 {
				t.Errorf("liveness execs: got %d, want at least 2", execs)
			}
		})
	}
}

func TestReadinessProbeGatesPodReady(t *testing.T) {
	var mu sync.Mutex
	healthy := false
	rt := newHookRuntime(func(string, int, []string, io.Writer) int {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return 0
		}
		return 1
	})
	cs := fake.NewClientset()
	start(t, cs, func(c *kubelet.Config) { c.Runtime = rt })
	p := pod("ready", corev1.RestartPolicyAlways)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: execHandler("ready"), PeriodSeconds: 1, FailureThreshold: 1}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podReady := func(p *corev1.Pod) corev1.ConditionStatus {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status
			}
		}
		return ""
	}
	eventually(t, "running, not ready", func() (bool, string) {
		p, err := getPod(t, cs, "ready")
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		return s.State.Running != nil && !s.Ready && s.Started != nil && *s.Started && podReady(p) == corev1.ConditionFalse,
			fmt.Sprintf("%+v %v", s, p.Status.Conditions)
	})
	mu.Lock()
	healthy = true
	mu.Unlock()
	eventually(t, "ready after a success", func() (bool, string) {
		p, err := getPod(t, cs, "ready")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.ContainerStatuses[0].Ready && podReady(p) == corev1.ConditionTrue, fmt.Sprintf("%v", p.Status.Conditions)
	})
	mu.Lock()
	healthy = false
	mu.Unlock()
	eventually(t, "not ready after a failure", func() (bool, string) {
		p, err := getPod(t, cs, "ready")
		if err != nil {
			return false, err.Error()
		}
		s := p.Status.ContainerStatuses[0]
		return !s.Ready && s.RestartCount == 0 && podReady(p) == corev1.ConditionFalse, fmt.Sprintf("%+v", s)
	})
}

func TestStartupProbeGatesStarted(t *testing.T) {
	var mu sync.Mutex
	up := false
	rt := newHookRuntime(func(_ string, _ int, cmd []string, _ io.Writer) int {
		mu.Lock()
		defer mu.Unlock()
		if cmd[0] == "started" && !up {
			return 1
		}
		return 0
	})
	cs := fake.NewClientset()
	start(t, cs, func(c *kubelet.Config) { c.Runtime = rt })
	p := pod("slow", corev1.RestartPolicyAlways)
	p.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: execHandler("started"), PeriodSeconds: 1, FailureThreshold: 100}
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: execHandler("ready"), PeriodSeconds: 1}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "running, not started", func() (bool, string) {
		p, err := getPod(t, cs, "slow")
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		return s.State.Running != nil && s.Started != nil && !*s.Started && !s.Ready, fmt.Sprintf("%+v", s)
	})
	time.Sleep(1500 * time.Millisecond)
	if slices.Contains(rt.entries(), "exec:c:ready") {
		t.Fatalf("readiness probed before startup succeeded: %v", rt.entries())
	}
	mu.Lock()
	up = true
	mu.Unlock()
	eventually(t, "started and ready", func() (bool, string) {
		p, err := getPod(t, cs, "slow")
		if err != nil {
			return false, err.Error()
		}
		s := p.Status.ContainerStatuses[0]
		return s.Started != nil && *s.Started && s.Ready, fmt.Sprintf("%+v", s)
	})
}

func TestPostStartHook(t *testing.T) {
	// The first "a" fails its postStart hook; "b" starts only after a's
	// hook is done.
	rt := newHookRuntime(func(name string, attempt int, cmd []string, _ io.Writer) int {
		if cmd[0] == "hook" && attempt == 0 {
			return 2
		}
		return 0
	})
	events := &eventLog{}
	cs := fake.NewClientset()
	start(t, cs, func(c *kubelet.Config) { c.Runtime = rt; c.Recorder = events })
	p := pod("post", corev1.RestartPolicyAlways)
	p.Spec.Containers = []corev1.Container{
		{Name: "a", Image: "nginx", Lifecycle: &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"hook"}}}}},
		{Name: "b", Image: "nginx"},
	}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a restarted after its failed hook", func() (bool, string) {
		p, err := getPod(t, cs, "post")
		if err != nil || len(p.Status.ContainerStatuses) != 2 {
			return false, fmt.Sprint(err)
		}
		a := p.Status.ContainerStatuses[0]
		return a.Name == "a" && a.RestartCount == 1 && a.State.Running != nil && p.Status.Phase == corev1.PodRunning,
			fmt.Sprintf("%+v", p.Status.ContainerStatuses)
	})
	if !events.has("Warning FailedPostStartHook PostStartHook failed") {
		t.Errorf("events: missing FailedPostStartHook in %s", events)
	}
	log := rt.entries()
	want := []string{"start:a", "exec:a:hook", "stop:a:30s"}
	if len(log) < 3 || !slices.Equal(log[:3], want) {
		t.Errorf("runtime log: got %v, want it to begin %v", log, want)
	}
	if i, j := slices.Index(log, "exec:a:hook"), slices.Index(log, "start:b"); i < 0 || j < i {
		t.Errorf("b started before a's hook ran: %v", log)
	}
}

func TestPreStopHookOnDeletion(t *testing.T) {
	rt := newHookRuntime(func(name string, _ int, cmd []string, _ io.Writer) int {
		if cmd[0] == "drain" {
			return 1 // fails: FailedPreStopHook, the container stops anyway
		}
		return 0
	})
	events := &eventLog{}
	cs := fake.NewClientset()
	start(t, cs, func(c *kubelet.Config) { c.Runtime = rt; c.Recorder = events })
	p := pod("pre", corev1.RestartPolicyAlways)
	p.Spec.Containers = []corev1.Container{
		{Name: "a", Image: "nginx", Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}}},
		{Name: "b", Image: "nginx", Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 1}}}},
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "running", func() (bool, string) {
		p, err := getPod(t, cs, "pre")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	p, _ = getPod(t, cs, "pre")
	// As the API server marks a pod: the deadline is now + grace.
	deadline := metav1.NewTime(time.Now().Add(6 * time.Second))
	p.DeletionTimestamp = &deadline
	p.DeletionGracePeriodSeconds = ptr.To(int64(6))
	if _, err := cs.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod deleted", func() (bool, string) {
		_, err := getPod(t, cs, "pre")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	log := rt.entries()
	if i, j := slices.Index(log, "exec:a:drain"), indexPrefix(log, "stop:a:"); i < 0 || j < i {
		t.Errorf("a: preStop did not run before the stop: %v", log)
	}
	// b's sleep ate about a second of the six.
	j := indexPrefix(log, "stop:b:")
	if j < 0 {
		t.Fatalf("b never stopped: %v", log)
	}
	grace, err := time.ParseDuration(strings.TrimPrefix(log[j], "stop:b:"))
	if err != nil || grace < 4*time.Second || grace > 5100*time.Millisecond {
		t.Errorf("b's stop grace: got %s (%v), want about 5s", log[j], err)
	}
	if !events.has("Warning FailedPreStopHook PreStopHook failed") {
		t.Errorf("events: missing FailedPreStopHook in %s", events)
	}
}

func indexPrefix(log []string, prefix string) int {
	return slices.IndexFunc(log, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

func TestSimulatedNetworkProbesSucceed(t *testing.T) {
	cs := fake.NewClientset()
	start(t, cs, nil)
	p := pod("simnet", corev1.RestartPolicyAlways)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1,
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
	p.Spec.Containers[0].LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready without a network", func() (bool, string) {
		p, err := getPod(t, cs, "simnet")
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, fmt.Sprint(err)
		}
		s := p.Status.ContainerStatuses[0]
		return s.Ready && s.RestartCount == 0, fmt.Sprintf("%+v", s)
	})
}

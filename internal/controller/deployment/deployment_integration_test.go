//go:build integration

package deployment_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/deployment"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/server"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs an API server in-process with no controllers and no
// scheduler of its own.
func startServer(t *testing.T) *rest.Config {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.yaml")
	s, err := server.New(server.Config{
		DataDir: dir, BindAddress: "127.0.0.1", SecurePort: freePort(t), AdvertiseAddress: "127.0.0.1",
		KubeconfigPath: kubeconfig, EtcdClientPort: freePort(t), EtcdPeerPort: freePort(t),
		DisableControllers: []string{"*"}, DisableScheduler: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
			cs := kubernetes.NewForConfigOrDie(cfg)
			if body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background()); err == nil && string(body) == "ok" {
				cfg.QPS, cfg.Burst = 200, 400
				return cfg
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("server not ready within 60s")
	return nil
}

// runControllers runs the replicaset, replicationcontroller and deployment
// controllers against cfg until the test ends.
func runControllers(t *testing.T, cfg *rest.Config) {
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(cs, 0)
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := func(c string) record.EventRecorder {
		return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: c})
	}
	rs := replicaset.New(f.Apps().V1().ReplicaSets(), f.Core().V1().Pods(), cs, rec("replicaset-controller"), log, nil)
	rc := replicaset.NewForReplicationControllers(f.Core().V1().ReplicationControllers(), f.Core().V1().Pods(), cs, rec("replication-controller"), log, nil)
	d := deployment.New(f.Apps().V1().Deployments(), f.Apps().V1().ReplicaSets(), f.Core().V1().Pods(), cs, rec("deployment-controller"), log, nil)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); rs.Run(ctx, 2) }()
	go func() { defer wg.Done(); rc.Run(ctx, 2) }()
	go func() { defer wg.Done(); d.Run(ctx, 2) }()
	f.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		f.Shutdown()
		b.Shutdown()
	})
}

// podWatcher plays the kubelet (every pod Running and Ready at once,
// terminating pods removed) and records the most non-terminating pods and
// the fewest ready ones it saw, once armed.
type podWatcher struct {
	mu                sync.Mutex
	pods              map[string]*corev1.Pod
	armed             bool
	maxPods, minReady int
}

func (w *podWatcher) run(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	for ctx.Err() == nil {
		wi, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range wi.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			w.observe(ev.Type, p)
			switch {
			case ev.Type == watch.Deleted:
			case p.DeletionTimestamp != nil:
				_ = cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			case !isReady(p):
				p = p.DeepCopy()
				now := metav1.Now()
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
					{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				}
				if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
					t.Logf("mark %s ready: %v", p.Name, err)
				}
			}
		}
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (w *podWatcher) observe(t watch.EventType, p *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t == watch.Deleted || p.DeletionTimestamp != nil {
		delete(w.pods, p.Name)
	} else {
		w.pods[p.Name] = p
	}
	if !w.armed {
		return
	}
	ready := 0
	for _, q := range w.pods {
		if isReady(q) {
			ready++
		}
	}
	w.maxPods = max(w.maxPods, len(w.pods))
	w.minReady = min(w.minReady, ready)
}

func (w *podWatcher) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed, w.maxPods, w.minReady = true, 0, 1<<30
}

func (w *podWatcher) extremes() (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxPods, w.minReady
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
}

// waitRolledOut waits for what `kubectl rollout status` waits for.
func waitRolledOut(t *testing.T, cs kubernetes.Interface, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, "deployment "+name+" rolled out", 60*time.Second, func() (bool, string) {
		var err error
		d, err = cs.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		want := *d.Spec.Replicas
		st := d.Status
		done := st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want
		for _, c := range st.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Reason != deployment.ReasonNewRSAvailable {
				done = false
			}
		}
		return done, fmt.Sprintf("generation %d status %+v", d.Generation, st)
	})
	return d
}

func replicaSets(t *testing.T, cs kubernetes.Interface) map[string]*appsv1.ReplicaSet {
	t.Helper()
	l, err := cs.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range l.Items {
		out[l.Items[i].Annotations[deployment.RevisionAnnotation]] = &l.Items[i]
	}
	return out
}

func TestDeploymentLifecycle(t *testing.T) {
	cfg := startServer(t)
	runControllers(t, cfg)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &podWatcher{pods: map[string]*corev1.Pod{}}
	go w.run(ctx, t, cs, "default")

	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To[int32](3),
			RevisionHistoryLimit: ptr.To[int32](3),
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nginx"}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "nginx"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.7.9"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitRolledOut(t, cs, "nginx")
	rss := replicaSets(t, cs)
	first := rss["1"]
	if len(rss) != 1 || first == nil || !strings.HasPrefix(first.Name, "nginx-") || first.Labels[deployment.PodTemplateHashLabel] == "" {
		t.Fatalf("after the first rollout: ReplicaSets %v, want nginx-<hash> at revision 1", rss)
	}
	if got.Annotations[deployment.RevisionAnnotation] != "1" {
		t.Errorf("deployment revision %q, want 1", got.Annotations[deployment.RevisionAnnotation])
	}
	waitFor(t, "ScalingReplicaSet event", 30*time.Second, func() (bool, string) {
		evs, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=ScalingReplicaSet"})
		want := fmt.Sprintf("Scaled up replica set %s from 0 to 3", first.Name)
		for _, e := range evs.Items {
			if e.Message == want {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs.Items))
	})

	// Rolling update to nginx:1.8: never more than 4 pods, never fewer than 3 ready.
	w.arm()
	set := func(image, cause string) {
		t.Helper()
		cur, err := cs.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Template.Spec.Containers[0].Image = image
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations["kubernetes.io/change-cause"] = cause
		if _, err := cs.AppsV1().Deployments("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	set("nginx:1.8", "update to 1.8")
	waitRolledOut(t, cs, "nginx")
	if maxPods, minReady := w.extremes(); maxPods > 4 || minReady < 3 {
		t.Errorf("during the rolling update: up to %d pods and down to %d ready, want at most 4 and at least 3", maxPods, minReady)
	}
	rss = replicaSets(t, cs)
	if rss["2"] == nil || *rss["2"].Spec.Replicas != 3 || *rss["1"].Spec.Replicas != 0 || rss["2"].Annotations["kubernetes.io/change-cause"] != "update to 1.8" {
		t.Fatalf("after the update: %v, want revision 2 at 3 with its change-cause and revision 1 at 0", rss)
	}

	// kubectl rollout undo --to-revision=1: the template of revision 1.
	cur, err := cs.AppsV1().Deployments("default").Get(ctx, "nginx", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := first.Spec.Template.DeepCopy()
	delete(tmpl.Labels, deployment.PodTemplateHashLabel)
	cur.Spec.Template = *tmpl
	if _, err := cs.AppsV1().Deployments("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = waitRolledOut(t, cs, "nginx")
	rss = replicaSets(t, cs)
	if len(rss) != 2 || rss["3"] == nil || rss["3"].Name != first.Name || rss["3"].Annotations[deployment.RevisionHistoryAnnotation] != "1" {
		t.Fatalf("after undo: %v, want %s reused as revision 3", rss, first.Name)
	}
	if got.Annotations[deployment.RevisionAnnotation] != "3" {
		t.Errorf("deployment revision %q after undo, want 3", got.Annotations[deployment.RevisionAnnotation])
	}

	// kubectl scale --replicas=10, through the scale subresource.
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "nginx",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Namespace: "default", ResourceVersion: got.ResourceVersion},
			Spec: autoscalingv1.ScaleSpec{Replicas: 10}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, cs, "nginx")
	waitFor(t, "10 ready pods", 30*time.Second, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.pods) == 10, fmt.Sprintf("%d pods", len(w.pods))
	})

	// More rollouts: only revisionHistoryLimit (3) old ReplicaSets stay.
	for i, img := range []string{"nginx:1.9", "nginx:1.10", "nginx:1.11"} {
		set(img, fmt.Sprintf("step %d", i))
		waitRolledOut(t, cs, "nginx")
	}
	waitFor(t, "history trimmed to 3 old ReplicaSets", 30*time.Second, func() (bool, string) {
		rss := replicaSets(t, cs)
		// Revisions 2 (1.8), 3 (the undo), 4 and 5 are old; 2, the lowest, goes.
		return len(rss) == 4 && rss["3"] != nil && rss["4"] != nil && rss["5"] != nil && rss["6"] != nil, fmt.Sprint(keys(rss))
	})
}

func keys(m map[string]*appsv1.ReplicaSet) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v.Name)
	}
	return out
}

func TestReplicationControllerIntegration(t *testing.T) {
	cfg := startServer(t)
	runControllers(t, cfg)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "default"},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](2),
			Selector: map[string]string{"app": "legacy"},
			Template: &corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "legacy"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
	if _, err := cs.CoreV1().ReplicationControllers("default").Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 pods owned by the RC and its status", 30*time.Second, func() (bool, string) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=legacy"})
		if err != nil {
			return false, err.Error()
		}
		owned := 0
		for _, p := range pods.Items {
			if ref := metav1.GetControllerOf(&p); ref != nil && ref.Kind == "ReplicationController" && ref.Name == "legacy" {
				owned++
			}
		}
		cur, err := cs.CoreV1().ReplicationControllers("default").Get(ctx, "legacy", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return owned == 2 && cur.Status.Replicas == 2 && cur.Status.ObservedGeneration == cur.Generation,
			fmt.Sprintf("%d owned pods, status %+v", owned, cur.Status)
	})
	// Scale down to 1: one pod is deleted.
	cur, _ := cs.CoreV1().ReplicationControllers("default").Get(ctx, "legacy", metav1.GetOptions{})
	cur.Spec.Replicas = ptr.To[int32](1)
	if _, err := cs.CoreV1().ReplicationControllers("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1 pod", 30*time.Second, func() (bool, string) {
		pods, _ := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=legacy"})
		active := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				active++
			}
		}
		return active == 1, fmt.Sprintf("%d active pods", active)
	})
}

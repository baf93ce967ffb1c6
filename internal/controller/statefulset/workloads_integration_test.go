//go:build integration

package statefulset_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/cronjob"
	"github.com/skiff-sh/skiff/internal/controller/daemonset"
	"github.com/skiff-sh/skiff/internal/controller/job"
	"github.com/skiff-sh/skiff/internal/controller/statefulset"
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

// startCluster runs an API server with no controllers and no scheduler,
// and this package's workload controllers against it; the test plays the
// node by writing pod status.
func startCluster(t *testing.T) kubernetes.Interface {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.yaml")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := server.New(server.Config{
		DataDir: dir, BindAddress: "127.0.0.1", SecurePort: freePort(t), AdvertiseAddress: "127.0.0.1",
		KubeconfigPath: kubeconfig, EtcdClientPort: freePort(t), EtcdPeerPort: freePort(t),
		DisableControllers: []string{"*"}, DisableScheduler: true, Logger: log,
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
	var cs kubernetes.Interface
	deadline := time.Now().Add(30 * time.Second)
	for {
		if cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
			cs = kubernetes.NewForConfigOrDie(cfg)
			if body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err == nil && string(body) == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	rec := record.NewFakeRecorder(10000)
	go drain(ctx, rec)
	sts := statefulset.New(f.Apps().V1().StatefulSets(), f.Core().V1().Pods(), f.Core().V1().PersistentVolumeClaims(), f.Apps().V1().ControllerRevisions(), cs, rec, log, nil)
	ds := daemonset.New(f.Apps().V1().DaemonSets(), f.Core().V1().Nodes(), f.Core().V1().Pods(), f.Apps().V1().ControllerRevisions(), cs, rec, log, nil)
	jc := job.New(f.Batch().V1().Jobs(), f.Core().V1().Pods(), cs, rec, log, nil)
	cj := cronjob.New(f.Batch().V1().CronJobs(), f.Batch().V1().Jobs(), cs, rec, log, nil)
	f.Start(ctx.Done())
	go sts.Run(ctx, 2)
	go ds.Run(ctx, 2)
	go jc.Run(ctx, 2)
	go cj.Run(ctx, 2)
	return cs
}

func drain(ctx context.Context, rec *record.FakeRecorder) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-rec.Events:
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
}

func podNames(t *testing.T, cs kubernetes.Interface, ns, selector string) map[string]*corev1.Pod {
	l, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*corev1.Pod{}
	for i := range l.Items {
		out[l.Items[i].Name] = &l.Items[i]
	}
	return out
}

// setPod plays the node: gives a pod a phase and, when running, readiness.
func setPod(t *testing.T, cs kubernetes.Interface, ns, name string, phase corev1.PodPhase, exit int32) {
	t.Helper()
	for range 5 {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		p.Status.Phase = phase
		ready := corev1.ConditionFalse
		if phase == corev1.PodRunning {
			ready = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: now}}
		if phase == corev1.PodFailed || phase == corev1.PodSucceeded {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Image: p.Spec.Containers[0].Image,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, FinishedAt: now}}}}
		}
		if _, err = cs.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
	t.Fatalf("could not update pod %s", name)
}

func TestWorkloadControllers(t *testing.T) {
	cs := startCluster(t)
	t.Run("StatefulSetOrdering", func(t *testing.T) { testStatefulSet(t, cs) })
	t.Run("DaemonSetFollowsNodes", func(t *testing.T) { testDaemonSet(t, cs) })
	t.Run("JobCompletionsAndBackoffLimit", func(t *testing.T) { testJob(t, cs) })
	t.Run("CronJobFires", func(t *testing.T) { testCronJob(t, cs) })
}

func testStatefulSet(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(int32(3)), ServiceName: "nginx",
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.7"}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "www"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}},
		},
	}
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for ord := range 3 {
		name := fmt.Sprintf("web-%d", ord)
		waitFor(t, name+" created", 15*time.Second, func() (bool, string) {
			pods := podNames(t, cs, "default", "app=web")
			return pods[name] != nil, fmt.Sprint(len(pods), " pods")
		})
		time.Sleep(300 * time.Millisecond) // give a wrong controller the chance to run ahead
		if n := len(podNames(t, cs, "default", "app=web")); n != ord+1 {
			t.Fatalf("before %s is ready: got %d pods, want %d", name, n, ord+1)
		}
		setPod(t, cs, "default", name, corev1.PodRunning, 0)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-2", metav1.GetOptions{}); err != nil {
		t.Errorf("claim www-web-2: %v", err)
	}
	waitFor(t, "status readyReplicas 3", 15*time.Second, func() (bool, string) {
		s, _ := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		return s.Status.ReadyReplicas == 3 && s.Status.CurrentRevision != "" && s.Status.CurrentRevision == s.Status.UpdateRevision, fmt.Sprintf("%+v", s.Status)
	})
	// Scale down: web-2 goes first, then web-1.
	s, _ := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	s.Spec.Replicas = ptr.To(int32(1))
	if _, err := cs.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web-2 deleted", 15*time.Second, func() (bool, string) {
		pods := podNames(t, cs, "default", "app=web")
		if pods["web-1"] == nil {
			t.Fatalf("web-1 deleted before web-2")
		}
		return pods["web-2"] == nil, fmt.Sprint(len(pods))
	})
	waitFor(t, "web-1 deleted", 15*time.Second, func() (bool, string) {
		pods := podNames(t, cs, "default", "app=web")
		return pods["web-1"] == nil && pods["web-0"] != nil, fmt.Sprint(len(pods))
	})
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-2", metav1.GetOptions{}); err != nil {
		t.Errorf("claim www-web-2 should survive scale-down: %v", err)
	}
	// Rolling update replaces web-0 with the new revision.
	s, _ = cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	s.Spec.Template.Spec.Containers[0].Image = "nginx:1.8"
	if _, err := cs.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web-0 replaced with nginx:1.8", 15*time.Second, func() (bool, string) {
		p := podNames(t, cs, "default", "app=web")["web-0"]
		return p != nil && p.Spec.Containers[0].Image == "nginx:1.8", "old pod"
	})
	setPod(t, cs, "default", "web-0", corev1.PodRunning, 0)
	waitFor(t, "revisions 2 and rollout complete", 15*time.Second, func() (bool, string) {
		s, _ := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		revs, _ := cs.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return len(revs.Items) == 2 && s.Status.UpdatedReplicas == 1 && s.Status.CurrentRevision == s.Status.UpdateRevision, fmt.Sprintf("%d revisions, %+v", len(revs.Items), s.Status)
	})
}

func testDaemonSet(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	mkNode := func(name string) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkNode("node-a")
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "busybox"}}}},
		},
	}
	if _, err := cs.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	count := func(want int) {
		waitFor(t, fmt.Sprintf("%d daemon pods", want), 15*time.Second, func() (bool, string) {
			n := 0
			for _, p := range podNames(t, cs, "default", "app=agent") {
				if p.DeletionTimestamp == nil {
					n++
				}
			}
			d, _ := cs.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
			return n == want && int(d.Status.DesiredNumberScheduled) == want, fmt.Sprintf("%d pods, status %+v", n, d.Status)
		})
	}
	count(1)
	mkNode("node-b")
	count(2)
	if err := cs.CoreV1().Nodes().Delete(ctx, "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	count(1)
}

func testJob(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	mk := func(name string, completions, parallelism, backoff int32) {
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: batchv1.JobSpec{Completions: ptr.To(completions), Parallelism: ptr.To(parallelism), BackoffLimit: ptr.To(backoff),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}},
		}
		if _, err := cs.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	active := func(job string) []*corev1.Pod {
		var out []*corev1.Pod
		for _, p := range podNames(t, cs, "default", "job-name="+job) {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil {
				out = append(out, p)
			}
		}
		return out
	}
	mk("work", 3, 2, 6)
	finished := 0
	waitFor(t, "job work completes", 30*time.Second, func() (bool, string) {
		ps := active("work")
		if len(ps) > 2 {
			t.Fatalf("got %d active pods, want at most parallelism 2", len(ps))
		}
		if len(ps) > 0 && finished < 3 {
			setPod(t, cs, "default", ps[0].Name, corev1.PodSucceeded, 0)
			finished++
		}
		j, _ := cs.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", j.Status)
	})
	j, _ := cs.BatchV1().Jobs("default").Get(ctx, "work", metav1.GetOptions{})
	if j.Status.Succeeded != 3 || j.Status.CompletionTime == nil {
		t.Errorf("got succeeded %d completionTime %v, want 3 and set", j.Status.Succeeded, j.Status.CompletionTime)
	}
	for _, p := range podNames(t, cs, "default", "job-name=work") {
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s keeps finalizers %v", p.Name, p.Finalizers)
		}
	}

	mk("fail", 1, 1, 0)
	waitFor(t, "job fail's pod", 15*time.Second, func() (bool, string) { return len(active("fail")) == 1, "" })
	setPod(t, cs, "default", active("fail")[0].Name, corev1.PodFailed, 1)
	waitFor(t, "job fail fails with BackoffLimitExceeded", 15*time.Second, func() (bool, string) {
		j, _ := cs.BatchV1().Jobs("default").Get(ctx, "fail", metav1.GetOptions{})
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Reason == "BackoffLimitExceeded" {
				return j.Status.Failed == 1, ""
			}
		}
		return false, fmt.Sprintf("%+v", j.Status)
	})
}

func testCronJob(t *testing.T, cs kubernetes.Interface) {
	ctx := context.Background()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "default"},
		Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure,
				Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}}}},
	}
	if _, err := cs.BatchV1().CronJobs("default").Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a job from the cronjob", 75*time.Second, func() (bool, string) {
		jobs, _ := cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		for _, j := range jobs.Items {
			if ref := metav1.GetControllerOf(&j); ref != nil && ref.Name == "tick" {
				c, _ := cs.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
				return c.Status.LastScheduleTime != nil && len(c.Status.Active) == 1 && j.Annotations[batchv1.CronJobScheduledTimestampAnnotation] != "", ""
			}
		}
		return false, fmt.Sprint(len(jobs.Items), " jobs")
	})
}

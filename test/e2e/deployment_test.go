//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

const nginxDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  annotations:
    kubernetes.io/change-cause: %q
spec:
  replicas: 3
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: nginx
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: %s
        ports:
        - containerPort: 80
`

// startSimNodes runs count simulated nodes joined to c (the framework's
// `skiff sim nodes`) and waits until they are Ready.
func startSimNodes(t *testing.T, c *framework.Cluster, count int, prefix string) {
	t.Helper()
	nodes := c.StartSimNodes(t, prefix, count)
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		if exited, err := nodes.Exited(); exited {
			t.Fatalf("skiff sim nodes exited (%v): %s", err, tailString(nodes.Logs(), 2000))
		}
		list, err := c.Client().CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range list.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= count, fmt.Sprintf("%d of %d nodes Ready", ready, count)
	})
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// podCounter watches a namespace's pods and keeps the most
// non-terminating pods and the fewest Ready ones seen since arm.
type podCounter struct {
	mu                sync.Mutex
	pods              map[string]bool // name -> ready
	armed             bool
	maxPods, minReady int
}

func watchPods(t *testing.T, cs kubernetes.Interface, ns, selector string) *podCounter {
	t.Helper()
	pc := &podCounter{pods: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pc.observe(ev.Type, p)
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return pc
}

func (pc *podCounter) observe(typ watch.EventType, p *corev1.Pod) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if typ == watch.Deleted || p.DeletionTimestamp != nil {
		delete(pc.pods, p.Name)
	} else {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		pc.pods[p.Name] = ready
	}
	if !pc.armed {
		return
	}
	ready := 0
	for _, r := range pc.pods {
		if r {
			ready++
		}
	}
	pc.maxPods = max(pc.maxPods, len(pc.pods))
	pc.minReady = min(pc.minReady, ready)
}

func (pc *podCounter) arm() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.armed, pc.maxPods, pc.minReady = true, 0, 1<<30
}

func (pc *podCounter) extremes() (int, int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.maxPods, pc.minReady
}

// TestDeploymentRollout is the flow: nginx with 3 replicas, a
// rolling update that never has more than 4 pods nor fewer than 3
// available, history, undo, scale, and revisionHistoryLimit.
func TestDeploymentRollout(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 3, "dep")
	kubectl := func(args ...string) string {
		t.Helper()
		out, _, err := c.Kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	apply := func(image, cause string) string {
		t.Helper()
		out, _, err := c.KubectlStdin(fmt.Sprintf(nginxDeployment, cause, image), "apply", "-f", "-")
		if err != nil {
			t.Fatalf("kubectl apply: %v", err)
		}
		return out
	}
	rolledOut := func() {
		t.Helper()
		out := kubectl("rollout", "status", "deployment/nginx-deployment", "--timeout=120s")
		if !strings.Contains(out, `deployment "nginx-deployment" successfully rolled out`) {
			t.Fatalf("rollout status said %q", out)
		}
	}
	rsLines := func() []string {
		t.Helper()
		out := kubectl("get", "rs", "-l", "app=nginx", "--no-headers")
		return strings.Split(strings.TrimSpace(out), "\n")
	}

	if out := apply("nginx:1.7.9", "first: nginx 1.7.9"); !strings.Contains(out, "deployment.apps/nginx-deployment created") {
		t.Fatalf("apply said %q", out)
	}
	rolledOut()
	if out := kubectl("get", "deployment", "nginx-deployment"); !regexp.MustCompile(`(?m)^nginx-deployment\s+3/3\s+3\s+3\s`).MatchString(out) {
		t.Errorf("get deployment:\n%s\nwant READY 3/3, UP-TO-DATE 3, AVAILABLE 3", out)
	}
	lines := rsLines()
	m := regexp.MustCompile(`^nginx-deployment-([a-z0-9]+)\s+3\s+3\s+3\s`).FindStringSubmatch(lines[0])
	if len(lines) != 1 || m == nil {
		t.Fatalf("get rs:\n%s\nwant one nginx-deployment-<hash> with DESIRED, CURRENT, READY 3", strings.Join(lines, "\n"))
	}
	firstRS, hash := "nginx-deployment-"+m[1], m[1]
	pods := kubectl("get", "pod", "--show-labels", "-l", "app=nginx", "--no-headers")
	if n := strings.Count(pods, "pod-template-hash="+hash); n != 3 {
		t.Errorf("get pod --show-labels:\n%s\nwant 3 pods labelled pod-template-hash=%s", pods, hash)
	}

	// The rolling update, watched.
	pc := watchPods(t, c.Client(), "default", "app=nginx")
	framework.WaitFor(t, 10*time.Second, func() (bool, string) {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		return len(pc.pods) == 3, fmt.Sprintf("%d pods seen", len(pc.pods))
	})
	pc.arm()
	if out := apply("nginx:1.8", "update: nginx 1.8"); !strings.Contains(out, "configured") {
		t.Fatalf("apply said %q", out)
	}
	rolledOut()
	if maxPods, minReady := pc.extremes(); maxPods > 4 || minReady < 3 {
		t.Errorf("during the rollout: up to %d pods and down to %d available, want at most 4 and at least 3", maxPods, minReady)
	}
	if lines := rsLines(); len(lines) != 2 {
		t.Errorf("get rs after the update:\n%s\nwant 2 ReplicaSets", strings.Join(lines, "\n"))
	}

	hist := kubectl("rollout", "history", "deployment/nginx-deployment")
	for _, want := range []string{`(?m)^1\s+first: nginx 1.7.9$`, `(?m)^2\s+update: nginx 1.8$`} {
		if !regexp.MustCompile(want).MatchString(hist) {
			t.Errorf("rollout history:\n%s\nwant a line matching %s", hist, want)
		}
	}
	if rev := kubectl("rollout", "history", "deployment/nginx-deployment", "--revision=2"); !strings.Contains(rev, "nginx:1.8") || !strings.Contains(rev, "revision #2") {
		t.Errorf("rollout history --revision=2:\n%s\nwant revision #2 with image nginx:1.8", rev)
	}

	if out := kubectl("rollout", "undo", "deployment/nginx-deployment", "--to-revision=1"); !strings.Contains(out, "rolled back") {
		t.Errorf("rollout undo said %q", out)
	}
	rolledOut()
	lines = rsLines()
	if len(lines) != 2 || !regexp.MustCompile(`^`+firstRS+`\s+3\s+3\s+3\s`).MatchString(findLine(lines, firstRS)) {
		t.Errorf("get rs after undo:\n%s\nwant %s back at 3 and no new ReplicaSet", strings.Join(lines, "\n"), firstRS)
	}
	hist = kubectl("rollout", "history", "deployment/nginx-deployment")
	if !regexp.MustCompile(`(?m)^3\s+first: nginx 1.7.9$`).MatchString(hist) || regexp.MustCompile(`(?m)^1\s`).MatchString(hist) {
		t.Errorf("rollout history after undo:\n%s\nwant revision 1 renumbered 3", hist)
	}

	if out := kubectl("scale", "deployment/nginx-deployment", "--replicas=10"); !strings.Contains(out, "scaled") {
		t.Errorf("scale said %q", out)
	}
	rolledOut()
	if out := kubectl("get", "deployment", "nginx-deployment"); !regexp.MustCompile(`(?m)^nginx-deployment\s+10/10\s+10\s+10\s`).MatchString(out) {
		t.Errorf("get deployment after scale:\n%s\nwant 10/10", out)
	}

	// Three more revisions (set image, restart, set image): only 3 old
	// ReplicaSets stay.
	kubectl("set", "image", "deployment/nginx-deployment", "nginx=nginx:1.9")
	rolledOut()
	kubectl("rollout", "restart", "deployment/nginx-deployment")
	rolledOut()
	kubectl("set", "image", "deployment/nginx-deployment", "nginx=nginx:1.10")
	rolledOut()
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, _, err := c.Kubectl("get", "rs", "-l", "app=nginx", "--no-headers")
		if err != nil {
			return false, err.Error()
		}
		return len(strings.Split(strings.TrimSpace(out), "\n")) == 4, out
	})
}

// TestDeploymentPauseResume checks that a paused Deployment rolls nothing
// out but still scales, and resumes where it stopped.
func TestDeploymentPauseResume(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	startSimNodes(t, c, 2, "pause")
	run := func(args ...string) string {
		t.Helper()
		out, _, err := c.Kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	run("create", "deployment", "web", "--image=nginx:1.7.9", "--replicas=2")
	run("rollout", "status", "deployment/web", "--timeout=120s")
	run("rollout", "pause", "deployment/web")
	run("set", "image", "deployment/web", "nginx=nginx:1.8")
	run("scale", "deployment/web", "--replicas=4")
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		out, _, _ := c.Kubectl("get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas} {.status.conditions[?(@.type==\"Progressing\")].reason}")
		return out == "4 DeploymentPaused", out
	})
	if out := run("get", "rs", "-l", "app=web", "--no-headers"); len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Errorf("paused deployment rolled out:\n%s", out)
	}
	run("rollout", "resume", "deployment/web")
	if out := run("rollout", "status", "deployment/web", "--timeout=120s"); !strings.Contains(out, `deployment "web" successfully rolled out`) {
		t.Errorf("rollout status after resume: %q", out)
	}
	if out := run("get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.status.updatedReplicas}"); out != "nginx:1.8 4" {
		t.Errorf("after resume: %q, want nginx:1.8 with 4 updated replicas", out)
	}
}

func findLine(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

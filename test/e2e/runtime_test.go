//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// These tests run real containers: `skiff server` with its own node and
// the runc runtime, in a network namespace the framework creates, pulling
// the project's test images from a registry inside the test process. They
// share one such cluster (suite.RealCluster); each works in a namespace of
// its own and deletes it when it ends.

// podStartTimeout bounds the wait for a pod's containers to run (the
// images come from a registry on the same machine).
const podStartTimeout = 90 * time.Second

// realNamespace creates namespace name on the real-node cluster and
// deletes it, without waiting, when the test ends; the suite's teardown
// waits for the node to stop whatever is left.
func realNamespace(t *testing.T, c *framework.Cluster, name string) string {
	t.Helper()
	kubectlOK(t, c, "create", "namespace", name)
	t.Cleanup(func() {
		if _, stderr, err := c.Kubectl("delete", "namespace", name, "--wait=false"); err != nil {
			t.Errorf("delete namespace %s: %v: %s", name, err, stderr)
		}
	})
	return name
}

// getPod returns the pod as `kubectl get -o json` shows it.
func getPod(c *framework.Cluster, ns, name string) (*corev1.Pod, error) {
	out, _, err := c.Kubectl("-n", ns, "get", "pod", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var p corev1.Pod
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, fmt.Errorf("decode pod %s/%s: %w", ns, name, err)
	}
	return &p, nil
}

// listPods returns the pods matching selector that are not being deleted.
func listPods(c *framework.Cluster, ns, selector string) ([]corev1.Pod, error) {
	out, _, err := c.Kubectl("-n", ns, "get", "pods", "-l", selector, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode pods in %s: %w", ns, err)
	}
	var live []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live, nil
}

// waitPod polls the pod until check returns "" (nothing wrong) and
// returns it; on timeout the test fails with check's last complaint and
// `kubectl describe`.
func waitPod(t *testing.T, c *framework.Cluster, ns, name string, timeout time.Duration, check func(*corev1.Pod) string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := framework.Poll(t.Context(), timeout, func() (bool, string) {
		p, err := getPod(c, ns, name)
		if err != nil {
			return false, err.Error()
		}
		pod = p
		if problem := check(p); problem != "" {
			return false, problem
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("pod %s/%s: %v\n%s", ns, name, err, describe(c, ns, "pod", name))
	}
	return pod
}

// describe is `kubectl describe` output for failure messages.
func describe(c *framework.Cluster, ns, kind, name string) string {
	out, stderr, err := c.Kubectl("-n", ns, "describe", kind, name)
	if err != nil {
		return fmt.Sprintf("(kubectl describe %s %s: %v: %s)", kind, name, err, stderr)
	}
	return "kubectl describe " + kind + " " + name + ":\n" + out
}

// phaseIs is a waitPod check for a phase.
func phaseIs(want corev1.PodPhase) func(*corev1.Pod) string {
	return func(p *corev1.Pod) string {
		if p.Status.Phase != want {
			return fmt.Sprintf("phase %q, want %q; container statuses %s", p.Status.Phase, want, statusText(p))
		}
		return ""
	}
}

// statusText summarises a pod's container states for messages.
func statusText(p *corev1.Pod) string {
	var parts []string
	for _, cs := range p.Status.ContainerStatuses {
		s := cs.Name + ": "
		switch {
		case cs.State.Running != nil:
			s += "running"
		case cs.State.Waiting != nil:
			s += "waiting " + cs.State.Waiting.Reason + " " + cs.State.Waiting.Message
		case cs.State.Terminated != nil:
			s += fmt.Sprintf("terminated %s exit %d %s", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
		default:
			s += "no state"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, "; ")
}

// containerProcesses returns the command lines of the processes in the
// container's cgroup (the runtime puts each container in a cgroup named
// after its ID under the node's cgroup root).
func containerProcesses(c *framework.Cluster, containerID string) []string {
	id := strings.TrimPrefix(containerID, "runc://")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		in := false
		for _, line := range strings.Split(string(cg), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 && strings.HasPrefix(parts[2], "/"+c.CgroupRoot()+"/") && strings.HasSuffix(parts[2], "/"+id) {
				in = true
			}
		}
		if !in {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		out = append(out, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

// podCIDR is the real node's podCIDR.
func podCIDR(t *testing.T, c *framework.Cluster) *net.IPNet {
	t.Helper()
	s := strings.TrimSpace(kubectlOK(t, c, "get", "node", c.NodeName(), "-o", "jsonpath={.spec.podCIDR}"))
	_, cidr, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatalf("node %s podCIDR %q: %v", c.NodeName(), s, err)
	}
	return cidr
}

// TestRealPodRuns: a busybox pod started with kubectl run is a real
// process in a container with an IP from the node's podCIDR, pulled from
// the registry with upstream's events, and deleting the pod stops it.
func TestRealPodRuns(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-pod-runs")
	ref := c.Image(framework.ImageBusybox)
	digest, err := imagetest.Busybox(t).Digest()
	if err != nil {
		t.Fatal(err)
	}

	// Always: other tests may have pulled the image already, and this one
	// checks the pull's events.
	kubectlOK(t, c, "-n", ns, "run", "bb", "--image="+ref, "--image-pull-policy=Always", "--restart=Never", "--", "sh", "-c", "echo hello; sleep 3600")
	pod := waitPod(t, c, ns, "bb", podStartTimeout, phaseIs(corev1.PodRunning))

	cidr := podCIDR(t, c)
	if ip := net.ParseIP(pod.Status.PodIP); ip == nil || !cidr.Contains(ip) {
		t.Errorf("status.podIP: got %q, want an address in the node's podCIDR %s", pod.Status.PodIP, cidr)
	}
	if len(pod.Status.ContainerStatuses) != 1 {
		t.Fatalf("containerStatuses: got %d, want 1: %s", len(pod.Status.ContainerStatuses), statusText(pod))
	}
	cs := pod.Status.ContainerStatuses[0]
	if !strings.HasPrefix(cs.ContainerID, "runc://") {
		t.Errorf("containerStatuses[0].containerID: got %q, want runc://<id>", cs.ContainerID)
	}
	if !strings.Contains(cs.ImageID, "@sha256:") || !strings.HasSuffix(cs.ImageID, "@"+digest.String()) {
		t.Errorf("containerStatuses[0].imageID: got %q, want <repository>@%s (the pushed manifest's digest)", cs.ImageID, digest)
	}
	if cs.Image != ref {
		t.Errorf("containerStatuses[0].image: got %q, want %q", cs.Image, ref)
	}
	if cs.State.Running == nil || cs.Ready != true || cs.Started == nil || !*cs.Started {
		t.Errorf("containerStatuses[0]: got %s ready %v started %v, want running, ready and started", statusText(pod), cs.Ready, cs.Started)
	}

	// The container is a real process tree on this machine.
	var procs []string
	framework.WaitFor(t, 10*time.Second, func() (bool, string) {
		procs = containerProcesses(c, cs.ContainerID)
		return slices.ContainsFunc(procs, func(p string) bool { return strings.Contains(p, "sleep 3600") }),
			fmt.Sprintf("processes in the cgroup of container %s: %q, want one running \"sleep 3600\"", cs.ContainerID, procs)
	})

	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out := describe(c, ns, "pod", "bb")
		for _, want := range []string{
			"Pulling", `Pulling image "` + ref + `"`,
			"Pulled", `Successfully pulled image "` + ref + `"`,
		} {
			if !strings.Contains(out, want) {
				return false, fmt.Sprintf("no %q in the events;\n%s", want, out)
			}
		}
		return true, ""
	})

	// sh as PID 1 ignores SIGTERM, so the pod goes when the grace period
	// ends and the node kills it.
	const grace = 5 * time.Second
	start := time.Now()
	if _, stderr, err := c.Kubectl("-n", ns, "delete", "pod", "bb", "--grace-period=5", "--timeout=45s"); err != nil {
		t.Fatalf("delete pod: %v: %s\n%s", err, stderr, describe(c, ns, "pod", "bb"))
	}
	if took := time.Since(start); took > grace+15*time.Second {
		t.Errorf("deleting pod bb took %v, want about the %v grace period", took.Round(time.Millisecond), grace)
	}
	framework.WaitFor(t, 10*time.Second, func() (bool, string) {
		procs := containerProcesses(c, cs.ContainerID)
		return len(procs) == 0, fmt.Sprintf("processes still in the cgroup of deleted container %s: %q", cs.ContainerID, procs)
	})
}

const exitPods = `apiVersion: v1
kind: Pod
metadata:
  name: fails
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "exit 3"]
---
apiVersion: v1
kind: Pod
metadata:
  name: succeeds
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "exit 0"]
`

// TestRealExitCodes: a container's exit code becomes the pod's phase and
// the terminated state's exit code and reason, as upstream reports them.
func TestRealExitCodes(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-exit-codes")
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(exitPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}

	tests := []struct {
		pod        string
		phase      corev1.PodPhase
		exitCode   int32
		reason     string
		statusCell string // the STATUS column of kubectl get pod
	}{
		{pod: "fails", phase: corev1.PodFailed, exitCode: 3, reason: "Error", statusCell: "Error"},
		{pod: "succeeds", phase: corev1.PodSucceeded, exitCode: 0, reason: "Completed", statusCell: "Completed"},
	}
	for _, tc := range tests {
		t.Run(tc.pod, func(t *testing.T) {
			pod := waitPod(t, c, ns, tc.pod, podStartTimeout, phaseIs(tc.phase))
			if len(pod.Status.ContainerStatuses) != 1 || pod.Status.ContainerStatuses[0].State.Terminated == nil {
				t.Fatalf("got container statuses %s, want one terminated", statusText(pod))
			}
			term := pod.Status.ContainerStatuses[0].State.Terminated
			if term.ExitCode != tc.exitCode || term.Reason != tc.reason {
				t.Errorf("terminated: got exit code %d reason %q, want %d %q", term.ExitCode, term.Reason, tc.exitCode, tc.reason)
			}
			if !strings.HasPrefix(term.ContainerID, "runc://") || term.StartedAt.IsZero() || term.FinishedAt.Before(&term.StartedAt) {
				t.Errorf("terminated: got containerID %q startedAt %v finishedAt %v, want runc://<id> and finishedAt >= startedAt",
					term.ContainerID, term.StartedAt, term.FinishedAt)
			}
			rows := table(kubectlOK(t, c, "-n", ns, "get", "pod", tc.pod))
			if len(rows) != 2 || len(rows[1]) < 3 || rows[1][2] != tc.statusCell {
				t.Errorf("kubectl get pod %s: got %q, want STATUS %s", tc.pod, rows, tc.statusCell)
			}
		})
	}
}

// reasonRecorder keeps the order in which a pod's container showed each
// waiting reason, from a watch.
type reasonRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *reasonRecorder) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason != "" && (len(r.seen) == 0 || r.seen[len(r.seen)-1] != reason) {
		r.seen = append(r.seen, reason)
	}
}

func (r *reasonRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// TestRealImagePullFailure: an image the registry does not have leaves the
// container waiting with ErrImagePull, then ImagePullBackOff, as kubectl
// shows.
func TestRealImagePullFailure(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-pull-failure")
	ref := c.Registry() + "/nope:1"

	// ErrImagePull may last only until the next sync, so a watch sees it
	// where polling might not.
	ctx, cancel := context.WithCancel(t.Context())
	w, err := c.Client().CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=nope"})
	if err != nil {
		cancel()
		t.Fatalf("watch pods: %v", err)
	}
	var rec reasonRecorder
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				for _, cs := range p.Status.ContainerStatuses {
					if cs.State.Waiting != nil {
						rec.add(cs.State.Waiting.Reason)
					}
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })

	kubectlOK(t, c, "-n", ns, "run", "nope", "--image="+ref, "--restart=Never")
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		seen := rec.get()
		i := slices.Index(seen, "ErrImagePull")
		ok := i >= 0 && slices.Contains(seen[i:], "ImagePullBackOff")
		return ok, fmt.Sprintf("waiting reasons seen: %q, want ErrImagePull then ImagePullBackOff\n%s", seen, describe(c, ns, "pod", "nope"))
	})
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out := kubectlOK(t, c, "-n", ns, "get", "pod", "nope")
		rows := table(out)
		ok := len(rows) == 2 && len(rows[1]) >= 3 && (rows[1][2] == "ImagePullBackOff" || rows[1][2] == "ErrImagePull")
		return ok, "kubectl get pod nope: want STATUS ImagePullBackOff or ErrImagePull, got:\n" + out
	})
	out := describe(c, ns, "pod", "nope")
	for _, want := range []string{`Pulling image "` + ref + `"`, "Failed", "ErrImagePull", "BackOff", "ImagePullBackOff"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe pod nope: no %q;\n%s", want, out)
		}
	}
	pod, err := getPod(c, ns, "nope")
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("phase: got %q, want Pending", pod.Status.Phase)
	}
}

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: testserver
        image: %s
        ports:
        - containerPort: 8080
`

// TestRealDeploymentServesHTTP is the flow: a Deployment of the
// test server serves HTTP from every pod IP, rolls to v2, and back.
func TestRealDeploymentServesHTTP(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-deployment")
	v1 := c.Image(framework.ImageTestServer)
	v2 := c.Image(framework.ImageTestServerV2)
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(webDeployment, v1), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, stderr)
	}
	rolledOut := func() {
		t.Helper()
		out, stderr, err := c.Kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=120s")
		if err != nil || !strings.Contains(out, `deployment "web" successfully rolled out`) {
			pods, _, _ := c.Kubectl("-n", ns, "get", "pods", "-o", "wide")
			t.Fatalf("rollout status: %v\nstdout: %s\nstderr: %s\npods:\n%s", err, out, stderr, pods)
		}
	}
	// get fetches path from the pod's IP, from the node's namespace.
	// (Debian's static busybox 1.35 wget crashes with -T; the context
	// bounds each request instead.)
	get := func(ip, path string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		out, err := c.InNode(ctx, "/bin/busybox", "wget", "-q", "-O", "-", "http://"+net.JoinHostPort(ip, "8080")+path)
		return strings.TrimSpace(out), err
	}
	// serves checks that every running pod of the Deployment, and only
	// pods of image, answers path with want(pod).
	serves := func(image, path string, want func(corev1.Pod) string) {
		t.Helper()
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			pods, err := listPods(c, ns, "app=web")
			if err != nil {
				return false, err.Error()
			}
			if len(pods) != 3 {
				return false, fmt.Sprintf("%d pods, want 3", len(pods))
			}
			var problems []string
			for _, p := range pods {
				if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.Spec.Containers[0].Image != image {
					problems = append(problems, fmt.Sprintf("pod %s: phase %s, IP %q, image %s; want Running with an IP, image %s",
						p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.Containers[0].Image, image))
					continue
				}
				got, err := get(p.Status.PodIP, path)
				if err != nil {
					problems = append(problems, err.Error())
				} else if got != want(p) {
					problems = append(problems, fmt.Sprintf("pod %s (%s) %s: got %q, want %q", p.Name, p.Status.PodIP, path, got, want(p)))
				}
			}
			return len(problems) == 0, strings.Join(problems, "\n")
		})
	}
	podName := func(p corev1.Pod) string { return p.Name }
	version := func(v string) func(corev1.Pod) string { return func(corev1.Pod) string { return v } }

	rolledOut()
	pods, err := listPods(c, ns, "app=web")
	if err != nil {
		t.Fatal(err)
	}
	cidr := podCIDR(t, c)
	ips := map[string]bool{}
	for _, p := range pods {
		if ip := net.ParseIP(p.Status.PodIP); ip == nil || !cidr.Contains(ip) {
			t.Errorf("pod %s: IP %q not in the node's podCIDR %s", p.Name, p.Status.PodIP, cidr)
		}
		ips[p.Status.PodIP] = true
	}
	if len(ips) != len(pods) {
		t.Errorf("pods share IPs: %v", ips)
	}
	serves(v1, "/hostname", podName)
	serves(v1, "/version", version("v1"))

	kubectlOK(t, c, "-n", ns, "set", "image", "deployment/web", "testserver="+v2)
	rolledOut()
	serves(v2, "/version", version("v2"))
	serves(v2, "/hostname", podName)

	kubectlOK(t, c, "-n", ns, "rollout", "undo", "deployment/web")
	rolledOut()
	serves(v1, "/version", version("v1"))
}

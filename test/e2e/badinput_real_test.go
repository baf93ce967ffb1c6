//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// Bad input on a real node: each case gives the pod upstream's status,
// reason and events, and leaves the node agent serving every other pod (a
// canary keeps its container, a new pod still starts).

// canary is a pod that must keep running, in the same container, while
// bad input is thrown at the node.
type canary struct {
	c       *framework.Cluster
	ns      string
	id      string // its container's ID
	started int    // pods started by check, for unique names
}

// startCanary runs the canary pod in ns and waits for it.
func startCanary(t *testing.T, c *framework.Cluster, ns string) *canary {
	t.Helper()
	kubectlOK(t, c, "-n", ns, "run", "canary", "--image="+c.Image(framework.ImageBusybox), "--restart=Never", "--", "sleep", "3600")
	p := waitPod(t, c, ns, "canary", podStartTimeout, phaseIs(corev1.PodRunning))
	return &canary{c: c, ns: ns, id: p.Status.ContainerStatuses[0].ContainerID}
}

// check fails the test unless the canary still runs in its container and
// a new pod starts.
func (k *canary) check(t *testing.T) {
	t.Helper()
	p, err := getPod(k.c, k.ns, "canary")
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	if cs := p.Status.ContainerStatuses; p.Status.Phase != corev1.PodRunning || len(cs) != 1 || cs[0].ContainerID != k.id ||
		cs[0].RestartCount != 0 || cs[0].State.Running == nil {
		t.Errorf("canary: got phase %s, %s, want still Running in container %s", p.Status.Phase, statusText(p), k.id)
	}
	k.started++
	name := fmt.Sprintf("after-%d", k.started)
	kubectlOK(t, k.c, "-n", k.ns, "run", name, "--image="+k.c.Image(framework.ImageBusybox), "--restart=Never", "--", "sleep", "3600")
	waitPod(t, k.c, k.ns, name, podStartTimeout, phaseIs(corev1.PodRunning))
	kubectlOK(t, k.c, "-n", k.ns, "delete", "pod", name, "--wait=false")
}

// waitingReasons records, from a watch, the order in which the first
// container of pod ns/name showed each waiting reason (and the last
// message of each).
func waitingReasons(t *testing.T, c *framework.Cluster, ns, name string) (*reasonRecorder, func() map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w, err := c.Client().CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		cancel()
		t.Fatalf("watch pods: %v", err)
	}
	rec := &reasonRecorder{}
	msgs := map[string]string{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || len(p.Status.ContainerStatuses) == 0 {
				continue
			}
			if wt := p.Status.ContainerStatuses[0].State.Waiting; wt != nil {
				rec.add(wt.Reason)
				rec.mu.Lock()
				msgs[wt.Reason] = wt.Message
				rec.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return rec, func() map[string]string {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		out := make(map[string]string, len(msgs))
		for k, v := range msgs {
			out[k] = v
		}
		return out
	}
}

// TestRealBadInputPods: an unreachable registry, a missing configMap or
// secret volume, an env key that does not exist and a command that is not
// in the image each give the pod upstream's status and events, and none
// disturbs the node.
func TestRealBadInputPods(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-bad-pods")
	busybox := c.Image(framework.ImageBusybox)
	k := startCanary(t, c, ns)

	t.Run("unreachable registry", func(t *testing.T) {
		ref := "127.0.0.1:1/busybox:1"
		rec, msgs := waitingReasons(t, c, ns, "unreachable")
		kubectlOK(t, c, "-n", ns, "run", "unreachable", "--image="+ref, "--restart=Never")
		framework.WaitFor(t, 60*time.Second, func() (bool, string) {
			seen := rec.get()
			i := slices.Index(seen, "ErrImagePull")
			return i >= 0 && slices.Contains(seen[i:], "ImagePullBackOff"),
				fmt.Sprintf("waiting reasons seen: %q, want ErrImagePull then ImagePullBackOff\n%s", seen, describe(c, ns, "pod", "unreachable"))
		})
		m := msgs()
		t.Logf("ErrImagePull: %s", m["ErrImagePull"])
		if !strings.Contains(m["ErrImagePull"], "connection refused") {
			t.Errorf("ErrImagePull message: got %q, want the connection error", m["ErrImagePull"])
		}
		if want := `Back-off pulling image "` + ref + `": ErrImagePull: `; !strings.HasPrefix(m["ImagePullBackOff"], want) || !strings.Contains(m["ImagePullBackOff"], "connection refused") {
			t.Errorf("ImagePullBackOff message: got %q, want %q and the connection error", m["ImagePullBackOff"], want)
		}
		waitEvents(t, c, ns, "pod", "unreachable", 30*time.Second,
			`Failed to pull image "`+ref+`": `, "connection refused", "Error: ErrImagePull",
			`Back-off pulling image "`+ref+`"`, "Error: ImagePullBackOff")
		if p, err := getPod(c, ns, "unreachable"); err != nil || p.Status.Phase != corev1.PodPending {
			t.Errorf("pod unreachable: got %v (%v), want phase Pending", p.Status.Phase, err)
		}
		k.check(t)
	})

	for _, tc := range []struct{ kind, volume, want, create string }{
		{kind: "configmap", volume: "configMap: {name: late}", want: `MountVolume.SetUp failed for volume "vol" : configmap "late" not found`,
			create: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: %s}\ndata: {k: v}\n"},
		{kind: "secret", volume: "secret: {secretName: late}", want: `MountVolume.SetUp failed for volume "vol" : secret "late" not found`,
			create: "apiVersion: v1\nkind: Secret\nmetadata: {name: late, namespace: %s}\nstringData: {k: v}\n"},
	} {
		t.Run("missing "+tc.kind+" volume", func(t *testing.T) {
			name := "no" + tc.kind
			applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sh, -c, "cat /vol/k; echo; sleep 3600"]
    volumeMounts: [{name: vol, mountPath: /vol}]
  volumes:
  - name: vol
    %s
`, name, ns, busybox, tc.volume))
			waitEvents(t, c, ns, "pod", name, 60*time.Second, "FailedMount", tc.want)
			p, err := getPod(c, ns, name)
			if err != nil {
				t.Fatal(err)
			}
			if cs := p.Status.ContainerStatuses; p.Status.Phase != corev1.PodPending || len(cs) != 1 || cs[0].State.Waiting == nil ||
				cs[0].State.Waiting.Reason != "ContainerCreating" {
				t.Errorf("pod %s: got phase %s, %s, want Pending and waiting ContainerCreating", name, p.Status.Phase, statusText(p))
			}
			if got := statusCell(t, c, ns, name); got != "ContainerCreating" {
				t.Errorf("kubectl get pod %s: got STATUS %q, want ContainerCreating", name, got)
			}
			k.check(t)
			// Once the object exists the pod starts (upstream retries the
			// mount with a back-off of up to two minutes; ours is shorter).
			applyYAML(t, c, fmt.Sprintf(tc.create, ns))
			waitPod(t, c, ns, name, 90*time.Second, phaseIs(corev1.PodRunning))
			framework.WaitFor(t, 30*time.Second, func() (bool, string) {
				out, _, err := c.Kubectl("-n", ns, "logs", name)
				return err == nil && out == "v\n", fmt.Sprintf("kubectl logs %s: got %q (%v), want the volume's file", name, out, err)
			})
		})
	}

	t.Run("missing env key", func(t *testing.T) {
		applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: present, namespace: %[1]s}
data: {here: "yes"}
---
apiVersion: v1
kind: Pod
metadata: {name: nokey, namespace: %[1]s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[2]s
    command: [sleep, "3600"]
    env:
    - {name: X, valueFrom: {configMapKeyRef: {name: present, key: nokey}}}
`, ns, busybox))
		want := fmt.Sprintf("couldn't find key nokey in ConfigMap %s/present", ns)
		p := waitPod(t, c, ns, "nokey", 60*time.Second, func(p *corev1.Pod) string {
			if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CreateContainerConfigError" {
				return "want waiting CreateContainerConfigError; got " + statusText(p)
			}
			return ""
		})
		if got := p.Status.ContainerStatuses[0].State.Waiting.Message; got != want {
			t.Errorf("waiting message: got %q, want %q", got, want)
		}
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("phase: got %s, want Pending", p.Status.Phase)
		}
		if got := statusCell(t, c, ns, "nokey"); got != "CreateContainerConfigError" {
			t.Errorf("kubectl get pod nokey: got STATUS %q, want CreateContainerConfigError", got)
		}
		waitEvents(t, c, ns, "pod", "nokey", 30*time.Second, "Failed", "Error: "+want)
		k.check(t)
	})

	t.Run("command not in the image", func(t *testing.T) {
		rec, msgs := waitingReasons(t, c, ns, "nosuch")
		applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: nosuch, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [nosuch]
`, ns, busybox))
		const wantMsg = `exec: "nosuch": executable file not found in $PATH`
		p := waitPod(t, c, ns, "nosuch", 60*time.Second, func(p *corev1.Pod) string {
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].LastTerminationState.Terminated == nil {
				return "want a lastState terminated; got " + statusText(p)
			}
			if w := cs[0].State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
				return "want waiting CrashLoopBackOff; got " + statusText(p)
			}
			return ""
		})
		lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
		if lt.Reason != "StartError" || lt.ExitCode != 128 || !strings.Contains(lt.Message, wantMsg) {
			t.Errorf("lastState: got terminated reason %q exit %d message %q, want StartError 128 with %q", lt.Reason, lt.ExitCode, lt.Message, wantMsg)
		}
		if got := statusCell(t, c, ns, "nosuch"); got != "CrashLoopBackOff" && got != "RunContainerError" {
			t.Errorf("kubectl get pod nosuch: got STATUS %q, want CrashLoopBackOff or RunContainerError", got)
		}
		waitEvents(t, c, ns, "pod", "nosuch", 30*time.Second, "Failed", wantMsg, "BackOff",
			"Back-off restarting failed container main in pod nosuch_"+ns)
		// Between the failed start and the back-off it waits with the
		// start's error, as upstream.
		if seen := rec.get(); !slices.Contains(seen, "RunContainerError") || !strings.Contains(msgs()["RunContainerError"], wantMsg) {
			t.Errorf("waiting reasons seen: %q (messages %q), want RunContainerError with %q before CrashLoopBackOff", seen, msgs(), wantMsg)
		}
		k.check(t)
	})
}

// TestRealBadRegistriesFile: a registries.yaml that does not parse makes
// pulls fail with an error naming the file and the line, and the node
// keeps running its pods; fixed, the next pull works. (k3s refuses to
// start with such a file; a running node cannot, so pulls report it.)
func TestRealBadRegistriesFile(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-bad-registries")
	k := startCanary(t, c, ns)
	file := filepath.Join(c.Dir(), "registries.yaml")
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := os.WriteFile(file, good, 0o644); err != nil {
			t.Errorf("restore %s: %v", file, err)
		}
	}
	t.Cleanup(restore)
	if err := os.WriteFile(file, append(slices.Clone(good), "configs:\n  x\n  - y\n"...), 0o644); err != nil {
		t.Fatal(err)
	}

	rec, msgs := waitingReasons(t, c, ns, "pull")
	kubectlOK(t, c, "-n", ns, "run", "pull", "--image="+c.Image(framework.ImageBusybox), "--image-pull-policy=Always", "--restart=Never", "--", "sleep", "3600")
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		return slices.Contains(rec.get(), "ErrImagePull"), fmt.Sprintf("waiting reasons seen: %q, want ErrImagePull", rec.get())
	})
	if m := msgs()["ErrImagePull"]; !strings.Contains(m, file) || !strings.Contains(m, "line ") {
		t.Errorf("ErrImagePull message: got %q, want one naming %s and the line", m, file)
	}
	k.check(t) // IfNotPresent: the image is there, no pull needed
	restore()
	waitPod(t, c, ns, "pull", 90*time.Second, phaseIs(corev1.PodRunning))
}

// TestImagesImportCorrupt: `skiff images import` of a file that is not an
// image archive, and of a docker-save archive cut short, fails with an
// error naming the file and leaves nothing in `skiff images ls`.
func TestImagesImportCorrupt(t *testing.T) {
	bin := suite.Binary(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "images")
	garbage := filepath.Join(dir, "garbage.tar")
	if err := os.WriteFile(garbage, []byte(rand.Text()+rand.Text()), 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full.tar")
	imagetest.WriteDockerArchive(t, full, "example.test/busybox:1", imagetest.Busybox(t))
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.tar")
	if err := os.WriteFile(truncated, data[:len(data)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.tar")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"images"}, append(args, "--images-dir", store)...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, f := range []string{garbage, truncated, empty} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := run("import", f)
			if err == nil {
				t.Fatalf("images import %s: got success, want an error\n%s", f, out)
			}
			if !strings.Contains(out, f) || strings.Contains(out, "panic") || strings.Count(strings.TrimSpace(out), "\n") > 2 {
				t.Errorf("images import %s: got\n%s\nwant a short error naming the file", f, out)
			}
			t.Logf("images import %s: %s", filepath.Base(f), strings.TrimSpace(out))
			if strings.Contains(out, "Imported") {
				t.Errorf("images import %s: reports an import:\n%s", f, out)
			}
			ls, err := run("ls")
			if err != nil {
				t.Fatalf("images ls: %v\n%s", err, ls)
			}
			if lines := strings.Split(strings.TrimSpace(ls), "\n"); len(lines) != 1 {
				t.Errorf("images ls after the failed import: got\n%s\nwant only the header", ls)
			}
		})
	}
	// The store still works: the whole archive imports.
	if out, err := run("import", full); err != nil || !strings.Contains(out, "Imported example.test/busybox") {
		t.Fatalf("images import %s: %v\n%s", full, err, out)
	}
}

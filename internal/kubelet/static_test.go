package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestReadStaticPods(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	web := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: kube-system}\nspec:\n  containers: [{name: c, image: nginx}]\n"
	write("a-web.yaml", web)
	write("b-web-again.yaml", web+"  terminationGracePeriodSeconds: 3\n")
	write("plain.json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"plain"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`)
	write("notes.txt", "not a manifest")
	write("broken.yaml", "kind: Deployment\nmetadata: {name: x}\n")

	pods, errs := readStaticPods(dir, "n1")
	if len(errs) != 2 || !strings.Contains(errs[0].Error()+errs[1].Error(), "already defined in") {
		t.Errorf("manifest errors: got %v, want broken.yaml and the second kube-system/web-n1", errs)
	}
	if len(pods) != 2 {
		t.Fatalf("pods: got %d, want web and plain", len(pods))
	}
	p := pods[0].Pod
	if p.Name != "web-n1" || p.Namespace != "kube-system" || p.Spec.NodeName != "n1" {
		t.Errorf("web: got %s/%s on %q, want kube-system/web-n1 on n1", p.Namespace, p.Name, p.Spec.NodeName)
	}
	if p.UID == "" || string(p.UID) != p.Annotations[annotationHash] || p.Annotations[annotationSource] != "file" {
		t.Errorf("web: uid %q annotations %v, want the hash as UID and config.source file", p.UID, p.Annotations)
	}
	// Defaulted as the API server would, and tolerating NoExecute taints.
	c := p.Spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullAlways || c.TerminationMessagePath != corev1.TerminationMessagePathDefault ||
		p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("web not defaulted: pull %q message path %q restart %q dns %q", c.ImagePullPolicy, c.TerminationMessagePath, p.Spec.RestartPolicy, p.Spec.DNSPolicy)
	}
	if n := len(p.Spec.Tolerations); n != 1 || p.Spec.Tolerations[0].Operator != corev1.TolerationOpExists || p.Spec.Tolerations[0].Effect != corev1.TaintEffectNoExecute {
		t.Errorf("web tolerations: got %+v, want one for every NoExecute taint", p.Spec.Tolerations)
	}
	if p.Status.Phase != corev1.PodPending || p.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("web status: got %+v, want Pending and BestEffort", p.Status)
	}
	if q := pods[1].Pod; q.Namespace != "default" || q.Name != "plain-n1" {
		t.Errorf("plain: got %s/%s, want default/plain-n1", q.Namespace, q.Name)
	}

	// The same file is the same pod; another node's or another file's is
	// not.
	again, _ := readStaticPods(dir, "n1")
	other, _ := readStaticPods(dir, "n2")
	if again[0].Pod.UID != p.UID || other[0].Pod.UID == p.UID || pods[1].Pod.UID == p.UID {
		t.Errorf("UIDs: %s, again %s, on n2 %s, plain %s: want stable per node and manifest", p.UID, again[0].Pod.UID, other[0].Pod.UID, pods[1].Pod.UID)
	}
}

func TestStaticPodSet(t *testing.T) {
	pod := func(name, uid string) staticPod {
		return staticPod{Pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}}
	}
	s := newStaticPods()
	if got := s.update([]staticPod{pod("a", "1"), pod("b", "2")}); strings.Join(got, ",") != "ns/a,ns/b" {
		t.Errorf("first read: changed %v, want both", got)
	}
	if got := s.update([]staticPod{pod("a", "1"), pod("b", "3")}); strings.Join(got, ",") != "ns/b" {
		t.Errorf("b replaced: changed %v, want ns/b", got)
	}
	cur, old := s.get("ns/b")
	if cur == nil || cur.UID != "3" || len(old) != 1 || old[0].UID != "2" {
		t.Fatalf("b: got %v and old %v, want 3 with 2 to stop", cur, old)
	}
	if key, ok := s.keyOf("2"); !ok || key != "ns/b" {
		t.Errorf("keyOf(2): %q %v, want ns/b until it is stopped", key, ok)
	}
	s.stopped("ns/b", "2")
	if _, ok := s.keyOf("2"); ok {
		t.Error("keyOf(2) after it stopped: still known")
	}
	s.setStatus("3", corev1.PodStatus{Phase: corev1.PodRunning})
	if cur, _ := s.get("ns/b"); cur.Status.Phase != corev1.PodRunning {
		t.Errorf("status kept: got %q, want Running", cur.Status.Phase)
	}
	if got := s.update(nil); strings.Join(got, ",") != "ns/a,ns/b" {
		t.Errorf("files removed: changed %v, want both", got)
	}
	if !s.has("ns/a") {
		t.Error("a forgotten before it was stopped")
	}
	s.stopped("ns/a", "1")
	if s.has("ns/a") {
		t.Error("a still known after it was stopped")
	}
}

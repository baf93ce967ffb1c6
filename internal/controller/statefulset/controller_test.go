package statefulset

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestSyncCreatesFirstPodAndClaim(t *testing.T) {
	set := testSet(2, "")
	set.UID = "uid-1"
	set.Generation = 1
	set.Spec.ServiceName = "nginx"
	set.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	set.Spec.Template.Labels = map[string]string{"app": "web"}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "nginx"}}
	set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "www"}}}
	client := fake.NewClientset(set)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Apps().V1().StatefulSets(), f.Core().V1().Pods(), f.Core().V1().PersistentVolumeClaims(), f.Apps().V1().ControllerRevisions(), client, record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	_ = f.Apps().V1().StatefulSets().Informer().GetIndexer().Add(set)
	ctx := context.Background()
	if err := c.Sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	pods, _ := client.CoreV1().Pods("ns").List(ctx, metav1.ListOptions{})
	if len(pods.Items) != 1 {
		t.Fatalf("got %d pods, want 1 (only web-0 before it is ready)", len(pods.Items))
	}
	p := pods.Items[0]
	if p.Name != "web-0" || p.Spec.Hostname != "web-0" || p.Spec.Subdomain != "nginx" {
		t.Errorf("got pod %s hostname %s subdomain %s, want web-0/web-0/nginx", p.Name, p.Spec.Hostname, p.Spec.Subdomain)
	}
	if p.Labels[podNameLabel] != "web-0" || p.Labels[podIndexLabel] != "0" || p.Labels[appsv1.StatefulSetRevisionLabel] == "" {
		t.Errorf("got labels %v, want pod-name, pod-index and controller-revision-hash", p.Labels)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "www-web-0" {
		t.Errorf("got volumes %+v, want claim www-web-0", p.Spec.Volumes)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "www-web-0", metav1.GetOptions{}); err != nil {
		t.Errorf("claim www-web-0: %v", err)
	}
	revs, _ := client.AppsV1().ControllerRevisions("ns").List(ctx, metav1.ListOptions{})
	if len(revs.Items) != 1 || revs.Items[0].Revision != 1 || revs.Items[0].Labels["app"] != "web" {
		t.Fatalf("got revisions %+v, want one revision 1 labelled app=web", revs.Items)
	}
	got, _ := client.AppsV1().StatefulSets("ns").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.ObservedGeneration != 1 || got.Status.UpdateRevision != revs.Items[0].Name || got.Status.CurrentRevision != revs.Items[0].Name {
		t.Errorf("got status %+v, want observedGeneration 1 and revisions %s", got.Status, revs.Items[0].Name)
	}
}

// syncFixture is a controller on a fake clientset holding set and pods,
// with the pods in the informer cache and a fake clock at testNow.
func syncFixture(t *testing.T, set *appsv1.StatefulSet, pods ...*corev1.Pod) (*Controller, *fake.Clientset, *clocktesting.FakeClock) {
	t.Helper()
	set.UID = "uid-1"
	set.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	set.Spec.Template.Labels = map[string]string{"app": "web"}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "nginx"}}
	objs := []runtime.Object{set}
	for _, p := range pods {
		p.Namespace = "ns"
		p.Labels["app"] = "web"
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)}
		objs = append(objs, p)
	}
	client := fake.NewClientset(objs...)
	f := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(testNow)
	c := New(f.Apps().V1().StatefulSets(), f.Core().V1().Pods(), f.Core().V1().PersistentVolumeClaims(), f.Apps().V1().ControllerRevisions(), client, record.NewFakeRecorder(100), slog.New(slog.NewTextHandler(io.Discard, nil)), clk)
	_ = f.Apps().V1().StatefulSets().Informer().GetIndexer().Add(set)
	for _, p := range pods {
		_ = f.Core().V1().Pods().Informer().GetIndexer().Add(p)
	}
	t.Cleanup(c.queue.ShutDown)
	return c, client, clk
}

func podNames(t *testing.T, client *fake.Clientset) []string {
	t.Helper()
	list, err := client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

func TestSyncMinReadySecondsGatesNextPodAndAvailability(t *testing.T) {
	set := testSet(2, "")
	set.Spec.MinReadySeconds = 10
	c, client, clk := syncFixture(t, set, readyFor(0, "x", 4*time.Second))
	ctx := context.Background()
	if err := c.Sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	if got := podNames(t, client); !slices.Equal(got, []string{"web-0"}) {
		t.Fatalf("after 4s ready: got pods %v, want only web-0 (web-0 not available yet)", got)
	}
	got, _ := client.AppsV1().StatefulSets("ns").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.ReadyReplicas != 1 || got.Status.AvailableReplicas != 0 {
		t.Errorf("after 4s ready: got ready %d available %d, want 1 and 0", got.Status.ReadyReplicas, got.Status.AvailableReplicas)
	}
	clk.Step(7 * time.Second)
	if err := c.Sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	if got := podNames(t, client); !slices.Equal(got, []string{"web-0", "web-1"}) {
		t.Fatalf("after 11s ready: got pods %v, want web-0 and web-1", got)
	}
	got, _ = client.AppsV1().StatefulSets("ns").Get(ctx, "web", metav1.GetOptions{})
	if got.Status.AvailableReplicas != 1 {
		t.Errorf("after 11s ready: got available %d, want 1", got.Status.AvailableReplicas)
	}
}

func TestSyncMaxUnavailableDeletesSeveralOutdatedPods(t *testing.T) {
	set := testSet(4, "")
	set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromString("50%"))
	var pods []*corev1.Pod
	for ord := range 4 {
		pods = append(pods, readyFor(ord, "outdated", time.Hour))
	}
	c, client, _ := syncFixture(t, set, pods...)
	if err := c.Sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	if got := podNames(t, client); !slices.Equal(got, []string{"web-0", "web-1"}) {
		t.Fatalf("got pods %v after one sync, want web-0 and web-1 (web-3 and web-2 deleted for update, maxUnavailable 50%% of 4)", got)
	}
}

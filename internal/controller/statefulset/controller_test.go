package statefulset

import (
	"context"
	"io"
	"log/slog"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
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

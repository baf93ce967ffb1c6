package resourcequota

import (
	"context"
	"io"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSyncComputesUsed(t *testing.T) {
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "q"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			"pods": resource.MustParse("10"), "requests.cpu": resource.MustParse("2"), "configmaps": resource.MustParse("5"), "services": resource.MustParse("3")}}}
	running := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("250m")}}}}}}
	done := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p2"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "p3"}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "cm"}}
	client := fake.NewSimpleClientset(q, running, done, other, cm)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f, client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_ = f.Core().V1().ResourceQuotas().Informer().GetStore().Add(q)
	for _, p := range []*corev1.Pod{running, done, other} {
		_ = f.Core().V1().Pods().Informer().GetStore().Add(p)
	}
	_ = f.Core().V1().ConfigMaps().Informer().GetStore().Add(cm)
	if err := c.sync(context.Background(), "a/q"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().ResourceQuotas("a").Get(context.Background(), "q", metav1.GetOptions{})
	want := map[corev1.ResourceName]string{"pods": "1", "requests.cpu": "250m", "configmaps": "1", "services": "0"}
	for k, v := range want {
		q := got.Status.Used[k]
		if q.String() != v {
			t.Errorf("used %s: got %s, want %s", k, q.String(), v)
		}
	}
	if len(got.Status.Hard) != 4 {
		t.Errorf("got status.hard %v, want spec.hard mirrored", got.Status.Hard)
	}
}

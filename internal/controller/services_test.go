package controller

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

func TestPodServicesHandler(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "headless"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}},
	} {
		_ = idx.Add(s)
	}
	pod := func(app, rv string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{"app": app}, ResourceVersion: rv}}
	}
	for _, tc := range []struct {
		name  string
		event func(h cache.ResourceEventHandlerFuncs)
		want  []string
	}{
		{"add", func(h cache.ResourceEventHandlerFuncs) { h.OnAdd(pod("web", "1"), false) }, []string{"ns/web"}},
		{"relabel: before and after", func(h cache.ResourceEventHandlerFuncs) { h.OnUpdate(pod("web", "1"), pod("db", "2")) }, []string{"ns/db", "ns/web"}},
		{"resync: nothing", func(h cache.ResourceEventHandlerFuncs) { h.OnUpdate(pod("web", "1"), pod("web", "1")) }, nil},
		{"tombstone", func(h cache.ResourceEventHandlerFuncs) {
			h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod("db", "3")})
		}, []string{"ns/db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := workqueue.NewTyped[string]()
			defer q.ShutDown()
			tc.event(PodServicesHandler(corelisters.NewServiceLister(idx), q))
			var got []string
			for q.Len() > 0 {
				k, _ := q.Get()
				got = append(got, k)
				q.Done(k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("queued: got %v, want %v", got, tc.want)
			}
		})
	}
}

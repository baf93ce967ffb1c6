package podgc

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func pod(name string, phase corev1.PodPhase, created int, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("u-" + name),
		CreationTimestamp: metav1.NewTime(time.Unix(int64(created), 0))},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
}

func TestTerminatedToDelete(t *testing.T) {
	pods := []*corev1.Pod{
		pod("new", corev1.PodSucceeded, 30, "n"), pod("old", corev1.PodFailed, 10, "n"),
		pod("mid", corev1.PodSucceeded, 20, "n"), pod("run", corev1.PodRunning, 1, "n"),
	}
	tests := []struct {
		threshold int
		want      []string
	}{{0, nil}, {3, nil}, {2, []string{"old"}}, {1, []string{"old", "mid"}}}
	for _, tt := range tests {
		var got []string
		for _, p := range TerminatedToDelete(pods, tt.threshold) {
			got = append(got, p.Name)
		}
		if len(got) != len(tt.want) || (len(got) > 0 && got[len(got)-1] != tt.want[len(tt.want)-1]) {
			t.Errorf("threshold %d: got %v, want %v", tt.threshold, got, tt.want)
		}
	}
}

func TestOrphanedAfterQuarantine(t *testing.T) {
	orphan := pod("orphan", corev1.PodRunning, 1, "gone")
	kept := pod("kept", corev1.PodRunning, 1, "here")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "here"}}
	client := fake.NewSimpleClientset(orphan, kept, node)
	f := informers.NewSharedInformerFactory(client, 0)
	now := time.Unix(1000, 0)
	c := New(f.Core().V1().Pods(), f.Core().V1().Nodes(), client, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	_ = f.Core().V1().Pods().Informer().GetStore().Add(orphan)
	_ = f.Core().V1().Pods().Informer().GetStore().Add(kept)
	_ = f.Core().V1().Nodes().Informer().GetStore().Add(node)
	ctx := context.Background()
	exists := func(name string) bool {
		_, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return err == nil
	}
	c.gc(ctx)
	if !exists("orphan") {
		t.Fatal("got orphan deleted at once, want it quarantined first")
	}
	now = now.Add(Quarantine)
	c.gc(ctx)
	if exists("orphan") {
		t.Error("got orphan kept after the quarantine, want it deleted")
	}
	if !exists("kept") {
		t.Error("got pod on a live node deleted")
	}
}

func TestUnscheduledTerminating(t *testing.T) {
	p := pod("p", corev1.PodPending, 1, "")
	ts := metav1.Now()
	p.DeletionTimestamp = &ts
	client := fake.NewSimpleClientset(p)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().Pods(), f.Core().V1().Nodes(), client, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	_ = f.Core().V1().Pods().Informer().GetStore().Add(p)
	c.gc(context.Background())
	if _, err := client.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{}); err == nil {
		t.Error("got unscheduled terminating pod kept, want deleted")
	}
}

//go:build integration

package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/etcd"
)

func TestDeletionSemantics(t *testing.T) {
	cs := kubernetes.NewForConfigOrDie(testServer(t))
	pods := cs.CoreV1().Pods("default")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Spec: corev1.PodSpec{
		NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := pods.Create(ctxT(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod on a node is deleted gracefully: marked, not removed.
	if err := pods.Delete(ctxT(t), "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctxT(t), "bound", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("graceful delete: %+v %v, want deletionTimestamp and a 30s grace period", got.ObjectMeta, err)
	}
	// The node agent confirms with grace 0.
	if err := pods.Delete(ctxT(t), "bound", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctxT(t), "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after delete with grace 0: %v, want NotFound", err)
	}

	// A finalizer holds an object until it is removed.
	cms := cs.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctxT(t), "held", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	held, err := cms.Get(ctxT(t), "held", metav1.GetOptions{})
	if err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("object with a finalizer: %v %v, want it kept with deletionTimestamp", held, err)
	}
	if _, err := cms.Patch(ctxT(t), "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctxT(t), "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after removing the last finalizer: %v, want NotFound", err)
	}

	// Preconditions.
	cm, err := cms.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "pre"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = cms.Delete(ctxT(t), "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("other"))}})
	if !apierrors.IsConflict(err) {
		t.Fatalf("delete with a wrong uid precondition: %v, want 409", err)
	}
	if err := cms.Delete(ctxT(t), "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}}); err != nil {
		t.Fatal(err)
	}
}

func TestSharedStorageVersions(t *testing.T) {
	cs := kubernetes.NewForConfigOrDie(testServer(t))
	// An HPA written as autoscaling/v1 reads back as v2, and the other way.
	_, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctxT(t), &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef:                 autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas:                    ptr.To[int32](2),
			MaxReplicas:                    5,
			TargetCPUUtilizationPercentage: ptr.To[int32](70),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctxT(t), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v2.Spec.Metrics) != 1 || v2.Spec.Metrics[0].Type != autoscalingv2.ResourceMetricSourceType ||
		*v2.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
		t.Fatalf("v1 HPA read as v2: %+v", v2.Spec.Metrics)
	}
	// events.k8s.io and core events are the same objects.
	_, err = cs.EventsV1().Events("default").Create(ctxT(t), &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "ev1"},
		EventTime:           metav1.NewMicroTime(time.Now()),
		ReportingController: "skiff.dev/test", ReportingInstance: "test-1",
		Action: "Testing", Reason: "Tested", Type: "Normal", Note: "hello",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	core, err := cs.CoreV1().Events("default").Get(ctxT(t), "ev1", metav1.GetOptions{})
	if err != nil || core.Message != "hello" || core.InvolvedObject.Name != "p" || core.ReportingController != "skiff.dev/test" {
		t.Fatalf("events.k8s.io event read as core/v1: %+v %v", core, err)
	}
	list, err := cs.CoreV1().Events("default").List(ctxT(t), metav1.ListOptions{FieldSelector: "involvedObject.name=p"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("field selector involvedObject.name=p: %v %v", list, err)
	}
}

func TestExternalEtcd(t *testing.T) {
	e, err := etcd.Start(context.Background(), etcd.Config{Dir: t.TempDir(), ClientPort: freePort(t), PeerPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.yaml")
	port := freePort(t)
	s, err := New(Config{
		DataDir: dir, BindAddress: "127.0.0.1", SecurePort: port, AdvertiseAddress: "127.0.0.1", KubeconfigPath: kubeconfig,
		EtcdEndpoints: []string{e.ClientURL()},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err == nil {
			cs := kubernetes.NewForConfigOrDie(cfg)
			if _, err := cs.CoreV1().Services("default").Get(ctxT(t), "kubernetes", metav1.GetOptions{}); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server on external etcd not serving: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The objects are in the external etcd.
	resp, err := e.Client().Get(ctxT(t), "/registry/services/default/kubernetes")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("kubernetes service in the external etcd: %v %v", resp, err)
	}
}

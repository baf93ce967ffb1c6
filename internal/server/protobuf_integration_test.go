//go:build integration

package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// testProtobuf drives the API with client-go in protobuf, as upstream
// components talk to an API server: create, get, list, and watch with
// bookmarks, for a resource served in its storage version (pods) and one
// converted on the way (autoscaling/v1 HPAs are stored as v2).
func testProtobuf(t *testing.T, jsonClient kubernetes.Interface, cfg *rest.Config) {
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	// Protobuf only, so a JSON answer fails the test instead of passing
	// through client-go's fallback.
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf"
	cs := kubernetes.NewForConfigOrDie(pcfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := "proto"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 3 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"i": fmt.Sprint(i)}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "1d"}}}}}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cs.CoreV1().Pods(ns).Get(ctx, "p1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Containers[0].Command[1] != "1d" || got.Labels["i"] != "1" || got.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("get p1: got %+v", got)
	}
	list, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "i!=0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 || list.Items[0].Name != "p1" || list.Items[1].Name != "p2" || list.ResourceVersion == "" {
		t.Errorf("list: got %d items, rv %q", len(list.Items), list.ResourceVersion)
	}
	for i := range 3 {
		select {
		case ev := <-w.ResultChan():
			p, ok := ev.Object.(*corev1.Pod)
			if ev.Type != watch.Added || !ok || p.Name != fmt.Sprintf("p%d", i) {
				t.Fatalf("watch event %d: got %s %T", i, ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatal("watch: no event")
		}
	}

	// Writes decode the current object from its protobuf encoding once a
	// client has asked for it (the list above did): a JSON patch and a
	// no-op update then behave as ever.
	patched, err := jsonClient.CoreV1().Pods(ns).Patch(ctx, "p1", types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"extra":"yes"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patched.Labels["i"] != "1" || patched.Labels["extra"] != "yes" || patched.Spec.Containers[0].Command[1] != "1d" || patched.ResourceVersion == got.ResourceVersion {
		t.Errorf("patch after a protobuf read: got labels %v, command %v, rv %s (was %s)", patched.Labels, patched.Spec.Containers[0].Command, patched.ResourceVersion, got.ResourceVersion)
	}
	same, err := jsonClient.CoreV1().Pods(ns).Update(ctx, patched, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if same.ResourceVersion != patched.ResourceVersion {
		t.Errorf("no-op update after a protobuf read: rv %s, want unchanged %s", same.ResourceVersion, patched.ResourceVersion)
	}

	// Metadata-only lists and watches, as the garbage collector's
	// informers make them, come in protobuf too.
	mc := metadata.NewForConfigOrDie(cfg)
	podsGVR := corev1.SchemeGroupVersion.WithResource("pods")
	ml, err := mc.Resource(podsGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Items) != 3 || ml.Items[1].Name != "p1" || ml.Items[1].Labels["extra"] != "yes" {
		t.Errorf("metadata list: got %d items %+v", len(ml.Items), ml.Items)
	}
	mw, err := mc.Resource(podsGVR).Namespace(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: ml.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Stop()
	if err := jsonClient.CoreV1().Pods(ns).Delete(ctx, "p2", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-mw.ResultChan():
		if m, ok := ev.Object.(*metav1.PartialObjectMetadata); !ok || ev.Type != watch.Deleted || m.Name != "p2" {
			t.Errorf("metadata watch: got %s %T", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("metadata watch: no event")
	}
	raw, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
		SetHeader("Accept", "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pu runtime.Unknown
	if len(raw) < 4 || string(raw[:4]) != "k8s\x00" || pu.Unmarshal(raw[4:]) != nil || pu.Kind != "PartialObjectMetadataList" || pu.APIVersion != "meta.k8s.io/v1" {
		t.Errorf("raw metadata list: got %q..., kind %q", raw[:min(len(raw), 8)], pu.Kind)
	}

	hpa := &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "h"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 5,
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"}}}
	if _, err := cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hl, err := cs.AutoscalingV1().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hl.Items) != 1 || hl.Items[0].Spec.MaxReplicas != 5 || hl.Items[0].Spec.ScaleTargetRef.Name != "web" {
		t.Errorf("hpa list: got %+v", hl.Items)
	}

	// A raw GET shows the wire format itself.
	body, err := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").Name("p0").
		SetHeader("Accept", "application/vnd.kubernetes.protobuf").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) < 4 || string(body[:4]) != "k8s\x00" {
		t.Errorf("raw GET: got %q..., want the protobuf magic", body[:min(len(body), 8)])
	}
	var u runtime.Unknown
	if err := u.Unmarshal(body[4:]); err != nil || u.Kind != "Pod" || u.APIVersion != "v1" {
		t.Errorf("raw GET envelope: got %s/%s, err %v", u.APIVersion, u.Kind, err)
	}
	body, err = cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
		SetHeader("Accept", "application/vnd.kubernetes.protobuf").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pl corev1.PodList
	if len(body) < 4 || string(body[:4]) != "k8s\x00" {
		t.Fatalf("raw LIST: got %q..., want the protobuf magic", body[:min(len(body), 8)])
	}
	if err := u.Unmarshal(body[4:]); err != nil || u.Kind != "PodList" {
		t.Fatalf("raw LIST envelope: got kind %q, err %v", u.Kind, err)
	}
	if err := pl.Unmarshal(u.Raw); err != nil || len(pl.Items) != 2 || pl.Items[1].Name != "p1" { // p2 was deleted above
		t.Errorf("raw LIST: got %d items, err %v", len(pl.Items), err)
	}
}

package garbagecollector

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	metafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

var (
	rsGVK  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	podGVK = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	rsGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	podGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

func obj(gvk schema.GroupVersionKind, name, uid string, owners ...metav1.OwnerReference) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), OwnerReferences: owners},
	}
}

func ownerRef(name, uid string, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: types.UID(uid),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(block)}
}

func newTest(t *testing.T, live ...runtime.Object) (*Controller, *metafake.FakeMetadataClient) {
	t.Helper()
	scheme := metafake.NewTestScheme()
	for _, gvk := range []schema.GroupVersionKind{rsGVK, podGVK} {
		scheme.AddKnownTypeWithName(gvk, &metav1.PartialObjectMetadata{})
		scheme.AddKnownTypeWithName(gvk.GroupVersion().WithKind(gvk.Kind+"List"), &metav1.PartialObjectMetadataList{})
	}
	client := metafake.NewSimpleMetadataClient(scheme, live...)
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(rsGVK, meta.RESTScopeNamespace)
	mapper.Add(podGVK, meta.RESTScopeNamespace)
	disco := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	c := New(client, disco, mapper, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return c, client
}

func exists(t *testing.T, client *metafake.FakeMetadataClient, gvr schema.GroupVersionResource, name string) *metav1.PartialObjectMetadata {
	t.Helper()
	o, err := client.Resource(gvr).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDanglingOwnerDeletesDependent(t *testing.T) {
	pod := obj(podGVK, "web-1", "p1", ownerRef("web", "rs1", true))
	c, client := newTest(t, pod)
	c.observe(podGVR, pod)
	if err := c.process(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if exists(t, client, podGVR, "web-1") != nil {
		t.Errorf("got pod kept, want it deleted: its owner does not exist")
	}
}

func TestStaleCacheNeverDeletes(t *testing.T) {
	// The owner exists on the server but the graph has not seen it yet.
	rs := obj(rsGVK, "web", "rs1")
	pod := obj(podGVK, "web-1", "p1", ownerRef("web", "rs1", true))
	c, client := newTest(t, rs, pod)
	c.observe(podGVR, pod)
	if err := c.process(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if exists(t, client, podGVR, "web-1") == nil {
		t.Errorf("got pod deleted, want it kept: its owner is live")
	}
}

func TestOwnerRecreatedWithNewUIDIsAbsent(t *testing.T) {
	rs := obj(rsGVK, "web", "rs2")
	pod := obj(podGVK, "web-1", "p1", ownerRef("web", "rs1", true))
	c, client := newTest(t, rs, pod)
	c.observe(podGVR, pod)
	if err := c.process(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if exists(t, client, podGVR, "web-1") != nil {
		t.Errorf("got pod kept, want it deleted: the owner's UID differs")
	}
}

func TestPartialOwnersRemovesReferences(t *testing.T) {
	rs := obj(rsGVK, "a", "rsA")
	pod := obj(podGVK, "p", "p1", ownerRef("a", "rsA", false), ownerRef("b", "rsB", false))
	c, client := newTest(t, rs, pod)
	c.observe(rsGVR, rs)
	c.observe(podGVR, pod)
	if err := c.process(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	got := exists(t, client, podGVR, "p")
	if got == nil {
		t.Fatal("got pod deleted, want it kept: one owner remains")
	}
	if uids := ownerUIDs(got.OwnerReferences); !slices.Equal(uids, []types.UID{"rsA"}) {
		t.Errorf("got owners %v, want [rsA]", uids)
	}
}

func TestForegroundDeletion(t *testing.T) {
	now := metav1.Now()
	rs := obj(rsGVK, "web", "rs1")
	rs.DeletionTimestamp = &now
	rs.Finalizers = []string{metav1.FinalizerDeleteDependents}
	pod := obj(podGVK, "web-1", "p1", ownerRef("web", "rs1", true))
	c, client := newTest(t, rs, pod)
	c.observe(rsGVR, rs)
	c.observe(podGVR, pod)
	ctx := context.Background()

	if err := c.process(ctx, "rs1"); err != nil {
		t.Fatal(err)
	}
	if got := exists(t, client, rsGVR, "web"); !slices.Contains(got.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("got finalizers %v, want foregroundDeletion kept while a blocking dependent exists", got.Finalizers)
	}
	// The dependent's check sees its owner waiting and deletes it.
	if err := c.process(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if exists(t, client, podGVR, "web-1") != nil {
		t.Fatal("got dependent kept, want it deleted in foreground deletion")
	}
	c.forget("p1")
	if n := c.queue.Len(); n == 0 {
		t.Fatal("got nothing queued after the blocking dependent went, want the owner")
	}
	if err := c.process(ctx, "rs1"); err != nil {
		t.Fatal(err)
	}
	if got := exists(t, client, rsGVR, "web"); got == nil || len(got.Finalizers) != 0 {
		t.Errorf("got %v, want owner without finalizers", got)
	}
}

func TestOrphanDeletion(t *testing.T) {
	now := metav1.Now()
	rs := obj(rsGVK, "web", "rs1")
	rs.DeletionTimestamp = &now
	rs.Finalizers = []string{"example.com/keep", metav1.FinalizerOrphanDependents}
	pod := obj(podGVK, "web-1", "p1", ownerRef("web", "rs1", true))
	c, client := newTest(t, rs, pod)
	c.observe(rsGVR, rs)
	c.observe(podGVR, pod)
	if err := c.process(context.Background(), "rs1"); err != nil {
		t.Fatal(err)
	}
	got := exists(t, client, podGVR, "web-1")
	if got == nil || len(got.OwnerReferences) != 0 {
		t.Errorf("got %v, want pod kept without owner references", got)
	}
	if fins := exists(t, client, rsGVR, "web").Finalizers; !slices.Equal(fins, []string{"example.com/keep"}) {
		t.Errorf("got finalizers %v, want [example.com/keep]", fins)
	}
}

func TestRemoveRefsPatch(t *testing.T) {
	refs := []metav1.OwnerReference{{UID: "a"}, {UID: "b"}, {UID: "c"}}
	got := string(RemoveRefsPatch(refs, []types.UID{"a", "c"}))
	want := `[{"op":"test","path":"/metadata/ownerReferences/2/uid","value":"c"},{"op":"remove","path":"/metadata/ownerReferences/2"},{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"a"},{"op":"remove","path":"/metadata/ownerReferences/0"}]`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if p := RemoveRefsPatch(refs, []types.UID{"z"}); p != nil {
		t.Errorf("got %s, want nil for no match", p)
	}
}

//go:build integration

package storage_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/storage"
	"github.com/skiff-sh/skiff/internal/storage/storagetest"
)

// freePort asks the kernel for a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestEtcdStore(t *testing.T) {
	e, err := etcd.Start(context.Background(), etcd.Config{Dir: t.TempDir(), ClientPort: freePort(t), PeerPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	storagetest.Run(t, func(t *testing.T, history int) *storage.Store {
		// Each test gets its own key prefix: a clean store, shared by the
		// stores one test creates.
		prefix := "/" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "/"
		return storage.New(e.Client(), storage.Options{Prefix: prefix, History: history})
	})
}

// TestStoredFormat checks what lands in etcd (Kubernetes' protobuf
// envelope, no resourceVersion) and that values older releases wrote as
// JSON still read, update and list.
func TestStoredFormat(t *testing.T) {
	e, err := etcd.Start(context.Background(), etcd.Config{Dir: t.TempDir(), ClientPort: freePort(t), PeerPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const prefix = "/format/"
	legacy := `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"old","namespace":"ns","labels":{"era":"json"}},"data":{"k":"v"}}`
	if _, err := e.Client().Put(ctx, prefix+"configmaps/ns/old", legacy); err != nil {
		t.Fatal(err)
	}
	s := storage.New(e.Client(), storage.Options{Prefix: prefix})
	r := s.Register(storage.ResourceConfig{
		GroupResource: schema.GroupResource{Resource: "configmaps"},
		GVK:           corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		Namespaced:    true,
		New:           func() runtime.Object { return &corev1.ConfigMap{} },
	})
	go func() { _ = s.Run(ctx) }()
	select {
	case <-s.Ready():
	case <-ctx.Done():
		t.Fatal("store not ready")
	}

	old, err := r.GetObject(ctx, "ns", "old", "")
	if err != nil {
		t.Fatal(err)
	}
	if cm := old.(*corev1.ConfigMap); cm.Data["k"] != "v" || cm.Labels["era"] != "json" || cm.ResourceVersion == "" {
		t.Fatalf("legacy JSON value: got %+v", cm)
	}
	list, err := r.List(ctx, storage.ListOptions{Namespace: "ns", Label: labels.SelectorFromSet(labels.Set{"era": "json"})})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list of the legacy value by label: got %v, err %v", list, err)
	}
	js, err := r.JSON(list.Items[0])
	if err != nil || !strings.Contains(string(js), `"resourceVersion":"`) || !strings.Contains(string(js), `"k":"v"`) {
		t.Fatalf("JSON of the legacy value: got %s, err %v", js, err)
	}
	// An update rewrites it in the current format.
	if _, err := r.GuaranteedUpdate(ctx, "ns", "old", storage.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["k"] = "w"
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client().Get(ctx, prefix+"configmaps/ns/old")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read back: %v", err)
	}
	v := resp.Kvs[0].Value
	if !strings.HasPrefix(string(v), "k8s\x00") {
		t.Fatalf("stored value: got %q..., want the protobuf envelope", v[:min(len(v), 16)])
	}
	var u runtime.Unknown
	if err := u.Unmarshal(v[4:]); err != nil || u.Kind != "ConfigMap" || u.APIVersion != "v1" {
		t.Fatalf("stored envelope: got %s/%s, err %v", u.APIVersion, u.Kind, err)
	}
	var stored corev1.ConfigMap
	if err := stored.Unmarshal(u.Raw); err != nil || stored.Data["k"] != "w" || stored.ResourceVersion != "" {
		t.Fatalf("stored object: got data %v rv %q, err %v; want k=w and no resourceVersion", stored.Data, stored.ResourceVersion, err)
	}
}

//go:build integration

package garbagecollector_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	"github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/server"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs an in-process API server without controllers.
func startServer(t *testing.T) *rest.Config {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.yaml")
	s, err := server.New(server.Config{
		DataDir: dir, BindAddress: "127.0.0.1", SecurePort: freePort(t), AdvertiseAddress: "127.0.0.1",
		KubeconfigPath: kubeconfig, EtcdClientPort: freePort(t), EtcdPeerPort: freePort(t),
		DisableControllers: []string{"*"}, DisableScheduler: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
			cs := kubernetes.NewForConfigOrDie(cfg)
			if body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background()); err == nil && string(body) == "ok" {
				cfg.QPS, cfg.Burst = 200, 400
				return cfg
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("server not ready within 60s")
	return nil
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var seen string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, seen = cond(); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s; last seen: %s", what, seen)
}

func TestCollectorAndNamespaceOnRealServer(t *testing.T) {
	cfg := startServer(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	meta := metadata.NewForConfigOrDie(cfg)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	gc := garbagecollector.New(meta, cs.Discovery(), mapper, log)
	go gc.Run(ctx, 2)
	f := informers.NewSharedInformerFactory(cs, 0)
	nc := namespace.New(f.Core().V1().Namespaces(), cs, meta, cs.Discovery(), log, time.Now)
	f.Start(ctx.Done())
	go nc.Run(ctx, 2)

	cms := cs.CoreV1().ConfigMaps("default")
	mk := func(name string, owner *corev1.ConfigMap) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if owner != nil {
			cm.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, BlockOwnerDeletion: ptr.To(true)}}
		}
		out, err := cms.Create(ctx, cm, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	gone := func(name string) func() (bool, string) {
		return func() (bool, string) {
			_, err := cms.Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprintf("get %s: %v", name, err)
		}
	}
	del := func(name string, p metav1.DeletionPropagation) {
		if err := cms.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &p}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("background", func(t *testing.T) {
		o := mk("bg-owner", nil)
		mk("bg-dep", o)
		del("bg-owner", metav1.DeletePropagationBackground)
		waitFor(t, "dependent deleted", gone("bg-dep"))
	})
	t.Run("dangling reference", func(t *testing.T) {
		mk("dangling", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "never", UID: "00000000-0000-0000-0000-000000000000"}})
		waitFor(t, "dependent of a nonexistent owner deleted", gone("dangling"))
	})
	t.Run("foreground", func(t *testing.T) {
		o := mk("fg-owner", nil)
		mk("fg-dep", o)
		del("fg-owner", metav1.DeletePropagationForeground)
		got, err := cms.Get(ctx, "fg-owner", metav1.GetOptions{})
		if err == nil && (got.DeletionTimestamp == nil || got.Finalizers[0] != metav1.FinalizerDeleteDependents) {
			t.Errorf("got owner %v %v, want deletionTimestamp and foregroundDeletion", got.DeletionTimestamp, got.Finalizers)
		}
		waitFor(t, "dependent deleted", gone("fg-dep"))
		waitFor(t, "owner deleted after its dependent", gone("fg-owner"))
	})
	t.Run("orphan", func(t *testing.T) {
		o := mk("or-owner", nil)
		mk("or-dep", o)
		del("or-owner", metav1.DeletePropagationOrphan)
		waitFor(t, "owner deleted", gone("or-owner"))
		dep, err := cms.Get(ctx, "or-dep", metav1.GetOptions{})
		if err != nil || len(dep.OwnerReferences) != 0 {
			t.Errorf("got %v (err %v), want dependent kept without owner references", dep, err)
		}
	})
	t.Run("namespace", func(t *testing.T) {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "namespace gone", func() (bool, string) {
			ns, err := cs.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
			if err == nil {
				return false, fmt.Sprintf("phase %s conditions %v", ns.Status.Phase, ns.Status.Conditions)
			}
			return apierrors.IsNotFound(err), err.Error()
		})
	})
}

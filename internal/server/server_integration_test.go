//go:build integration

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	appsv1apply "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	metav1apply "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
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

// testServer runs a whole control plane in-process and returns an admin
// client config.
func testServer(t *testing.T) *rest.Config {
	t.Helper()
	return testServerWith(t, func(cfg *Config) {
		// The API alone: these tests check the server's own behaviour
		// (for example that a deleted namespace stays Terminating).
		cfg.DisableControllers, cfg.DisableScheduler = []string{"*"}, true
	})
}

// testServerWith is testServer with the configuration changed by edit
// before the server starts.
func testServerWith(t *testing.T, edit func(*Config)) *rest.Config {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.yaml")
	port := freePort(t)
	cfg := Config{
		DataDir: dir, BindAddress: "127.0.0.1", SecurePort: port, AdvertiseAddress: "127.0.0.1",
		KubeconfigPath: kubeconfig, EtcdClientPort: freePort(t), EtcdPeerPort: freePort(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	edit(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err == nil {
			cs := kubernetes.NewForConfigOrDie(cfg)
			body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
			if err == nil && string(body) == "ok" {
				return cfg
			}
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPI(t *testing.T) {
	cfg := testServer(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	tests := []struct {
		name string
		fn   func(t *testing.T, cs kubernetes.Interface, cfg *rest.Config)
	}{
		{"Bootstrap", testBootstrap},
		{"CRUDAndConflict", testCRUD},
		{"WatchResumeAnd410", testWatch},
		{"PaginationUnderWrites", testPagination},
		{"PatchTypes", testPatchTypes},
		{"ServerSideApplyConflicts", testSSA},
		{"DefaultingAndValidation", testDefaultingValidation},
		{"ServiceAllocation", testServiceAllocation},
		{"NamespaceTermination", testNamespaceTermination},
		{"Protobuf", testProtobuf},
		{"Anonymous401", testAnonymous},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cs, cfg) })
	}
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testBootstrap(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		got, err := cs.CoreV1().Namespaces().Get(ctxT(t), ns, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace %s: %v", ns, err)
		}
		if got.Status.Phase != corev1.NamespaceActive {
			t.Errorf("namespace %s phase %q, want Active", ns, got.Status.Phase)
		}
	}
	svc, err := cs.CoreV1().Services("default").Get(ctxT(t), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.96.0.1" {
		t.Errorf("kubernetes service clusterIP %s, want 10.96.0.1", svc.Spec.ClusterIP)
	}
	ep, err := cs.CoreV1().Endpoints("default").Get(ctxT(t), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Subsets) != 1 || ep.Subsets[0].Addresses[0].IP != "127.0.0.1" {
		t.Errorf("kubernetes endpoints %+v, want 127.0.0.1", ep.Subsets)
	}
}

func testCRUD(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	cms := cs.CoreV1().ConfigMaps("default")
	created, err := cms.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "crud-"}, Data: map[string]string{"a": "1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Name, "crud-") || len(created.Name) != len("crud-")+5 || created.UID == "" || created.CreationTimestamp.IsZero() {
		t.Fatalf("created %+v: want generated name, uid and creationTimestamp", created.ObjectMeta)
	}
	stale := created.DeepCopy()
	created.Data["a"] = "2"
	updated, err := cms.Update(ctxT(t), created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.ResourceVersion == stale.ResourceVersion {
		t.Fatal("update did not change resourceVersion")
	}
	stale.Data["a"] = "3"
	_, err = cms.Update(ctxT(t), stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want 409 Conflict", err)
	}
	if err := cms.Delete(ctxT(t), created.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctxT(t), created.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: got %v, want 404", err)
	}
	// Generation moves with the spec only.
	d, err := cs.AppsV1().Deployments("default").Create(ctxT(t), deployment("gen"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 1 {
		t.Fatalf("new deployment generation %d, want 1", d.Generation)
	}
	d.Labels = map[string]string{"x": "y"}
	if d, err = cs.AppsV1().Deployments("default").Update(ctxT(t), d, metav1.UpdateOptions{}); err != nil || d.Generation != 1 {
		t.Fatalf("label change: generation %d err %v, want 1", d.Generation, err)
	}
	d.Spec.Replicas = ptr.To[int32](3)
	if d, err = cs.AppsV1().Deployments("default").Update(ctxT(t), d, metav1.UpdateOptions{}); err != nil || d.Generation != 2 {
		t.Fatalf("spec change: generation %d err %v, want 2", d.Generation, err)
	}
	s, err := cs.AppsV1().Deployments("default").GetScale(ctxT(t), "gen", metav1.GetOptions{})
	if err != nil || s.Spec.Replicas != 3 || s.Status.Selector != "app=gen" {
		t.Fatalf("scale: %+v err %v, want replicas 3 selector app=gen", s, err)
	}
	s.Spec.Replicas = 5
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctxT(t), "gen", s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _ = cs.AppsV1().Deployments("default").Get(ctxT(t), "gen", metav1.GetOptions{})
	if *d.Spec.Replicas != 5 || d.Generation != 3 {
		t.Fatalf("after scale to 5: replicas %d generation %d, want 5 and 3", *d.Spec.Replicas, d.Generation)
	}
}

func deployment(name string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
			},
		},
	}
}

func testWatch(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	cms := cs.CoreV1().ConfigMaps("kube-public")
	first, err := cms.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctxT(t), metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Added || !ok || cm.Name != "w2" {
			t.Fatalf("resumed watch: got %s %T, want ADDED w2", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event on resumed watch")
	}
	// Far in the past: 410 Gone.
	_, err = cms.Watch(ctxT(t), metav1.ListOptions{ResourceVersion: "1"})
	if err == nil {
		// client-go may return the error as the first event.
		t.Log("watch from 1 started; expecting an error event")
	} else if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from resourceVersion 1: got %v, want 410", err)
	}
}

func testPagination(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	if _, err := cs.CoreV1().Namespaces().Create(ctxT(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pages"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cms := cs.CoreV1().ConfigMaps("pages")
	for i := 0; i < 30; i++ {
		if _, err := cms.Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%02d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = cms.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("z-%03d", i)}}, metav1.CreateOptions{})
			if i > 200 {
				return
			}
		}
	}()
	var seen []string
	opts := metav1.ListOptions{Limit: 7}
	var rv string
	for {
		l, err := cms.List(ctxT(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		if rv == "" {
			rv = l.ResourceVersion
		} else if l.ResourceVersion != rv {
			t.Fatalf("page resourceVersion %s, want %s", l.ResourceVersion, rv)
		}
		for _, cm := range l.Items {
			seen = append(seen, cm.Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	close(stop)
	wg.Wait()
	// Exactly the objects that existed at the first page's version.
	full, err := cms.List(ctxT(t), metav1.ListOptions{ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Items) != len(seen) {
		t.Fatalf("paged list saw %d objects, the list at %s has %d", len(seen), rv, len(full.Items))
	}
	for i := range seen {
		if seen[i] != full.Items[i].Name {
			t.Fatalf("item %d: paged %s, exact list %s", i, seen[i], full.Items[i].Name)
		}
	}
}

func testPatchTypes(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	d, err := cs.AppsV1().Deployments("default").Create(ctxT(t), deployment("patchme"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deps := cs.AppsV1().Deployments("default")
	tests := []struct {
		pt    types.PatchType
		patch string
		check func(*appsv1.Deployment) error
	}{
		{types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":4}]`, func(d *appsv1.Deployment) error {
			if *d.Spec.Replicas != 4 {
				return fmt.Errorf("replicas %d, want 4", *d.Spec.Replicas)
			}
			return nil
		}},
		{types.MergePatchType, `{"metadata":{"labels":{"m":"1"}}}`, func(d *appsv1.Deployment) error {
			if d.Labels["m"] != "1" {
				return fmt.Errorf("labels %v, want m=1", d.Labels)
			}
			return nil
		}},
		{types.StrategicMergePatchType, `{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}`, func(d *appsv1.Deployment) error {
			// Strategic merge adds to the list by name instead of replacing it.
			if n := len(d.Spec.Template.Spec.Containers); n != 2 {
				return fmt.Errorf("%d containers, want 2 (merged by name)", n)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				if c.Name == "side" && c.ImagePullPolicy != corev1.PullAlways {
					return fmt.Errorf("new container pull policy %q, want defaulted Always", c.ImagePullPolicy)
				}
			}
			return nil
		}},
	}
	for _, tc := range tests {
		got, err := deps.Patch(ctxT(t), d.Name, tc.pt, []byte(tc.patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.pt, err)
		}
		if err := tc.check(got); err != nil {
			t.Errorf("%s: %v", tc.pt, err)
		}
	}
	_, err = deps.Patch(ctxT(t), d.Name, types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":99}]`), metav1.PatchOptions{})
	if err == nil {
		t.Error("failing JSON patch test op succeeded")
	}
	_, err = deps.Patch(ctxT(t), d.Name, types.MergePatchType, []byte(`{"spec":{"bogus":1}}`), metav1.PatchOptions{FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
		t.Errorf("strict patch with unknown field: got %v, want 400 naming spec.bogus", err)
	}
}

func testSSA(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	cms := cs.CoreV1().ConfigMaps("default")
	apply := corev1apply.ConfigMap("ssa", "default").WithData(map[string]string{"owned": "a"})
	got, err := cms.Apply(ctxT(t), apply, metav1.ApplyOptions{FieldManager: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ManagedFields) != 1 || got.ManagedFields[0].Manager != "alice" || got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("managedFields %+v, want one Apply entry for alice", got.ManagedFields)
	}
	_, err = cms.Apply(ctxT(t), corev1apply.ConfigMap("ssa", "default").WithData(map[string]string{"owned": "b"}), metav1.ApplyOptions{FieldManager: "bob"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("bob applying alice's field: got %v, want 409 naming alice", err)
	}
	got, err = cms.Apply(ctxT(t), corev1apply.ConfigMap("ssa", "default").WithData(map[string]string{"owned": "b"}), metav1.ApplyOptions{FieldManager: "bob", Force: true})
	if err != nil || got.Data["owned"] != "b" {
		t.Fatalf("forced apply: %v %v, want owned=b", got.Data, err)
	}
	// Apply creates, and a deployment apply keeps defaults out of the
	// applier's fields.
	dep := appsv1apply.Deployment("applied", "default").WithSpec(appsv1apply.DeploymentSpec().
		WithSelector(metav1apply.LabelSelector().WithMatchLabels(map[string]string{"app": "applied"})).
		WithTemplate(corev1apply.PodTemplateSpec().WithLabels(map[string]string{"app": "applied"}).
			WithSpec(corev1apply.PodSpec().WithContainers(corev1apply.Container().WithName("c").WithImage("nginx")))))
	d, err := cs.AppsV1().Deployments("default").Apply(ctxT(t), dep, metav1.ApplyOptions{FieldManager: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Fatalf("applied deployment not defaulted: %+v", d.Spec)
	}
}

func testDefaultingValidation(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	d, err := cs.AppsV1().Deployments("default").Create(ctxT(t), deployment("defaults"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxSurge.String() != "25%" || ru.MaxUnavailable.String() != "25%" ||
		*d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Fatalf("deployment defaults: %+v", d.Spec)
	}
	bad := deployment("bad")
	bad.Spec.Template.Labels = map[string]string{"app": "other"}
	bad.Spec.Template.Spec.Containers[0].Image = ""
	_, err = cs.AppsV1().Deployments("default").Create(ctxT(t), bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("invalid deployment: got %v, want 422", err)
	}
	for _, want := range []string{"spec.template.metadata.labels", "spec.template.spec.containers[0].image: Required value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("422 message %q lacks %q", err.Error(), want)
		}
	}
	_, err = cs.CoreV1().ConfigMaps("default").Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name"}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("bad name: got %v, want 422 on metadata.name", err)
	}
	// dryRun stores nothing.
	_, err = cs.CoreV1().ConfigMaps("default").Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctxT(t), "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run create stored the object: %v", err)
	}
}

func testServiceAllocation(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	svcs := cs.CoreV1().Services("default")
	mk := func(name, ip string, typ corev1.ServiceType, nodePort int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
			Type: typ, ClusterIP: ip, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: nodePort}},
		}}
	}
	s1, err := svcs.Create(ctxT(t), mk("tutorial", "10.97.97.97", corev1.ServiceTypeClusterIP, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Spec.ClusterIP != "10.97.97.97" || s1.Spec.Ports[0].TargetPort.IntValue() != 80 || s1.Spec.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("service: %+v", s1.Spec)
	}
	_, err = svcs.Create(ctxT(t), mk("clash", "10.97.97.97", corev1.ServiceTypeClusterIP, 0), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "provided IP is already allocated") {
		t.Fatalf("taken IP: got %v, want 422 already allocated", err)
	}
	_, err = svcs.Create(ctxT(t), mk("outside", "10.0.0.5", corev1.ServiceTypeClusterIP, 0), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("IP outside the range: got %v, want 422", err)
	}
	np, err := svcs.Create(ctxT(t), mk("np", "", corev1.ServiceTypeNodePort, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port := np.Spec.Ports[0].NodePort
	if port < 30000 || port > 32767 {
		t.Fatalf("nodePort %d outside 30000-32767", port)
	}
	_, err = svcs.Create(ctxT(t), mk("np2", "", corev1.ServiceTypeNodePort, port), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "provided port is already allocated") {
		t.Fatalf("duplicate nodePort: got %v, want 422", err)
	}
	if err := svcs.Delete(ctxT(t), "np", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctxT(t), mk("np2", "", corev1.ServiceTypeNodePort, port), metav1.CreateOptions{}); err != nil {
		t.Fatalf("nodePort freed by delete not reusable: %v", err)
	}
	h, err := svcs.Create(ctxT(t), mk("headless", "None", corev1.ServiceTypeClusterIP, 0), metav1.CreateOptions{})
	if err != nil || h.Spec.ClusterIP != "None" {
		t.Fatalf("headless: %v %v", h.Spec.ClusterIP, err)
	}
}

func testNamespaceTermination(t *testing.T, cs kubernetes.Interface, _ *rest.Config) {
	nss := cs.CoreV1().Namespaces()
	if _, err := nss.Create(ctxT(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nss.Delete(ctxT(t), "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := nss.Get(ctxT(t), "doomed", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("deleted namespace: %+v %v, want Terminating with deletionTimestamp", ns.Status, err)
	}
	_, err = cs.CoreV1().ConfigMaps("doomed").Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "being terminated") {
		t.Fatalf("create in terminating namespace: got %v, want 403", err)
	}
	_, err = cs.CoreV1().ConfigMaps("nowhere").Create(ctxT(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("create in missing namespace: got %v, want 404", err)
	}
	if err := nss.Delete(ctxT(t), "default", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("delete default namespace: got %v, want 403", err)
	}
}

func testAnonymous(t *testing.T, _ kubernetes.Interface, cfg *rest.Config) {
	anon := rest.AnonymousClientConfig(cfg)
	client, err := rest.HTTPClientFor(anon)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(cfg.Host + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous list: status %d, want 401", resp.StatusCode)
	}
	resp, err = client.Get(cfg.Host + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous /readyz: status %d, want 200", resp.StatusCode)
	}
	_ = errors.New
}

package servicelb

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func node(name, ip string, ready bool, lbls map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}},
		},
	}
}

func svc(typ corev1.ServiceType, class *string, ingress ...string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec:       corev1.ServiceSpec{Type: typ, LoadBalancerClass: class},
	}
	for _, ip := range ingress {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func ips(in []corev1.LoadBalancerIngress) []string {
	out := []string{}
	for _, i := range in {
		out = append(out, i.IP)
		if i.IPMode == nil || *i.IPMode != corev1.LoadBalancerIPModeVIP {
			out = append(out, "(mode not VIP)")
		}
	}
	return out
}

func TestIngress(t *testing.T) {
	nodes := []*corev1.Node{
		node("c", "10.0.0.30", true, nil),
		node("a", "10.0.0.4", true, nil),
		node("b", "10.0.0.20", false, nil),
		node("d", "10.0.0.40", true, map[string]string{LabelExcludeFromLB: ""}),
		node("e", "fd00::5", true, nil),
		node("f", "10.0.0.4", true, nil), // same address twice: once
	}
	for _, tc := range []struct {
		name     string
		svc      *corev1.Service
		nodes    []*corev1.Node
		want     []string
		wantKeep bool
	}{
		{"no class: ready, not excluded, IPv4 nodes in order", svc(corev1.ServiceTypeLoadBalancer, nil), nodes, []string{"10.0.0.4", "10.0.0.30"}, false},
		{"our class", svc(corev1.ServiceTypeLoadBalancer, ptr.To(Class)), nodes, []string{"10.0.0.4", "10.0.0.30"}, false},
		{"another class is left alone", svc(corev1.ServiceTypeLoadBalancer, ptr.To("example.com/lb"), "1.2.3.4"), nodes, []string{}, true},
		{"no ready node: none", svc(corev1.ServiceTypeLoadBalancer, nil), nodes[2:3], []string{}, false},
		{"ClusterIP: none (cleared)", svc(corev1.ServiceTypeClusterIP, nil, "10.0.0.4"), nodes, []string{}, false},
		{"NodePort: none", svc(corev1.ServiceTypeNodePort, nil), nodes, []string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, keep := Ingress(tc.svc, tc.nodes)
			if !slices.Equal(ips(got), tc.want) || keep != tc.wantKeep {
				t.Errorf("got %v keep %v, want %v keep %v", ips(got), keep, tc.want, tc.wantKeep)
			}
		})
	}
}

func TestNodeAddress(t *testing.T) {
	deleting := node("x", "10.0.0.9", true, nil)
	deleting.DeletionTimestamp = &metav1.Time{}
	noIP := node("y", "10.0.0.9", true, nil)
	noIP.Status.Addresses = noIP.Status.Addresses[:1]
	for _, tc := range []struct {
		name string
		n    *corev1.Node
		want string
	}{
		{"ready", node("a", "10.0.0.1", true, nil), "10.0.0.1"},
		{"not ready", node("a", "10.0.0.1", false, nil), ""},
		{"excluded", node("a", "10.0.0.1", true, map[string]string{LabelExcludeFromLB: "true"}), ""},
		{"being deleted", deleting, ""},
		{"no InternalIP", noIP, ""},
		{"nil", nil, ""},
	} {
		if got := NodeAddress(tc.n); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSync runs Sync against a fake API: a LoadBalancer Service gets the
// ready nodes' addresses, follows a node becoming ready, and loses them
// when it becomes a ClusterIP Service.
func TestSync(t *testing.T) {
	ctx := context.Background()
	s := svc(corev1.ServiceTypeLoadBalancer, nil)
	n1, n2 := node("n1", "10.0.0.1", true, nil), node("n2", "10.0.0.2", false, nil)
	client := fake.NewClientset(s, n1, n2)
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().Services(), f.Core().V1().Nodes(), client, nil, Pool{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	svcs, nodes := f.Core().V1().Services().Informer().GetIndexer(), f.Core().V1().Nodes().Informer().GetIndexer()
	_ = svcs.Add(s)
	_ = nodes.Add(n1)
	_ = nodes.Add(n2)
	status := func() []string {
		t.Helper()
		got, err := client.CoreV1().Services("ns").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = svcs.Update(got)
		return ips(got.Status.LoadBalancer.Ingress)
	}
	sync := func() {
		t.Helper()
		if err := c.Sync(ctx, "ns/web"); err != nil {
			t.Fatal(err)
		}
	}

	sync()
	if got, want := status(), []string{"10.0.0.1"}; !slices.Equal(got, want) {
		t.Fatalf("first sync: got %v, want %v", got, want)
	}
	before := len(client.Actions())
	sync()
	if n := len(client.Actions()) - before; n != 0 {
		t.Errorf("a sync with nothing changed: got %d API calls, want 0", n)
	}

	_ = nodes.Update(node("n2", "10.0.0.2", true, nil))
	sync()
	if got, want := status(), []string{"10.0.0.1", "10.0.0.2"}; !slices.Equal(got, want) {
		t.Fatalf("after n2 became ready: got %v, want %v", got, want)
	}

	cur, _ := client.CoreV1().Services("ns").Get(ctx, "web", metav1.GetOptions{})
	cur.Spec.Type = corev1.ServiceTypeClusterIP
	if _, err := client.CoreV1().Services("ns").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	status()
	sync()
	if got := status(); len(got) != 0 {
		t.Fatalf("after the type became ClusterIP: got %v, want no ingress", got)
	}
}

// TestRunFollowsNodes runs the controller with informers on a fake API:
// the status follows nodes joining, going NotReady and being excluded,
// and a Service of another class is left alone.
func TestRunFollowsNodes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	f := informers.NewSharedInformerFactory(client, 0)
	c := New(f.Core().V1().Services(), f.Core().V1().Nodes(), client, nil, Pool{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() { c.Run(ctx, 2); close(done) }()
	defer func() { cancel(); <-done }()

	nodes, svcs := client.CoreV1().Nodes(), client.CoreV1().Services("ns")
	if _, err := nodes.Create(ctx, node("n1", "10.0.0.1", true, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, svc(corev1.ServiceTypeLoadBalancer, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := svc(corev1.ServiceTypeLoadBalancer, ptr.To("example.com/lb"))
	other.Name = "other"
	if _, err := svcs.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress := func(what string, want ...string) {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			s, err := svcs.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got = ips(s.Status.LoadBalancer.Ingress); slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("%s: got ingress %v, want %v", what, got, want)
	}
	waitIngress("one ready node", "10.0.0.1")
	if _, err := nodes.Create(ctx, node("n2", "10.0.0.2", true, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("a second node joined", "10.0.0.1", "10.0.0.2")
	if _, err := nodes.Update(ctx, node("n1", "10.0.0.1", false, nil), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("n1 NotReady", "10.0.0.2")
	if _, err := nodes.Update(ctx, node("n2", "10.0.0.2", true, map[string]string{LabelExcludeFromLB: ""}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("n2 excluded")
	if err := nodes.Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Update(ctx, node("n1", "10.0.0.1", true, nil), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("n1 Ready again, n2 gone", "10.0.0.1")
	o, err := svcs.Get(ctx, "other", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("a Service of another class: got ingress %v, want none", ips(o.Status.LoadBalancer.Ingress))
	}
}

package servicelb

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

func TestParsePool(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		in, out []string // addresses the pool must and must not contain
		wantErr string
	}{
		{name: "cidr without network and broadcast", entries: []string{"192.168.200.0/29"},
			in: []string{"192.168.200.1", "192.168.200.6"}, out: []string{"192.168.200.0", "192.168.200.7", "192.168.200.8"}},
		{name: "/31 keeps both", entries: []string{"10.0.0.4/31"}, in: []string{"10.0.0.4", "10.0.0.5"}, out: []string{"10.0.0.6"}},
		{name: "/32", entries: []string{"10.0.0.4/32"}, in: []string{"10.0.0.4"}, out: []string{"10.0.0.3", "10.0.0.5"}},
		{name: "range and cidr, spaces and empty entries", entries: []string{" 10.0.0.10-10.0.0.12", "", "10.1.0.0/30 "},
			in: []string{"10.0.0.10", "10.0.0.12", "10.1.0.1", "10.1.0.2"}, out: []string{"10.0.0.9", "10.0.0.13", "10.1.0.3"}},
		{name: "one-address range", entries: []string{"10.0.0.10-10.0.0.10"}, in: []string{"10.0.0.10"}},
		{name: "none", entries: nil, out: []string{"10.0.0.1"}},
		{name: "garbage", entries: []string{"10.0.0.0/24", "bogus"}, wantErr: `entry "bogus": want an IPv4 CIDR`},
		{name: "IPv6 cidr", entries: []string{"fd00::/120"}, wantErr: `entry "fd00::/120": not an IPv4 CIDR`},
		{name: "host bits", entries: []string{"10.0.0.5/29"}, wantErr: `entry "10.0.0.5/29": host bits are set (the network is 10.0.0.0/29)`},
		{name: "reversed range", entries: []string{"10.0.0.9-10.0.0.1"}, wantErr: `entry "10.0.0.9-10.0.0.1": end 10.0.0.1 is before start 10.0.0.9`},
		{name: "bad range end", entries: []string{"10.0.0.1-x"}, wantErr: `entry "10.0.0.1-x": end "x" is not an IPv4 address`},
		{name: "IPv6 range", entries: []string{"fd00::1-fd00::2"}, wantErr: `start "fd00::1" is not an IPv4 address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePool(tc.entries)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.in {
				if !p.Contains(netip.MustParseAddr(a)) {
					t.Errorf("Contains(%s): got false, want true", a)
				}
			}
			for _, a := range tc.out {
				if p.Contains(netip.MustParseAddr(a)) {
					t.Errorf("Contains(%s): got true, want false", a)
				}
			}
		})
	}
}

// lbSvc is a LoadBalancer Service ns/name created at second age, with
// spec.loadBalancerIP lbIP.
func lbSvc(name string, age int, lbIP string) *corev1.Service {
	s := svc(corev1.ServiceTypeLoadBalancer, nil)
	s.Name = name
	s.CreationTimestamp = metav1.NewTime(time.Unix(int64(1000+age), 0))
	s.Spec.LoadBalancerIP = lbIP
	return s
}

func TestAllocate(t *testing.T) {
	pool, err := ParsePool([]string{"10.0.0.0/30", "10.0.1.10-10.0.1.11"}) // .1 .2, 1.10 1.11
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		svcs    []*corev1.Service
		current map[string]string
		want    map[string]string // key -> address or "error: <substring>"
	}{
		{name: "lowest free, oldest first",
			svcs: []*corev1.Service{lbSvc("b", 2, ""), lbSvc("a", 1, "")},
			want: map[string]string{"ns/a": "10.0.0.1", "ns/b": "10.0.0.2"}},
		{name: "current address kept",
			svcs:    []*corev1.Service{lbSvc("a", 1, ""), lbSvc("b", 2, "")},
			current: map[string]string{"ns/b": "10.0.1.11"},
			want:    map[string]string{"ns/a": "10.0.0.1", "ns/b": "10.0.1.11"}},
		{name: "current address outside the pool is replaced",
			svcs:    []*corev1.Service{lbSvc("a", 1, "")},
			current: map[string]string{"ns/a": "192.168.1.5"},
			want:    map[string]string{"ns/a": "10.0.0.1"}},
		{name: "two claim one address: the older keeps it",
			svcs:    []*corev1.Service{lbSvc("a", 1, ""), lbSvc("b", 2, "")},
			current: map[string]string{"ns/a": "10.0.0.2", "ns/b": "10.0.0.2"},
			want:    map[string]string{"ns/a": "10.0.0.2", "ns/b": "10.0.0.1"}},
		{name: "loadBalancerIP honoured, over the lowest free",
			svcs: []*corev1.Service{lbSvc("a", 1, ""), lbSvc("b", 2, "10.0.0.1")},
			want: map[string]string{"ns/a": "10.0.0.2", "ns/b": "10.0.0.1"}},
		{name: "loadBalancerIP taken by a Service that has it",
			svcs:    []*corev1.Service{lbSvc("a", 1, ""), lbSvc("b", 2, "10.0.0.1")},
			current: map[string]string{"ns/a": "10.0.0.1"},
			want:    map[string]string{"ns/a": "10.0.0.1", "ns/b": "error: spec.loadBalancerIP 10.0.0.1 is already used by service ns/a"}},
		{name: "loadBalancerIP changed: the current address is given up",
			svcs:    []*corev1.Service{lbSvc("a", 1, "10.0.1.10")},
			current: map[string]string{"ns/a": "10.0.0.1"},
			want:    map[string]string{"ns/a": "10.0.1.10"}},
		{name: "loadBalancerIP outside the pool",
			svcs: []*corev1.Service{lbSvc("a", 1, "10.0.0.3")},
			want: map[string]string{"ns/a": "error: spec.loadBalancerIP 10.0.0.3 is not in the address pool 10.0.0.0/30,10.0.1.10-10.0.1.11"}},
		{name: "loadBalancerIP not an address",
			svcs: []*corev1.Service{lbSvc("a", 1, "nope")},
			want: map[string]string{"ns/a": `error: spec.loadBalancerIP "nope" is not an IPv4 address`}},
		{name: "exhausted: the newest gets none",
			svcs: []*corev1.Service{lbSvc("e", 5, ""), lbSvc("a", 1, ""), lbSvc("b", 2, ""), lbSvc("c", 3, ""), lbSvc("d", 4, "")},
			want: map[string]string{"ns/a": "10.0.0.1", "ns/b": "10.0.0.2", "ns/c": "10.0.1.10", "ns/d": "10.0.1.11",
				"ns/e": "error: no free address in the address pool 10.0.0.0/30,10.0.1.10-10.0.1.11: all 4 are in use"}},
		{name: "freed: a Service gone leaves its address to a waiting one",
			svcs:    []*corev1.Service{lbSvc("b", 2, ""), lbSvc("c", 3, ""), lbSvc("d", 4, ""), lbSvc("e", 5, "")},
			current: map[string]string{"ns/a": "10.0.0.1", "ns/b": "10.0.0.2", "ns/c": "10.0.1.10", "ns/d": "10.0.1.11"},
			want:    map[string]string{"ns/b": "10.0.0.2", "ns/c": "10.0.1.10", "ns/d": "10.0.1.11", "ns/e": "10.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			current := map[string]netip.Addr{}
			for k, a := range tc.current {
				current[k] = netip.MustParseAddr(a)
			}
			got := pool.Allocate(tc.svcs, current)
			seen := map[netip.Addr]string{}
			for k, a := range got {
				if a.Err == nil {
					if other, dup := seen[a.Addr]; dup {
						t.Errorf("%s and %s both got %s", k, other, a.Addr)
					}
					seen[a.Addr] = k
				}
			}
			for k, want := range tc.want {
				a, ok := got[k]
				switch {
				case !ok:
					t.Errorf("%s: got no decision, want %s", k, want)
				case strings.HasPrefix(want, "error: "):
					if a.Err == nil || a.Err.Error() != strings.TrimPrefix(want, "error: ") {
						t.Errorf("%s: got %v (error %v), want %s", k, a.Addr, a.Err, want)
					}
				case a.Err != nil || a.Addr.String() != want:
					t.Errorf("%s: got %v (error %v), want %s", k, a.Addr, a.Err, want)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d decisions, want %d", len(got), len(tc.want))
			}
		})
	}
}

// TestRunPool runs the controller with a pool of two addresses against a
// fake API: Services get distinct pool addresses that survive a new
// controller (a restart), a third gets none and an AllocationFailed event,
// and gets an address once a Service stops being a LoadBalancer; a
// fourth gets the address of a deleted one.
func TestRunPool(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := ParsePool([]string{"192.168.200.10-192.168.200.11"})
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	nodes, svcs := client.CoreV1().Nodes(), client.CoreV1().Services("ns")
	if _, err := nodes.Create(ctx, node("n1", "10.0.0.1", true, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := func(ctx context.Context, recorder record.EventRecorder) {
		f := informers.NewSharedInformerFactory(client, 0)
		c := New(f.Core().V1().Services(), f.Core().V1().Nodes(), client, recorder, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
		f.Start(ctx.Done())
		done := make(chan struct{})
		go func() { c.Run(ctx, 2); close(done) }()
		t.Cleanup(func() { <-done })
	}
	recorder := record.NewFakeRecorder(100)
	ctx1, stop1 := context.WithCancel(ctx)
	start(ctx1, recorder)

	for i, name := range []string{"a", "b"} {
		s := lbSvc(name, i, "")
		if _, err := svcs.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitIngress := func(what, name string, want ...string) {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			s, err := svcs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got = ips(s.Status.LoadBalancer.Ingress); slices.Equal(got, want) {
				return
			}
		}
		t.Fatalf("%s: service %s: got ingress %v, want %v", what, name, got, want)
	}
	both := func() []string {
		var out []string
		for _, n := range []string{"a", "b"} {
			s, err := svcs.Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ips(s.Status.LoadBalancer.Ingress)...)
		}
		slices.Sort(out)
		return out
	}
	for deadline := time.Now().Add(5 * time.Second); !slices.Equal(both(), []string{"192.168.200.10", "192.168.200.11"}); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("two Services: got addresses %v, want 192.168.200.10 and .11, one each", both())
		}
	}
	before := both()
	aAddr := ips(getSvc(t, svcs, "a").Status.LoadBalancer.Ingress)

	// A new controller (a restart) rebuilds the allocation from the
	// statuses: nothing moves.
	stop1()
	recorder2 := record.NewFakeRecorder(100)
	start(ctx, recorder2)
	if _, err := svcs.Create(ctx, lbSvc("c", 3, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ev string
	select {
	case ev = <-recorder2.Events:
	case <-time.After(5 * time.Second):
		t.Fatal("a Service beyond the pool: got no event, want AllocationFailed")
	}
	if want := "Warning AllocationFailed Failed to allocate a load balancer address: no free address in the address pool 192.168.200.10-192.168.200.11: all 2 are in use"; ev != want {
		t.Errorf("event: got %q, want %q", ev, want)
	}
	waitIngress("pool exhausted", "c")
	if got := both(); !slices.Equal(got, before) {
		t.Errorf("after a restart: got addresses %v, want %v unchanged", got, before)
	}

	// a stops being a LoadBalancer: c gets its address.
	a := getSvc(t, svcs, "a")
	a.Spec.Type = corev1.ServiceTypeClusterIP
	if _, err := svcs.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("a became ClusterIP", "a")
	waitIngress("a's address freed", "c", aAddr...)

	// b is deleted: d, waiting, gets its address.
	bAddr := ips(getSvc(t, svcs, "b").Status.LoadBalancer.Ingress)
	if _, err := svcs.Create(ctx, lbSvc("d", 4, ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("pool exhausted again", "d")
	if err := svcs.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress("b deleted", "d", bAddr...)
}

func getSvc(t *testing.T, svcs typedcorev1.ServiceInterface, name string) *corev1.Service {
	t.Helper()
	s, err := svcs.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

//go:build integration

package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// dnsTestServer runs a control plane with cluster DNS on dnsPort and
// returns an admin client once the API answers.
func dnsTestServer(t *testing.T, dnsPort int) kubernetes.Interface {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.yaml")
	s, err := New(Config{
		DataDir: dir, BindAddress: "127.0.0.1", SecurePort: freePort(t), AdvertiseAddress: "127.0.0.1",
		KubeconfigPath: kubeconfig, EtcdClientPort: freePort(t), EtcdPeerPort: freePort(t),
		DisableControllers: []string{"*"}, DisableScheduler: true,
		DNSPort: dnsPort, DNSUpstreams: []string{}, // no upstream: nothing leaves the machine
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
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v", err)
		default:
		}
		if cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
			cs := kubernetes.NewForConfigOrDie(cfg)
			if _, err := cs.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err == nil {
				return cs
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The server answers cluster names on its DNS port and publishes the
// kube-dns Service with endpoints there.
func TestServerRunsClusterDNS(t *testing.T) {
	port := freePort(t)
	cs := dnsTestServer(t, port)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
		r, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, addr)
		if err == nil && len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != "10.96.0.1" {
				t.Errorf("kubernetes.default A: got %v, want 10.96.0.1", r.Answer[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer for kubernetes.default: %v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		es, err := cs.DiscoveryV1().EndpointSlices("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
		if err == nil {
			if got := es.Endpoints[0].Addresses[0] + ":" + strconv.Itoa(int(*es.Ports[0].Port)); got != addr {
				t.Errorf("kube-dns endpoint: got %s, want %s", got, addr)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no kube-system/kube-dns EndpointSlice")
}

// A DNS port another process holds leaves the cluster without DNS, not
// without its control plane.
func TestServerRunsWithoutDNSPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cs := dnsTestServer(t, pc.LocalAddr().(*net.UDPAddr).Port)
	if _, err := cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("API with the DNS port taken: %v", err)
	}
}

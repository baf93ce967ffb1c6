// Package floor measures what storing and serving cost on this machine
// before any Kubernetes logic: floors under targets that the API server's
// own benchmarks miss. BenchmarkClosedLoopFloor (closedloop_test.go) is the
// floor under the closed-loop latency rows; BenchmarkIdleFloor, here, the
// floor under the control plane's idle CPU with 1,000 nodes, whose node
// agents renew a Lease every 10 s each (upstream's kubelet interval), so
// the API server writes one Lease to etcd every 10 ms.
//
//	go test -run '^$' -bench IdleFloor -benchtime 1x ./bench/floor/
//
// Each figure is the CPU of a child process (this test binary run again)
// over IDLEFLOOR_SECONDS (default 30) after 5 s of warm-up, in percent of
// one core:
//   - etcd: Skiff's embedded etcd member (internal/etcd, the same settings)
//     and an in-process client that writes a Lease-sized value 100 times a
//     second, each a compare-and-swap transaction on its key's revision as
//     the API server's update does;
//   - https: Go's HTTP/2 server over TLS, as `skiff server` serves, taking
//     100 PUTs a second of a Lease-sized body on one connection (as `skiff
//     sim nodes` sends them) and answering each with the same bytes;
//   - https+etcd: both in one process, each request's body written to etcd
//     before the answer: an API server that stores without decoding,
//     validating, tracking fields or notifying watchers;
//   - etcd-idle: the etcd member alone, with every key written once and
//     nothing written since (its raft ticks and housekeeping).
//
// IDLEFLOOR_MODES (comma-separated) runs some of them only.
//
// See docs/performance.md for the figures.
package floor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-sh/skiff/internal/etcd"
)

const (
	rate   = 100  // writes a second: 1,000 nodes renewing every 10 s
	leases = 1000 // distinct keys, one per node
	warmup = 5 * time.Second
	// childEnv selects the child's mode; childAddr is where its HTTPS
	// server listens.
	childEnv  = "IDLEFLOOR_CHILD"
	childAddr = "IDLEFLOOR_ADDR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if err := runChild(mode, os.Getenv(childAddr)); err != nil {
			fmt.Fprintln(os.Stderr, "floor child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func BenchmarkIdleFloor(b *testing.B) {
	window := 30 * time.Second
	if s := os.Getenv("IDLEFLOOR_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("IDLEFLOOR_SECONDS=%q: want a positive number", s)
		}
		window = time.Duration(n) * time.Second
	}
	value := leaseBytes(b, 0)
	b.Logf("a Lease is %d bytes stored; %d writes/s over %d keys; window %s", len(value), rate, leases, window)
	modes := []string{"etcd-idle", "etcd", "https", "https+etcd"}
	if m := os.Getenv("IDLEFLOOR_MODES"); m != "" {
		modes = strings.Split(m, ",")
	}
	for b.Loop() {
		for _, mode := range modes {
			pct := measureChild(b, mode, window)
			b.Logf("%-10s %5.1f%% of a core", mode, pct)
			b.ReportMetric(pct, strings.ReplaceAll(mode, "+", "-")+"-%core")
		}
	}
}

// measureChild runs a child in mode and returns its CPU over window, in
// percent of one core; for the HTTPS modes this process sends the
// requests.
func measureChild(b *testing.B, mode string, window time.Duration) float64 {
	ctx, cancel := context.WithTimeout(b.Context(), window+2*time.Minute)
	defer cancel()
	pid, addr := startChild(ctx, b, mode)
	stop := make(chan struct{})
	defer close(stop)
	if addr != "" {
		go sendRequests(ctx, b, addr, stop)
	}
	// The child starts etcd and writes every key first.
	if !sleepCtx(ctx, warmup+5*time.Second) {
		b.Fatal(ctx.Err())
	}
	c0, t0 := cpuOf(b, pid), time.Now()
	if !sleepCtx(ctx, window) {
		b.Fatal(ctx.Err())
	}
	c1, t1 := cpuOf(b, pid), time.Now()
	return (c1 - c0).Seconds() / t1.Sub(t0).Seconds() * 100
}

// startChild starts this test binary again as a child in mode and returns
// its PID and, for the HTTPS modes, its address. The child ends when the
// test does.
func startChild(ctx context.Context, b *testing.B, mode string) (int, string) {
	addr := ""
	if strings.HasPrefix(mode, "https") {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr = l.Addr().String()
		_ = l.Close()
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childAddr+"="+addr, "TMPDIR="+b.TempDir())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The child runs until its stdin closes: when the test ends, or when
	// this process dies.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid, addr
}

// newHTTPClient is an HTTP/2 client of the child's throwaway certificate
// that first waits, at most 5 s, for the child to serve.
func newHTTPClient(ctx context.Context, addr string) (*http.Client, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // a throwaway certificate on loopback
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; ; i++ {
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			return hc, nil
		}
		if i == 100 || !sleepCtx(ctx, 50*time.Millisecond) {
			tr.CloseIdleConnections()
			return nil, fmt.Errorf("child did not serve: %w", err)
		}
	}
}

// sendRequests PUTs a Lease-sized body to addr rate times a second on one
// HTTP/2 connection until stop closes, each to the path of one of leases
// keys in turn.
func sendRequests(ctx context.Context, b *testing.B, addr string, stop <-chan struct{}) {
	hc, err := newHTTPClient(ctx, addr)
	if err != nil {
		b.Error(err)
		return
	}
	defer hc.CloseIdleConnections()
	body := leaseBytes(b, 0)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		url := fmt.Sprintf("https://%s/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-%d", addr, i%leases)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/vnd.kubernetes.protobuf")
		resp, err := hc.Do(req)
		if err != nil {
			select {
			case <-stop:
			default:
				b.Errorf("PUT: %v", err)
			}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// runChild is the measured process.
func runChild(mode, addr string) error {
	ctx := context.Background()
	var cl *clientv3.Client
	revs := &revisions{rev: map[string]int64{}}
	if strings.Contains(mode, "etcd") {
		dir, err := os.MkdirTemp("", "floor-etcd-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		cport, pport, err := freePorts()
		if err != nil {
			return err
		}
		e, err := etcd.Start(ctx, etcd.Config{Dir: filepath.Join(dir, "etcd"), ClientPort: cport, PeerPort: pport})
		if err != nil {
			return err
		}
		defer e.Close()
		cl = e.Client()
		// Every key exists first, as every node's Lease does.
		for i := range leases {
			resp, err := cl.Put(ctx, leaseKey(i), string(leaseBytes(nil, i)))
			if err != nil {
				return err
			}
			revs.rev[leaseKey(i)] = resp.Header.Revision
		}
	}
	// The parent closes stdin when it is done, or by dying.
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	switch mode {
	case "etcd-idle":
		<-done
		return nil
	case "etcd":
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return nil
			case <-tick.C:
			}
			if err := revs.casPut(ctx, cl, leaseKey(i%leases), leaseBytes(nil, i%leases)); err != nil {
				return err
			}
		}
	case "https", "https+etcd":
		pod := podBody()
		cert, err := selfSigned()
		if err != nil {
			return err
		}
		srv := &http.Server{
			Addr:              addr,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
			ReadHeaderTimeout: 10 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if cl != nil && r.Method == http.MethodPut {
					if err := revs.casPut(r.Context(), cl, storageKey(r.URL.Path), body); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
				}
				if r.Method == http.MethodGet {
					body = pod
				}
				w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf")
				_, _ = w.Write(body)
			}),
		}
		go func() { <-done; _ = srv.Close() }()
		if err := srv.ListenAndServeTLS("", ""); err != nil && err != http.ErrServerClosed {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// revisions remembers each key's last revision, as the API server's cache
// does, so that an update is one transaction and no read.
type revisions struct {
	mu  sync.Mutex
	rev map[string]int64
}

// casPut writes value to key if its revision is still the one it last
// wrote, as the API server's update does.
func (r *revisions) casPut(ctx context.Context, cl *clientv3.Client, key string, value []byte) error {
	r.mu.Lock()
	rev := r.rev[key]
	r.mu.Unlock()
	resp, err := cl.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(value))).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s: revision %d is stale", key, rev)
	}
	r.mu.Lock()
	r.rev[key] = resp.Header.Revision
	r.mu.Unlock()
	return nil
}

func leaseKey(i int) string { return fmt.Sprintf("/registry/leases/kube-node-lease/node-%d", i) }

// storageKey is where the API server stores the object of a request path
// .../namespaces/NS/RESOURCE/NAME: /registry/RESOURCE/NS/NAME.
func storageKey(path string) string {
	seg := strings.Split(path, "/")
	if len(seg) < 3 {
		return "/registry" + path
	}
	n := len(seg)
	return "/registry/" + seg[n-2] + "/" + seg[n-3] + "/" + seg[n-1]
}

// leaseBytes is a node's Lease as the API server stores it: protobuf in
// Kubernetes' envelope, with the managedFields entry the node's updates
// leave.
func leaseBytes(tb testing.TB, i int) []byte {
	now := metav1.NewMicroTime(time.Now())
	name := fmt.Sprintf("node-%d", i)
	l := &coordinationv1.Lease{
		TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "kube-node-lease", UID: "0a6f4d5e-7b8c-4d9e-8f01-23456789abcd",
			CreationTimestamp: metav1.Now(),
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: "1b7f4d5e-7b8c-4d9e-8f01-23456789abcd"}},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "skiff-kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "coordination.k8s.io/v1",
				Time: &metav1.Time{Time: now.Time}, FieldsType: "FieldsV1",
				FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:ownerReferences":{".":{},"k:{\"uid\":\"1b7f4d5e-7b8c-4d9e-8f01-23456789abcd\"}":{}}},"f:spec":{"f:holderIdentity":{},"f:leaseDurationSeconds":{},"f:renewTime":{}}}`)},
			}},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(40)), RenewTime: &now},
	}
	raw, err := l.Marshal()
	if err != nil && tb != nil {
		tb.Fatal(err)
	}
	return append([]byte("k8s\x00"), raw...)
}

// cpuOf is the user and system CPU time of process pid so far.
func cpuOf(tb testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	// After the command: state is field 3 of stat, so utime (14) and
	// stime (15) are f[11] and f[12]; the clock ticks at 100 Hz on Linux.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func freePorts() (int, int, error) {
	var ports [2]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		defer func() { _ = l.Close() }()
	}
	return ports[0], ports[1], nil
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

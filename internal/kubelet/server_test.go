package kubelet

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCA signs client certificates for the server tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// client returns a client certificate for user.
func (ca *testCA) client(t *testing.T, user string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: user},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// logsRuntime is a runtime that only lists containers.
type logsRuntime struct {
	Runtime
	mu         sync.Mutex
	containers []Container
}

func (r *logsRuntime) ListContainers(context.Context) ([]Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Container(nil), r.containers...), nil
}

func (r *logsRuntime) setState(id string, s ContainerState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.containers {
		if r.containers[i].ID == id {
			r.containers[i].State = s
		}
	}
}

// serverFixture is a kubelet server over one pod "web" in "default" with
// containers "app" (restarted once: attempt 0 exited, attempt 1 running)
// and "sidecar" (waiting), behind a TLS listener.
type serverFixture struct {
	ca     *testCA
	rt     *logsRuntime
	url    string
	appLog string
}

func newServerFixture(t *testing.T) *serverFixture {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("app-0.log", "2024-01-01T00:00:01Z stdout F run 0\n")
	cur := write("app-1.log", "2024-01-01T00:00:02Z stdout F run 1 line 1\n2024-01-01T00:00:03Z stderr F run 1 line 2\n")
	rt := &logsRuntime{containers: []Container{
		{ID: "app0", Name: "app", Attempt: 0, State: ContainerExited, LogPath: old},
		{ID: "app1", Name: "app", Attempt: 1, State: ContainerRunning, LogPath: cur},
	}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "sidecar"}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", ContainerID: "runc://app1", RestartCount: 1,
				State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: "runc://app0"}}},
			{Name: "sidecar", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
		}},
	}
	ca := newTestCA(t)
	s, err := NewServer(ServerConfig{
		Addr: "127.0.0.1:10250", Runtime: rt, ClientCA: ca.pool(),
		Pods: func(_ context.Context, ns, name string) (*corev1.Pod, error) {
			if ns == pod.Namespace && name == pod.Name {
				return pod, nil
			}
			return nil, nil
		},
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.TLS = s.TLSConfig()
	// The failed handshake of TestServerAuth is expected.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return &serverFixture{ca: ca, rt: rt, url: ts.URL, appLog: cur}
}

// get requests path with cert (nil: none) and returns the status and body.
func (f *serverFixture) get(t *testing.T, cert *tls.Certificate, path string) (int, string) {
	t.Helper()
	resp, err := f.client(cert).Get(f.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func (f *serverFixture) client(cert *tls.Certificate) *http.Client {
	// The serving certificate is self-signed: the API server does not
	// verify it, and neither do these tests.
	cfg := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func testLogger(*testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestServerAuth(t *testing.T) {
	f := newServerFixture(t)
	apiserver := f.ca.client(t, APIServerClientUser)
	other := f.ca.client(t, "system:node:other")
	const path = "/containerLogs/default/web/app"

	if code, body := f.get(t, &apiserver, path); code != http.StatusOK || body != "run 1 line 1\nrun 1 line 2\n" {
		t.Errorf("API server's certificate: got %d %q, want 200 and the log", code, body)
	}
	if code, body := f.get(t, nil, path); code != http.StatusUnauthorized {
		t.Errorf("no certificate: got %d %q, want 401", code, body)
	}
	if code, body := f.get(t, &other, path); code != http.StatusForbidden || !strings.Contains(body, "user=system:node:other") {
		t.Errorf("another user's certificate: got %d %q, want 403 naming the user", code, body)
	}
	// A certificate from another CA fails the handshake.
	stranger := newTestCA(t).client(t, APIServerClientUser)
	if resp, err := f.client(&stranger).Get(f.url + path); err == nil {
		resp.Body.Close()
		t.Errorf("certificate of another CA: got %d, want the TLS handshake to fail", resp.StatusCode)
	}
}

func TestServerContainerLogs(t *testing.T) {
	f := newServerFixture(t)
	cert := f.ca.client(t, APIServerClientUser)
	tests := []struct {
		path     string
		code     int
		body     string
		contains bool
	}{
		{path: "/containerLogs/default/web/app", code: 200, body: "run 1 line 1\nrun 1 line 2\n"},
		{path: "/containerLogs/default/web/app?tailLines=1", code: 200, body: "run 1 line 2\n"},
		{path: "/containerLogs/default/web/app?previous=true", code: 200, body: "run 0\n"},
		{path: "/containerLogs/default/web/app?timestamps=true&tailLines=1", code: 200, body: "2024-01-01T00:00:03.000000000Z run 1 line 2\n"},
		{path: "/containerLogs/default/web/app?sinceTime=2024-01-01T00:00:03Z", code: 200, body: "run 1 line 2\n"},
		{path: "/containerLogs/default/web/app?limitBytes=3", code: 200, body: "run"},
		{path: "/containerLogs/default/web/app?tailLines=-1", code: 422, body: "tailLines: Invalid value: -1", contains: true},
		{path: "/containerLogs/default/nope/app", code: 404, body: "pod \"nope\" does not exist\n"},
		{path: "/containerLogs/default/web/nope", code: 404, body: "container \"nope\" not found in pod \"web\"\n"},
		{path: "/containerLogs/default/web/sidecar", code: 400, body: "container \"sidecar\" in pod \"web\" is waiting to start: ContainerCreating\n"},
		{path: "/containerLogs/default/web/sidecar?previous=true", code: 400, body: "previous terminated container \"sidecar\" in pod \"web\" not found\n"},
		{path: "/containerLogs/default/web", code: 404, body: "404", contains: true},
	}
	for _, tc := range tests {
		code, body := f.get(t, &cert, tc.path)
		if code != tc.code || (!tc.contains && body != tc.body) || (tc.contains && !strings.Contains(body, tc.body)) {
			t.Errorf("GET %s: got %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
}

func TestServerFollow(t *testing.T) {
	f := newServerFixture(t)
	cert := f.ca.client(t, APIServerClientUser)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/containerLogs/default/web/app?follow=true&tailLines=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.client(&cert).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: got status %d, want 200", resp.StatusCode)
	}
	lines := bufio.NewReader(resp.Body)
	readLine := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read followed line: %v (got %q)", err, l)
		}
		return l
	}
	if l := readLine(); l != "run 1 line 2\n" {
		t.Errorf("first line: got %q, want the tail line", l)
	}
	// A line the container writes later arrives while the stream is open.
	lf, err := os.OpenFile(f.appLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if _, err := lf.WriteString("2024-01-01T00:00:04Z stdout F later\n"); err != nil {
		t.Fatal(err)
	}
	if l := readLine(); l != "later\n" {
		t.Errorf("appended line: got %q, want %q", l, "later\n")
	}
	// The stream ends when the container stops.
	f.rt.setState("app1", ContainerExited)
	rest, err := io.ReadAll(lines)
	if err != nil || len(rest) != 0 {
		t.Errorf("after the container stopped: got %q, %v, want the stream to end", rest, err)
	}
}

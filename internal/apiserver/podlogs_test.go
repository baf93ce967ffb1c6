package apiserver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParsePodLogOptions(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	since := metav1.NewTime(time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC))
	tests := []struct {
		query   string
		want    corev1.PodLogOptions
		wantErr bool
	}{
		{query: "", want: corev1.PodLogOptions{}},
		{query: "container=app&follow=true&previous=1&timestamps&insecureSkipTLSVerifyBackend=true",
			want: corev1.PodLogOptions{Container: "app", Follow: true, Previous: true, Timestamps: true, InsecureSkipTLSVerifyBackend: true}},
		{query: "follow=false&previous=0", want: corev1.PodLogOptions{}},
		{query: "tailLines=2&limitBytes=10&sinceSeconds=5", want: corev1.PodLogOptions{TailLines: i(2), LimitBytes: i(10), SinceSeconds: i(5)}},
		{query: "sinceTime=2024-01-01T11:00:00Z", want: corev1.PodLogOptions{SinceTime: &since}},
		{query: "tailLines=two", wantErr: true},
		{query: "sinceTime=today", wantErr: true},
	}
	for _, tc := range tests {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parsePodLogOptions(q)
		if tc.wantErr {
			if !apierrors.IsBadRequest(err) {
				t.Errorf("parsePodLogOptions(%q): got %v, want a 400", tc.query, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePodLogOptions(%q): %v", tc.query, err)
			continue
		}
		if !apiequality.Semantic.DeepEqual(*got, tc.want) {
			t.Errorf("parsePodLogOptions(%q): got %+v, want %+v", tc.query, *got, tc.want)
		}
	}
}

func TestValidatePodLogOptions(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	now := metav1.Now()
	tests := []struct {
		opts corev1.PodLogOptions
		want string
	}{
		{opts: corev1.PodLogOptions{TailLines: i(0), LimitBytes: i(1), SinceSeconds: i(1)}, want: ""},
		{opts: corev1.PodLogOptions{TailLines: i(-1)}, want: "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{opts: corev1.PodLogOptions{LimitBytes: i(0)}, want: "limitBytes: Invalid value: 0: must be greater than 0"},
		{opts: corev1.PodLogOptions{SinceSeconds: i(0)}, want: "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{opts: corev1.PodLogOptions{SinceSeconds: i(1), SinceTime: &now}, want: "sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
	}
	for _, tc := range tests {
		got := validatePodLogOptions(&tc.opts).ToAggregate()
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("validate %+v: got %v, want no error", tc.opts, got)
		case tc.want != "" && (got == nil || got.Error() != tc.want):
			t.Errorf("validate %+v: got %v, want %q", tc.opts, got, tc.want)
		}
	}
}

func TestLogContainer(t *testing.T) {
	pod := func(annotation string, names ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
		if annotation != "" {
			p.Annotations = map[string]string{defaultContainerAnnotation: annotation}
		}
		for _, n := range names {
			if strings.HasPrefix(n, "init:") {
				p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: strings.TrimPrefix(n, "init:")})
				continue
			}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
		}
		return p
	}
	tests := []struct {
		name      string
		pod       *corev1.Pod
		container string
		want      string
		wantErr   string
	}{
		{name: "only container", pod: pod("", "app"), want: "app"},
		{name: "named", pod: pod("", "a", "b"), container: "b", want: "b"},
		{name: "init container named", pod: pod("", "init:setup", "app"), container: "setup", want: "setup"},
		{name: "annotation", pod: pod("b", "a", "b"), want: "b"},
		{name: "annotation naming no container", pod: pod("x", "a", "b"),
			wantErr: "a container name must be specified for pod web, choose one of: [a b]"},
		{name: "several", pod: pod("", "init:setup", "a", "b"),
			wantErr: "a container name must be specified for pod web, choose one of: [setup a b]"},
		{name: "invalid", pod: pod("", "app"), container: "x", wantErr: "container x is not valid for pod web"},
		{name: "none", pod: pod(""), wantErr: "a container name must be specified for pod web"},
	}
	for _, tc := range tests {
		got, err := logContainer(tc.pod, tc.container)
		if tc.wantErr != "" {
			if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
				t.Errorf("%s: got %q, %v, want 400 %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v, want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestKubeletLogURL(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	since := metav1.NewTime(time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: "n1"},
			{Type: corev1.NodeInternalIP, Address: "10.0.0.5"},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
	}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	tests := []struct {
		node *corev1.Node
		opts corev1.PodLogOptions
		want string
	}{
		{node: node, want: "https://10.0.0.5:10250/containerLogs/ns/web/app"},
		{node: node, opts: corev1.PodLogOptions{Follow: true, Previous: true, Timestamps: true, TailLines: i(2), LimitBytes: i(9), SinceSeconds: i(3)},
			want: "https://10.0.0.5:10250/containerLogs/ns/web/app?follow=true&limitBytes=9&previous=true&sinceSeconds=3&tailLines=2&timestamps=true"},
		{node: node, opts: corev1.PodLogOptions{SinceTime: &since}, want: "https://10.0.0.5:10250/containerLogs/ns/web/app?sinceTime=2024-01-01T11%3A00%3A00Z"},
		// No port published: upstream's default; no IP: the hostname.
		{node: &corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}}}},
			want: "https://n1:10250/containerLogs/ns/web/app"},
	}
	for _, tc := range tests {
		got, err := kubeletLogURL(tc.node, pod, "app", &tc.opts)
		if err != nil || got.String() != tc.want {
			t.Errorf("kubeletLogURL(%+v): got %v, %v, want %s", tc.opts, got, err, tc.want)
		}
	}
	if _, err := kubeletLogURL(&corev1.Node{}, pod, "app", &corev1.PodLogOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("node without addresses: got %v, want a 400", err)
	}
}

// fakeKubelet is a TLS server that requires a client certificate of the
// test CA and answers containerLogs requests with handler.
type fakeKubelet struct {
	url       string
	clientTLS *tls.Config
	// users records the client certificate names seen.
	users chan string
}

func newFakeKubelet(t *testing.T, handler http.HandlerFunc) *fakeKubelet {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	k := &fakeKubelet{users: make(chan string, 10),
		clientTLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.users <- r.TLS.VerifiedChains[0][0].Subject.CommonName
		handler(w, r)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k.url = srv.URL
	return k
}

// logCall is a pods/log call of pod ns/web as the handler makes it.
func logCall(ctx context.Context, kubeletTLS *tls.Config) (*call, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/namespaces/ns/pods/web/log", nil)
	s := &Server{cfg: Config{KubeletClientTLS: kubeletTLS}, log: discardLogger()}
	return &call{s: s, w: rec, r: r, ctx: ctx, info: &requestInfo{Verb: "get", Namespace: "ns", Name: "web", Resource: "pods", Subresource: "log"}}, rec
}

func TestStreamFromKubelet(t *testing.T) {
	var gotQuery url.Values
	var gotPath string
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotQuery = r.URL.Path, r.URL.Query()
		switch r.URL.Path {
		case "/containerLogs/ns/web/app":
			fmt.Fprint(w, "line 1\nline 2\n")
		case "/containerLogs/ns/web/waiting":
			http.Error(w, `container "waiting" in pod "web" is waiting to start: ContainerCreating`, http.StatusBadRequest)
		case "/containerLogs/ns/web/gone":
			http.Error(w, `pod "web" does not exist`, http.StatusNotFound)
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	})
	base, _ := url.Parse(k.url)
	tail := int64(2)
	loc := *base
	loc.Path, loc.RawQuery = "/containerLogs/ns/web/app", "tailLines=2"
	c, rec := logCall(t.Context(), k.clientTLS)
	if err := c.streamFromKubelet("n1", &loc, &corev1.PodLogOptions{TailLines: &tail}); err != nil {
		t.Fatalf("streamFromKubelet: %v", err)
	}
	if rec.Code != 200 || rec.Body.String() != "line 1\nline 2\n" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("got %d %q (%s), want 200 and the kubelet's text", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	if gotPath != "/containerLogs/ns/web/app" || gotQuery.Get("tailLines") != "2" {
		t.Errorf("kubelet saw %s?%s, want /containerLogs/ns/web/app?tailLines=2", gotPath, gotQuery.Encode())
	}
	if u := <-k.users; u != "kube-apiserver-kubelet-client" {
		t.Errorf("kubelet saw client %q, want the API server's kubelet-client identity", u)
	}

	for _, tc := range []struct {
		container string
		code      int32
		msg       string
	}{
		{"waiting", 400, `container "waiting" in pod "web" is waiting to start: ContainerCreating`},
		{"gone", 404, `pod "web" does not exist`},
		{"other", 500, "Internal error occurred: boom"},
	} {
		loc := *base
		loc.Path = "/containerLogs/ns/web/" + tc.container
		c, _ := logCall(t.Context(), k.clientTLS)
		err := c.streamFromKubelet("n1", &loc, &corev1.PodLogOptions{})
		var se *apierrors.StatusError
		if !errors.As(err, &se) || se.ErrStatus.Code != tc.code || se.ErrStatus.Message != tc.msg {
			t.Errorf("kubelet error for %s: got %v, want %d %q", tc.container, err, tc.code, tc.msg)
		}
	}
}

func TestStreamFromKubeletFollow(t *testing.T) {
	release := make(chan struct{})
	k := newFakeKubelet(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "second\n")
	})
	loc, _ := url.Parse(k.url + "/containerLogs/ns/web/app?follow=true")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A real HTTP server between the call and the test shows what the
	// client receives while the stream is open.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := logCall(r.Context(), k.clientTLS)
		c.w = w
		if err := c.streamFromKubelet("n1", loc, &corev1.PodLogOptions{Follow: true}); err != nil {
			t.Errorf("streamFromKubelet: %v", err)
		}
	}))
	defer front.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("first followed line: got %q, %v", l, err)
	}
	close(release)
	if l, err := br.ReadString('\n'); err != nil || l != "second\n" {
		t.Fatalf("second followed line: got %q, %v", l, err)
	}
}

func TestStreamFromKubeletUnreachable(t *testing.T) {
	// A port nothing listens on: a simulated node publishes a kubelet
	// port but serves nothing there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	loc, _ := url.Parse("https://" + addr + "/containerLogs/ns/web/app")
	c, _ := logCall(t.Context(), &tls.Config{})
	start := time.Now()
	err = c.streamFromKubelet("sim-1", loc, &corev1.PodLogOptions{})
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Code != http.StatusBadGateway || !strings.Contains(se.ErrStatus.Message, `node "sim-1"`) {
		t.Errorf("unreachable kubelet: got %v, want a 502 naming the node", err)
	}
	if took := time.Since(start); took > kubeletDialTimeout+time.Second {
		t.Errorf("unreachable kubelet: took %v, want at most the %v dial timeout", took, kubeletDialTimeout)
	}

	c, _ = logCall(t.Context(), nil)
	if err := c.streamFromKubelet("n1", loc, &corev1.PodLogOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("no kubelet client certificate: got %v, want 503", err)
	}
}

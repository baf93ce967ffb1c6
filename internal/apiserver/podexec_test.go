package apiserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseExecOptions(t *testing.T) {
	tests := []struct {
		query   string
		want    execOptions
		wantErr string
	}{
		{query: "command=echo&command=hi&stdout=true&stderr=true&container=app",
			want: execOptions{container: "app", command: []string{"echo", "hi"}, stdout: true, stderr: true}},
		{query: "command=sh&stdin=1&stdout=1&tty=true&stderr=false",
			want: execOptions{command: []string{"sh"}, stdin: true, stdout: true, tty: true}},
		{query: "stdout=true", wantErr: "you must specify at least one command for the container"},
		{query: "command=true&stdout=false", wantErr: "you must specify at least 1 of stdin, stdout, stderr"},
	}
	for _, tc := range tests {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseExecOptions(q)
		if tc.wantErr != "" {
			if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
				t.Errorf("parseExecOptions(%q): got %v, want 400 %q", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("parseExecOptions(%q): got %+v, %v, want %+v", tc.query, got, err, tc.want)
		}
	}
}

func TestParseAttachOptions(t *testing.T) {
	q, _ := url.ParseQuery("container=app&stdin=true&stdout=true&tty=true&command=ignored")
	got, err := parseAttachOptions(q)
	want := execOptions{container: "app", stdin: true, stdout: true, tty: true}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseAttachOptions: got %+v, %v, want %+v", got, err, want)
	}
	q, _ = url.ParseQuery("container=app")
	if _, err := parseAttachOptions(q); !apierrors.IsBadRequest(err) || err.Error() != "you must specify at least 1 of stdin, stdout, stderr" {
		t.Errorf("attach without streams: got %v, want a 400", err)
	}
}

func TestKubeletExecURL(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
	}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	got, err := kubeletExecURL(node, pod, "app", execOptions{command: []string{"sh", "-c", "exit 3"}, stdin: true, stdout: true})
	want := "https://10.0.0.5:10250/exec/ns/web/app?command=sh&command=-c&command=exit+3&stdin=1&stdout=1"
	if err != nil || got.String() != want {
		t.Errorf("kubeletExecURL: got %v, %v, want %s", got, err, want)
	}
	got, err = kubeletExecURL(node, pod, "app", execOptions{stdin: true, stdout: true, tty: true})
	want = "https://10.0.0.5:10250/attach/ns/web/app?stdin=1&stdout=1&tty=1"
	if err != nil || got.String() != want {
		t.Errorf("kubeletExecURL for attach: got %v, %v, want %s", got, err, want)
	}
	if _, err := kubeletExecURL(&corev1.Node{}, pod, "app", execOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("node without addresses: got %v, want a 400", err)
	}
}

// upgradeKubelet is a fake kubelet handler: /exec/ns/web/app switches to
// protocol "test" and echoes lines upper-cased; anything else is a 404.
func upgradeKubelet(seenAuth chan<- string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		seenAuth <- r.Header.Get("Authorization")
		if r.URL.Path != "/exec/ns/web/app" {
			http.Error(w, `container not found ("gone")`, http.StatusNotFound)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(rw, strings.ToUpper(line))
			_ = rw.Flush()
		}
	}
}

func TestProxyUpgrade(t *testing.T) {
	seenAuth := make(chan string, 4)
	k := newFakeKubelet(t, upgradeKubelet(seenAuth))
	base, _ := url.Parse(k.url)
	// The API server side: a plain HTTP server whose handler proxies to
	// the kubelet path named by the request's path.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loc := *base
		loc.Path = r.URL.Path
		s := &Server{cfg: Config{KubeletClientTLS: k.clientTLS}, log: discardLogger()}
		c := &call{s: s, w: w, r: r, ctx: r.Context(), info: &requestInfo{Verb: "create", Namespace: "ns", Name: "web", Resource: "pods", Subresource: "exec"}}
		if err := c.proxyUpgrade("n1", &loc); err != nil {
			writeError(w, r, err)
		}
	}))
	t.Cleanup(api.Close)

	conn, err := net.DialTimeout("tcp", api.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "POST /exec/ns/web/app HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer secret\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		fmt.Fprint(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != strings.ToUpper(msg) {
			t.Errorf("through the proxy: got %q, %v, want %q", got, err, strings.ToUpper(msg))
		}
	}
	if a := <-seenAuth; a != "" {
		t.Errorf("kubelet saw Authorization %q, want none", a)
	}

	// A kubelet error is a Status with its code and message.
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/exec/ns/web/gone", nil)
	req.Header.Set("Upgrade", "test")
	req.Header.Set("Connection", "Upgrade")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 404 || st.Code != 404 || st.Message != `container not found ("gone")` {
		t.Errorf("kubelet 404: got %d %s, want a 404 Status with the kubelet's message", resp.StatusCode, body)
	}
}

func TestProxyUpgradeUnreachable(t *testing.T) {
	k := newFakeKubelet(t, func(http.ResponseWriter, *http.Request) {})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/namespaces/ns/pods/web/exec", nil)
	s := &Server{cfg: Config{KubeletClientTLS: k.clientTLS}, log: discardLogger()}
	c := &call{s: s, w: rec, r: r, ctx: r.Context(), info: &requestInfo{Verb: "create", Namespace: "ns", Name: "web", Resource: "pods", Subresource: "exec"}}
	if err := c.proxyUpgrade("n1", &url.URL{Scheme: "https", Host: addr, Path: "/exec/ns/web/app"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), `cannot reach the kubelet of node \"n1\"`) {
		t.Errorf("unreachable kubelet: got %d %s, want 502 naming the node", rec.Code, rec.Body.String())
	}
}

func TestParsePortForwardPorts(t *testing.T) {
	tests := []struct {
		query   string
		want    string
		wantErr string
	}{
		{query: "", want: "[]"},
		{query: "ports=80&ports=8080", want: "[80 8080]"},
		{query: "ports=http", wantErr: `ports: invalid port "http"`},
		{query: "ports=0", wantErr: "port 0 must be between 1 and 65535, inclusive"},
		{query: "ports=70000", wantErr: "port 70000 must be between 1 and 65535, inclusive"},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		got, err := parsePortForwardPorts(q)
		if tc.wantErr != "" {
			if !apierrors.IsBadRequest(err) || err.Error() != tc.wantErr {
				t.Errorf("parsePortForwardPorts(%q): got %v, want 400 %q", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != tc.want {
			t.Errorf("parsePortForwardPorts(%q): got %v, %v, want %s", tc.query, got, err, tc.want)
		}
	}
}

func TestKubeletPortForwardURL(t *testing.T) {
	node := &corev1.Node{Status: corev1.NodeStatus{
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}},
	}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	got, err := kubeletPortForwardURL(node, pod, []int32{80})
	want := "https://10.0.0.5:10250/portForward/ns/web?port=80"
	if err != nil || got.String() != want {
		t.Errorf("kubeletPortForwardURL: got %v, %v, want %s", got, err, want)
	}
}

package kubelet

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	"golang.org/x/sys/unix"
)

func TestParseExecOptions(t *testing.T) {
	tests := []struct {
		query   string
		want    execOptions
		wantErr string
	}{
		{query: "command=echo&command=hi&stdout=1&stderr=true",
			want: execOptions{command: []string{"echo", "hi"}, stdout: true, stderr: true}},
		{query: "command=sh&stdin=1&stdout=1&stderr=1&tty=1",
			want: execOptions{command: []string{"sh"}, stdin: true, stdout: true, tty: true}},
		{query: "stdout=1", wantErr: "you must specify at least one command for the container"},
		{query: "command=true", wantErr: "you must specify at least 1 of stdin, stdout, stderr"},
	}
	for _, tc := range tests {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseExecOptions(q)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("parseExecOptions(%q): got error %v, want %q", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseExecOptions(%q): %v", tc.query, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("parseExecOptions(%q): got %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

// fakeExecRuntime runs a few fake commands: "echo ARGS" writes ARGS to stdout,
// "cat" copies stdin to stdout, "warn ARGS" writes to stderr, "exit N"
// exits with N, "broken" fails to exec and "ttysize" prints the size of
// its terminal.
type fakeExecRuntime struct {
	Runtime
	gotID string
}

func (r *fakeExecRuntime) Exec(_ context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	r.gotID = id
	switch cmd[0] {
	case "echo":
		fmt.Fprintln(stdout, strings.Join(cmd[1:], " "))
	case "warn":
		fmt.Fprintln(stderr, strings.Join(cmd[1:], " "))
	case "cat":
		if _, err := io.Copy(stdout, stdin); err != nil {
			return -1, err
		}
	case "exit":
		var n int
		fmt.Sscan(cmd[1], &n)
		return n, nil
	case "broken":
		return -1, errors.New("runc exploded")
	case "ttysize":
		f, ok := stdout.(*os.File)
		if !ok || !tty {
			fmt.Fprintln(stdout, "no terminal")
			return 1, nil
		}
		ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			return -1, err
		}
		fmt.Fprintf(stdout, "%d %d\n", ws.Row, ws.Col)
	}
	return 0, nil
}

// execFixture is a kubelet server with pod default/web whose container
// "app" runs as "app1" and "idle" waits; its IP is 127.0.0.1.
type execFixture struct {
	rt     *fakeExecRuntime
	srv    *Server
	url    string
	config *restclient.Config
}

func newExecFixture(t *testing.T) *execFixture {
	t.Helper()
	rt := &fakeExecRuntime{}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "idle"}}},
		Status: corev1.PodStatus{PodIP: "127.0.0.1", ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", ContainerID: "runc://app1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "idle", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
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
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cert := ca.client(t, APIServerClientUser)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &restclient.Config{Host: ts.URL, Timeout: 10 * time.Second, TLSClientConfig: restclient.TLSClientConfig{
		Insecure: true,
		CertData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		KeyData:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}}
	return &execFixture{rt: rt, srv: s, url: ts.URL, config: cfg}
}

// setRuntime makes the fixture's server use rt; call it before requests.
func (f *execFixture) setRuntime(t *testing.T, rt Runtime) {
	t.Helper()
	f.srv.cfg.Runtime = rt
}

// execURL is the exec URL for container with the command and streams.
func (f *execFixture) execURL(container string, stdin bool, cmd ...string) *url.URL {
	q := url.Values{"command": cmd, "stdout": {"1"}, "stderr": {"1"}}
	if stdin {
		q.Set("stdin", "1")
	}
	u, _ := url.Parse(f.url + "/exec/default/web/" + container + "?" + q.Encode())
	return u
}

// executor is a client-go executor over SPDY or WebSocket.
func (f *execFixture) executor(t *testing.T, proto string, u *url.URL) remotecommand.Executor {
	t.Helper()
	var (
		e   remotecommand.Executor
		err error
	)
	switch proto {
	case "spdy":
		e, err = remotecommand.NewSPDYExecutor(f.config, http.MethodPost, u)
	case "websocket":
		e, err = remotecommand.NewWebSocketExecutor(f.config, http.MethodGet, u.String())
	case "websocket-v4":
		e, err = remotecommand.NewWebSocketExecutorForProtocols(f.config, http.MethodGet, u.String(), "v4.channel.k8s.io")
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestServerExec(t *testing.T) {
	f := newExecFixture(t)
	for _, proto := range []string{"spdy", "websocket", "websocket-v4"} {
		t.Run(proto, func(t *testing.T) {
			run := func(stdin io.Reader, cmd ...string) (string, string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var out, errOut bytes.Buffer
				err := f.executor(t, proto, f.execURL("app", stdin != nil, cmd...)).StreamWithContext(ctx,
					remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errOut})
				return out.String(), errOut.String(), err
			}
			if out, _, err := run(nil, "echo", "hi", "there"); err != nil || out != "hi there\n" {
				t.Errorf("echo: got %q, %v, want %q", out, err, "hi there\n")
			}
			if f.rt.gotID != "app1" {
				t.Errorf("exec container ID: got %q, want app1", f.rt.gotID)
			}
			if _, errOut, err := run(nil, "warn", "careful"); err != nil || errOut != "careful\n" {
				t.Errorf("stderr: got %q, %v, want %q", errOut, err, "careful\n")
			}
			_, _, err := run(nil, "exit", "3")
			var code exec.CodeExitError
			if !errors.As(err, &code) || code.Code != 3 {
				t.Errorf("exit 3: got %v, want an exit code 3", err)
			}
			if _, _, err := run(nil, "broken"); err == nil || !strings.Contains(err.Error(), "runc exploded") {
				t.Errorf("broken exec: got %v, want the runtime's error", err)
			}
			if proto == "websocket-v4" {
				return // v4 over WebSocket cannot close stdin
			}
			if out, _, err := run(strings.NewReader("abc"), "cat"); err != nil || out != "abc" {
				t.Errorf("cat: got %q, %v, want %q", out, err, "abc")
			}
		})
	}
}

func TestServerExecErrors(t *testing.T) {
	f := newExecFixture(t)
	client := func() *http.Client {
		tr, err := restclient.TransportFor(f.config)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}()
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/exec/default/web/app?stdout=1", http.StatusBadRequest, "you must specify at least one command for the container"},
		{"/exec/default/nope/app?command=true&stdout=1", http.StatusNotFound, `pod "nope" does not exist`},
		{"/exec/default/web/missing?command=true&stdout=1", http.StatusNotFound, `container not found ("missing")`},
		{"/exec/default/web/idle?command=true&stdout=1", http.StatusNotFound, `container "idle" in pod "web" is not running`},
	}
	for _, tc := range tests {
		resp, err := client.Post(f.url+tc.path, "", nil)
		if err != nil {
			t.Fatalf("POST %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantCode || strings.TrimSpace(string(body)) != tc.wantBody {
			t.Errorf("POST %s: got %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.wantCode, tc.wantBody)
		}
	}
}

// sizeQueue hands out one terminal size.
type sizeQueue struct {
	sizes chan *remotecommand.TerminalSize
}

func (q sizeQueue) Next() *remotecommand.TerminalSize { return <-q.sizes }

func TestServerExecTTY(t *testing.T) {
	f := newExecFixture(t)
	for _, proto := range []string{"spdy", "websocket"} {
		t.Run(proto, func(t *testing.T) {
			q := url.Values{"command": {"ttysize"}, "stdout": {"1"}, "stdin": {"1"}, "tty": {"1"}}
			u, _ := url.Parse(f.url + "/exec/default/web/app?" + q.Encode())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sizes := sizeQueue{sizes: make(chan *remotecommand.TerminalSize, 2)}
			sizes.sizes <- &remotecommand.TerminalSize{Width: 101, Height: 33}
			close(sizes.sizes)
			var out bytes.Buffer
			err := f.executor(t, proto, u).StreamWithContext(ctx, remotecommand.StreamOptions{
				Stdin: strings.NewReader(""), Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
			// The fake runtime does not make the terminal raw as runc
			// does, so the line ends as a terminal's.
			if err != nil || out.String() != "33 101\r\n" {
				t.Errorf("ttysize: got %q, %v, want %q", out.String(), err, "33 101\r\n")
			}
		})
	}
}

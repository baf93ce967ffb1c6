package kubelet

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// upperEchoServer listens on the loopback (the fixture pod's IP) and
// answers each line with the line upper-cased.
func upperEchoServer(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprint(c, strings.ToUpper(line))
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func TestPortForwardHost(t *testing.T) {
	tests := []struct {
		pod  corev1.Pod
		want string
	}{
		{corev1.Pod{Status: corev1.PodStatus{PodIP: "10.1.0.4"}}, "10.1.0.4"},
		{corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true}, Status: corev1.PodStatus{PodIP: "192.168.1.2"}}, "127.0.0.1"},
		{corev1.Pod{}, ""},
	}
	for _, tc := range tests {
		if got := portForwardHost(&tc.pod); got != tc.want {
			t.Errorf("portForwardHost(%+v): got %q, want %q", tc.pod.Status, got, tc.want)
		}
	}
}

func TestServerPortForward(t *testing.T) {
	f := newExecFixture(t)
	podPort := upperEchoServer(t)
	u, _ := url.Parse(f.url + "/portForward/default/web")
	for _, proto := range []string{"spdy", "websocket"} {
		t.Run(proto, func(t *testing.T) {
			var dialer httpstream.Dialer
			switch proto {
			case "spdy":
				tr, up, err := spdy.RoundTripperFor(f.config)
				if err != nil {
					t.Fatal(err)
				}
				dialer = spdy.NewDialer(up, &http.Client{Transport: tr}, http.MethodPost, u)
			case "websocket":
				d, err := portforward.NewSPDYOverWebsocketDialer(u, f.config)
				if err != nil {
					t.Fatal(err)
				}
				dialer = d
			}
			stop, ready := make(chan struct{}), make(chan struct{})
			var errOut strings.Builder
			pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"},
				[]string{fmt.Sprintf("0:%d", podPort), "0:1"}, stop, ready, io.Discard, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- pf.ForwardPorts() }()
			t.Cleanup(func() {
				close(stop)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Error("port forwarder did not stop")
				}
			})
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("ForwardPorts: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("port forwarder not ready after 10s")
			}
			ports, err := pf.GetPorts()
			if err != nil || len(ports) != 2 {
				t.Fatalf("GetPorts: %v, %v", ports, err)
			}
			// Two connections, one after the other, each both ways.
			for i := range 2 {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for _, msg := range []string{"hello\n", fmt.Sprintf("round %d\n", i)} {
					fmt.Fprint(c, msg)
					got, err := br.ReadString('\n')
					if err != nil || got != strings.ToUpper(msg) {
						t.Errorf("connection %d: got %q, %v, want %q", i, got, err, strings.ToUpper(msg))
					}
				}
				c.Close()
			}
			// A port nothing listens on: the client sees the connection
			// close, kubectl reports the kubelet's error.
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1].Local), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Errorf("forward to a closed port: read %d, %v, want the connection closed", n, err)
			}
			c.Close()
		})
	}
}

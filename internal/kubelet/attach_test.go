package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/skiff-sh/skiff/internal/cri"
)

// fakeAttachRuntime is fakeExecRuntime that can attach: it greets on
// stdout, copies stdin to stdout, reports the first terminal size on
// stderr and fails for container "broken1".
type fakeAttachRuntime struct {
	fakeExecRuntime
}

func (r *fakeAttachRuntime) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan cri.TerminalSize) error {
	if id == "broken1" {
		return fmt.Errorf("conmon gone")
	}
	fmt.Fprintf(stdout, "attached to %s\n", id)
	if resize != nil {
		select {
		case s := <-resize:
			fmt.Fprintf(stdout, "size %dx%d\n", s.Width, s.Height)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if stdin != nil {
		if _, err := io.Copy(stdout, stdin); err != nil {
			return err
		}
	}
	return nil
}

func TestServerAttach(t *testing.T) {
	f := newExecFixture(t)
	rt := &fakeAttachRuntime{}
	f.setRuntime(t, rt)
	attach := func(proto string, q string, opts remotecommand.StreamOptions) error {
		u, _ := url.Parse(f.url + "/attach/default/web/app?" + q)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return f.executor(t, proto, u).StreamWithContext(ctx, opts)
	}
	for _, proto := range []string{"spdy", "websocket"} {
		t.Run(proto, func(t *testing.T) {
			var out bytes.Buffer
			err := attach(proto, "stdin=1&stdout=1&stderr=1", remotecommand.StreamOptions{Stdin: strings.NewReader("typed\n"), Stdout: &out, Stderr: io.Discard})
			if want := "attached to app1\ntyped\n"; err != nil || out.String() != want {
				t.Errorf("attach: got %q, %v, want %q", out.String(), err, want)
			}
			out.Reset()
			sizes := &sizeQueue{sizes: make(chan *remotecommand.TerminalSize, 1)}
			sizes.sizes <- &remotecommand.TerminalSize{Width: 120, Height: 40}
			err = attach(proto, "stdout=1&tty=1", remotecommand.StreamOptions{Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
			if want := "attached to app1\nsize 120x40\n"; err != nil || out.String() != want {
				t.Errorf("attach with a TTY: got %q, %v, want %q", out.String(), err, want)
			}
		})
	}
}

func TestServerAttachErrors(t *testing.T) {
	f := newExecFixture(t)
	client := func(cfg *restclient.Config) *http.Client {
		tr, err := restclient.TransportFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}(f.config)
	post := func(path string) (int, string) {
		resp, err := client.Post(f.url+path, "", nil)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	// fakeExecRuntime cannot attach.
	if code, body := post("/attach/default/web/app?stdout=1"); code != http.StatusBadRequest || body != errAttachUnsupported.Error() {
		t.Errorf("attach without runtime support: got %d %q, want 400 %q", code, body, errAttachUnsupported)
	}
	f.setRuntime(t, &fakeAttachRuntime{})
	tests := []struct {
		path     string
		wantCode int
		wantBody string
	}{
		{"/attach/default/web/app", http.StatusBadRequest, "you must specify at least 1 of stdin, stdout, stderr"},
		{"/attach/default/web/idle?stdout=1", http.StatusNotFound, `container "idle" in pod "web" is not running`},
		{"/attach/default/nope/app?stdout=1", http.StatusNotFound, `pod "nope" does not exist`},
	}
	for _, tc := range tests {
		if code, body := post(tc.path); code != tc.wantCode || body != tc.wantBody {
			t.Errorf("POST %s: got %d %q, want %d %q", tc.path, code, body, tc.wantCode, tc.wantBody)
		}
	}
}

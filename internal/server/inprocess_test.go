package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// TestInProcessConnections checks that a request over an in-process
// connection is authenticated as the identity it was dialed with, that
// the same request over any other connection is not, and that a closed
// listener refuses connections.
func TestInProcessConnections(t *testing.T) {
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := inProcessAuthenticator{}.Authenticate(r)
		if err != nil || !ok {
			http.Error(w, "anonymous", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, u.Name+" "+strings.Join(u.Groups, ","))
	})
	l := newInProcessListener()
	srv := &http.Server{Handler: whoami, ConnContext: inProcessConnContext, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	get := func(rc *rest.Config, url string) (string, error) {
		hc, err := rest.HTTPClientFor(rc)
		if err != nil {
			return "", err
		}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url)
		if err != nil {
			return "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", errors.New(strings.TrimSpace(string(body)))
		}
		return string(body), err
	}
	for _, user := range []string{"system:kube-scheduler", "system:kube-controller-manager"} {
		rc := l.config(user)
		// Twice: a kept-alive connection keeps its identity.
		for range 2 {
			got, err := get(rc, rc.Host+"/whoami")
			if want := user + " system:authenticated"; err != nil || got != want {
				t.Errorf("in-process request as %s: got %q, %v; want %q", user, got, err, want)
			}
		}
	}

	// Over a real connection the handler sees no in-process identity.
	ts := httptest.NewServer(whoami)
	defer ts.Close()
	if got, err := get(&rest.Config{Host: ts.URL}, ts.URL+"/whoami"); err == nil {
		t.Errorf("request over TCP authenticated as %q, want refused", got)
	}

	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.dial(ctx, nil); err == nil {
		t.Error("dial after close succeeded, want an error")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after close: %v, want net.ErrClosed", err)
	}
}

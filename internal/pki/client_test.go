package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestIssueClientCert(t *testing.T) {
	b := mustEnsure(t, testConfig(t.TempDir()))
	tests := []struct {
		name         string
		user         string
		groups       []string
		validity     time.Duration
		wantValidity time.Duration
	}{
		{"admin", "system:admin", []string{"system:masters"}, 0, leafValidity},
		{"node", "system:node:node-1", []string{"system:nodes"}, 0, leafValidity},
		{"no groups", "jane", nil, time.Hour, time.Hour},
		{"several groups", "bob", []string{"dev", "ops"}, 24 * time.Hour, 24 * time.Hour},
		{"capped at CA expiry", "long", nil, 20 * caValidity, caValidity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			certPEM, keyPEM, err := b.IssueClientCert(tt.user, tt.groups, tt.validity)
			if err != nil {
				t.Fatalf("IssueClientCert: %v", err)
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("certificate and key do not pair: %v", err)
			}
			c := pair.Leaf
			if c.Subject.CommonName != tt.user {
				t.Errorf("CN: got %q, want %q", c.Subject.CommonName, tt.user)
			}
			if !slices.Equal(c.Subject.Organization, tt.groups) {
				t.Errorf("O: got %q, want %q", c.Subject.Organization, tt.groups)
			}
			if got, want := c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}; !slices.Equal(got, want) {
				t.Errorf("ExtKeyUsage: got %v, want %v", got, want)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: b.ClientCAs(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("verify as client: got %v, want success", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: b.ClientCAs(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Errorf("verify as server: got success, want error")
			}
			if got := c.NotAfter.Sub(start); got < tt.wantValidity-time.Minute || got > tt.wantValidity+time.Minute {
				t.Errorf("validity: got %v, want about %v", got, tt.wantValidity)
			}
			if c.NotAfter.After(b.CACert.NotAfter) {
				t.Errorf("NotAfter: got %v, want no later than the CA's %v", c.NotAfter, b.CACert.NotAfter)
			}
		})
	}

	if _, _, err := b.IssueClientCert("", nil, 0); err == nil {
		t.Errorf("IssueClientCert with empty user: got nil error, want error")
	}
}

func TestEnsureClientCert(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustEnsure(t, cfg)
	admin := []string{"system:masters"}

	crt1, key1, err := b.EnsureClientCert("admin", "system:admin", admin)
	if err != nil {
		t.Fatalf("EnsureClientCert: %v", err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(cfg.Dir, "client-admin.key"): 0o600,
		filepath.Join(cfg.Dir, "client-admin.crt"): 0o644,
	} {
		if got := fileMode(t, path); got != want {
			t.Errorf("mode of %s: got %v, want %v", path, got, want)
		}
	}

	// A restart loads a fresh Bundle; the certificate must survive it.
	restarted := mustEnsure(t, cfg)
	tests := []struct {
		name        string
		b           *Bundle
		user        string
		groups      []string
		wantReissue bool
	}{
		{"same bundle", b, "system:admin", admin, false},
		{"after restart", restarted, "system:admin", admin, false},
		{"groups changed", restarted, "system:admin", []string{"system:masters", "extra"}, true},
		{"user changed", restarted, "root", admin, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case starts from the original admin files.
			writeTestFile(t, filepath.Join(cfg.Dir, "client-admin.crt"), string(crt1))
			writeTestFile(t, filepath.Join(cfg.Dir, "client-admin.key"), string(key1))
			crt, key, err := tt.b.EnsureClientCert("admin", tt.user, tt.groups)
			if err != nil {
				t.Fatalf("EnsureClientCert: %v", err)
			}
			gotReissue := !bytes.Equal(crt, crt1)
			if gotReissue != tt.wantReissue {
				t.Errorf("re-issued: got %v, want %v", gotReissue, tt.wantReissue)
			}
			if gotReissue == bytes.Equal(key, key1) {
				t.Errorf("key replaced: got %v, want %v", !bytes.Equal(key, key1), gotReissue)
			}
			c, err := parseCert(crt)
			if err != nil {
				t.Fatal(err)
			}
			// DER sorts the values of one attribute set, so order is not kept.
			if c.Subject.CommonName != tt.user || !slices.Equal(slices.Sorted(slices.Values(c.Subject.Organization)), slices.Sorted(slices.Values(tt.groups))) {
				t.Errorf("subject: got CN=%q O=%q, want CN=%q O=%q", c.Subject.CommonName, c.Subject.Organization, tt.user, tt.groups)
			}
			if stored := readTestFile(t, filepath.Join(cfg.Dir, "client-admin.crt")); stored != string(crt) {
				t.Errorf("stored certificate differs from the returned one")
			}
		})
	}
}

func TestEnsureClientCertRejectsBadNames(t *testing.T) {
	b := mustEnsure(t, testConfig(t.TempDir()))
	for _, name := range []string{"", ".", "..", "../admin", "a/b", `a\b`, "ad min"} {
		if _, _, err := b.EnsureClientCert(name, "u", nil); err == nil {
			t.Errorf("EnsureClientCert(%q): got nil error, want error", name)
		}
	}
}

func TestWriteKubeconfig(t *testing.T) {
	b := mustEnsure(t, testConfig(t.TempDir()))
	crt, key, err := b.EnsureClientCert("admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "etc", "skiff", "skiff.yaml")
	// Overwriting a looser file must still leave 0600, so write twice with a
	// world-readable file in between.
	for i := range 2 {
		if err := WriteKubeconfig(path, "https://127.0.0.1:6443", b.CAPEM, crt, key); err != nil {
			t.Fatalf("WriteKubeconfig #%d: %v", i, err)
		}
		if got := fileMode(t, path); got != 0o600 {
			t.Errorf("kubeconfig mode after write #%d: got %v, want 0600", i, got)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("LoadFromFile: %v", err)
	}
	if cfg.CurrentContext != "skiff" {
		t.Errorf("current-context: got %q, want %q", cfg.CurrentContext, "skiff")
	}
	ctx := cfg.Contexts["skiff"]
	if ctx == nil || ctx.Cluster != "skiff" || ctx.AuthInfo != "skiff" {
		t.Fatalf("context skiff: got %+v, want cluster and user skiff", ctx)
	}
	cluster := cfg.Clusters["skiff"]
	if cluster == nil {
		t.Fatal("cluster skiff missing")
	}
	if cluster.Server != "https://127.0.0.1:6443" {
		t.Errorf("server: got %q, want %q", cluster.Server, "https://127.0.0.1:6443")
	}
	if !bytes.Equal(cluster.CertificateAuthorityData, b.CAPEM) {
		t.Errorf("certificate-authority-data: got %d bytes, want the CA PEM", len(cluster.CertificateAuthorityData))
	}
	user := cfg.AuthInfos["skiff"]
	if user == nil {
		t.Fatal("user skiff missing")
	}
	if !bytes.Equal(user.ClientCertificateData, crt) || !bytes.Equal(user.ClientKeyData, key) {
		t.Errorf("user skiff: got a different client certificate or key, want the issued ones")
	}
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 || len(cfg.Contexts) != 1 {
		t.Errorf("got %d clusters, %d users, %d contexts, want 1 each", len(cfg.Clusters), len(cfg.AuthInfos), len(cfg.Contexts))
	}

	if err := WriteKubeconfig(path, "", b.CAPEM, crt, key); err == nil {
		t.Errorf("WriteKubeconfig without server URL: got nil error, want error")
	}
}

// TestTLSHandshake runs a real HTTPS server with the serving certificate and
// mandatory client certificates, and connects through a kubeconfig, the way
// kubectl does.
func TestTLSHandshake(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := mustEnsure(t, cfg)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.TLS.PeerCertificates[0]
		fmt.Fprintf(w, "%s|%s", c.Subject.CommonName, strings.Join(c.Subject.Organization, ","))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{b.Serving},
		ClientCAs:    b.ClientCAs(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	// Handshake failures are expected below; keep them out of the test log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()

	admin, adminKey, err := b.EnsureClientCert("admin", "system:admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	foreign := mustEnsure(t, testConfig(t.TempDir()))
	foreignCrt, foreignKey, err := foreign.IssueClientCert("system:admin", []string{"system:masters"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	node, nodeKey, err := b.IssueClientCert("system:node:node-1", []string{"system:nodes"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		caPEM    []byte
		crt, key []byte
		wantBody string
		wantErr  bool
	}{
		{name: "admin", caPEM: b.CAPEM, crt: admin, key: adminKey, wantBody: "system:admin|system:masters"},
		{name: "node", caPEM: b.CAPEM, crt: node, key: nodeKey, wantBody: "system:node:node-1|system:nodes"},
		{name: "client cert from another CA", caPEM: b.CAPEM, crt: foreignCrt, key: foreignKey, wantErr: true},
		{name: "client trusts another CA", caPEM: foreign.CAPEM, crt: admin, key: adminKey, wantErr: true},
		{name: "no client cert", caPEM: b.CAPEM, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kubeconfig")
			if err := WriteKubeconfig(path, srv.URL, tt.caPEM, tt.crt, tt.key); err != nil {
				t.Fatal(err)
			}
			restCfg, err := clientcmd.BuildConfigFromFlags("", path)
			if err != nil {
				t.Fatalf("BuildConfigFromFlags: %v", err)
			}
			client, err := rest.HTTPClientFor(restCfg)
			if err != nil {
				t.Fatalf("HTTPClientFor: %v", err)
			}
			resp, err := client.Get(srv.URL + "/whoami")
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET: got status %s, want a TLS error", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.wantBody {
				t.Errorf("server saw: got %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestEnsureToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "token")
	tok, err := EnsureToken(path)
	if err != nil {
		t.Fatalf("EnsureToken: %v", err)
	}
	if len(tok) != 2*tokenBytes || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Errorf("token: got %q, want %d lowercase hex characters", tok, 2*tokenBytes)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("token file mode: got %v, want 0600", got)
	}
	if got := strings.TrimSpace(readTestFile(t, path)); got != tok {
		t.Errorf("token file: got %q, want %q", got, tok)
	}
	again, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if again != tok {
		t.Errorf("second EnsureToken: got %q, want %q", again, tok)
	}

	other, err := EnsureToken(filepath.Join(t.TempDir(), "token"))
	if err != nil {
		t.Fatal(err)
	}
	if other == tok {
		t.Errorf("two new tokens are equal (%q), want random", tok)
	}
}

func TestEnsureTokenExistingFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
		wantErr bool
	}{
		{name: "operator token", content: "  my-secret\n", want: "my-secret"},
		{name: "empty", content: "\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			writeTestFile(t, path, tt.content)
			got, err := EnsureToken(path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("EnsureToken: got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("token: got %q, want %q", got, tt.want)
			}
			if content := readTestFile(t, path); content != tt.content {
				t.Errorf("token file rewritten: got %q, want %q", content, tt.content)
			}
		})
	}
}

func TestEnsureTokenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = EnsureToken(path) })
	}
	wg.Wait()
	stored := strings.TrimSpace(readTestFile(t, path))
	for i := range n {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		} else if got[i] != stored {
			t.Errorf("caller %d: got %q, want the stored %q", i, got[i], stored)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory: got %d entries, want only the token", len(entries))
	}
}

package pki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseJoinToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		in, wantHash, wantSecret string
		wantErr                  bool
	}{
		{in: "s3cret", wantSecret: "s3cret"},
		{in: "K10" + hash + "::s3cret\n", wantHash: hash, wantSecret: "s3cret"},
		{in: "K10" + strings.ToUpper(hash) + "::x", wantHash: hash, wantSecret: "x"},
		{in: "", wantErr: true},
		{in: "K10abc::x", wantErr: true},
		{in: "K10" + hash + "::", wantErr: true},
		{in: "K11" + hash + "::x", wantErr: true},
		{in: "K10" + strings.Repeat("zz", 32) + "::x", wantErr: true},
	}
	for _, tt := range tests {
		h, s, err := ParseJoinToken(tt.in)
		if (err != nil) != tt.wantErr || h != tt.wantHash || s != tt.wantSecret {
			t.Errorf("ParseJoinToken(%q): got %q, %q, %v; want %q, %q, error %v", tt.in, h, s, err, tt.wantHash, tt.wantSecret, tt.wantErr)
		}
	}
}

func TestEnsureJoinToken(t *testing.T) {
	b, err := Ensure(Config{Dir: filepath.Join(t.TempDir(), "tls"), ServingDNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("bare-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full, secret, err := EnsureJoinToken(path, b.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "bare-secret" || full != "K10"+CAHash(b.CACert)+"::bare-secret" {
		t.Errorf("got %q, %q; want the bare secret kept and the CA hash added", full, secret)
	}
	data, _ := os.ReadFile(path)
	if strings.TrimSpace(string(data)) != full {
		t.Errorf("token file: got %q, want %q", data, full)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: got %v, want 0600", info.Mode().Perm())
	}
	again, secret2, err := EnsureJoinToken(path, b.CACert)
	if err != nil || again != full || secret2 != secret {
		t.Errorf("second call: got %q, %q, %v; want %q, %q", again, secret2, err, full, secret)
	}
	// A fresh file gets a generated secret.
	fresh, sec, err := EnsureJoinToken(filepath.Join(t.TempDir(), "token"), b.CACert)
	if err != nil || len(sec) != 64 || !strings.HasSuffix(fresh, "::"+sec) {
		t.Errorf("fresh token: got %q, %q, %v", fresh, sec, err)
	}
}

func TestServingChainCarriesCA(t *testing.T) {
	b, err := Ensure(Config{Dir: filepath.Join(t.TempDir(), "tls"), ServingDNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(c tls.Certificate) {
		t.Helper()
		if len(c.Certificate) != 2 {
			t.Fatalf("served chain: got %d certificates, want leaf and CA", len(c.Certificate))
		}
		ca, err := x509.ParseCertificate(c.Certificate[1])
		if err != nil || CAHash(ca) != CAHash(b.CACert) {
			t.Errorf("second certificate in chain: got %v, want the CA", err)
		}
	}
	check(b.Serving)
	// Loaded from disk on a second start, too.
	b2, err := Ensure(Config{Dir: b.dir, ServingDNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	check(b2.Serving)
}

package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testConfig(dir string) Config {
	return Config{
		Dir:        dir,
		ServingIPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		ServingDNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", "node-1",
		},
	}
}

func mustEnsure(t *testing.T, cfg Config) *Bundle {
	t.Helper()
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	return fi.Mode().Perm()
}

func TestEnsureCreatesFilesWithModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "server", "tls")
	mustEnsure(t, testConfig(dir))

	tests := []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{filepath.Join(dir, "ca.key"), 0o600},
		{filepath.Join(dir, "serving.key"), 0o600},
		{filepath.Join(dir, "ca.crt"), 0o644},
		{filepath.Join(dir, "serving.crt"), 0o644},
	}
	for _, tt := range tests {
		if got := fileMode(t, tt.path); got != tt.want {
			t.Errorf("mode of %s: got %v, want %v", tt.path, got, tt.want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestEnsureReusesCAAndServing(t *testing.T) {
	dir := t.TempDir()
	first := mustEnsure(t, testConfig(dir))
	second := mustEnsure(t, testConfig(dir))

	if !bytes.Equal(first.CACert.Raw, second.CACert.Raw) {
		t.Errorf("CA changed between starts: got serial %v, want %v", second.CACert.SerialNumber, first.CACert.SerialNumber)
	}
	if !bytes.Equal(first.CAPEM, second.CAPEM) {
		t.Errorf("CAPEM changed between starts")
	}
	if !bytes.Equal(first.Serving.Leaf.Raw, second.Serving.Leaf.Raw) {
		t.Errorf("serving certificate re-issued without reason: got serial %v, want %v",
			second.Serving.Leaf.SerialNumber, first.Serving.Leaf.SerialNumber)
	}
	if !first.caKey.Public().(*ecdsa.PublicKey).Equal(second.caKey.Public()) {
		t.Errorf("CA key changed between starts")
	}
}

func TestEnsureCertificateProperties(t *testing.T) {
	start := time.Now()
	b := mustEnsure(t, testConfig(t.TempDir()))

	ca := b.CACert
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: got IsCA=%v KeyUsage=%v, want a certificate-signing CA", ca.IsCA, ca.KeyUsage)
	}
	if got, want := ca.NotAfter.Sub(start), caValidity; got < want-time.Minute || got > want+time.Minute {
		t.Errorf("CA validity: got %v, want about %v", got, want)
	}
	if k, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key: got %T, want ECDSA P-256", ca.PublicKey)
	}

	leaf := b.Serving.Leaf
	if leaf == nil {
		t.Fatal("Serving.Leaf is nil")
	}
	if got, want := leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}; !slices.Equal(got, want) {
		t.Errorf("serving ExtKeyUsage: got %v, want %v", got, want)
	}
	if leaf.IsCA {
		t.Errorf("serving certificate: got IsCA=true, want false")
	}
	if got, want := leaf.NotAfter.Sub(start), leafValidity; got < want-time.Minute || got > want+time.Minute {
		t.Errorf("serving validity: got %v, want about %v", got, want)
	}
	if !leaf.NotBefore.Before(start) {
		t.Errorf("serving NotBefore: got %v, want before %v (backdated for clock skew)", leaf.NotBefore, start)
	}
}

func TestServingCertVerifiesForRequestedSANs(t *testing.T) {
	b := mustEnsure(t, testConfig(t.TempDir()))
	roots := b.ClientCAs()

	tests := []struct {
		host    string
		wantErr bool
	}{
		{"127.0.0.1", false},
		{"10.96.0.1", false},
		{"localhost", false},
		{"kubernetes", false},
		{"kubernetes.default", false},
		{"kubernetes.default.svc", false},
		{"kubernetes.default.svc.cluster.local", false},
		{"node-1", false},
		{"NODE-1", false},
		{"10.96.0.2", true},
		{"example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			_, err := b.Serving.Leaf.Verify(x509.VerifyOptions{
				Roots:     roots,
				DNSName:   tt.host,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("verify for %q: got error %v, want error %v", tt.host, err, tt.wantErr)
			}
		})
	}
}

func TestEnsureServingReissue(t *testing.T) {
	tests := []struct {
		name string
		// change runs after a first Ensure and may edit files or cfg.
		change      func(t *testing.T, cfg *Config)
		wantReissue bool
	}{
		{
			name:   "nothing changed",
			change: func(*testing.T, *Config) {},
		},
		{
			name:   "fewer SANs requested",
			change: func(_ *testing.T, cfg *Config) { cfg.ServingDNSNames = cfg.ServingDNSNames[:2] },
		},
		{
			name: "names differ in case and duplicates",
			change: func(_ *testing.T, cfg *Config) {
				cfg.ServingDNSNames = append(cfg.ServingDNSNames, "LOCALHOST", "Node-1")
				cfg.ServingIPs = append(cfg.ServingIPs, net.ParseIP("127.0.0.1").To4())
			},
		},
		{
			name:        "IP added",
			change:      func(_ *testing.T, cfg *Config) { cfg.ServingIPs = append(cfg.ServingIPs, net.ParseIP("192.168.1.10")) },
			wantReissue: true,
		},
		{
			name:        "IP given as DNS name",
			change:      func(_ *testing.T, cfg *Config) { cfg.ServingDNSNames = append(cfg.ServingDNSNames, "fd00::1") },
			wantReissue: true,
		},
		{
			name:        "DNS name added",
			change:      func(_ *testing.T, cfg *Config) { cfg.ServingDNSNames = append(cfg.ServingDNSNames, "node-2") },
			wantReissue: true,
		},
		{
			name: "within 90 days of expiry",
			change: func(_ *testing.T, cfg *Config) {
				at := time.Now().Add(leafValidity - renewBefore + time.Hour)
				cfg.Now = func() time.Time { return at }
			},
			wantReissue: true,
		},
		{
			name: "expired",
			change: func(_ *testing.T, cfg *Config) {
				at := time.Now().Add(leafValidity + time.Hour)
				cfg.Now = func() time.Time { return at }
			},
			wantReissue: true,
		},
		{
			name: "signed by another CA",
			change: func(t *testing.T, cfg *Config) {
				other := t.TempDir()
				mustEnsure(t, testConfig(other))
				copyFile(t, filepath.Join(other, "serving.crt"), filepath.Join(cfg.Dir, "serving.crt"))
				copyFile(t, filepath.Join(other, "serving.key"), filepath.Join(cfg.Dir, "serving.key"))
			},
			wantReissue: true,
		},
		{
			name: "corrupt certificate",
			change: func(t *testing.T, cfg *Config) {
				writeTestFile(t, filepath.Join(cfg.Dir, "serving.crt"), "garbage")
			},
			wantReissue: true,
		},
		{
			name: "key does not match certificate",
			change: func(t *testing.T, cfg *Config) {
				b := mustEnsure(t, *cfg)
				_, key, err := b.IssueClientCert("x", nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				writeTestFile(t, filepath.Join(cfg.Dir, "serving.key"), string(key))
			},
			wantReissue: true,
		},
		{
			name: "key missing",
			change: func(t *testing.T, cfg *Config) {
				if err := os.Remove(filepath.Join(cfg.Dir, "serving.key")); err != nil {
					t.Fatal(err)
				}
			},
			wantReissue: true,
		},
		{
			name: "client certificate in place of serving certificate",
			change: func(t *testing.T, cfg *Config) {
				b := mustEnsure(t, *cfg)
				crt, key, err := b.IssueClientCert("x", nil, 0)
				if err != nil {
					t.Fatal(err)
				}
				writeTestFile(t, filepath.Join(cfg.Dir, "serving.key"), string(key))
				writeTestFile(t, filepath.Join(cfg.Dir, "serving.crt"), string(crt))
			},
			wantReissue: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			first := mustEnsure(t, cfg)
			tt.change(t, &cfg)
			second := mustEnsure(t, cfg)

			if !bytes.Equal(first.CACert.Raw, second.CACert.Raw) {
				t.Errorf("CA changed: got serial %v, want %v", second.CACert.SerialNumber, first.CACert.SerialNumber)
			}
			gotReissue := !bytes.Equal(first.Serving.Leaf.Raw, second.Serving.Leaf.Raw)
			if gotReissue != tt.wantReissue {
				t.Errorf("serving certificate re-issued: got %v, want %v", gotReissue, tt.wantReissue)
			}
			// Whatever happened, the result must serve every requested name
			// at the configured time, and be what the next start loads.
			ips, names, err := servingSANs(cfg.ServingIPs, cfg.ServingDNSNames)
			if err != nil {
				t.Fatal(err)
			}
			if !coversSANs(second.Serving.Leaf, ips, names) {
				t.Errorf("serving SANs: got IPs %v names %v, want to cover IPs %v names %v",
					second.Serving.Leaf.IPAddresses, second.Serving.Leaf.DNSNames, ips, names)
			}
			if err := second.Serving.Leaf.CheckSignatureFrom(second.CACert); err != nil {
				t.Errorf("serving certificate not signed by CA: %v", err)
			}
			third := mustEnsure(t, cfg)
			if !bytes.Equal(third.Serving.Leaf.Raw, second.Serving.Leaf.Raw) {
				t.Errorf("re-issued serving certificate was not persisted: got serial %v, want %v",
					third.Serving.Leaf.SerialNumber, second.Serving.Leaf.SerialNumber)
			}
		})
	}
}

func TestEnsureCAFailures(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, cfg *Config)
		wantErr string
	}{
		{
			name: "CA key missing",
			change: func(t *testing.T, cfg *Config) {
				if err := os.Remove(filepath.Join(cfg.Dir, "ca.key")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "its key",
		},
		{
			name: "CA certificate corrupt",
			change: func(t *testing.T, cfg *Config) {
				writeTestFile(t, filepath.Join(cfg.Dir, "ca.crt"), "garbage")
			},
			wantErr: "parse CA certificate",
		},
		{
			name: "CA key does not match",
			change: func(t *testing.T, cfg *Config) {
				copyFile(t, filepath.Join(cfg.Dir, "serving.key"), filepath.Join(cfg.Dir, "ca.key"))
			},
			wantErr: "does not match",
		},
		{
			name: "CA certificate is a leaf",
			change: func(t *testing.T, cfg *Config) {
				copyFile(t, filepath.Join(cfg.Dir, "serving.crt"), filepath.Join(cfg.Dir, "ca.crt"))
				copyFile(t, filepath.Join(cfg.Dir, "serving.key"), filepath.Join(cfg.Dir, "ca.key"))
			},
			wantErr: "not a CA",
		},
		{
			name: "CA expired",
			change: func(_ *testing.T, cfg *Config) {
				at := time.Now().Add(caValidity + time.Hour)
				cfg.Now = func() time.Time { return at }
			},
			wantErr: "expired",
		},
		{
			name:    "no SANs",
			change:  func(_ *testing.T, cfg *Config) { cfg.ServingIPs, cfg.ServingDNSNames = nil, []string{" "} },
			wantErr: "at least one",
		},
		{
			name:    "invalid IP",
			change:  func(_ *testing.T, cfg *Config) { cfg.ServingIPs = []net.IP{{1, 2, 3}} },
			wantErr: "invalid serving IP",
		},
		{
			name:    "no directory",
			change:  func(_ *testing.T, cfg *Config) { cfg.Dir = "" },
			wantErr: "no directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			mustEnsure(t, cfg)
			dir := cfg.Dir
			tt.change(t, &cfg)
			caBefore := readTestFile(t, filepath.Join(dir, "ca.crt"))
			_, err := Ensure(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Ensure: got error %v, want one containing %q", err, tt.wantErr)
			}
			// A failed Ensure must not replace a CA others may trust.
			if got := readTestFile(t, filepath.Join(dir, "ca.crt")); got != caBefore {
				t.Errorf("ca.crt was rewritten by a failing Ensure")
			}
		})
	}
}

func TestEnsureReplacesOrphanCAKey(t *testing.T) {
	cfg := testConfig(t.TempDir())
	orphan := mustEnsure(t, cfg)
	// What an interrupted first start leaves: the key without its certificate.
	if err := os.Remove(filepath.Join(cfg.Dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	b := mustEnsure(t, cfg)
	if bytes.Equal(b.CACert.Raw, orphan.CACert.Raw) {
		t.Fatalf("got the old CA back, want a new one")
	}
	if err := b.Serving.Leaf.CheckSignatureFrom(b.CACert); err != nil {
		t.Errorf("serving certificate after CA replacement: got %v, want signed by the new CA", err)
	}
}

func TestEnsureLoadsOperatorCAInPKCS8(t *testing.T) {
	cfg := testConfig(t.TempDir())
	first := mustEnsure(t, cfg)
	der, err := x509.MarshalPKCS8PrivateKey(first.caKey)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(cfg.Dir, "ca.key"), string(pemEncode(pemPKCS8Key, der)))
	second := mustEnsure(t, cfg)
	if !bytes.Equal(first.CACert.Raw, second.CACert.Raw) {
		t.Errorf("CA with PKCS #8 key: got a different CA, want the same")
	}
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	writeTestFile(t, to, readTestFile(t, from))
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

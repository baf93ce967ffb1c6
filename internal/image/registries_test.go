package image

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/skiff-sh/skiff/internal/cri"
)

func TestParseRegistries(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, r Registries)
	}{
		{name: "empty", in: "", check: func(t *testing.T, r Registries) {
			if len(r.Mirrors) != 0 || len(r.Configs) != 0 {
				t.Errorf("got %+v, want nothing", r)
			}
		}},
		{name: "k3s example", in: `
mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
      - "https://mirror.example"
configs:
  "reg.example:5000":
    auth:
      username: u
      password: p
    tls:
      insecure_skip_verify: true
      ca_file: /etc/ssl/ca.pem
`, check: func(t *testing.T, r Registries) {
			if got := r.Mirrors["docker.io"].Endpoints; !reflect.DeepEqual(got, []string{"http://127.0.0.1:5000", "https://mirror.example"}) {
				t.Errorf("got endpoints %v", got)
			}
			c := r.Configs["reg.example:5000"]
			if c.Auth == nil || c.Auth.Username != "u" || c.Auth.Password != "p" || c.TLS == nil || !c.TLS.InsecureSkipVerify || c.TLS.CAFile != "/etc/ssl/ca.pem" {
				t.Errorf("got config %+v", c)
			}
		}},
		{name: "unknown field", in: "mirrors:\n  docker.io:\n    endpoints: [x]\n", wantErr: "unknown field"},
		{name: "bad scheme", in: "mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n", wantErr: "scheme"},
		{name: "path", in: "mirrors:\n  docker.io:\n    endpoint: [\"https://x/some/path\"]\n", wantErr: "paths"},
		{name: "bad auth", in: "configs:\n  x:\n    auth:\n      auth: \"!!\"\n", wantErr: "base64"},
		{name: "cert without key", in: "configs:\n  x:\n    tls:\n      cert_file: /c\n", wantErr: "cert_file and key_file"},
		{name: "rewrite", in: "mirrors:\n  docker.io:\n    rewrite: {\"^(.*)$\": \"x/$1\"}\n", wantErr: "rewrite is not supported"},
		{name: "not yaml", in: "mirrors: [", wantErr: "parse registries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRegistries([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

func TestLoadRegistriesMissingFile(t *testing.T) {
	r, err := LoadRegistries(filepath.Join(t.TempDir(), "nope.yaml"))
	if err != nil || len(r.Mirrors) != 0 {
		t.Fatalf("got %+v, %v, want an empty configuration", r, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("mirrors: 3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRegistries(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v, want an error naming %s", err, bad)
	}
}

func TestEndpoints(t *testing.T) {
	regs := Registries{Mirrors: map[string]Mirror{
		"docker.io":    {Endpoints: []string{"http://127.0.0.1:5000", "mirror.example"}},
		"plain:5000":   {Endpoints: []string{"http://plain:5000"}},
		"*":            {Endpoints: []string{"https://catch.all"}},
		"quay.io":      {Endpoints: []string{"https://quay.io/v2"}},
		"empty.io":     {},
		"skip.example": {Endpoints: []string{"ftp://bad"}},
	}}
	tests := []struct {
		registry string
		want     []Endpoint
	}{
		{"docker.io", []Endpoint{{Host: "127.0.0.1:5000", PlainHTTP: true, Mirror: true}, {Host: "mirror.example", Mirror: true}, {Host: "docker.io"}}},
		{"plain:5000", []Endpoint{{Host: "plain:5000", PlainHTTP: true}}},
		{"other.io", []Endpoint{{Host: "catch.all", Mirror: true}, {Host: "other.io"}}},
		{"quay.io", []Endpoint{{Host: "quay.io"}}},
		{"empty.io", []Endpoint{{Host: "empty.io"}}},
		{"skip.example", []Endpoint{{Host: "skip.example"}}},
	}
	for _, tt := range tests {
		got := regs.Endpoints(tt.registry)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Endpoints(%q) = %+v, want %+v", tt.registry, got, tt.want)
		}
	}
	if got := (Registries{}).Endpoints("docker.io"); !reflect.DeepEqual(got, []Endpoint{{Host: "docker.io"}}) {
		t.Errorf("no config: got %+v, want the registry alone", got)
	}
}

func TestCredentials(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	regs := Registries{Configs: map[string]RegistryConfig{
		"reg.example:5000": {Auth: &AuthConfig{Username: "file", Password: "pw"}},
		"mirror.example":   {Auth: &AuthConfig{Auth: b64("m:mpw")}},
		"tok.example":      {Auth: &AuthConfig{IdentityToken: "tok"}},
	}}
	secrets := []cri.RegistryAuth{
		{Server: "https://index.docker.io/v1/", Username: "hub", Password: "hpw"},
		{Server: "reg.example:5000", Auth: b64("secret:spw")},
	}
	tests := []struct {
		host string
		want authn.AuthConfig
	}{
		{"docker.io", authn.AuthConfig{Username: "hub", Password: "hpw"}},
		{"index.docker.io", authn.AuthConfig{Username: "hub", Password: "hpw"}},
		{"reg.example:5000", authn.AuthConfig{Username: "secret", Password: "spw"}}, // pull secret wins
		{"mirror.example", authn.AuthConfig{Username: "m", Password: "mpw"}},
		{"tok.example", authn.AuthConfig{IdentityToken: "tok"}},
		{"anon.example", authn.AuthConfig{}},
	}
	for _, tt := range tests {
		a, err := regs.credentials(tt.host, secrets)
		if err != nil {
			t.Fatalf("credentials(%q): %v", tt.host, err)
		}
		got, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if *got != tt.want {
			t.Errorf("credentials(%q) = %+v, want %+v", tt.host, *got, tt.want)
		}
	}
	if _, err := regs.credentials("x", []cri.RegistryAuth{{Server: "x", Auth: "nope"}}); err == nil {
		t.Errorf("a pull secret with bad auth: got no error")
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "docker.io",
		"registry-1.docker.io":        "docker.io",
		"http://Reg.Example:5000/x":   "reg.example:5000",
		"reg.example":                 "reg.example",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

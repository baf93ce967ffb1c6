package image

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"go.yaml.in/yaml/v3"

	"github.com/skiff-sh/skiff/internal/cri"
)

// Registries is the content of registries.yaml, in the format k3s uses:
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["http://127.0.0.1:5000"]
//	configs:
//	  reg.example:5000:
//	    auth: {username: u, password: p}
//	    tls: {insecure_skip_verify: true}
type Registries struct {
	// Mirrors maps a registry host (or "*" for every registry) to the
	// endpoints tried, in order, before the registry itself.
	Mirrors map[string]Mirror `json:"mirrors,omitempty" yaml:"mirrors,omitempty"`
	// Configs maps a registry or mirror host to its credentials and TLS
	// settings.
	Configs map[string]RegistryConfig `json:"configs,omitempty" yaml:"configs,omitempty"`
}

// Mirror lists a registry's mirror endpoints.
type Mirror struct {
	// Endpoints are URLs ("https://mirror.example", "http://10.0.0.1:5000");
	// one without a scheme is https.
	Endpoints []string `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
	// Rewrite is k3s's repository rewriting; it is parsed so the error
	// can say it is not supported.
	Rewrite map[string]string `json:"rewrite,omitempty" yaml:"rewrite,omitempty"`
}

// RegistryConfig is how to talk to one host.
type RegistryConfig struct {
	Auth *AuthConfig `json:"auth,omitempty" yaml:"auth,omitempty"`
	TLS  *TLSConfig  `json:"tls,omitempty" yaml:"tls,omitempty"`
}

// AuthConfig are credentials for one host.
type AuthConfig struct {
	Username string `json:"username,omitempty" yaml:"username,omitempty"`
	Password string `json:"password,omitempty" yaml:"password,omitempty"`
	// Auth is base64 "username:password", as in a docker config file.
	Auth          string `json:"auth,omitempty" yaml:"auth,omitempty"`
	IdentityToken string `json:"identity_token,omitempty" yaml:"identity_token,omitempty"`
}

// TLSConfig are a host's TLS settings.
type TLSConfig struct {
	CAFile             string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// Endpoint is one place an image may be pulled from.
type Endpoint struct {
	// Host is "host[:port]" of the registry API.
	Host string
	// PlainHTTP is set for http:// endpoints.
	PlainHTTP bool
	// Mirror is false only for the image's own registry.
	Mirror bool
}

// String is the endpoint as a URL, for messages.
func (e Endpoint) String() string {
	if !e.Mirror && !e.PlainHTTP {
		return e.Host
	}
	if e.PlainHTTP {
		return "http://" + e.Host
	}
	return "https://" + e.Host
}

// ParseRegistries parses and checks registries.yaml content. Unknown
// fields are errors, so a typo does not silently disable a mirror; errors
// in the YAML name the line.
func ParseRegistries(data []byte) (Registries, error) {
	var r Registries
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return Registries{}, fmt.Errorf("parse registries: %s", yamlErrorText(err))
	}
	for host, m := range r.Mirrors {
		if host == "" {
			return Registries{}, fmt.Errorf("registries: mirror with an empty registry name")
		}
		if len(m.Rewrite) > 0 {
			return Registries{}, fmt.Errorf("registries: mirror %q: rewrite is not supported", host)
		}
		for _, ep := range m.Endpoints {
			if _, err := parseEndpoint(ep); err != nil {
				return Registries{}, fmt.Errorf("registries: mirror %q: %w", host, err)
			}
		}
	}
	for host, c := range r.Configs {
		if c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			return Registries{}, fmt.Errorf("registries: config %q: tls cert_file and key_file go together", host)
		}
		if c.Auth != nil && c.Auth.Auth != "" {
			if _, _, err := decodeAuth(c.Auth.Auth); err != nil {
				return Registries{}, fmt.Errorf("registries: config %q: %w", host, err)
			}
		}
	}
	return r, nil
}

// yamlFieldNotFound matches yaml.v3's unknown-field error, whose Go type
// name means nothing to whoever edits the file.
var yamlFieldNotFound = regexp.MustCompile(`field (\S+) not found in type \S+`)

// yamlErrorText is a YAML decoding error on one line: yaml.v3 lists type
// errors one per line ("line 3: ...").
func yamlErrorText(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:")
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, yamlFieldNotFound.ReplaceAllString(l, `unknown field "$1"`))
		}
	}
	return strings.Join(parts, "; ")
}

// LoadRegistries reads a registries.yaml file; a missing file is an empty
// configuration.
func LoadRegistries(path string) (Registries, error) {
	if path == "" {
		return Registries{}, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Registries{}, nil
	}
	if err != nil {
		return Registries{}, fmt.Errorf("read registries file: %w", err)
	}
	r, err := ParseRegistries(data)
	if err != nil {
		return Registries{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// parseEndpoint turns a mirror endpoint URL into an Endpoint. Paths other
// than the API root are not supported.
func parseEndpoint(s string) (Endpoint, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Endpoint{}, fmt.Errorf("endpoint %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: no host", raw)
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "v2" {
		return Endpoint{}, fmt.Errorf("endpoint %q: paths are not supported", raw)
	}
	return Endpoint{Host: u.Host, PlainHTTP: u.Scheme == "http", Mirror: true}, nil
}

// Endpoints are where images of registry are pulled from, in order: its
// mirrors (or the "*" mirrors when it has none), then the registry itself
// unless a mirror already is it.
func (r Registries) Endpoints(registry string) []Endpoint {
	m, ok := r.Mirrors[registry]
	if !ok {
		m = r.Mirrors["*"]
	}
	var eps []Endpoint
	self := false
	for _, s := range m.Endpoints {
		ep, err := parseEndpoint(s)
		if err != nil {
			continue // rejected by ParseRegistries
		}
		if normalizeHost(ep.Host) == normalizeHost(registry) {
			ep.Mirror = false
			self = true
		}
		eps = append(eps, ep)
	}
	if !self {
		eps = append(eps, Endpoint{Host: registry})
	}
	return eps
}

// normalizeHost reduces a registry server as written in docker config
// files and pull secrets ("https://index.docker.io/v1/") to a host
// ("docker.io").
func normalizeHost(s string) string {
	s = strings.TrimSpace(strings.ToLower(s))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.Index(s, "/"); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}

// credentials picks the credentials for an endpoint: a pull secret for
// that host first (as the kubelet's keyring matches them), then the
// registries.yaml config of the host, else anonymous.
func (r Registries) credentials(host string, secrets []cri.RegistryAuth) (authn.Authenticator, error) {
	h := normalizeHost(host)
	for _, a := range secrets {
		if normalizeHost(a.Server) != h {
			continue
		}
		cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if cfg.Username == "" && a.Auth != "" {
			u, p, err := decodeAuth(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("pull secret for %q: %w", a.Server, err)
			}
			cfg.Username, cfg.Password = u, p
		}
		return authn.FromConfig(cfg), nil
	}
	for key, c := range r.Configs {
		if normalizeHost(key) != h || c.Auth == nil {
			continue
		}
		cfg := authn.AuthConfig{Username: c.Auth.Username, Password: c.Auth.Password, IdentityToken: c.Auth.IdentityToken}
		if cfg.Username == "" && c.Auth.Auth != "" {
			u, p, err := decodeAuth(c.Auth.Auth)
			if err != nil {
				return nil, fmt.Errorf("registries config %q: %w", key, err)
			}
			cfg.Username, cfg.Password = u, p
		}
		return authn.FromConfig(cfg), nil
	}
	return authn.Anonymous, nil
}

// tlsConfig is the TLS configuration for host, or nil for the defaults.
func (r Registries) tlsConfig(host string) (*tls.Config, error) {
	h := normalizeHost(host)
	for key, c := range r.Configs {
		if normalizeHost(key) != h || c.TLS == nil {
			continue
		}
		t := &tls.Config{InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // the operator asked for it
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("registries config %q: ca_file: %w", key, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registries config %q: ca_file %s: no certificates", key, c.TLS.CAFile)
			}
			t.RootCAs = pool
		}
		if c.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("registries config %q: client certificate: %w", key, err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		return t, nil
	}
	return nil, nil
}

func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", fmt.Errorf("auth is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", fmt.Errorf("auth is not base64 of user:password")
	}
	return user, pass, nil
}

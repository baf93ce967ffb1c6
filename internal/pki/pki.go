package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore is how close to expiry a leaf may get before a restart
	// re-issues it; k3s uses the same 90-day window.
	renewBefore = 90 * 24 * time.Hour
	// backdate tolerates clocks of other machines running slightly behind
	// ours, which would otherwise reject a certificate issued "in the future".
	backdate = 5 * time.Minute

	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"

	// servingCommonName follows kubeadm's apiserver certificate.
	servingCommonName = "kube-apiserver"
)

// Config says where the PKI lives and what the serving certificate must
// cover.
type Config struct {
	// Dir holds the CA, serving and client certificates, e.g.
	// <data-dir>/server/tls. It is created with mode 0700.
	Dir string
	// ServingIPs are the IP SANs of the serving certificate. The caller
	// passes every address clients use, including 127.0.0.1 and the first
	// service IP (10.96.0.1) that in-cluster clients reach as "kubernetes".
	ServingIPs []net.IP
	// ServingDNSNames are the DNS SANs of the serving certificate:
	// localhost, kubernetes, kubernetes.default, kubernetes.default.svc,
	// kubernetes.default.svc.cluster.local and the host name. An entry that
	// parses as an IP address is treated as an IP SAN.
	ServingDNSNames []string
	// Now returns the current time; nil means time.Now. Tests set it to
	// exercise expiry.
	Now func() time.Time
}

// Bundle is the loaded PKI: the CA that signs everything and the API
// server's serving certificate.
type Bundle struct {
	// CACert is the cluster CA certificate.
	CACert *x509.Certificate
	// CAPEM is CACert in PEM, as embedded in kubeconfig files.
	CAPEM []byte
	// Serving is the API server's certificate and key, with Leaf set.
	Serving tls.Certificate

	caKey crypto.Signer
	dir   string
	now   func() time.Time
	// mu serialises EnsureClientCert so that two callers cannot interleave
	// writing a key and a certificate that do not belong together.
	mu sync.Mutex
}

// Ensure loads the PKI from cfg.Dir, creating whatever is missing: a CA
// valid for 10 years and a serving certificate valid for 1 year. Existing
// files are reused; a serving certificate that no longer covers cfg's IPs and
// names, is close to expiry, or was signed by a different CA is re-issued
// from the current CA.
func Ensure(cfg Config) (*Bundle, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pki: no directory given")
	}
	ips, names, err := servingSANs(cfg.ServingIPs, cfg.ServingDNSNames)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 && len(names) == 0 {
		return nil, errors.New("pki: serving certificate needs at least one IP address or DNS name")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki directory: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; it holds keys.
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict pki directory: %w", err)
	}
	b := &Bundle{dir: cfg.Dir, now: now}
	if err := b.ensureCA(); err != nil {
		return nil, err
	}
	if err := b.ensureServing(ips, names); err != nil {
		return nil, err
	}
	return b, nil
}

// ClientCAs returns a pool with the CA, for verifying client certificates.
// Each call returns a new pool, so callers may add to it.
func (b *Bundle) ClientCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(b.CACert)
	return pool
}

// IssueClientCert signs a client certificate for user (the subject common
// name) in groups (the subject organizations), which is how the API server's
// x509 authenticator reads identity. ("system:admin", ["system:masters"]) is
// the cluster admin. DER encoding sorts the groups, so their order is not
// kept. A validity of zero or less means one year; the
// certificate never outlives the CA.
func (b *Bundle) IssueClientCert(user string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if user == "" {
		return nil, nil, errors.New("pki: client certificate needs a user name")
	}
	if validity <= 0 {
		validity = leafValidity
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   user,
			Organization: slices.Clone(groups),
		},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, keyPEM, err = b.sign(tmpl, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate for %q: %w", user, err)
	}
	return certPEM, keyPEM, nil
}

// EnsureClientCert returns the client certificate stored under Dir as
// client-<name>.crt/.key, issuing it first if it is missing, stale, signed by
// another CA, or names a different user or groups. Reusing it across
// restarts keeps kubeconfig files written earlier valid.
func (b *Bundle) EnsureClientCert(name, user string, groups []string) (certPEM, keyPEM []byte, err error) {
	if err := validName(name); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()

	certPath := filepath.Join(b.dir, "client-"+name+".crt")
	keyPath := filepath.Join(b.dir, "client-"+name+".key")
	_, certPEM, keyPEM, ok, err := b.loadLeaf(certPath, keyPath, func(c *x509.Certificate) bool {
		return c.Subject.CommonName == user &&
			sameSet(c.Subject.Organization, groups) &&
			slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	})
	if err != nil {
		return nil, nil, err
	}
	if ok {
		return certPEM, keyPEM, nil
	}
	certPEM, keyPEM, err = b.IssueClientCert(user, groups, leafValidity)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(certPath, keyPath, certPEM, keyPEM); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// ensureCA loads ca.crt/ca.key or creates them; see the package comment for
// why a certificate without its key is an error.
func (b *Bundle) ensureCA() error {
	certPath := filepath.Join(b.dir, caCertFile)
	keyPath := filepath.Join(b.dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return b.loadCA(certPath, certPEM, keyPEM)
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return fmt.Errorf("pki: CA certificate %s exists but its key %s is missing; restore the key or remove both to create a new CA", certPath, keyPath)
	case errors.Is(certErr, fs.ErrNotExist) && (keyErr == nil || errors.Is(keyErr, fs.ErrNotExist)):
		return b.createCA(certPath, keyPath)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return fmt.Errorf("pki: read CA certificate: %w", certErr)
	default:
		return fmt.Errorf("pki: read CA key: %w", keyErr)
	}
}

func (b *Bundle) loadCA(certPath string, certPEM, keyPEM []byte) error {
	cert, err := parseCert(certPEM)
	if err != nil {
		return fmt.Errorf("pki: parse CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return fmt.Errorf("pki: certificate %s is not a CA", certPath)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return fmt.Errorf("pki: parse CA key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("pki: CA key does not match certificate %s", certPath)
	}
	if now := b.now(); now.After(cert.NotAfter) {
		return fmt.Errorf("pki: CA certificate %s expired at %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	b.CACert, b.CAPEM, b.caKey = cert, certPEM, key
	return nil
}

func (b *Bundle) createCA(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := b.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The timestamp makes each CA's subject unique, so a client that
		// still trusts an older CA does not confuse the two while building
		// chains (k3s names its CAs the same way).
		Subject:               pkix.Name{CommonName: fmt.Sprintf("skiff-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := encodeCert(der)
	// Key first: an interrupted start leaves an orphan key, which the next
	// start recognises and replaces, never a certificate without its key.
	if err := writePair(certPath, keyPath, certPEM, keyPEM); err != nil {
		return err
	}
	b.CACert, b.CAPEM, b.caKey = cert, certPEM, key
	return nil
}

func (b *Bundle) ensureServing(ips []net.IP, names []string) error {
	certPath := filepath.Join(b.dir, servingCertFile)
	keyPath := filepath.Join(b.dir, servingKeyFile)
	pair, _, _, ok, err := b.loadLeaf(certPath, keyPath, func(c *x509.Certificate) bool {
		return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && coversSANs(c, ips, names)
	})
	if err != nil {
		return err
	}
	if ok {
		b.Serving = withCA(pair, b.CACert)
		return nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: servingCommonName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    names,
	}
	certPEM, keyPEM, err := b.sign(tmpl, leafValidity)
	if err != nil {
		return fmt.Errorf("pki: issue serving certificate: %w", err)
	}
	if err := writePair(certPath, keyPath, certPEM, keyPEM); err != nil {
		return err
	}
	pair, err = keyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("pki: load new serving certificate: %w", err)
	}
	b.Serving = withCA(pair, b.CACert)
	return nil
}

// withCA appends the CA to the served chain. Clients that trust the CA
// ignore it; a joining agent finds it there and checks it against the CA
// hash in its join token (see ParseJoinToken).
func withCA(pair tls.Certificate, ca *x509.Certificate) tls.Certificate {
	pair.Certificate = append(pair.Certificate[:len(pair.Certificate):len(pair.Certificate)], ca.Raw)
	return pair
}

// loadLeaf returns the stored certificate if it is usable: readable, matching
// its key, signed by the current CA, valid for longer than renewBefore, and
// accepted by want. ok is false when it must be (re-)issued; err is set only
// for failures re-issuing cannot fix, such as a permission error.
func (b *Bundle) loadLeaf(certPath, keyPath string, want func(*x509.Certificate) bool) (pair tls.Certificate, certPEM, keyPEM []byte, ok bool, err error) {
	certPEM, err = os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, nil, nil, false, nil
	}
	if err != nil {
		return tls.Certificate{}, nil, nil, false, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err = os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, nil, nil, false, nil
	}
	if err != nil {
		return tls.Certificate{}, nil, nil, false, fmt.Errorf("pki: %w", err)
	}
	// A corrupt or mismatched leaf is only a cache of what the CA can sign
	// again, so it is replaced rather than reported.
	pair, err = keyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, nil, false, nil
	}
	leaf := pair.Leaf
	if leaf.CheckSignatureFrom(b.CACert) != nil || !b.fresh(leaf) || !want(leaf) {
		return tls.Certificate{}, nil, nil, false, nil
	}
	return pair, certPEM, keyPEM, true, nil
}

// fresh reports whether a leaf is valid now and will stay valid long enough
// not to need renewal at this start.
func (b *Bundle) fresh(c *x509.Certificate) bool {
	now := b.now()
	return !now.Before(c.NotBefore) && c.NotAfter.Sub(now) > renewBefore
}

// sign completes tmpl as a leaf certificate with a new ECDSA P-256 key and
// signs it with the CA. NotAfter is capped at the CA's, since a chain is
// only valid while every link is.
func (b *Bundle) sign(tmpl *x509.Certificate, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := b.now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	if tmpl.NotBefore.Before(b.CACert.NotBefore) {
		tmpl.NotBefore = b.CACert.NotBefore
	}
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(b.CACert.NotAfter) {
		tmpl.NotAfter = b.CACert.NotAfter
	}
	// ECDSA keys only sign; KeyEncipherment applies to RSA key transport.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CACert, key.Public(), b.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// keyPair parses a certificate and key and fills in Leaf (which
// tls.X509KeyPair already does since Go 1.23, but callers rely on it).
func keyPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	if pair.Leaf == nil {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return tls.Certificate{}, err
		}
		pair.Leaf = leaf
	}
	return pair, nil
}

// writePair writes the key before the certificate, so a crash in between
// leaves a certificate that does not match its key (detected and re-issued)
// or an orphan key, never a readable certificate with a missing key.
func writePair(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// newSerial returns a random positive 127-bit serial number; RFC 5280
// requires serials to be positive and unique per CA, and randomness gives
// uniqueness without keeping a counter.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// servingSANs normalises and de-duplicates the requested SANs. DNS names are
// compared case-insensitively by TLS clients, so they are lowercased.
func servingSANs(reqIPs []net.IP, reqNames []string) ([]net.IP, []string, error) {
	var ips []net.IP
	addIP := func(ip net.IP) {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	for _, ip := range reqIPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, nil, fmt.Errorf("pki: invalid serving IP address %v", ip)
		}
		addIP(ip)
	}
	var names []string
	for _, n := range reqNames {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			addIP(ip)
			continue
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return ips, names, nil
}

// coversSANs reports whether c names every requested IP and DNS name. Extra
// SANs are tolerated: re-issuing only to drop one would churn the
// certificate whenever a start passes a shorter list (say, a changed host
// name), for no gain in what clients can reach.
func coversSANs(c *x509.Certificate, ips []net.IP, names []string) bool {
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(c.DNSNames, func(have string) bool { return strings.EqualFold(have, n) }) {
			return false
		}
	}
	return true
}

// sameSet reports whether a and b hold the same strings, ignoring order and
// duplicates; the authenticator treats organizations as a set of groups.
func sameSet(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}

// validName keeps client certificate names to one path element, so a name
// can never address a file outside Dir.
func validName(name string) error {
	if name == "" {
		return errors.New("pki: client certificate needs a name")
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("pki: invalid client certificate name %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("pki: invalid client certificate name %q", name)
	}
	return nil
}

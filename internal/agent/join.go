package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/pki"
)

// ErrTokenRefused is returned when the API server answers 401 to the join
// token.
var ErrTokenRefused = errors.New("the server refused the join token")

// JoinConfig says how a node reaches the API server.
type JoinConfig struct {
	// Server is the API server's URL, https://HOST:6443.
	Server string
	// Token is the join token: K10<CA hash>::<secret> as the server writes
	// it to DATA_DIR/server/token, or a bare secret together with CAFile.
	Token string
	// CAFile, when set, is the CA to trust instead of the one the token's
	// hash names.
	CAFile string
	// QPS and Burst limit the client; every pod transition is a write.
	QPS   float32
	Burst int
	// UserAgent names the client in the server's logs.
	UserAgent string
}

// Join returns a client configuration for the server in cfg, after making
// sure the server is the one the token names and that it accepts the
// token. The CA comes from CAFile, or from the server's TLS handshake,
// checked against the token's CA hash before the secret is sent.
func Join(ctx context.Context, cfg JoinConfig) (*rest.Config, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want https://HOST:PORT", cfg.Server)
	}
	hash, secret, err := pki.ParseJoinToken(cfg.Token)
	if err != nil {
		return nil, err
	}
	var caPEM []byte
	switch {
	case cfg.CAFile != "":
		if caPEM, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
	case hash != "":
		if caPEM, err = fetchCA(ctx, u, hash); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the join token carries no CA hash (K10<sha256>::<secret>, as in the server's DATA_DIR/server/token); pass the whole token, or --ca-file with the server's CA")
	}
	rc := &rest.Config{
		Host:            cfg.Server,
		BearerToken:     secret,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             cfg.QPS,
		Burst:           cfg.Burst,
		UserAgent:       cfg.UserAgent,
		// Protobuf, as upstream's kubelet speaks: cheaper to encode and
		// decode on both sides. No client-wide timeout: it would also cut
		// every watch.
		ContentConfig: rest.ContentConfig{
			ContentType:        "application/vnd.kubernetes.protobuf",
			AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		},
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	// /api needs authentication, unlike /version.
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cs.Discovery().RESTClient().Get().AbsPath("/api").Do(cctx).Error(); err != nil {
		if apierrors.IsUnauthorized(err) {
			return nil, fmt.Errorf("%w (%s)", ErrTokenRefused, cfg.Server)
		}
		return nil, fmt.Errorf("reach %s: %w", cfg.Server, err)
	}
	rc.Timeout = 0
	return rc, nil
}

// fetchCA reads the certificate chain the server presents, finds the CA
// whose hash the token carries, and checks that it signed the server's
// certificate for this host. Nothing secret is sent before that.
func fetchCA(ctx context.Context, u *url.URL, hash string) ([]byte, error) {
	host := u.Hostname()
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(host, "443")
	}
	d := tls.Dialer{Config: &tls.Config{
		// Verified below, against the CA the token names.
		InsecureSkipVerify: true, //nolint:gosec
		MinVersion:         tls.VersionTLS12,
	}, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	chain := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, fmt.Errorf("server %s presented no certificate", addr)
	}
	var ca *x509.Certificate
	for _, c := range chain {
		if pki.CAHash(c) == hash && c.IsCA {
			ca = c
		}
	}
	if ca == nil {
		return nil, fmt.Errorf("server %s is not the one the join token names: none of its certificates is a CA with hash %s", addr, hash)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
		return nil, fmt.Errorf("server %s: certificate not valid for the join token's CA: %w", addr, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
}

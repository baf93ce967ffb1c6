package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ServiceAccountKeyFile is the name of the service-account signing key in
// the PKI directory, kubeadm's name for it.
const ServiceAccountKeyFile = "sa.key"

// EnsureServiceAccountKey loads the key that signs service-account tokens
// from dir/sa.key, creating an ECDSA P-256 key there on first start. The
// key is kept across restarts: replacing it would invalidate every token
// pods hold.
func EnsureServiceAccountKey(dir string) (crypto.Signer, error) {
	path := filepath.Join(dir, ServiceAccountKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := parseKey(data)
		if err != nil {
			return nil, fmt.Errorf("pki: parse service-account key %s: %w", path, err)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: read service-account key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create directory for service-account key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate service-account key: %w", err)
	}
	pemData, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pemData, 0o600); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return key, nil
}

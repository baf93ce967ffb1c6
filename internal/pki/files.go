package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	pemCertificate   = "CERTIFICATE"
	pemECPrivateKey  = "EC PRIVATE KEY"
	pemPKCS8Key      = "PRIVATE KEY"
	pemRSAPrivateKey = "RSA PRIVATE KEY"
)

// writeFileAtomic replaces path with data so that readers see either the old
// or the new content, never a partial file. The temporary file is created
// 0600 by os.CreateTemp, so a secret is never readable by others even before
// the final mode is applied.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable. Errors are ignored because some
// filesystems reject fsync on directories, and the rename has already
// happened: the worst case is losing it on power failure, after which Ensure
// simply regenerates the file.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// encodeCert returns the PEM encoding of a DER certificate.
func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// encodeKey returns the SEC 1 PEM encoding of an ECDSA key, the format
// kubeadm and k3s write, which every TLS stack and openssl read.
func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemECPrivateKey, Bytes: der}), nil
}

// parseCert returns the first certificate in PEM data; later blocks (a
// chain) are ignored because callers only need the leaf.
func parseCert(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if block.Type == pemCertificate {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// parseKey returns the first private key in PEM data, in any of the
// encodings an operator-supplied CA may use.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		switch block.Type {
		case pemECPrivateKey:
			return x509.ParseECPrivateKey(block.Bytes)
		case pemRSAPrivateKey:
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case pemPKCS8Key:
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported private key type %T", k)
			}
			return s, nil
		}
	}
}

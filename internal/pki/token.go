package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenBytes is the entropy of a generated join token (hex-encoded to 64
// characters).
const tokenBytes = 32

// EnsureToken returns the join token stored at path, creating it on first
// use as 32 random bytes in hex, in a file of mode 0600 whose missing parent
// directories are created 0700. A token file the operator wrote is used as
// is, minus surrounding whitespace. If two processes race to create the
// token, both return the one that was stored.
func EnsureToken(path string) (string, error) {
	tok, err := readToken(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	buf := make([]byte, tokenBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("pki: generate token: %w", err)
	}
	tok = hex.EncodeToString(buf)

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("pki: create token directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("pki: write token: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.WriteString(tok + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("pki: write token: %w", err)
	}
	// Link, unlike rename, fails if path exists, which makes creation
	// happen exactly once even when two starts race.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readToken(path)
		}
		return "", fmt.Errorf("pki: write token: %w", err)
	}
	syncDir(dir)
	return tok, nil
}

func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("pki: read token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("pki: token file %s is empty", path)
	}
	return tok, nil
}

// joinTokenPrefix starts a join token that carries the cluster CA's hash,
// the convention k3s uses: K10<sha256 of the CA certificate's DER, in
// hex>::<secret>. An agent that is given such a token can check the
// server's CA before it sends the secret; the API server accepts the
// secret alone or the whole token.
const joinTokenPrefix = "K10"

// FormatJoinToken returns the full join token for a CA and a secret.
func FormatJoinToken(ca *x509.Certificate, secret string) string {
	return joinTokenPrefix + CAHash(ca) + "::" + secret
}

// CAHash is the hex SHA-256 of a certificate's DER, as a join token
// carries it.
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.Raw)
	return hex.EncodeToString(sum[:])
}

// ParseJoinToken splits a join token into the CA hash and the secret. A
// bare secret (no "::") has no CA hash.
func ParseJoinToken(tok string) (caHash, secret string, err error) {
	tok = strings.TrimSpace(tok)
	head, sec, ok := strings.Cut(tok, "::")
	if !ok {
		if tok == "" {
			return "", "", errors.New("empty join token")
		}
		return "", tok, nil
	}
	hash, ok := strings.CutPrefix(head, joinTokenPrefix)
	if !ok || len(hash) != 2*sha256.Size {
		return "", "", fmt.Errorf("join token: want K10<64 hex digits>::<secret> or a bare secret")
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return "", "", fmt.Errorf("join token: CA hash is not hex")
	}
	if sec == "" {
		return "", "", errors.New("join token: empty secret")
	}
	return strings.ToLower(hash), sec, nil
}

// EnsureJoinToken is EnsureToken for the cluster's join token: the file
// at path holds the full form (FormatJoinToken) for ca, and the secret is
// returned for the API server's token table. A file holding a bare secret
// or the hash of another CA is rewritten with the current CA's hash; the
// secret is kept.
func EnsureJoinToken(path string, ca *x509.Certificate) (full, secret string, err error) {
	stored, err := EnsureToken(path)
	if err != nil {
		return "", "", err
	}
	_, secret, err = ParseJoinToken(stored)
	if err != nil {
		return "", "", fmt.Errorf("pki: token file %s: %w", path, err)
	}
	full = FormatJoinToken(ca, secret)
	if stored == full {
		return full, secret, nil
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", "", fmt.Errorf("pki: write token: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.WriteString(full + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", "", fmt.Errorf("pki: write token: %w", err)
	}
	syncDir(dir)
	return full, secret, nil
}

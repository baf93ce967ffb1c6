package pki

import (
	"crypto/rand"
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

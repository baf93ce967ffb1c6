package pki

import (
	"crypto"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureServiceAccountKeyKeptAcrossStarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	k1, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, ServiceAccountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode: got %o, want 600", got)
	}
	k2, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k1.Public().(interface{ Equal(x crypto.PublicKey) bool })
	if !ok || !pub.Equal(k2.Public()) {
		t.Errorf("second start: got a different key, want the stored one")
	}
}

func TestEnsureServiceAccountKeyRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ServiceAccountKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureServiceAccountKey(dir); err == nil {
		t.Errorf("got no error for a corrupt key, want one")
	}
}

//go:build integration

package storage_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/storage"
	"github.com/skiff-sh/skiff/internal/storage/storagetest"
)

// freePort asks the kernel for a free loopback port.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestEtcdStore(t *testing.T) {
	e, err := etcd.Start(context.Background(), etcd.Config{Dir: t.TempDir(), ClientPort: freePort(t), PeerPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	storagetest.Run(t, func(t *testing.T, history int) *storage.Store {
		// Each test gets its own key prefix: a clean store, shared by the
		// stores one test creates.
		prefix := "/" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "/"
		return storage.New(e.Client(), storage.Options{Prefix: prefix, History: history})
	})
}

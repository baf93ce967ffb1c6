// Package etcd runs Skiff's embedded etcd member, or connects to an external
// etcd cluster, and hands back a client for the storage layer.
//
// An embedded member listens on loopback only: the API server is the one
// client, and it talks to the member in-process.
package etcd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Config configures an embedded member.
type Config struct {
	// Dir holds the member's data (created 0700).
	Dir        string
	ClientPort int // on 127.0.0.1, default 2379
	PeerPort   int // on 127.0.0.1, default 2380
	// Name of the member, default "skiff".
	Name string
}

// Embedded is a running embedded etcd member.
type Embedded struct {
	etcd   *embed.Etcd
	client *clientv3.Client
}

// Start starts the member and returns once it serves requests.
func Start(ctx context.Context, cfg Config) (*Embedded, error) {
	if cfg.ClientPort == 0 {
		cfg.ClientPort = 2379
	}
	if cfg.PeerPort == 0 {
		cfg.PeerPort = 2380
	}
	if cfg.Name == "" {
		cfg.Name = "skiff"
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create etcd dir: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = filepath.Join(cfg.Dir, "member-data")
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cfg.ClientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cfg.PeerPort)}
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peerURL.String())
	ec.LogLevel = "error"
	ec.Logger = "zap"
	ec.LogOutputs = []string{"stderr"}
	// Fewer entries kept in memory between snapshots: Skiff aims at small
	// machines, and the API server keeps its own cache.
	ec.SnapshotCount = 10000
	// A lone member still waits out a random part of its election timeout
	// before it leads, and etcd's defaults (100 ms tick, 1 s election) made
	// that up to a second of every start. With no peers to disagree with,
	// short timers cost nothing: a start now waits tens of milliseconds.
	// A tick wakes the member's raft goroutines even when nothing
	// happens, so ticks cost an idle server CPU: 20 ms keeps the start's
	// wait for the election as short (at most 100 ms) with half the
	// wake-ups of 10 ms (etcd wants the election at least 5 ticks).
	ec.TickMs = 20
	ec.ElectionMs = 100
	// The member commits its bbolt backend every BackendBatchInterval
	// (etcd's default 100 ms), each commit writing and syncing the
	// database file; the WAL, synced on every write, is what makes a write
	// durable, and replaying it after a crash covers the uncommitted part.
	// A node Lease renewed every 10 s by each of 1,000 nodes made those
	// commits 4% of an idle server's CPU.
	ec.BackendBatchInterval = 500 * time.Millisecond
	ec.EnableGRPCGateway = false
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd did not become ready in 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	return &Embedded{etcd: e, client: v3client.New(e.Server)}, nil
}

// ClientURL is the member's client URL on loopback.
func (e *Embedded) ClientURL() string { return e.etcd.Config().AdvertiseClientUrls[0].String() }

// Client returns an in-process client of the member.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// Err reports a fatal error of the running member.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops the member, flushing its data.
func (e *Embedded) Close() {
	_ = e.client.Close()
	e.etcd.Close()
}

// TLSFiles are the client credentials for an external etcd cluster.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// Dial connects to an external etcd cluster and checks that it answers.
func Dial(ctx context.Context, endpoints []string, files TLSFiles) (*clientv3.Client, error) {
	var tlsConfig *tls.Config
	if files.CAFile != "" || files.CertFile != "" {
		info := transport.TLSInfo{TrustedCAFile: files.CAFile, CertFile: files.CertFile, KeyFile: files.KeyFile}
		var err error
		if tlsConfig, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd client TLS: %w", err)
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 10 * time.Second,
		TLS:         tlsConfig,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Get(sctx, "health"); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("etcd %v does not answer: %w", endpoints, err)
	}
	return c, nil
}

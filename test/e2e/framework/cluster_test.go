//go:build e2e

package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// These tests check the framework's process handling against a stand-in for
// skiff: the test binary itself, re-executed with fakeModeEnv set, plays a
// server (TLS, a kubeconfig, /readyz, SIGTERM) or kubectl, and misbehaves in
// the ways the framework must cope with.

const (
	fakeModeEnv  = "SKIFF_E2E_FAKE_MODE"
	fakeCountEnv = "SKIFF_E2E_FAKE_COUNT"
	fakeToken    = "fake-admin-token"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeModeEnv); mode != "" {
		os.Exit(fakeSkiff(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeSkiff is the stand-in's main.
func fakeSkiff(mode string, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "fake skiff: no command")
		return 2
	}
	if p := os.Getenv(fakeCountEnv); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintln(f, args[0])
			_ = f.Close()
		}
	}
	switch args[0] {
	case "kubectl":
		return fakeKubectl(mode, args[1:])
	case "server":
		return fakeServer(mode, args[1:])
	case "sleep":
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintf(os.Stderr, "fake skiff: unknown command %q\n", args[0])
	return 2
}

func fakeKubectl(mode string, args []string) int {
	if mode == "kubectl-fail" {
		fmt.Fprintln(os.Stderr, "error: boom")
		return 2
	}
	stdin, _ := io.ReadAll(os.Stdin)
	fmt.Printf("args=%s\nKUBECONFIG=%s\nKUBERC=%s\nstdin=%s\n",
		strings.Join(args, " "), os.Getenv("KUBECONFIG"), os.Getenv("KUBERC"), stdin)
	return 0
}

func fakeServer(mode string, args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "")
	bind := fs.String("bind-address", "", "")
	_ = fs.String("advertise-address", "", "")
	port := fs.Int("secure-port", 0, "")
	kubeconfig := fs.String("write-kubeconfig", "", "")
	_ = fs.Int("etcd-client-port", 0, "")
	_ = fs.Int("etcd-peer-port", 0, "")
	_ = fs.Bool("disable-agent", false, "")
	_ = fs.Int("dns-port", 53, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	addr := net.JoinHostPort(*bind, strconv.Itoa(*port))
	switch mode {
	case "crash":
		fmt.Fprintln(os.Stderr, "fatal: boom")
		return 3
	case "port-taken":
		fmt.Fprintf(os.Stderr, "listen tcp %s: bind: address already in use\n", addr)
		return 1
	}
	stopSignals := []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
		stopSignals = stopSignals[1:]
	}

	// Count starts in the data directory, so tests can see that a restart
	// keeps the data.
	startsFile := filepath.Join(*dataDir, "starts")
	b, _ := os.ReadFile(startsFile)
	starts, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	starts++
	if err := os.WriteFile(startsFile, []byte(strconv.Itoa(starts)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	cert, certPEM, err := selfSignedCert()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if mode == "never-ready" {
			http.Error(w, "[-]etcd failed: not started", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/starts", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, starts)
	})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+fakeToken {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["fake"] = &clientcmdapi.Cluster{Server: "https://" + addr, CertificateAuthorityData: certPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: fakeToken}
	kc.Contexts["fake"] = &clientcmdapi.Context{Cluster: "fake", AuthInfo: "admin"}
	kc.CurrentContext = "fake"
	if err := clientcmd.WriteToFile(*kc, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fake server %d listening on %s\n", starts, addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopSignals...)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "fake server stopped")
	return 0
}

// selfSignedCert returns a certificate for 127.0.0.1 that is its own CA.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake-skiff"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pemBlock("CERTIFICATE", der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pemBlock("EC PRIVATE KEY", keyDER))
	return cert, certPEM, err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// fakeOptions returns Options that run the stand-in in mode.
func fakeOptions(t *testing.T, mode string) Options {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeModeEnv, mode)
	return Options{Binary: self, ReadyTimeout: 30 * time.Second, StopTimeout: 10 * time.Second}
}

// clusterDirs lists this process's cluster work directories.
func clusterDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"cluster-*"))
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, d := range dirs {
		if pid, _, err := readPIDFile(filepath.Join(d, ownerFile)); err == nil && pid == os.Getpid() {
			mine = append(mine, d)
		}
	}
	return mine
}

func TestClusterLifecycle(t *testing.T) {
	c, err := Start(t.Context(), fakeOptions(t, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Stat(c.Dir()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close: stat %s: got %v, want not exist", c.Dir(), err)
		}
	}()

	starts := func() string {
		t.Helper()
		b, err := c.Client().Discovery().RESTClient().Get().AbsPath("/starts").DoRaw(t.Context())
		if err != nil {
			t.Fatalf("GET /starts: %v", err)
		}
		return string(b)
	}
	if got := starts(); got != "1" {
		t.Errorf("starts after Start: got %s, want 1", got)
	}
	if got, want := c.RESTConfig().Host, c.Endpoint(); got != want {
		t.Errorf("RESTConfig().Host: got %s, want %s", got, want)
	}

	stdout, _, err := c.KubectlStdin("piped", "get", "ns")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"args=--kubeconfig " + c.KubeconfigPath() + " get ns\n",
		"KUBECONFIG=" + c.KubeconfigPath() + "\n",
		"KUBERC=off\n",
		"stdin=piped\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("kubectl stdout: got %q, want it to contain %q", stdout, want)
		}
	}

	ports := c.Ports()
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := starts(); got != "2" {
		t.Errorf("starts after Restart: got %s, want 2 (data kept)", got)
	}
	if c.Ports() != ports {
		t.Errorf("ports after Restart: got %+v, want %+v", c.Ports(), ports)
	}
	if logs := c.Logs(); strings.Count(logs, "fake server stopped") != 1 || strings.Count(logs, "listening on") != 2 {
		t.Errorf("server log: got %q, want two starts and one clean stop", logs)
	}

	if err := c.Stop(); err != nil {
		t.Errorf("Stop: got %v, want nil (clean exit on SIGTERM)", err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	before := clusterDirs(t)
	opts := fakeOptions(t, "crash")
	opts.ReadyTimeout = time.Hour // only noticing the exit can end Start
	_, err := Start(t.Context(), opts)
	if err == nil {
		t.Fatal("Start: got nil error, want the crash")
	}
	for _, want := range []string{"exited (exit status 3) before it was ready", "fatal: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error: got %q, want it to contain %q", err, want)
		}
	}
	if errors.Is(err, errPortInUse) {
		t.Errorf("Start error: got errPortInUse, want a plain failure: %v", err)
	}
	if after := clusterDirs(t); !slices.Equal(after, before) {
		t.Errorf("work directories: got %q after a failed Start, want %q", after, before)
	}
}

func TestStartRetriesTakenPorts(t *testing.T) {
	count := filepath.Join(t.TempDir(), "count")
	t.Setenv(fakeCountEnv, count)
	_, err := Start(t.Context(), fakeOptions(t, "port-taken"))
	if !errors.Is(err, errPortInUse) {
		t.Fatalf("Start: got %v, want errPortInUse", err)
	}
	b, _ := os.ReadFile(count)
	if got := strings.Count(string(b), "server\n"); got != startAttempts {
		t.Errorf("server runs: got %d, want %d", got, startAttempts)
	}
}

func TestStartTimesOut(t *testing.T) {
	opts := fakeOptions(t, "never-ready")
	opts.ReadyTimeout = 2 * time.Second
	_, err := Start(t.Context(), opts)
	if err == nil {
		t.Fatal("Start: got nil error, want a timeout")
	}
	for _, want := range []string{"not ready after 2s", "GET /readyz", "etcd failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error: got %q, want it to contain %q", err, want)
		}
	}
}

func TestStopKillsServerIgnoringSIGTERM(t *testing.T) {
	opts := fakeOptions(t, "ignore-term")
	opts.StopTimeout = 500 * time.Millisecond
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	pid, start, err := readPIDFile(filepath.Join(c.Dir(), serverPIDFile))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Close()
	if err == nil || !strings.Contains(err.Error(), "killed it") {
		t.Errorf("Close: got %v, want an error saying the server was killed", err)
	}
	if alive(pid, start) {
		t.Errorf("server %d: still alive after Close", pid)
	}
}

func TestKubectlErrorQuotesStderr(t *testing.T) {
	c, err := Start(t.Context(), fakeOptions(t, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv(fakeModeEnv, "kubectl-fail")
	_, stderr, err := c.Kubectl("get", "pods")
	if err == nil {
		t.Fatal("Kubectl: got nil error, want exit status 2")
	}
	for _, want := range []string{"kubectl get pods", "exit status 2", "error: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Kubectl error: got %q, want it to contain %q", err, want)
		}
	}
	if stderr != "error: boom\n" {
		t.Errorf("stderr: got %q, want %q", stderr, "error: boom\n")
	}
}

func TestRemoveStale(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// A directory whose owner is gone, with its server still running and,
	// when we may mount, something mounted inside.
	stale, err := newWorkDir("cluster")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, ownerFile), []byte(fmt.Sprintf("%d 0\n", os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeModeEnv, "ok")
	server := exec.Command(self, "sleep")
	server.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = server.Wait(); close(waited) }()
	defer func() { _ = server.Process.Kill(); <-waited }()
	if err := writePIDFile(filepath.Join(stale, serverPIDFile), server.Process.Pid); err != nil {
		t.Fatal(err)
	}
	mounted := filepath.Join(stale, "data", "mnt")
	if os.Geteuid() == 0 {
		if err := os.MkdirAll(mounted, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", mounted, "tmpfs", 0, ""); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		defer func() { _ = syscall.Unmount(mounted, syscall.MNT_DETACH) }()
	}

	// A directory whose owner runs (this process).
	live, err := newWorkDir("cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)

	var removed []string
	if err := RemoveStale(func(format string, args ...any) { removed = append(removed, fmt.Sprintf(format, args...)) }); err != nil {
		t.Fatalf("RemoveStale: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale directory: stat got %v, want not exist", err)
	}
	if len(removed) != 1 || !strings.Contains(removed[0], stale) {
		t.Errorf("reported removals: got %q, want one naming %s", removed, stale)
	}
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Errorf("stale server %d: still running after RemoveStale", server.Process.Pid)
	}
	if _, err := os.Stat(filepath.Join(live, ownerFile)); err != nil {
		t.Errorf("live directory: got %v, want it kept", err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if got := mountPointsUnder(string(info), stale); len(got) > 0 {
		t.Errorf("mounts under the stale directory: got %q, want none", got)
	}
}

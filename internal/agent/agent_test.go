package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-sh/skiff/internal/pki"
)

// apiServer serves /api over TLS with a Skiff PKI, accepting one bearer
// secret, and returns its URL and CA.
func apiServer(t *testing.T, secret string) (string, *pki.Bundle) {
	t.Helper()
	b, err := pki.Ensure(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), ServingIPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+secret {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"kind":"APIVersions","versions":["v1"]}`))
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{b.Serving}},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), b
}

func TestJoin(t *testing.T) {
	url, b := apiServer(t, "s3cret")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, b.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := pki.Ensure(pki.Config{Dir: filepath.Join(t.TempDir(), "tls"), ServingDNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     JoinConfig
		wantErr string
		refused bool
	}{
		{name: "full token", cfg: JoinConfig{Server: url, Token: pki.FormatJoinToken(b.CACert, "s3cret")}},
		{name: "bare token with CA file", cfg: JoinConfig{Server: url, Token: "s3cret", CAFile: caFile}},
		{name: "wrong secret", cfg: JoinConfig{Server: url, Token: pki.FormatJoinToken(b.CACert, "nope")}, wantErr: "the server refused the join token", refused: true},
		{name: "another cluster's CA", cfg: JoinConfig{Server: url, Token: pki.FormatJoinToken(other.CACert, "s3cret")}, wantErr: "is not the one the join token names"},
		{name: "bare token alone", cfg: JoinConfig{Server: url, Token: "s3cret"}, wantErr: "carries no CA hash"},
		{name: "not https", cfg: JoinConfig{Server: "http://127.0.0.1:1", Token: "x", CAFile: caFile}, wantErr: "want https://HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Join(context.Background(), tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if rc.BearerToken != "s3cret" || len(rc.CAData) == 0 {
					t.Errorf("config: got token %q and %d bytes of CA, want the secret and the CA", rc.BearerToken, len(rc.CAData))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrTokenRefused) != tt.refused {
				t.Errorf("errors.Is(err, ErrTokenRefused): got %v, want %v", !tt.refused, tt.refused)
			}
		})
	}
}

func TestParseTaints(t *testing.T) {
	got, err := ParseTaints("dedicated=gpu:NoSchedule, spot:PreferNoSchedule")
	want := []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}, {Key: "spot", Effect: "PreferNoSchedule"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"a=b", "a=b:Sometimes", "=b:NoSchedule"} {
		if _, err := ParseTaints(bad); err == nil {
			t.Errorf("ParseTaints(%q): got no error, want one", bad)
		}
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels("a=1,b=,zone=x")
	want := map[string]string{"a": "1", "b": "", "zone": "x"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if _, err := ParseLabels("novalue"); err == nil {
		t.Error("ParseLabels(novalue): got no error, want one")
	}
}

func TestNewRuntimes(t *testing.T) {
	for rt, ok := range map[string]bool{"": true, "runc": true, "simulated": true, "docker": false} {
		_, err := New(Config{Runtime: rt, NodeName: "n"})
		if (err == nil) != ok {
			t.Errorf("runtime %q: got %v, want ok=%v", rt, err, ok)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), `want "runc" or "simulated"`)) {
			t.Errorf("runtime %q: got %v, want an error naming the runtimes", rt, err)
		}
	}
}

func TestSimNames(t *testing.T) {
	s, err := NewSim(SimConfig{Count: 12, NamePrefix: "sim-"})
	if err != nil {
		t.Fatal(err)
	}
	names := s.Names()
	if len(names) != 12 || names[0] != "sim-00" || names[11] != "sim-11" {
		t.Errorf("got %v, want sim-00 .. sim-11", names)
	}
}

func TestAllocatable(t *testing.T) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("1Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
	}
	th, err := ParseEvictionHard(DefaultEvictionHard)
	if err != nil {
		t.Fatal(err)
	}
	got := allocatable(capacity, th)
	for name, want := range map[corev1.ResourceName]string{"cpu": "2", "memory": "924Mi", "ephemeral-storage": "90Gi", "pods": "110"} {
		if q := got[name]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("allocatable %s: got %s, want %s", name, q.String(), want)
		}
	}
}

func TestPressureMonitor(t *testing.T) {
	// This machine's data dir has room and memory: no pressure. (The
	// thresholds themselves are upstream's constants.)
	th, _ := ParseEvictionHard(DefaultEvictionHard)
	if p := pressureMonitor(t.TempDir(), th)(); p.Memory || p.Disk || p.PID {
		t.Skipf("this machine is under pressure (%+v); nothing to check", p)
	}
	if kb, err := memInfoKiB("MemAvailable:"); err != nil || kb <= 0 {
		t.Errorf("MemAvailable: got %d, %v", kb, err)
	}
}

func TestParseEvictionHard(t *testing.T) {
	got, err := ParseEvictionHard(DefaultEvictionHard)
	want := Thresholds{MemoryAvailable: 100 << 20, NodefsAvailable: 10, ImagefsAvailable: 15, NodefsInodesFree: 5}
	if err != nil || got != want {
		t.Errorf("defaults: got %+v %v, want %+v", got, err, want)
	}
	if got, err := ParseEvictionHard("memory.available<1Gi"); err != nil || got != (Thresholds{MemoryAvailable: 1 << 30}) {
		t.Errorf("memory only: got %+v %v", got, err)
	}
	// Every disk threshold at 0%: a full disk never counts.
	if p := pressureMonitor(t.TempDir(), Thresholds{})(); p.Disk || p.Memory {
		t.Errorf("no thresholds: got %+v, want no pressure", p)
	}
	// 101% free is impossible: always pressure.
	if p := pressureMonitor(t.TempDir(), Thresholds{NodefsAvailable: 100, MemoryAvailable: 1 << 62})(); !p.Disk || !p.Memory || p.Reason != "memory" {
		t.Errorf("thresholds no machine meets: got %+v, want memory and disk pressure", p)
	}
	if got, err := ParseEvictionHard("pid.available<1000,pid.available<5%"); err != nil || got != (Thresholds{PIDAvailable: 1000, PIDAvailablePct: 5}) {
		t.Errorf("pid.available: got %+v %v", got, err)
	}
	// More IDs wanted free than the machine has: always pressure.
	if p := pressureMonitor(t.TempDir(), Thresholds{PIDAvailable: 1 << 40})(); !p.PID || p.Reason != "pids" {
		t.Errorf("pid threshold no machine meets: got %+v, want PID pressure", p)
	}
	for _, bad := range []string{"memory.available<10%", "nodefs.available<1Gi", "cpu.available<1", "memory.available", "nodefs.available<200%", "pid.available<1Gi"} {
		if _, err := ParseEvictionHard(bad); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func TestPIDPressure(t *testing.T) {
	tests := []struct {
		pidMax, tasks int64
		th            Thresholds
		want          bool
	}{
		{32768, 1000, Thresholds{}, false},
		{32768, 1000, Thresholds{PIDAvailable: 30000}, false},
		{32768, 1000, Thresholds{PIDAvailable: 31768}, false},
		{32768, 1000, Thresholds{PIDAvailable: 31769}, true},
		{100000, 95000, Thresholds{PIDAvailablePct: 5}, false},
		{100000, 95001, Thresholds{PIDAvailablePct: 5}, true},
	}
	for _, tt := range tests {
		if got := pidPressure(tt.pidMax, tt.tasks, tt.th); got != tt.want {
			t.Errorf("pidPressure(%d, %d, %+v): got %v, want %v", tt.pidMax, tt.tasks, tt.th, got, tt.want)
		}
	}
	if max, tasks, err := pidUsage(); err != nil || max <= 0 || tasks <= 0 || tasks > max {
		t.Errorf("pidUsage: got %d, %d, %v", max, tasks, err)
	}
}

func TestParseDefaultRoute(t *testing.T) {
	header := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	tests := []struct {
		name, table, want string
	}{
		{"none", header + "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", ""},
		{"one", header + "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\ncni0\t0000F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", "eth0"},
		{"lowest metric wins", header + "wlan0\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\neth1\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", "eth1"},
		{"a /0 mask only", header + "tun0\t00000000\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseDefaultRoute(tt.table); got != tt.want {
				t.Errorf("parseDefaultRoute: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCreatedInterface(t *testing.T) {
	for name, want := range map[string]bool{"eth0": false, "ens3": false, "cni0": true, "veth1a2b": true, "skiff-lb0": true, "skiff-svc0": true, "skiff0": true, "skiff.1": true, "flannel.1": true, "vxlan0": true} {
		if got := createdInterface(name); got != want {
			t.Errorf("createdInterface(%q): got %v, want %v", name, got, want)
		}
	}
}

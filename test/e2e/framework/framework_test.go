package framework

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Field 22 (start time) is the 20th field after the command name.
	fields := "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21"
	tests := []struct {
		name      string
		line      string
		wantState string
		wantStart string
		wantErr   bool
	}{
		{name: "plain", line: "123 (skiff) " + fields, wantState: "S", wantStart: "424242"},
		{name: "command with spaces and parens", line: "123 (a) b (c) " + fields, wantState: "S", wantStart: "424242"},
		{name: "zombie", line: "123 (skiff) Z" + strings.TrimPrefix(fields, "S"), wantState: "Z", wantStart: "424242"},
		{name: "short", line: "123 (skiff) S 1 2", wantErr: true},
		{name: "no command", line: "123 skiff S", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state, start, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if state != tc.wantState || start != tc.wantStart {
				t.Errorf("got state %q start %q, want state %q start %q", state, start, tc.wantState, tc.wantStart)
			}
		})
	}
}

func TestParsePIDFile(t *testing.T) {
	tests := []struct {
		in        string
		wantPID   int
		wantStart string
		wantErr   bool
	}{
		{in: "42 9001\n", wantPID: 42, wantStart: "9001"},
		{in: "42", wantErr: true},
		{in: "x 9001", wantErr: true},
		{in: "-1 9001", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range tests {
		pid, start, err := parsePIDFile(tc.in)
		if (err != nil) != tc.wantErr || pid != tc.wantPID || start != tc.wantStart {
			t.Errorf("parsePIDFile(%q): got %d %q err %v, want %d %q err %v", tc.in, pid, start, err, tc.wantPID, tc.wantStart, tc.wantErr)
		}
	}
}

func TestAliveTellsReusedPIDs(t *testing.T) {
	start, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !alive(os.Getpid(), start) {
		t.Errorf("alive(self, own start time): got false, want true")
	}
	if alive(os.Getpid(), start+"1") {
		t.Errorf("alive(self, other start time): got true, want false (a reused pid)")
	}
}

func TestMountPointsUnder(t *testing.T) {
	mountinfo := strings.Join([]string{
		"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
		"30 22 0:40 / /tmp/skiff-e2e-cluster-1/data/pods/a rw - overlay overlay rw",
		"31 22 0:41 / /tmp/skiff-e2e-cluster-1 rw - tmpfs tmpfs rw",
		"32 30 0:42 / /tmp/skiff-e2e-cluster-1/data/pods/a/proc rw - proc proc rw",
		"33 22 0:43 / /tmp/skiff-e2e-cluster-10/x rw - tmpfs tmpfs rw",
		`34 22 0:44 / /tmp/skiff-e2e-cluster-1/with\040space rw - tmpfs tmpfs rw`,
		"",
	}, "\n")
	got := mountPointsUnder(mountinfo, "/tmp/skiff-e2e-cluster-1/")
	want := []string{
		"/tmp/skiff-e2e-cluster-1/data/pods/a/proc",
		"/tmp/skiff-e2e-cluster-1/data/pods/a",
		"/tmp/skiff-e2e-cluster-1/with space",
		"/tmp/skiff-e2e-cluster-1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q (deepest first, no sibling with the same prefix)", got, want)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/a/b`, `/a/b`},
		{`/a\040b`, `/a b`},
		{`/a\011b\012c\134d`, "/a\tb\nc\\d"},
		{`/trailing\04`, `/trailing\04`},
		{`/not\999octal`, `/not\999octal`},
	}
	for _, tc := range tests {
		if got := unescapeMountPath(tc.in); got != tc.want {
			t.Errorf("unescapeMountPath(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVersionLDFlags(t *testing.T) {
	tests := []struct {
		lib     string
		want    []string
		wantErr bool
	}{
		{lib: "v0.37.2", want: []string{
			"-X k8s.io/component-base/version.gitVersion=v1.37.2",
			"-X k8s.io/component-base/version.gitMajor=1",
			"-X k8s.io/component-base/version.gitMinor=37",
			"-X k8s.io/client-go/pkg/version.gitVersion=v1.37.2",
			"-X k8s.io/client-go/pkg/version.gitMajor=1",
			"-X k8s.io/client-go/pkg/version.gitMinor=37",
		}},
		{lib: "v0.38.0-alpha.1", want: []string{
			"-X k8s.io/component-base/version.gitVersion=v1.38.0-alpha.1",
			"-X k8s.io/component-base/version.gitMinor=38",
		}},
		{lib: "v1.2.3", wantErr: true},
		{lib: "v0.x.1", wantErr: true},
		{lib: "v0.37", wantErr: true},
		{lib: "", wantErr: true},
	}
	for _, tc := range tests {
		got, err := versionLDFlags(tc.lib)
		if (err != nil) != tc.wantErr {
			t.Errorf("versionLDFlags(%q): got error %v, want error %v", tc.lib, err, tc.wantErr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("versionLDFlags(%q): got %q, want it to contain %q", tc.lib, got, w)
			}
		}
	}
}

func TestKubectlEnv(t *testing.T) {
	in := []string{"PATH=/bin", "KUBECONFIG=/home/me/.kube/config", "KUBECACHEDIR=/x", "KUBERC=/home/me/kuberc", "KUBECONFIGX=keep", "HOME=/root"}
	got := kubectlEnv(in, "/w/admin.yaml", "/w/kube-cache")
	want := []string{"PATH=/bin", "KUBECONFIGX=keep", "HOME=/root", "KUBECONFIG=/w/admin.yaml", "KUBECACHEDIR=/w/kube-cache", "KUBERC=off"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestServerArgs(t *testing.T) {
	got := serverArgs("/w", Ports{Secure: 1, EtcdClient: 2, EtcdPeer: 3}, nil, false, []string{"--secure-port", "9"})
	want := []string{
		"server",
		"--data-dir", "/w/data",
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", "1",
		"--write-kubeconfig", "/w/admin.yaml",
		"--etcd-client-port", "2",
		"--etcd-peer-port", "3",
		"--disable-agent", "--dns-port", "0",
		"--secure-port", "9",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q (extra flags last, so they win)", got, want)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{in: "short", limit: 10, want: "short"},
		{in: "line1\nline2\nline3\n", limit: 8, want: "[...]\nline3\n"},
		{in: "abcdefgh", limit: 3, want: "[...]\nfgh"},
	}
	for _, tc := range tests {
		if got := tail(tc.in, tc.limit); got != tc.want {
			t.Errorf("tail(%q, %d): got %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestPoll(t *testing.T) {
	t.Run("returns once the condition holds", func(t *testing.T) {
		calls := 0
		err := Poll(context.Background(), 10*time.Second, func() (bool, string) {
			calls++
			return calls == 3, "not yet"
		})
		if err != nil || calls != 3 {
			t.Errorf("got err %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("timeout carries the last observation", func(t *testing.T) {
		calls := 0
		err := Poll(context.Background(), 300*time.Millisecond, func() (bool, string) {
			calls++
			return false, "observation " + strings.Repeat("x", calls)
		})
		if err == nil {
			t.Fatal("got nil error, want a timeout")
		}
		if want := "observation " + strings.Repeat("x", calls); !strings.HasSuffix(err.Error(), want) {
			t.Errorf("got error %q, want it to end with the last observation %q", err, want)
		}
		if !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
			t.Errorf("got error %q, want it to say the deadline passed", err)
		}
	})
	t.Run("stops when the context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Poll(ctx, time.Hour, func() (bool, string) { return false, "never" })
		if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
			t.Errorf("got %v, want an error saying the context was canceled", err)
		}
	})
}

func TestStartNeedsBinary(t *testing.T) {
	_, err := Start(context.Background(), Options{})
	if err == nil || errors.Is(err, errPortInUse) {
		t.Errorf("Start without a binary: got %v, want an error naming the missing binary", err)
	}
}

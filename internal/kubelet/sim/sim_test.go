package sim

import (
	"context"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/kubelet"
)

func TestScript(t *testing.T) {
	env := func(kv ...string) []kubelet.EnvVar {
		var out []kubelet.EnvVar
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kubelet.EnvVar{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name      string
		env       []kubelet.EnvVar
		attempt   uint32
		wantExits bool
		wantAfter time.Duration
		wantCode  int32
		wantErr   bool
	}{
		{name: "runs forever", env: env("OTHER", "1")},
		{name: "exit code only: at once", env: env(EnvExitCode, "3"), wantExits: true, wantCode: 3},
		{name: "run seconds only: exit 0", env: env(EnvRunSeconds, "1.5"), wantExits: true, wantAfter: 1500 * time.Millisecond},
		{name: "duration syntax", env: env(EnvRunSeconds, "500ms", EnvExitCode, "2"), wantExits: true, wantAfter: 500 * time.Millisecond, wantCode: 2},
		{name: "fail times, failing run", env: env(EnvFailTimes, "2"), attempt: 1, wantExits: true, wantCode: 1},
		{name: "fail times, later run runs", env: env(EnvFailTimes, "2"), attempt: 2},
		{name: "fail times, later run succeeds", env: env(EnvFailTimes, "2", EnvRunSeconds, "1", EnvExitCode, "4"), attempt: 2, wantExits: true, wantAfter: time.Second},
		{name: "fail times keeps the code", env: env(EnvFailTimes, "1", EnvExitCode, "4"), wantExits: true, wantCode: 4},
		{name: "bad seconds", env: env(EnvRunSeconds, "soon"), wantErr: true},
		{name: "negative seconds", env: env(EnvRunSeconds, "-1"), wantErr: true},
		{name: "bad code", env: env(EnvExitCode, "x"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exits, after, code, err := script(tt.env, tt.attempt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if exits != tt.wantExits || after != tt.wantAfter || code != tt.wantCode {
				t.Errorf("got exits %v after %v code %d, want %v %v %d", exits, after, code, tt.wantExits, tt.wantAfter, tt.wantCode)
			}
		})
	}
}

func TestLifecycleAndIPs(t *testing.T) {
	ctx := context.Background()
	clk := testingclock.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	r := New(Options{Clock: clk})
	sb1, err := r.RunSandbox(ctx, kubelet.SandboxConfig{PodUID: "a", PodCIDR: "10.244.3.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	sb2, _ := r.RunSandbox(ctx, kubelet.SandboxConfig{PodUID: "b", PodCIDR: "10.244.3.0/24"})
	ips := map[string]string{}
	list, _ := r.ListSandboxes(ctx)
	for _, s := range list {
		ips[s.ID] = s.IPs[0]
	}
	if ips[sb1] != "10.244.3.2" || ips[sb2] != "10.244.3.3" {
		t.Errorf("pod IPs: got %v, want .2 and .3", ips)
	}
	// A released address is handed out again.
	if err := r.StopSandbox(ctx, sb1); err != nil {
		t.Fatal(err)
	}
	sb3, _ := r.RunSandbox(ctx, kubelet.SandboxConfig{PodUID: "c", PodCIDR: "10.244.3.0/24"})
	list, _ = r.ListSandboxes(ctx)
	for _, s := range list {
		if s.ID == sb3 && s.IPs[0] != "10.244.3.2" {
			t.Errorf("reused IP: got %v, want 10.244.3.2", s.IPs)
		}
	}

	id, err := r.CreateContainer(ctx, sb2, kubelet.ContainerConfig{Name: "c", Attempt: 0, Image: "busybox",
		Env: []kubelet.EnvVar{{Name: EnvRunSeconds, Value: "5"}, {Name: EnvExitCode, Value: "7"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	state := func() kubelet.Container {
		cs, _ := r.ListContainers(ctx)
		for _, c := range cs {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("container %s not listed", id)
		return kubelet.Container{}
	}
	if c := state(); c.State != kubelet.ContainerRunning {
		t.Errorf("after start: got %s, want Running", c.State)
	}
	clk.Step(5 * time.Second)
	if c := state(); c.State != kubelet.ContainerExited || c.ExitCode != 7 || c.FinishedAt.Sub(c.StartedAt) != 5*time.Second {
		t.Errorf("after 5s: got %s code %d ran %v, want Exited 7 after 5s", c.State, c.ExitCode, c.FinishedAt.Sub(c.StartedAt))
	}
	if err := r.RemoveSandbox(ctx, sb2); err != nil {
		t.Fatal(err)
	}
	if cs, _ := r.ListContainers(ctx); len(cs) != 0 {
		t.Errorf("containers after removing the sandbox: got %d, want 0", len(cs))
	}
}

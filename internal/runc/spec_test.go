package runc

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-sh/skiff/internal/cri"
)

func TestProcessArgs(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"cmd-arg"}
	tests := []struct {
		name            string
		command, args   []string
		entrypoint, cmd []string
		want            []string
	}{
		{"image defaults", nil, nil, ep, cmd, []string{"/entry", "cmd-arg"}},
		{"command drops image cmd", []string{"/bin/sh"}, nil, ep, cmd, []string{"/bin/sh"}},
		{"command and args", []string{"/bin/sh"}, []string{"-c", "x"}, ep, cmd, []string{"/bin/sh", "-c", "x"}},
		{"args replace cmd", nil, []string{"a"}, ep, cmd, []string{"/entry", "a"}},
		{"args without entrypoint", nil, []string{"/bin/echo", "hi"}, nil, cmd, []string{"/bin/echo", "hi"}},
		{"cmd only", nil, nil, nil, cmd, []string{"cmd-arg"}},
		{"nothing", nil, nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := processArgs(tt.command, tt.args, tt.entrypoint, tt.cmd)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	got := environment(
		[]string{"PATH=/image/bin", "A=image", "B=image"}, "web-0",
		[]cri.EnvVar{{Name: "B", Value: "container"}, {Name: "C", Value: "x=y"}},
	)
	want := []string{"PATH=/image/bin", "A=image", "B=container", "HOSTNAME=web-0", "C=x=y"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	got = environment(nil, "", nil)
	if !slices.Equal(got, []string{defaultPath}) {
		t.Errorf("empty image: got %q, want default PATH only", got)
	}
}

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1001::/home/app:/bin/sh\n"
	testGroup  = "root:x:0:\nwheel:x:10:app,other\napp:x:1001:\naudio:x:29:app\n"
)

func TestResolveUser(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name      string
		imageUser string
		sec       cri.Security
		want      specs.User
		wantErr   string
	}{
		{name: "default root", want: specs.User{}},
		{name: "numeric image user", imageUser: "1000", want: specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 29}}},
		{name: "numeric unknown user", imageUser: "4242", want: specs.User{UID: 4242}},
		{name: "named image user", imageUser: "nobody", want: specs.User{UID: 65534, GID: 65534}},
		{name: "user and group names", imageUser: "app:wheel", want: specs.User{UID: 1000, GID: 10, AdditionalGids: []uint32{29}}},
		{name: "uid:gid", imageUser: "5:6", want: specs.User{UID: 5, GID: 6}},
		{name: "unknown name", imageUser: "ghost", wantErr: `image user "ghost" not found`},
		{name: "unknown group", imageUser: "app:ghosts", wantErr: `image group "ghosts" not found`},
		{name: "runAsUser overrides image", imageUser: "app", sec: cri.Security{RunAsUser: i64(65534)}, want: specs.User{UID: 65534, GID: 65534}},
		{name: "runAsUser drops image group", imageUser: "app:wheel", sec: cri.Security{RunAsUser: i64(7)}, want: specs.User{UID: 7}},
		{name: "runAsGroup", imageUser: "app", sec: cri.Security{RunAsGroup: i64(3000)}, want: specs.User{UID: 1000, GID: 3000, AdditionalGids: []uint32{10, 29}}},
		{
			name: "supplemental groups", sec: cri.Security{RunAsUser: i64(1000), RunAsGroup: i64(3000), SupplementalGroups: []int64{2000, 10, 3000}},
			want: specs.User{UID: 1000, GID: 3000, AdditionalGids: []uint32{10, 29, 2000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := SpecInput{Image: Rootfs{User: tt.imageUser}, Passwd: []byte(testPasswd), Group: []byte(testGroup)}
			in.Config.Security = tt.sec
			got, err := resolveUser(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tt.want.UID || got.GID != tt.want.GID || !slices.Equal(got.AdditionalGids, tt.want.AdditionalGids) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name    string
		sec     cri.Security
		want    []string // exact set, nil to skip
		has     []string
		hasNot  []string
		wantErr bool
	}{
		{name: "default", want: capNames(defaultCaps)},
		{name: "add", sec: cri.Security{CapAdd: []string{"NET_ADMIN"}}, has: []string{"CAP_NET_ADMIN", "CAP_CHOWN"}},
		{name: "add with prefix", sec: cri.Security{CapAdd: []string{"CAP_SYS_TIME"}}, has: []string{"CAP_SYS_TIME"}},
		{name: "drop", sec: cri.Security{CapDrop: []string{"NET_RAW", "chown"}}, hasNot: []string{"CAP_NET_RAW", "CAP_CHOWN"}, has: []string{"CAP_KILL"}},
		{name: "drop all", sec: cri.Security{CapDrop: []string{"ALL"}}, want: []string{}},
		{name: "drop all add one", sec: cri.Security{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add all", sec: cri.Security{CapAdd: []string{"ALL"}}, want: capNames(allCaps)},
		{name: "privileged", sec: cri.Security{Privileged: true, CapDrop: []string{"ALL"}}, want: capNames(allCaps)},
		{name: "unknown", sec: cri.Security{CapAdd: []string{"FLY"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capabilities(tt.sec)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for _, c := range tt.has {
				if !slices.Contains(got, c) {
					t.Errorf("got %q, want it to contain %s", got, c)
				}
			}
			for _, c := range tt.hasNot {
				if slices.Contains(got, c) {
					t.Errorf("got %q, want it without %s", got, c)
				}
			}
		})
	}
}

func baseInput() SpecInput {
	return SpecInput{
		Config: cri.ContainerConfig{
			Name: "app", Command: []string{"/bin/sh", "-c", "true"},
			Env: []cri.EnvVar{{Name: "X", Value: "1"}},
		},
		Image:        Rootfs{Env: []string{"PATH=/bin"}, WorkingDir: "/srv"},
		RootfsPath:   "/r/rootfs",
		Hostname:     "web-0",
		NetNS:        "/run/ns/net",
		IPCNS:        "/run/ns/ipc",
		UTSNS:        "/run/ns/uts",
		HostsPath:    "/s/hosts",
		ResolvPath:   "/s/resolv.conf",
		HostnamePath: "/s/hostname",
		CgroupsPath:  "/skiff/kubepods/podX/abc",
	}
}

func nsByType(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		out[n.Type] = n.Path
	}
	return out
}

func mountByDest(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestSpec(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*SpecInput)
		check func(t *testing.T, s *specs.Spec)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, s *specs.Spec) {
				if got, want := s.Process.Cwd, "/srv"; got != want {
					t.Errorf("cwd: got %q, want %q", got, want)
				}
				if got, want := s.Process.Env, []string{"PATH=/bin", "HOSTNAME=web-0", "X=1"}; !slices.Equal(got, want) {
					t.Errorf("env: got %q, want %q", got, want)
				}
				if s.Root.Path != "/r/rootfs" || s.Root.Readonly {
					t.Errorf("root: got %+v, want writable /r/rootfs", s.Root)
				}
				if s.Linux.CgroupsPath != "/skiff/kubepods/podX/abc" {
					t.Errorf("cgroupsPath: got %q", s.Linux.CgroupsPath)
				}
				ns := nsByType(s)
				want := map[specs.LinuxNamespaceType]string{
					specs.MountNamespace: "", specs.PIDNamespace: "", specs.NetworkNamespace: "/run/ns/net",
					specs.IPCNamespace: "/run/ns/ipc", specs.UTSNamespace: "/run/ns/uts",
				}
				if len(ns) != len(want) {
					t.Errorf("namespaces: got %v, want %v", ns, want)
				}
				for k, v := range want {
					if p, ok := ns[k]; !ok || p != v {
						t.Errorf("namespace %s: got %q (present %v), want %q", k, p, ok, v)
					}
				}
				for _, dst := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
					if mountByDest(s, dst) == nil {
						t.Errorf("mount %s missing", dst)
					}
				}
				if m := mountByDest(s, "/etc/hosts"); m == nil || m.Source != "/s/hosts" || m.Type != "bind" {
					t.Errorf("/etc/hosts mount: got %+v", m)
				}
				if m := mountByDest(s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
					t.Errorf("/sys mount: got %+v, want read-only", m)
				}
				if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
					t.Errorf("masked %q readonly %q: want /proc/kcore masked and /proc/sys read-only", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
				}
				if got := s.Process.Capabilities.Bounding; !slices.Equal(got, capNames(defaultCaps)) {
					t.Errorf("caps: got %q", got)
				}
				if d := s.Linux.Resources.Devices; len(d) != 1 || d[0].Allow {
					t.Errorf("device cgroup: got %+v, want deny all", d)
				}
				if s.Linux.Resources.Memory != nil || s.Linux.Resources.CPU != nil || s.Linux.Resources.Pids != nil {
					t.Errorf("resources: got %+v, want none set", s.Linux.Resources)
				}
			},
		},
		{
			name: "working dir override and root fallback",
			edit: func(in *SpecInput) { in.Config.WorkingDir = "/work" },
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.Cwd != "/work" {
					t.Errorf("cwd: got %q, want /work", s.Process.Cwd)
				}
			},
		},
		{
			name: "cwd defaults to /",
			edit: func(in *SpecInput) { in.Image.WorkingDir = "" },
			check: func(t *testing.T, s *specs.Spec) {
				if s.Process.Cwd != "/" {
					t.Errorf("cwd: got %q, want /", s.Process.Cwd)
				}
			},
		},
		{
			name: "resources",
			edit: func(in *SpecInput) {
				in.Config.Resources = cri.Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 8 << 20, PidsLimit: 100, OOMScoreAdj: 999}
			},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				if r.CPU == nil || *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 {
					t.Errorf("cpu: got %+v", r.CPU)
				}
				if r.Memory == nil || *r.Memory.Limit != 8<<20 || *r.Memory.Swap != 8<<20 {
					t.Errorf("memory: got %+v, want limit=swap=8Mi", r.Memory)
				}
				if r.Pids == nil || r.Pids.Limit != 100 {
					t.Errorf("pids: got %+v", r.Pids)
				}
				if *s.Process.OOMScoreAdj != 999 {
					t.Errorf("oomScoreAdj: got %d", *s.Process.OOMScoreAdj)
				}
			},
		},
		{
			name: "security",
			edit: func(in *SpecInput) {
				in.Config.Security.ReadOnlyRootFilesystem = true
				in.Config.Security.NoNewPrivileges = true
			},
			check: func(t *testing.T, s *specs.Spec) {
				if !s.Root.Readonly || !s.Process.NoNewPrivileges {
					t.Errorf("got readonly=%v noNewPrivileges=%v, want both", s.Root.Readonly, s.Process.NoNewPrivileges)
				}
			},
		},
		{
			name: "privileged",
			edit: func(in *SpecInput) {
				in.Config.Security.Privileged = true
				in.HostDevices = []specs.LinuxDevice{{Path: "/dev/loop0", Type: "b", Major: 7}}
			},
			check: func(t *testing.T, s *specs.Spec) {
				if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
					t.Errorf("got masked %q readonly %q, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
				}
				if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow {
					t.Errorf("device cgroup: got %+v, want allow all", d)
				}
				if len(s.Linux.Devices) != 1 {
					t.Errorf("devices: got %+v, want the host's", s.Linux.Devices)
				}
				if !slices.Contains(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN") {
					t.Errorf("caps: got %q, want all", s.Process.Capabilities.Effective)
				}
				if m := mountByDest(s, "/sys"); m == nil || slices.Contains(m.Options, "ro") {
					t.Errorf("/sys: got %+v, want read-write", m)
				}
			},
		},
		{
			name: "host namespaces and shared pid",
			edit: func(in *SpecInput) {
				in.NetNS, in.UTSNS, in.IPCNS = "", "", ""
				in.PIDNS = "/proc/42/ns/pid"
			},
			check: func(t *testing.T, s *specs.Spec) {
				ns := nsByType(s)
				for _, k := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace} {
					if _, ok := ns[k]; ok {
						t.Errorf("namespace %s: present, want the host's", k)
					}
				}
				if ns[specs.PIDNamespace] != "/proc/42/ns/pid" {
					t.Errorf("pid namespace: got %q", ns[specs.PIDNamespace])
				}
			},
		},
		{
			name: "host pid",
			edit: func(in *SpecInput) { in.HostPID = true },
			check: func(t *testing.T, s *specs.Spec) {
				if _, ok := nsByType(s)[specs.PIDNamespace]; ok {
					t.Errorf("pid namespace present, want the host's")
				}
			},
		},
		{
			name: "volumes",
			edit: func(in *SpecInput) {
				in.Config.Mounts = []cri.Mount{
					{ContainerPath: "/data/", HostPath: "/var/lib/v1"},
					{ContainerPath: "/cfg", HostPath: "/var/lib/v2", ReadOnly: true, Propagation: "rslave"},
					{ContainerPath: "/shared", HostPath: "/var/lib/v3", Propagation: "rshared"},
				}
			},
			check: func(t *testing.T, s *specs.Spec) {
				for dst, want := range map[string][]string{
					"/data":   {"rbind", "rprivate", "rw"},
					"/cfg":    {"rbind", "rslave", "ro"},
					"/shared": {"rbind", "rshared", "rw"},
				} {
					m := mountByDest(s, dst)
					if m == nil || !slices.Equal(m.Options, want) || m.Type != "bind" {
						t.Errorf("mount %s: got %+v, want options %q", dst, m, want)
					}
				}
				// Volumes come after the kernel filesystems so they win.
				if s.Mounts[len(s.Mounts)-1].Destination != "/shared" {
					t.Errorf("last mount: got %s, want /shared", s.Mounts[len(s.Mounts)-1].Destination)
				}
			},
		},
		{
			name: "sysctls",
			edit: func(in *SpecInput) { in.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"} },
			check: func(t *testing.T, s *specs.Spec) {
				if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
					t.Errorf("sysctl: got %v", s.Linux.Sysctl)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			if tt.edit != nil {
				tt.edit(&in)
			}
			s, err := Spec(in)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestSpecErrors(t *testing.T) {
	in := baseInput()
	in.Config.Command = nil
	if _, err := Spec(in); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("no command: got %v, want an error", err)
	}
	in = baseInput()
	in.Image.User = "ghost"
	if _, err := Spec(in); err == nil {
		t.Errorf("unknown user: got no error")
	}
}

func TestHostsFile(t *testing.T) {
	cfg := cri.SandboxConfig{
		Namespace: "default", Name: "web-0", Hostname: "web-0",
		HostAliases: []cri.HostAlias{{IP: "1.2.3.4", Hostnames: []string{"foo", "bar"}}},
	}
	got := string(hostsFile(cfg, []string{"10.244.0.5"}, "cluster.local", nil))
	want := "# Kubernetes-managed hosts file.\n" +
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
		"10.244.0.5\tweb-0\n\n# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	cfg.Subdomain, cfg.HostAliases = "nginx", nil
	got = string(hostsFile(cfg, []string{"10.244.0.5"}, "cluster.local", nil))
	if !strings.HasSuffix(got, "10.244.0.5\tweb-0.nginx.default.svc.cluster.local\tweb-0\n") {
		t.Errorf("subdomain: got\n%s", got)
	}
	cfg.HostNetwork = true
	got = string(hostsFile(cfg, nil, "cluster.local", []byte("127.0.0.1 node")))
	if !strings.Contains(got, "127.0.0.1 node\n") || strings.Contains(got, "ip6-allnodes") {
		t.Errorf("host network: got\n%s, want the node's file", got)
	}
}

func TestResolvConf(t *testing.T) {
	got := string(resolvConf(&cri.DNSConfig{
		Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"},
		Options: []string{"ndots:5"},
	}, []byte("nameserver 9.9.9.9\n")))
	want := "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(resolvConf(nil, []byte("nameserver 9.9.9.9\n"))); got != "nameserver 9.9.9.9\n" {
		t.Errorf("node's: got %q", got)
	}
}

func TestHelpers(t *testing.T) {
	if got := parseRuncVersion("runc version 1.1.5+ds1\ncommit: x\n"); got != "1.1.5" {
		t.Errorf("runc version: got %q, want 1.1.5", got)
	}
	if got := overlayOptions([]string{"/l/a", "/l/b"}, "/u", "/w", ""); got != "lowerdir=/l/b:/l/a,upperdir=/u,workdir=/w" {
		t.Errorf("overlay options: got %q", got)
	}
	if got := overlayOptions([]string{"/l/x/a", "/l/x/b"}, "/u", "/w", "/l/x"); got != "lowerdir=b:a,upperdir=/u,workdir=/w" {
		t.Errorf("relative overlay options: got %q", got)
	}
	if got := commonDir([]string{"/a/b/c/fs", "/a/b/d/fs", "/a/b/e"}); got != "/a/b" {
		t.Errorf("commonDir: got %q, want /a/b", got)
	}
	if n, ok := parseKeyed([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), "oom_kill"); !ok || n != 2 {
		t.Errorf("parseKeyed: got %d %v, want 2 true", n, ok)
	}
	if got := cgroupsPath("skiff", "kubepods/pod1", "c1"); got != "/skiff/kubepods/pod1/c1" {
		t.Errorf("cgroupsPath: got %q", got)
	}
}

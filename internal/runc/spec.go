package runc

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-sh/skiff/internal/cri"
)

// defaultPath is the PATH a container gets when its image sets none, as
// containerd gives it.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCaps is the capability set of an unprivileged container, the one
// containerd and CRI-O give by default.
var defaultCaps = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
	"SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
	"AUDIT_WRITE",
}

// allCaps is every capability Linux knows (up to CAP_CHECKPOINT_RESTORE),
// what a privileged container gets.
var allCaps = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
	"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
	"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// maskedPaths and readonlyPaths hide the kernel's knobs from unprivileged
// containers, as containerd's defaults do.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// SpecInput is everything the OCI spec of one container is computed from.
// It holds values only, so Spec does no I/O.
type SpecInput struct {
	Config cri.ContainerConfig
	Image  Rootfs
	// RootfsPath is the container's root directory (the overlay mount).
	RootfsPath string

	// Hostname is the pod's hostname, exported as $HOSTNAME.
	Hostname string
	// NetNS, IPCNS and UTSNS are the pinned namespace files the container
	// joins; empty means the host's namespace.
	NetNS, IPCNS, UTSNS string
	// PIDNS is the PID namespace to join ("/proc/<pid>/ns/pid" of the
	// pod's pause process); empty gives the container its own unless
	// HostPID.
	PIDNS   string
	HostPID bool
	// HostsPath, ResolvPath and HostnamePath are the sandbox's files bind
	// mounted at /etc/hosts, /etc/resolv.conf and /etc/hostname; empty
	// ones are skipped.
	HostsPath, ResolvPath, HostnamePath string
	// CgroupsPath is the container's cgroup, absolute within each
	// hierarchy ("/skiff/kubepods/pod<uid>/<id>").
	CgroupsPath string
	Sysctls     map[string]string
	// Passwd and Group are the image's /etc/passwd and /etc/group, used to
	// resolve user and group names; nil when the image has none.
	Passwd, Group []byte
	// HostDevices are given to privileged containers.
	HostDevices []specs.LinuxDevice
}

// Spec computes the OCI runtime spec of a container. Process arguments
// follow Kubernetes: command replaces the image's entrypoint, args replace
// its cmd, and a command without args drops the image's cmd.
func Spec(in SpecInput) (*specs.Spec, error) {
	cfg := in.Config
	args := processArgs(cfg.Command, cfg.Args, in.Image.Entrypoint, in.Image.Cmd)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %q: no command specified and the image has no entrypoint or cmd", cfg.Name)
	}
	user, err := resolveUser(in)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", cfg.Name, err)
	}
	caps, err := capabilities(cfg.Security)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", cfg.Name, err)
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	oom := cfg.Resources.OOMScoreAdj
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal:        cfg.TTY, // conmon owns the console (runc's console socket)
			User:            user,
			Args:            args,
			Env:             environment(in.Image.Env, in.Hostname, cfg.Env),
			Cwd:             cwd,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: cfg.Security.NoNewPrivileges,
			OOMScoreAdj:     &oom,
		},
		Root:   &specs.Root{Path: in.RootfsPath, Readonly: cfg.Security.ReadOnlyRootFilesystem},
		Mounts: mounts(in),
		Linux: &specs.Linux{
			Sysctl:      copyMap(in.Sysctls),
			Resources:   resources(cfg.Resources, cfg.Security.Privileged),
			CgroupsPath: in.CgroupsPath,
			Namespaces:  namespaces(in),
		},
	}
	if cfg.Security.Privileged {
		s.Linux.Devices = in.HostDevices
	} else {
		s.Linux.MaskedPaths = slices.Clone(maskedPaths)
		s.Linux.ReadonlyPaths = slices.Clone(readonlyPaths)
	}
	return s, nil
}

// processArgs applies Kubernetes' rules for command and args over the
// image's entrypoint and cmd.
func processArgs(command, args, entrypoint, cmd []string) []string {
	switch {
	case len(command) > 0:
		return append(slices.Clone(command), args...)
	case len(args) > 0:
		return append(slices.Clone(entrypoint), args...)
	default:
		return append(slices.Clone(entrypoint), cmd...)
	}
}

// environment merges the image's environment, $HOSTNAME and the container's
// variables; later ones override earlier ones of the same name, keeping
// the first one's position.
func environment(image []string, hostname string, container []cri.EnvVar) []string {
	var out []string
	index := map[string]int{}
	set := func(kv string) {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := index[name]; ok {
			out[i] = kv
			return
		}
		index[name] = len(out)
		out = append(out, kv)
	}
	set(defaultPath)
	for _, kv := range image {
		set(kv)
	}
	if hostname != "" {
		set("HOSTNAME=" + hostname)
	}
	for _, e := range container {
		set(e.Name + "=" + e.Value)
	}
	return out
}

// resolveUser turns RunAsUser/RunAsGroup, or else the image's User
// ("name", "uid", "name:group", "uid:gid"), into numeric IDs, looking names
// up in the image's /etc/passwd and /etc/group.
func resolveUser(in SpecInput) (specs.User, error) {
	sec := in.Config.Security
	userPart, groupPart, _ := strings.Cut(in.Image.User, ":")
	var (
		uid, gid   uint32
		gidSet     bool
		entry      *passwdEntry
		userName   string
		usersByUID = parsePasswd(in.Passwd)
	)
	switch {
	case sec.RunAsUser != nil:
		uid = uint32(*sec.RunAsUser)
		entry = usersByUID.byUID(uid)
	case userPart != "":
		if n, perr := strconv.ParseUint(userPart, 10, 32); perr == nil {
			uid = uint32(n)
			entry = usersByUID.byUID(uid)
		} else {
			entry = usersByUID.byName(userPart)
			if entry == nil {
				return specs.User{}, fmt.Errorf("image user %q not found in /etc/passwd", userPart)
			}
			uid = entry.uid
		}
	}
	if entry != nil {
		userName = entry.name
	}
	groups := parseGroup(in.Group)
	switch {
	case sec.RunAsGroup != nil:
		gid, gidSet = uint32(*sec.RunAsGroup), true
	case groupPart != "" && sec.RunAsUser == nil:
		if n, perr := strconv.ParseUint(groupPart, 10, 32); perr == nil {
			gid = uint32(n)
		} else {
			g := groups.byName(groupPart)
			if g == nil {
				return specs.User{}, fmt.Errorf("image group %q not found in /etc/group", groupPart)
			}
			gid = g.gid
		}
		gidSet = true
	}
	if !gidSet && entry != nil {
		gid = entry.gid
	}
	var extra []uint32
	add := func(g uint32) {
		if g != gid && !slices.Contains(extra, g) {
			extra = append(extra, g)
		}
	}
	if userName != "" {
		for _, g := range groups {
			if slices.Contains(g.members, userName) {
				add(g.gid)
			}
		}
	}
	for _, g := range sec.SupplementalGroups {
		add(uint32(g))
	}
	return specs.User{UID: uid, GID: gid, AdditionalGids: extra}, nil
}

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type passwdFile []passwdEntry

func (p passwdFile) byUID(uid uint32) *passwdEntry {
	for i := range p {
		if p[i].uid == uid {
			return &p[i]
		}
	}
	return nil
}

func (p passwdFile) byName(name string) *passwdEntry {
	for i := range p {
		if p[i].name == name {
			return &p[i]
		}
	}
	return nil
}

// parsePasswd reads name:x:uid:gid:... lines, skipping malformed ones.
func parsePasswd(data []byte) passwdFile {
	var out passwdFile
	for _, f := range colonLines(data) {
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)})
	}
	return out
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

type groupFile []groupEntry

func (g groupFile) byName(name string) *groupEntry {
	for i := range g {
		if g[i].name == name {
			return &g[i]
		}
	}
	return nil
}

// parseGroup reads name:x:gid:member,member lines.
func parseGroup(data []byte) groupFile {
	var out groupFile
	for _, f := range colonLines(data) {
		if len(f) < 3 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out
}

func colonLines(data []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// capabilities computes the container's capability set: all of them when
// privileged, else the default set with drops then adds applied ("ALL"
// stands for every capability in either list), as "CAP_" names.
func capabilities(sec cri.Security) ([]string, error) {
	if sec.Privileged {
		return capNames(allCaps), nil
	}
	norm := func(c string) (string, error) {
		c = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		if c != "ALL" && !slices.Contains(allCaps, c) {
			return "", fmt.Errorf("unknown capability %q", c)
		}
		return c, nil
	}
	set := slices.Clone(defaultCaps)
	for _, c := range sec.CapDrop {
		c, err := norm(c)
		if err != nil {
			return nil, err
		}
		if c == "ALL" {
			set = nil
			continue
		}
		set = slices.DeleteFunc(set, func(x string) bool { return x == c })
	}
	for _, c := range sec.CapAdd {
		c, err := norm(c)
		if err != nil {
			return nil, err
		}
		if c == "ALL" {
			set = slices.Clone(allCaps)
			continue
		}
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	return capNames(set), nil
}

func capNames(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		out = append(out, "CAP_"+c)
	}
	return out
}

// mounts lists the container's filesystems: the kernel ones every
// container gets, the sandbox's /etc files, then the pod's volumes.
func mounts(in SpecInput) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if in.Config.Security.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgroupOpts = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
	}
	etc := func(dst, src string) {
		if src != "" {
			ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "rw"}})
		}
	}
	etc("/etc/hosts", in.HostsPath)
	etc("/etc/resolv.conf", in.ResolvPath)
	etc("/etc/hostname", in.HostnamePath)
	for _, m := range in.Config.Mounts {
		prop := "rprivate"
		switch m.Propagation {
		case "rslave", "HostToContainer":
			prop = "rslave"
		case "rshared", "Bidirectional":
			prop = "rshared"
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		ms = append(ms, specs.Mount{
			Destination: path.Clean(m.ContainerPath), Type: "bind", Source: m.HostPath,
			Options: []string{"rbind", prop, mode},
		})
	}
	return ms
}

// namespaces joins the pod's pinned namespaces and gives the container its
// own mount (and, unless shared, PID) namespace.
func namespaces(in SpecInput) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	join := func(t specs.LinuxNamespaceType, p string) {
		if p != "" {
			ns = append(ns, specs.LinuxNamespace{Type: t, Path: p})
		}
	}
	join(specs.NetworkNamespace, in.NetNS)
	join(specs.IPCNamespace, in.IPCNS)
	join(specs.UTSNamespace, in.UTSNS)
	switch {
	case in.HostPID:
	case in.PIDNS != "":
		join(specs.PIDNamespace, in.PIDNS)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	return ns
}

// resources turns the kubelet's cgroup settings into OCI resources. Swap
// is capped at the memory limit, so a container cannot swap past it.
func resources(r cri.Resources, privileged bool) *specs.LinuxResources {
	out := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: privileged, Access: "rwm"}},
	}
	if r.CPUShares > 0 || r.CPUQuota != 0 || r.CPUPeriod > 0 {
		out.CPU = &specs.LinuxCPU{}
		if r.CPUShares > 0 {
			out.CPU.Shares = ptr(r.CPUShares)
		}
		if r.CPUQuota != 0 {
			out.CPU.Quota = ptr(r.CPUQuota)
		}
		if r.CPUPeriod > 0 {
			out.CPU.Period = ptr(r.CPUPeriod)
		}
	}
	if r.MemoryLimit > 0 {
		out.Memory = &specs.LinuxMemory{Limit: ptr(r.MemoryLimit), Swap: ptr(r.MemoryLimit)}
	}
	if r.PidsLimit > 0 {
		out.Pids = &specs.LinuxPids{Limit: r.PidsLimit}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

package cni

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/skiff-sh/skiff/internal/cri"
)

func TestConflist(t *testing.T) {
	tests := []struct {
		name    string
		in      netConf
		want    string
		wantErr string
	}{
		{
			name: "defaults without mtu",
			in:   netConf{bridge: "skiff0", subnet: "10.244.3.0/24", ipamDir: "/var/lib/skiff/cni/ipam", portmap: true},
			want: `{"cniVersion":"1.0.0","name":"skiff","plugins":[` +
				`{"type":"bridge","bridge":"skiff0","isGateway":true,"ipMasq":false,"hairpinMode":true,` +
				`"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.3.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/var/lib/skiff/cni/ipam"}},` +
				`{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}`,
		},
		{
			name: "mtu and another bridge",
			in:   netConf{bridge: "br1", subnet: "10.244.0.0/24", mtu: 1450, ipamDir: "/s/ipam", portmap: true},
			want: `{"cniVersion":"1.0.0","name":"skiff","plugins":[` +
				`{"type":"bridge","bridge":"br1","isGateway":true,"ipMasq":false,"hairpinMode":true,"mtu":1450,` +
				`"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/s/ipam"}},` +
				`{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}`,
		},
		{
			name: "no hostPorts, no portmap",
			in:   netConf{bridge: "skiff0", subnet: "10.244.3.0/24", ipamDir: "/s/ipam"},
			want: `{"cniVersion":"1.0.0","name":"skiff","plugins":[` +
				`{"type":"bridge","bridge":"skiff0","isGateway":true,"ipMasq":false,"hairpinMode":true,` +
				`"ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.3.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/s/ipam"}}]}`,
		},
		{name: "no subnet", in: netConf{bridge: "skiff0", ipamDir: "/s"}, wantErr: "required"},
		{name: "no bridge", in: netConf{subnet: "10.244.0.0/24", ipamDir: "/s"}, wantErr: "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := conflist(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("conflist: %v", err)
			}
			var v any
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("generated JSON does not parse: %v", err)
			}
			b, _ := json.Marshal(v)
			var w any
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatalf("want JSON does not parse: %v", err)
			}
			if !reflect.DeepEqual(v, w) {
				t.Errorf("got %s\nwant %s", b, tt.want)
			}
			// libcni must accept it and see the capability.
			l, err := libcni.ConfListFromBytes(got)
			if err != nil {
				t.Fatalf("libcni rejects the config: %v", err)
			}
			wantPlugins := 1
			if tt.in.portmap {
				wantPlugins = 2
			}
			if l.Name != "skiff" || l.CNIVersion != "1.0.0" || len(l.Plugins) != wantPlugins {
				t.Fatalf("got list %q %q with %d plugins, want skiff 1.0.0 with %d", l.Name, l.CNIVersion, len(l.Plugins), wantPlugins)
			}
			if tt.in.portmap && !l.Plugins[1].Network.Capabilities["portMappings"] {
				t.Errorf("got portmap capabilities %v, want portMappings", l.Plugins[1].Network.Capabilities)
			}
		})
	}
}

func TestLoopbackConf(t *testing.T) {
	c, err := libcni.ConfFromBytes(loopbackConf())
	if err != nil {
		t.Fatalf("libcni rejects the loopback config: %v", err)
	}
	if c.Network.Type != "loopback" || c.Network.Name != "skiff-loopback" || c.Network.CNIVersion != "1.0.0" {
		t.Errorf("got %+v, want loopback skiff-loopback 1.0.0", c.Network)
	}
}

func TestMasqueradeScript(t *testing.T) {
	tests := []struct {
		cluster string
		want    string
	}{
		{
			cluster: "10.244.0.0/16",
			want: `add table ip skiff-nat
delete table ip skiff-nat
table ip skiff-nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade
	}
}
`,
		},
		{
			cluster: "172.20.0.0/14",
			want: `add table ip skiff-nat
delete table ip skiff-nat
table ip skiff-nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.20.0.0/14 ip daddr != 172.20.0.0/14 masquerade
	}
}
`,
		},
	}
	for _, tt := range tests {
		if got := masqueradeScript(tt.cluster); got != tt.want {
			t.Errorf("masqueradeScript(%q):\ngot\n%s\nwant\n%s", tt.cluster, got, tt.want)
		}
	}
	if got, want := deleteScript(), "add table ip skiff-nat\ndelete table ip skiff-nat\n"; got != want {
		t.Errorf("deleteScript: got %q, want %q", got, want)
	}
}

func TestPortMappings(t *testing.T) {
	tests := []struct {
		name string
		in   []cri.PortMapping
		want []portMapEntry
	}{
		{name: "none", in: nil, want: nil},
		{
			name: "protocols lower case, tcp by default",
			in: []cri.PortMapping{
				{Protocol: "TCP", ContainerPort: 8080, HostPort: 31080},
				{Protocol: "UDP", ContainerPort: 53, HostPort: 5353, HostIP: "127.0.0.1"},
				{ContainerPort: 9000, HostPort: 9001},
			},
			want: []portMapEntry{
				{HostPort: 31080, ContainerPort: 8080, Protocol: "tcp"},
				{HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"},
				{HostPort: 9001, ContainerPort: 9000, Protocol: "tcp"},
			},
		},
		{
			name: "entries without a host port are dropped",
			in:   []cri.PortMapping{{Protocol: "TCP", ContainerPort: 80}, {Protocol: "SCTP", ContainerPort: 7, HostPort: 7}},
			want: []portMapEntry{{HostPort: 7, ContainerPort: 7, Protocol: "sctp"}},
		},
	}
	for _, tt := range tests {
		if got := portMappings(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCheckPodCIDR(t *testing.T) {
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	tests := []struct {
		in      string
		wantErr string
	}{
		{in: "10.244.0.0/24"},
		{in: "10.244.255.0/24"},
		{in: "10.244.0.0/16"},
		{in: "10.245.0.0/24", wantErr: "not inside"},
		{in: "10.0.0.0/8", wantErr: "not inside"},
		{in: "10.244.0.1/24", wantErr: "host bits"},
		{in: "fd00::/64", wantErr: "IPv4"},
		{in: "10.244.0.0/31", wantErr: "too small"},
		{in: "nonsense", wantErr: "pod CIDR"},
		{in: "", wantErr: "pod CIDR"},
	}
	for _, tt := range tests {
		_, err := checkPodCIDR(tt.in, cluster)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("checkPodCIDR(%q): got %v, want no error", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("checkPodCIDR(%q): got %v, want an error containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestResultIPs(t *testing.T) {
	idx := func(i int) *int { return &i }
	mk := func(ifs []*types100.Interface, ips ...*types100.IPConfig) *types100.Result {
		return &types100.Result{CNIVersion: "1.0.0", Interfaces: ifs, IPs: ips}
	}
	ip := func(s string, i *int) *types100.IPConfig {
		p := netip.MustParsePrefix(s)
		r := &types100.IPConfig{Interface: i}
		r.Address.IP = p.Addr().AsSlice()
		r.Address.Mask = make([]byte, 4)
		return r
	}
	ifs := []*types100.Interface{
		{Name: "skiff0"},
		{Name: "vethabc"},
		{Name: "eth0", Sandbox: "/run/netns/x"},
	}
	tests := []struct {
		name    string
		res     *types100.Result
		want    []string
		wantErr bool
	}{
		{name: "pod interface only", res: mk(ifs, ip("10.244.0.1/24", idx(0)), ip("10.244.0.5/24", idx(2))), want: []string{"10.244.0.5"}},
		{name: "order kept", res: mk(ifs, ip("10.244.0.5/24", idx(2)), ip("10.244.0.6/24", idx(2))), want: []string{"10.244.0.5", "10.244.0.6"}},
		{name: "no interface index", res: mk(nil, ip("10.244.0.7/24", nil)), want: []string{"10.244.0.7"}},
		{name: "nothing in the pod", res: mk(ifs, ip("10.244.0.1/24", idx(0))), wantErr: true},
	}
	for _, tt := range tests {
		got, err := resultIPs(tt.res)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: got error %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{StateDir: dir}},
		{name: "no state dir", cfg: Config{}, wantErr: "state dir"},
		{name: "long bridge name", cfg: Config{StateDir: dir, BridgeName: "a-much-too-long-name"}, wantErr: "bridge name"},
		{name: "pod cidr outside cluster", cfg: Config{StateDir: dir, PodCIDR: "10.1.0.0/24"}, wantErr: "not inside"},
		{name: "bad cluster cidr", cfg: Config{StateDir: dir, ClusterCIDR: "10.244.0.0/33"}, wantErr: "cluster CIDR"},
		{name: "tiny mtu", cfg: Config{StateDir: dir, MTU: 100}, wantErr: "mtu"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: got %v, want no error", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

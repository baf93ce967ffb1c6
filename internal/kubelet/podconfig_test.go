package kubelet

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPodDNS(t *testing.T) {
	servers := []string{"10.96.0.10"}
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want *DNSConfig
	}{
		{"cluster first by default", corev1.PodSpec{},
			&DNSConfig{Servers: servers, Searches: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}},
		{"host network falls back to the node's", corev1.PodSpec{HostNetwork: true}, nil},
		{"cluster first with host net", corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet},
			&DNSConfig{Servers: servers, Searches: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}},
		{"default is the node's", corev1.PodSpec{DNSPolicy: corev1.DNSDefault}, nil},
		{"none with a config, options merged", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.2.3.4"}, Searches: []string{"example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}},
			&DNSConfig{Servers: []string{"1.2.3.4"}, Searches: []string{"example"}, Options: []string{"ndots:2", "edns0"}}},
		{"cluster first, ndots overridden", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}}}},
			&DNSConfig{Servers: servers, Searches: []string{"web.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:1"}}},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "web"}, Spec: tc.spec}
		if d := cmp.Diff(tc.want, podDNS(pod, servers, "cluster.local")); d != "" {
			t.Errorf("%s: (-want +got)\n%s", tc.name, d)
		}
	}
}

func resources(req, lim map[corev1.ResourceName]string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{}
	for k, v := range req {
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		r.Requests[k] = resource.MustParse(v)
	}
	for k, v := range lim {
		if r.Limits == nil {
			r.Limits = corev1.ResourceList{}
		}
		r.Limits[k] = resource.MustParse(v)
	}
	return r
}

func TestQoSAndResources(t *testing.T) {
	const gi = int64(1 << 30)
	for _, tc := range []struct {
		name   string
		res    corev1.ResourceRequirements
		qos    corev1.PodQOSClass
		parent string
		want   Resources
	}{
		{"best effort", corev1.ResourceRequirements{}, corev1.PodQOSBestEffort, "kubepods/besteffort/poduid",
			Resources{CPUShares: 2, OOMScoreAdj: 1000}},
		{"guaranteed", resources(map[corev1.ResourceName]string{"cpu": "500m", "memory": "1Gi"}, map[corev1.ResourceName]string{"cpu": "500m", "memory": "1Gi"}),
			corev1.PodQOSGuaranteed, "kubepods/poduid",
			Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: gi, OOMScoreAdj: -997}},
		{"burstable", resources(map[corev1.ResourceName]string{"cpu": "100m", "memory": "2Gi"}, map[corev1.ResourceName]string{"memory": "4Gi"}),
			corev1.PodQOSBurstable, "kubepods/burstable/poduid",
			Resources{CPUShares: 102, MemoryLimit: 4 * gi, OOMScoreAdj: 1000 - 1000*2/8}},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "uid"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: tc.res}}}}
		if got := qosClass(pod); got != tc.qos {
			t.Errorf("%s: qos got %s, want %s", tc.name, got, tc.qos)
		}
		if got := cgroupParent(qosClass(pod), pod.UID); got != tc.parent {
			t.Errorf("%s: cgroup parent got %s, want %s", tc.name, got, tc.parent)
		}
		if d := cmp.Diff(tc.want, containerResources(&pod.Spec.Containers[0], tc.qos, 8*gi)); d != "" {
			t.Errorf("%s: resources (-want +got)\n%s", tc.name, d)
		}
	}
}

func TestServiceEnv(t *testing.T) {
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "redis-primary"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.11",
			Ports: []corev1.ServicePort{{Name: "redis", Port: 6379, Protocol: corev1.ProtocolTCP}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless"}, Spec: corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 80}}}},
	}
	got := map[string]string{}
	for _, e := range serviceEnv(svcs) {
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"REDIS_PRIMARY_SERVICE_HOST":        "10.0.0.11",
		"REDIS_PRIMARY_SERVICE_PORT":        "6379",
		"REDIS_PRIMARY_SERVICE_PORT_REDIS":  "6379",
		"REDIS_PRIMARY_PORT":                "tcp://10.0.0.11:6379",
		"REDIS_PRIMARY_PORT_6379_TCP":       "tcp://10.0.0.11:6379",
		"REDIS_PRIMARY_PORT_6379_TCP_PROTO": "tcp",
		"REDIS_PRIMARY_PORT_6379_TCP_PORT":  "6379",
		"REDIS_PRIMARY_PORT_6379_TCP_ADDR":  "10.0.0.11",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestExpandEnv(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"plain": "plain", "$(A)-$(B)": "x-y", "$$(A)": "$(A)", "$(C)": "$(C)", "a$": "a$", "$(A": "$(A", "$x": "$x",
	} {
		if got := expandEnv(in, vars); got != want {
			t.Errorf("expandEnv(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestDownwardValues(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1"}}
	for path, want := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u", "metadata.labels['app']": "web",
		"spec.nodeName": "n1", "status.podIP": "10.244.0.5", "status.hostIP": "192.0.2.1",
	} {
		got, err := fieldRefValue(pod, path, []string{"10.244.0.5"}, []string{"192.0.2.1"})
		if err != nil || got != want {
			t.Errorf("fieldRef %s: got %q %v, want %q", path, got, err, want)
		}
	}
	c := &corev1.Container{Resources: resources(map[corev1.ResourceName]string{"cpu": "250m"}, map[corev1.ResourceName]string{"memory": "64Mi"})}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	for _, tc := range []struct {
		ref  corev1.ResourceFieldSelector
		want string
	}{
		{corev1.ResourceFieldSelector{Resource: "requests.cpu"}, "1"},
		{corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}, "250"},
		{corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}, "64"},
		{corev1.ResourceFieldSelector{Resource: "limits.cpu"}, "2"},
	} {
		got, err := resourceFieldValue(c, &tc.ref, alloc)
		if err != nil || got != tc.want {
			t.Errorf("resourceFieldRef %+v: got %q %v, want %q", tc.ref, got, err, tc.want)
		}
	}
}

//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// netpolServer serves "ok" with busybox httpd on ports 8080 and 9090.
const netpolServer = `mkdir -p /www && echo ok > /www/index.html && httpd -p 9090 -h /www && exec httpd -f -p 8080 -h /www`

// TestNetworkPolicyMultiNode runs a server pod and a client pod on each of
// 3 real nodes (plus a client in a second namespace) and checks the
// reachability matrix, across nodes and within one, as policies are
// added: default deny all ingress; allow from a namespace
// (namespaceSelector) to one port only, also through a ClusterIP; egress
// deny all. Kubelet readiness probes, sent by each server's own node,
// keep passing under deny-all ingress.
func TestNetworkPolicyMultiNode(t *testing.T) {
	m := suite.StartMultiNode(t, framework.Options{}, framework.MultiNodeOptions{Agents: 2})
	names := m.NodeNames()
	ctx := t.Context()
	cs := m.Client()
	srv := realNamespace(t, m.Cluster, "np-srv")
	cliA := realNamespace(t, m.Cluster, "np-cli-a")
	cliB := realNamespace(t, m.Cluster, "np-cli-b")
	nsA, err := cs.CoreV1().Namespaces().Get(ctx, cliA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsA.Labels = map[string]string{"team": "allowed"}
	if _, err := cs.CoreV1().Namespaces().Update(ctx, nsA, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	newPod := func(ns, name, node string, server bool) {
		c := corev1.Container{Name: "c", Image: m.Image(framework.ImageBusybox), Command: []string{"sleep", "3600"}}
		if server {
			c.Command = []string{"sh", "-c", netpolServer}
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1, FailureThreshold: 2}
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"role": map[bool]string{true: "server", false: "client"}[server]}},
			Spec:       corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: new(int64), Containers: []corev1.Container{c}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	type client struct{ ns, name string }
	var clients []client
	for i, node := range names {
		newPod(srv, fmt.Sprintf("server-%d", i), node, true)
		newPod(cliA, fmt.Sprintf("a-%d", i), node, false)
		clients = append(clients, client{cliA, fmt.Sprintf("a-%d", i)})
	}
	newPod(cliB, "b-1", names[1], false)
	clients = append(clients, client{cliB, "b-1"})
	svc, err := cs.CoreV1().Services(srv).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"role": "server"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serverIPs := make([]string, len(names))
	for i := range names {
		p := waitPod(t, m.Cluster, srv, fmt.Sprintf("server-%d", i), 90*time.Second, phaseIs(corev1.PodRunning))
		serverIPs[i] = p.Status.PodIP
	}
	for _, c := range clients {
		waitPod(t, m.Cluster, c.ns, c.name, 90*time.Second, phaseIs(corev1.PodRunning))
	}

	// get fetches url from a client pod: true when it answered "ok".
	get := func(c client, url string) (bool, string) {
		out, stderr, err := m.Kubectl("-n", c.ns, "exec", c.name, "--", "timeout", "3", "wget", "-qO-", url)
		if err != nil {
			return false, strings.TrimSpace(stderr)
		}
		return strings.TrimSpace(out) == "ok", out
	}
	// expect polls every client x server pair (and the ClusterIP) until
	// each is as want says (rules take a sync to apply) and reports the
	// pairs that never got there.
	expect := func(step string, want func(c client, port int) bool) {
		t.Helper()
		type target struct {
			url, label string
			port       int
		}
		var targets []target
		for i, ip := range serverIPs {
			for _, port := range []int{8080, 9090} {
				targets = append(targets, target{fmt.Sprintf("http://%s:%d/", ip, port), fmt.Sprintf("server-%d:%d", i, port), port})
			}
		}
		targets = append(targets, target{fmt.Sprintf("http://%s/", svc.Spec.ClusterIP), "service web:80", 8080})
		for _, c := range clients {
			for _, tg := range targets {
				w := want(c, tg.port)
				var last string
				err := framework.Poll(ctx, 20*time.Second, func() (bool, string) {
					ok, detail := get(c, tg.url)
					last = detail
					return ok == w, fmt.Sprintf("reachable=%v (%s)", ok, detail)
				})
				if err != nil {
					t.Errorf("%s: %s/%s -> %s: want reachable=%v: %v (last: %s)", step, c.ns, c.name, tg.label, w, err, last)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	expect("no policies", func(client, int) bool { return true })

	create := func(ns string, p *networkingv1.NetworkPolicy) {
		t.Helper()
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(srv, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}})
	expect("default deny ingress", func(client, int) bool { return false })

	port := intstr.FromInt32(8080)
	create(srv, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "from-team-8080"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "allowed"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
		}}}})
	expect("allow from namespace team=allowed to 8080", func(c client, port int) bool { return c.ns == cliA && port == 8080 })

	create(cliA, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-egress"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}})
	expect("egress deny in the allowed namespace", func(client, int) bool { return false })

	// The servers' own nodes still probe them: all stayed Ready.
	for i := range names {
		p, err := getPod(m.Cluster, srv, fmt.Sprintf("server-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status != corev1.ConditionTrue {
				t.Errorf("server-%d is not Ready under deny-all ingress (kubelet probes must pass): %s", i, statusText(p))
			}
		}
	}
}

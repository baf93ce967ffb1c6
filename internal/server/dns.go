package server

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/dns"
	"github.com/skiff-sh/skiff/internal/storage"
)

// kubeDNS names the Service cluster DNS is reached at, as upstream's
// kubeadm names it for CoreDNS.
const kubeDNS = "kube-dns"

// dnsHost is where the cluster DNS server listens: the node's IP when the
// server runs a node (pods reach it there, also when the API listens on
// loopback only), else the bind address when it is one address, else the
// advertised address.
func (s *Server) dnsHost(advertise string) string {
	if s.cfg.Node != nil {
		if s.cfg.Node.NodeIP != "" {
			return s.cfg.Node.NodeIP
		}
		return agent.HostIP() // the node's own default
	}
	if ip := net.ParseIP(s.cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return advertise
}

// startDNS runs the cluster DNS server and, once it answers, ensures the
// kube-system/kube-dns Service with endpoints at its address. A port that
// cannot be bound is logged and leaves the cluster without DNS rather than
// stopping the control plane.
func (s *Server) startDNS(ctx context.Context, g *errgroup.Group, comps *components, inProcess *inProcessListener, api *apiserver.Server, advertise string) error {
	cfg := s.cfg
	if cfg.DNSPort == 0 {
		return nil
	}
	rc := inProcess.config("system:skiff-dns")
	protobuf(rc)
	rc.QPS, rc.Burst = -1, 0 // lists and watches, and one Service
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dns client: %w", err)
	}
	host := s.dnsHost(advertise)
	srv, err := dns.New(dns.Config{
		Client:     client,
		Domain:     cfg.ClusterDomain,
		Addr:       net.JoinHostPort(host, strconv.Itoa(cfg.DNSPort)),
		ClusterDNS: []string{cfg.ClusterDNS},
		Upstreams:  cfg.DNSUpstreams,
		ResolvConf: cfg.ResolvConf,
		Logger:     s.log,
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	comps.run(g, func() error {
		err := srv.Run(ctx)
		done <- err
		if err != nil && ctx.Err() == nil {
			s.log.Error("cluster DNS stopped; the cluster has no DNS", "err", err)
		}
		return nil
	})
	comps.run(g, func() error {
		select {
		case <-srv.Ready():
		case <-done:
			return nil
		case <-ctx.Done():
			return nil
		}
		_, port, _ := net.SplitHostPort(srv.Addr())
		p, _ := strconv.Atoi(port)
		epHost := host
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			epHost = advertise
		}
		// Retried briefly: the API serves, but its caches may lag.
		for i := range 50 {
			err = ensureKubeDNS(ctx, client, api, cfg.ClusterDNS, epHost, int32(p))
			if err == nil || ctx.Err() != nil {
				break
			}
			if i == 49 {
				s.log.Error("cluster DNS: kube-system/kube-dns not written", "err", err)
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		return nil
	})
	return nil
}

// ensureKubeDNS creates the kube-system/kube-dns Service as kubeadm does
// for CoreDNS (same name, labels and ports), without a selector, and
// writes its Endpoints and EndpointSlice at the DNS server's address
// straight to storage, as for the kubernetes Service: the address may be
// loopback, which API validation refuses for ordinary endpoints.
func ensureKubeDNS(ctx context.Context, cs kubernetes.Interface, api *apiserver.Server, clusterIP, host string, port int32) error {
	labels := map[string]string{"k8s-app": kubeDNS, "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: kubeDNS, Namespace: metav1.NamespaceSystem, Labels: labels,
			Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: clusterIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(port)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(port)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
			SessionAffinity: corev1.ServiceAffinityNone,
		},
	}
	if _, err := cs.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("service kube-system/kube-dns: %w", err)
	}

	now := metav1.NewTime(time.Now().Truncate(time.Second))
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	eps := api.Storage(schema.GroupResource{Resource: "endpoints"})
	_, err := eps.GuaranteedUpdate(ctx, metav1.NamespaceSystem, kubeDNS, storage.UpdateOptions{AllowCreate: true},
		func(cur runtime.Object) (runtime.Object, error) {
			ep, _ := cur.(*corev1.Endpoints)
			if ep == nil {
				ep = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: kubeDNS, Namespace: metav1.NamespaceSystem,
					UID: types.UID(uuid.NewString()), CreationTimestamp: now,
					Labels: map[string]string{"k8s-app": kubeDNS, "endpointslice.kubernetes.io/skip-mirror": "true"}}}
			}
			ep.Subsets = []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: host}},
				Ports: []corev1.EndpointPort{{Name: "dns", Port: port, Protocol: udp},
					{Name: "dns-tcp", Port: port, Protocol: tcp}},
			}}
			return ep, nil
		})
	if err != nil {
		return fmt.Errorf("endpoints kube-system/kube-dns: %w", err)
	}

	ready := true
	dnsName, tcpName := "dns", "dns-tcp"
	addrType := discoveryv1.AddressTypeIPv4
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		addrType = discoveryv1.AddressTypeIPv6
	}
	slices := api.Storage(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"})
	_, err = slices.GuaranteedUpdate(ctx, metav1.NamespaceSystem, kubeDNS, storage.UpdateOptions{AllowCreate: true},
		func(cur runtime.Object) (runtime.Object, error) {
			es, _ := cur.(*discoveryv1.EndpointSlice)
			if es == nil {
				es = &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: kubeDNS, Namespace: metav1.NamespaceSystem,
					UID: types.UID(uuid.NewString()), CreationTimestamp: now, Generation: 1,
					Labels: map[string]string{discoveryv1.LabelServiceName: kubeDNS, "k8s-app": kubeDNS}}}
			}
			es.AddressType = addrType
			es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}
			es.Ports = []discoveryv1.EndpointPort{{Name: &dnsName, Port: &port, Protocol: &udp}, {Name: &tcpName, Port: &port, Protocol: &tcp}}
			return es, nil
		})
	if err != nil {
		return fmt.Errorf("endpointslice kube-system/kube-dns: %w", err)
	}
	return nil
}

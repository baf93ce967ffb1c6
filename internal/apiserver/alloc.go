package apiserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The allocator hands out Service cluster IPs and NodePorts. Each taken
// value is a key in etcd, claimed with a create-if-absent transaction, so
// that several API servers never hand out the same value.
const (
	ipKeyPrefix   = "/registry/ranges/serviceips/"
	portKeyPrefix = "/registry/ranges/servicenodeports/"
)

type allocator struct {
	client           *clientv3.Client
	cidr             *net.IPNet
	base             uint32 // network address
	size             uint32 // addresses in the range
	portMin, portMax int
}

func newAllocator(client *clientv3.Client, cidr *net.IPNet, portMin, portMax int) *allocator {
	if cidr == nil {
		_, cidr, _ = net.ParseCIDR("10.96.0.0/12")
	}
	if portMin == 0 {
		portMin, portMax = 30000, 32767
	}
	ones, bits := cidr.Mask.Size()
	return &allocator{
		client: client, cidr: cidr,
		base: binary.BigEndian.Uint32(cidr.IP.To4()), size: 1 << uint(bits-ones),
		portMin: portMin, portMax: portMax,
	}
}

// claim takes key for owner; it succeeds when the key is free or already
// the owner's.
func (a *allocator) claim(ctx context.Context, key, owner string, dryRun bool) (bool, error) {
	if dryRun {
		resp, err := a.client.Get(ctx, key)
		if err != nil {
			return false, err
		}
		return len(resp.Kvs) == 0 || string(resp.Kvs[0].Value) == owner, nil
	}
	resp, err := a.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, owner)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	return len(kvs) > 0 && string(kvs[0].Value) == owner, nil
}

func (a *allocator) release(ctx context.Context, key, owner string) {
	_, _ = a.client.Txn(context.WithoutCancel(ctx)).
		If(clientv3.Compare(clientv3.Value(key), "=", owner)).
		Then(clientv3.OpDelete(key)).
		Commit()
}

func (a *allocator) ipAt(offset uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a.base+offset)
	return net.IP(b[:]).String()
}

// dynamicIP claims a free address from the upper part of the range; the
// lower band is left for addresses users ask for, as upstream does.
func (a *allocator) dynamicIP(ctx context.Context, owner string, dryRun bool) (string, error) {
	reserved := min(max(16, a.size/16), 256)
	first, last := reserved, a.size-2 // skip the broadcast address
	if first >= last {
		first = 1
	}
	n := last - first + 1
	start := rand.Uint32N(n)
	for i := uint32(0); i < n && i < 4096; i++ {
		ip := a.ipAt(first + (start+i)%n)
		ok, err := a.claim(ctx, ipKeyPrefix+ip, owner, dryRun)
		if err != nil {
			return "", err
		}
		if ok {
			return ip, nil
		}
	}
	return "", fmt.Errorf("range is full")
}

func (a *allocator) dynamicPort(ctx context.Context, owner string, dryRun bool, taken map[int32]bool) (int32, error) {
	n := a.portMax - a.portMin + 1
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		p := int32(a.portMin + (start+i)%n)
		if taken[p] {
			continue
		}
		ok, err := a.claim(ctx, portKeyPrefix+strconv.Itoa(int(p)), owner, dryRun)
		if err != nil {
			return 0, err
		}
		if ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("range is full")
}

// allocateFor fills and claims the cluster IP and node ports of a Service
// being created (old nil) or updated, keeping values the old object held.
// The returned func releases what it newly claimed, for when the write
// fails; after a successful update the caller frees what the old object
// held and the new one dropped with releaseDropped.
func (s *Server) allocateFor(ctx context.Context, old, obj runtime.Object, dryRun bool) (func(), error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return func() {}, nil
	}
	a := s.alloc
	owner := svc.Namespace + "/" + svc.Name
	var oldSvc *corev1.Service
	if old != nil {
		oldSvc, _ = old.(*corev1.Service)
	}
	var claimed []string
	undo := func() {
		if dryRun {
			return
		}
		for _, k := range claimed {
			a.release(ctx, k, owner)
		}
	}
	fail := func(err error) (func(), error) {
		undo()
		return func() {}, err
	}
	spec := &svc.Spec

	// Cluster IP.
	switch {
	case spec.Type == corev1.ServiceTypeExternalName:
		spec.ClusterIP, spec.ClusterIPs = "", nil
		spec.IPFamilies, spec.IPFamilyPolicy = nil, nil
	case spec.ClusterIP == corev1.ClusterIPNone:
		spec.ClusterIPs = []string{corev1.ClusterIPNone}
	default:
		if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
			spec.ClusterIP = spec.ClusterIPs[0]
		}
		if spec.ClusterIP == "" && oldSvc != nil && oldSvc.Spec.ClusterIP != "" && oldSvc.Spec.ClusterIP != corev1.ClusterIPNone {
			spec.ClusterIP = oldSvc.Spec.ClusterIP
		}
		switch {
		case spec.ClusterIP == "":
			ip, err := a.dynamicIP(ctx, owner, dryRun)
			if err != nil {
				return fail(apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %w", err)))
			}
			if !dryRun {
				claimed = append(claimed, ipKeyPrefix+ip)
			}
			spec.ClusterIP = ip
		case oldSvc != nil && oldSvc.Spec.ClusterIP == spec.ClusterIP:
		default:
			ip := net.ParseIP(spec.ClusterIP)
			path := field.NewPath("spec", "clusterIPs")
			if ip == nil || ip.To4() == nil || !a.cidr.Contains(ip) {
				return fail(invalidService(svc, field.Invalid(path, []string{spec.ClusterIP},
					fmt.Sprintf("failed to allocate IP %s: the provided network does not match the current range", spec.ClusterIP))))
			}
			ok, err := a.claim(ctx, ipKeyPrefix+ip.String(), owner, dryRun)
			if err != nil {
				return fail(apierrors.NewInternalError(err))
			}
			if !ok {
				return fail(invalidService(svc, field.Invalid(path, []string{spec.ClusterIP},
					fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", spec.ClusterIP))))
			}
			if !dryRun {
				claimed = append(claimed, ipKeyPrefix+ip.String())
			}
		}
		spec.ClusterIPs = []string{spec.ClusterIP}
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		if spec.IPFamilyPolicy == nil {
			p := corev1.IPFamilyPolicySingleStack
			spec.IPFamilyPolicy = &p
		}
	}

	// Node ports.
	wantPorts := spec.Type == corev1.ServiceTypeNodePort ||
		(spec.Type == corev1.ServiceTypeLoadBalancer && (spec.AllocateLoadBalancerNodePorts == nil || *spec.AllocateLoadBalancerNodePorts))
	oldPorts := map[int32]bool{}
	if oldSvc != nil {
		for _, p := range heldPorts(oldSvc) {
			oldPorts[p] = true
		}
	}
	taken := map[int32]bool{}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if !wantPorts {
			if p.NodePort != 0 && oldPorts[p.NodePort] && spec.Type != corev1.ServiceTypeLoadBalancer {
				p.NodePort = 0 // the type no longer has node ports
			}
			continue
		}
		if p.NodePort == 0 && oldSvc != nil {
			for _, op := range oldSvc.Spec.Ports {
				if op.NodePort != 0 && op.Port == p.Port && op.Protocol == p.Protocol {
					p.NodePort = op.NodePort
				}
			}
		}
		path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
		if err := s.claimPort(ctx, svc, &p.NodePort, path, owner, dryRun, oldPorts, taken, &claimed); err != nil {
			return fail(err)
		}
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		if spec.HealthCheckNodePort == 0 && oldSvc != nil {
			spec.HealthCheckNodePort = oldSvc.Spec.HealthCheckNodePort
		}
		if err := s.claimPort(ctx, svc, &spec.HealthCheckNodePort, field.NewPath("spec", "healthCheckNodePort"), owner, dryRun, oldPorts, taken, &claimed); err != nil {
			return fail(err)
		}
	} else if oldSvc != nil && spec.HealthCheckNodePort == oldSvc.Spec.HealthCheckNodePort {
		spec.HealthCheckNodePort = 0
	}
	return undo, nil
}

func (s *Server) claimPort(ctx context.Context, svc *corev1.Service, port *int32, path *field.Path, owner string, dryRun bool,
	oldPorts, taken map[int32]bool, claimed *[]string) error {
	a := s.alloc
	switch {
	case *port == 0:
		p, err := a.dynamicPort(ctx, owner, dryRun, taken)
		if err != nil {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err))
		}
		*port = p
		if !dryRun {
			*claimed = append(*claimed, portKeyPrefix+strconv.Itoa(int(p)))
		}
	case oldPorts[*port] || taken[*port]:
	default:
		if int(*port) < a.portMin || int(*port) > a.portMax {
			return invalidService(svc, field.Invalid(path, *port,
				fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", a.portMin, a.portMax)))
		}
		ok, err := a.claim(ctx, portKeyPrefix+strconv.Itoa(int(*port)), owner, dryRun)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		if !ok {
			return invalidService(svc, field.Invalid(path, *port, "provided port is already allocated"))
		}
		if !dryRun {
			*claimed = append(*claimed, portKeyPrefix+strconv.Itoa(int(*port)))
		}
	}
	taken[*port] = true
	return nil
}

// releaseDropped frees what a Service held before a stored update and no
// longer holds.
func (s *Server) releaseDropped(ctx context.Context, oldObj, obj runtime.Object) {
	old, ok1 := oldObj.(*corev1.Service)
	svc, ok2 := obj.(*corev1.Service)
	if !ok1 || !ok2 {
		return
	}
	owner := svc.Namespace + "/" + svc.Name
	keep := map[string]bool{}
	for _, k := range heldKeys(svc) {
		keep[k] = true
	}
	for _, k := range heldKeys(old) {
		if !keep[k] {
			s.alloc.release(ctx, k, owner)
		}
	}
}

func heldPorts(svc *corev1.Service) []int32 {
	var out []int32
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			out = append(out, p.NodePort)
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		out = append(out, svc.Spec.HealthCheckNodePort)
	}
	return out
}

func heldKeys(svc *corev1.Service) []string {
	var out []string
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		out = append(out, ipKeyPrefix+ip)
	}
	for _, p := range heldPorts(svc) {
		out = append(out, portKeyPrefix+strconv.Itoa(int(p)))
	}
	return out
}

// releaseFor frees what a deleted object held.
func (s *Server) releaseFor(ctx context.Context, obj runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	owner := svc.Namespace + "/" + svc.Name
	for _, k := range heldKeys(svc) {
		s.alloc.release(ctx, k, owner)
	}
}

func invalidService(svc *corev1.Service, e *field.Error) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{e})
}

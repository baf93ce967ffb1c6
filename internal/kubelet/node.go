package kubelet

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	goruntime "runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Well-known node labels the kubelet sets itself.
const (
	labelHostname = "kubernetes.io/hostname"
	labelOS       = "kubernetes.io/os"
	labelArch     = "kubernetes.io/arch"
	// leaseNamespace holds one heartbeat Lease per node.
	leaseNamespace = "kube-node-lease"
	kubeletPort    = 10250
)

// Pressure is what the node's resource monitor reports: whether a hard
// eviction threshold is crossed for memory, disk or process IDs.
type Pressure struct {
	Memory, Disk, PID bool
	// Reason names the resource for eviction messages ("memory",
	// "ephemeral-storage").
	Reason string
}

// nodeConditions are the conditions the node reports, in upstream's
// order, with heartbeat and transition times left for the caller.
func nodeConditions(p Pressure) []corev1.NodeCondition {
	cond := func(t corev1.NodeConditionType, on bool, okReason, okMsg, badReason, badMsg string) corev1.NodeCondition {
		if on {
			return corev1.NodeCondition{Type: t, Status: corev1.ConditionTrue, Reason: badReason, Message: badMsg}
		}
		return corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: okMsg}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, p.Memory, "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
			"KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
		cond(corev1.NodeDiskPressure, p.Disk, "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
			"KubeletHasDiskPressure", "kubelet has disk pressure"),
		cond(corev1.NodePIDPressure, p.PID, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
			"KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}
}

// nodeInput is what a Node object is built from.
type nodeInput struct {
	Name        string
	Labels      map[string]string
	Taints      []corev1.Taint
	Capacity    corev1.ResourceList
	Allocatable corev1.ResourceList
	Addresses   []corev1.NodeAddress
	Info        corev1.NodeSystemInfo
}

// buildNode returns the Node the kubelet registers. It is pure.
func buildNode(in nodeInput) *corev1.Node {
	labels := map[string]string{
		labelHostname: in.Name,
		labelOS:       in.Info.OperatingSystem,
		labelArch:     in.Info.Architecture,
	}
	maps.Copy(labels, in.Labels)
	alloc := in.Allocatable
	if alloc == nil {
		alloc = in.Capacity
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: in.Taints},
		Status: corev1.NodeStatus{
			Capacity:        in.Capacity.DeepCopy(),
			Allocatable:     alloc.DeepCopy(),
			Addresses:       in.Addresses,
			NodeInfo:        in.Info,
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubeletPort}},
		},
	}
}

// desiredNodeStatus returns the status the node must report now, keeping
// the transition times of conditions that did not change and the fields the
// kubelet does not own (images, volumes) from cur.
func desiredNodeStatus(want *corev1.Node, cur *corev1.Node, now time.Time, p Pressure) corev1.NodeStatus {
	s := *cur.Status.DeepCopy()
	s.Capacity = want.Status.Capacity.DeepCopy()
	s.Allocatable = want.Status.Allocatable.DeepCopy()
	s.Addresses = want.Status.Addresses
	s.NodeInfo = want.Status.NodeInfo
	s.DaemonEndpoints = want.Status.DaemonEndpoints
	t := metav1.NewTime(now.Truncate(time.Second))
	var conds []corev1.NodeCondition
	for _, c := range nodeConditions(p) {
		c.LastHeartbeatTime, c.LastTransitionTime = t, t
		for _, o := range cur.Status.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		conds = append(conds, c)
	}
	for _, o := range cur.Status.Conditions {
		switch o.Type {
		case corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeReady:
		default:
			conds = append(conds, o)
		}
	}
	s.Conditions = conds
	return s
}

// nodeStatusChanged reports whether two statuses differ in more than their
// heartbeat times, which is what makes the kubelet write before the
// report interval ends.
func nodeStatusChanged(a, b *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		s = s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	return !apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// systemInfo is the node's nodeInfo.
func (k *Kubelet) systemInfo() corev1.NodeSystemInfo {
	info := systemInfo(k.name, k.rtInfo, k.cfg.KubeletVersion)
	info.OSImage, info.KernelVersion = k.cfg.OSImage, k.cfg.KernelVersion
	return info
}

// systemInfo fills the node info the kubelet knows without asking the OS.
func systemInfo(name string, rt RuntimeInfo, kubeletVersion string) corev1.NodeSystemInfo {
	id := fmt.Sprintf("%032x", fnvSum(name))
	return corev1.NodeSystemInfo{
		MachineID:               id,
		SystemUUID:              id,
		BootID:                  id,
		OperatingSystem:         "linux",
		Architecture:            goruntime.GOARCH,
		ContainerRuntimeVersion: rt.Name + "://" + rt.Version,
		KubeletVersion:          kubeletVersion,
	}
}

func fnvSum(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// ParseCapacity builds a resource list from quantities such as "8",
// "32Gi"; empty values are left out.
func ParseCapacity(cpu, memory, pods, ephemeral string) (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{
		corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory,
		corev1.ResourcePods: pods, corev1.ResourceEphemeralStorage: ephemeral,
	} {
		if v == "" {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("capacity %s: %w", name, err)
		}
		out[name] = q
	}
	return out, nil
}

// register creates the node, or adopts an existing one of the same name and
// brings its labels, taints and status to what this kubelet reports. It
// returns the node as stored.
func (k *Kubelet) register(ctx context.Context) (*corev1.Node, error) {
	want := k.desiredNode()
	created, err := k.client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	switch {
	case err == nil:
		k.log.Info("registered node")
	case apierrors.IsAlreadyExists(err):
		cur, gerr := k.client.CoreV1().Nodes().Get(ctx, k.name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("node %q: get: %w", k.name, gerr)
		}
		created = cur
		upd := cur.DeepCopy()
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		maps.Copy(upd.Labels, want.Labels)
		if !apiequality.Semantic.DeepEqual(upd.Labels, cur.Labels) {
			if created, err = k.client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return nil, fmt.Errorf("node %q: update labels: %w", k.name, err)
			}
		}
		k.log.Info("adopted existing node")
	default:
		return nil, fmt.Errorf("node %q: register: %w", k.name, err)
	}
	node, err := k.writeNodeStatus(ctx, created, true)
	if err != nil {
		return nil, err
	}
	k.setNode(node)
	// A lease owned by an earlier Node of this name would be collected
	// with it: the next renewal rewrites its owner.
	k.lease = nil
	return node, nil
}

// desiredNode is the Node this kubelet registers.
func (k *Kubelet) desiredNode() *corev1.Node {
	addrs := []corev1.NodeAddress{}
	if k.cfg.NodeIP != "" {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: k.cfg.NodeIP})
	}
	addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: k.cfg.Hostname})
	return buildNode(nodeInput{
		Name:        k.name,
		Labels:      k.cfg.Labels,
		Taints:      k.cfg.Taints,
		Capacity:    k.cfg.Capacity,
		Allocatable: k.cfg.Allocatable,
		Addresses:   addrs,
		Info:        k.systemInfo(),
	})
}

// writeNodeStatus writes the node's status when it changed or when force
// (the report interval ended) and returns the node as stored.
func (k *Kubelet) writeNodeStatus(ctx context.Context, cur *corev1.Node, force bool) (*corev1.Node, error) {
	want := k.desiredNode()
	p := k.pressure()
	s := desiredNodeStatus(want, cur, k.clock.Now(), p)
	if !force && !nodeStatusChanged(&s, &cur.Status) {
		return cur, nil
	}
	upd := cur.DeepCopy()
	upd.Status = s
	out, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	for i := 0; apierrors.IsConflict(err) && i < 5; i++ {
		// Controllers write the node too (podCIDR, taints): start from
		// the stored object and try again.
		if cur, err = k.client.CoreV1().Nodes().Get(ctx, k.name, metav1.GetOptions{}); err != nil {
			break
		}
		upd = cur.DeepCopy()
		upd.Status = desiredNodeStatus(want, cur, k.clock.Now(), p)
		out, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("node %q: update status: %w", k.name, err)
	}
	k.lastReport = k.clock.Now()
	return out, nil
}

// syncNodeStatus is one tick of the status loop: re-register a node that
// is gone, otherwise report its status when it changed or the report
// interval passed.
func (k *Kubelet) syncNodeStatus(ctx context.Context) error {
	var cur *corev1.Node
	var err error
	if k.nodes != nil {
		// The node informer's cache spares a thousand simulated nodes
		// their GETs.
		cur, err = k.nodes.Get(k.name)
	} else {
		cur, err = k.client.CoreV1().Nodes().Get(ctx, k.name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		k.log.Info("node object is gone; registering again")
		_, err = k.register(ctx)
		return err
	}
	if err != nil {
		return fmt.Errorf("node %q: get: %w", k.name, err)
	}
	force := k.clock.Since(k.lastReport) >= k.cfg.StatusReportFrequency
	node, err := k.writeNodeStatus(ctx, cur, force)
	if err != nil {
		return err
	}
	k.setNode(node)
	if k.cfg.Pressure != nil {
		return k.evictUnderPressure(ctx, k.pressure())
	}
	return nil
}

// renewLease creates or renews the node's heartbeat Lease.
func (k *Kubelet) renewLease(ctx context.Context) error {
	node := k.getNode()
	if node == nil {
		return nil
	}
	now := metav1.NewMicroTime(k.clock.Now())
	leases := k.client.CoordinationV1().Leases(leaseNamespace)
	if k.lease != nil {
		l := k.lease.DeepCopy()
		l.Spec.RenewTime = &now
		l.Spec.HolderIdentity = ptr.To(k.name)
		out, err := leases.Update(ctx, l, metav1.UpdateOptions{})
		if err == nil {
			k.lease = out
			return nil
		}
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("lease %s/%s: renew: %w", leaseNamespace, k.name, err)
		}
		k.lease = nil
	}
	cur, err := leases.Get(ctx, k.name, metav1.GetOptions{})
	if err == nil {
		l := cur.DeepCopy()
		l.Spec.RenewTime = &now
		l.Spec.HolderIdentity = ptr.To(k.name)
		l.Spec.LeaseDurationSeconds = ptr.To(int32(k.cfg.LeaseDuration / time.Second))
		l.OwnerReferences = nodeOwner(node)
		out, err := leases.Update(ctx, l, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("lease %s/%s: renew: %w", leaseNamespace, k.name, err)
		}
		k.lease = out
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("lease %s/%s: get: %w", leaseNamespace, k.name, err)
	}
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: k.name, Namespace: leaseNamespace, OwnerReferences: nodeOwner(node)},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(k.name),
			LeaseDurationSeconds: ptr.To(int32(k.cfg.LeaseDuration / time.Second)),
			RenewTime:            &now,
		},
	}
	out, err := leases.Create(ctx, l, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("lease %s/%s: create: %w", leaseNamespace, k.name, err)
	}
	k.lease = out
	return nil
}

// nodeOwner makes the Node the owner of its Lease, so the garbage
// collector removes the Lease with the Node.
func nodeOwner(n *corev1.Node) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
}

// nodeUID returns the UID of the registered node, or "".
func (k *Kubelet) nodeUID() types.UID {
	if n := k.getNode(); n != nil {
		return n.UID
	}
	return ""
}

package nodenet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// DefaultResyncPeriod is how often the controller re-reads the kernel's
// state without a Node change, repairing what someone else removed.
const DefaultResyncPeriod = 30 * time.Second

// syncKey is the work queue's only key: every change leads to one full,
// level-triggered reconcile of all peers.
const syncKey = "peers"

// Config configures a Controller.
type Config struct {
	// Client reads Nodes and, for VXLAN, patches this node's annotations.
	Client kubernetes.Interface
	// NodeName and NodeIP are this node's name and InternalIP.
	NodeName string
	NodeIP   string
	Backend  Backend
	// NetNS, when not 0, is an open network namespace file to program
	// instead of the caller's (tests); IP forwarding is then left alone.
	NetNS int
	// ResyncPeriod defaults to DefaultResyncPeriod.
	ResyncPeriod time.Duration
	Logger       *slog.Logger
}

// Controller keeps this node's routes to other nodes' pods in line with
// the Node objects.
type Controller struct {
	cfg    Config
	ip     netip.Addr
	log    *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[string]
	lister listerscorev1.NodeLister
	k      *kernel

	// Only the worker goroutine touches these.
	lastSkipped string
	lastVXLAN   string
}

// New checks cfg and returns a controller; nothing changes until Run.
func New(cfg Config) (*Controller, error) {
	b, err := ParseBackend(string(cfg.Backend))
	if err != nil {
		return nil, err
	}
	cfg.Backend = b
	ip, err := netip.ParseAddr(cfg.NodeIP)
	if err != nil || !ip.Is4() {
		return nil, fmt.Errorf("node network: node IP %q: want an IPv4 address", cfg.NodeIP)
	}
	if cfg.Client == nil || cfg.NodeName == "" {
		return nil, errors.New("node network: a client and a node name are required")
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = DefaultResyncPeriod
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{cfg: cfg, ip: ip, log: cfg.Logger.With("component", "nodenet", "backend", string(cfg.Backend))}, nil
}

// Run programs the routes until ctx ends. The routes stay when it returns,
// so a restarted node keeps its pods reachable; the next Run reconciles
// them.
func (c *Controller) Run(ctx context.Context) error {
	if c.cfg.Backend == None {
		c.log.Info("node network: no routes between nodes (backend none)")
		return nil
	}
	if c.cfg.NetNS == 0 {
		if err := enableForwarding(); err != nil {
			return err
		}
	}
	k, err := dialKernel(c.cfg.NetNS)
	if err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	defer k.Close()
	c.k = k
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodenet"})
	defer c.queue.ShutDown()

	factory := informers.NewSharedInformerFactory(c.cfg.Client, 0)
	inf := factory.Core().V1().Nodes()
	c.lister = inf.Lister()
	enqueue := func(any) { c.queue.Add(syncKey) }
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		DeleteFunc: enqueue,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if !ok1 || !ok2 || relevant(o) != relevant(n) {
				c.queue.Add(syncKey)
			}
		},
	}); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return nil // ctx ended
	}
	c.log.Info("node network controller started", "node", c.cfg.NodeName, "nodeIP", c.cfg.NodeIP)
	go func() {
		t := time.NewTicker(c.cfg.ResyncPeriod)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				c.queue.ShutDown()
				return
			case <-t.C:
				c.queue.Add(syncKey)
			}
		}
	}()
	c.queue.Add(syncKey)
	for c.processNext(ctx) {
	}
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("node network sync failed; retrying", "err", err)
			c.queue.AddRateLimited(key)
		}
		return true
	}
	c.queue.Forget(key)
	return true
}

// relevant is what of a Node matters to the routes.
func relevant(n *corev1.Node) string {
	cidr, _ := nodePodCIDR(n)
	ip, _ := nodeInternalIP(n)
	return fmt.Sprintf("%s|%s|%s|%s", cidr, ip, n.Annotations[AnnotationBackendType], n.Annotations[AnnotationBackendData])
}

// sync moves the kernel to the state the Nodes ask for.
func (c *Controller) sync(ctx context.Context) error {
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		return err
	}
	vxlanIndex := 0
	if c.cfg.Backend == VXLAN {
		l, err := c.ensureVXLAN()
		if err != nil {
			return err
		}
		vxlanIndex = l.index
		if err := c.publish(ctx, l.mac); err != nil {
			return err
		}
		if self, err := c.lister.Get(c.cfg.NodeName); err == nil {
			if cidr, ok := nodePodCIDR(self); ok {
				if err := c.k.SetOnlyAddr(l.index, cidr.Addr()); err != nil {
					return err
				}
			}
		}
	} else if err := c.removeVXLAN(); err != nil {
		return err
	}
	local, _, err := c.k.LocalPrefixes(c.ip)
	if err != nil {
		return err
	}
	peers, skipped := Peers(c.cfg.NodeName, nodes, c.cfg.Backend)
	desired, unreachable := Desired(c.cfg.Backend, peers, local, vxlanIndex)
	for _, name := range unreachable {
		skipped[name] = "InternalIP not on a directly connected network (host-gw needs one L2 network; use --flannel-backend vxlan)"
	}
	c.logSkipped(skipped)

	var current State
	if current.Routes, err = c.k.Routes(); err != nil {
		return err
	}
	for i, r := range current.Routes {
		// The kernel reports the device it resolved a gateway to; host-gw
		// routes name none.
		if !r.Onlink {
			current.Routes[i].LinkIndex = 0
		}
	}
	if vxlanIndex != 0 {
		if current.Neighs, err = c.k.Neighs(vxlanIndex); err != nil {
			return err
		}
		if current.FDB, err = c.k.FDBs(vxlanIndex); err != nil {
			return err
		}
	}
	add, del := Diff(desired, current)
	return c.apply(vxlanIndex, add, del)
}

// apply deletes, then adds: a replacement is an add alone, so a changed
// route never disappears in between.
func (c *Controller) apply(vxlanIndex int, add, del State) error {
	var errs []error
	for _, r := range del.Routes {
		if err := c.k.DeleteRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		c.log.Info("route to a node's pods removed", "route", r.String())
	}
	for _, n := range del.Neighs {
		errs = append(errs, c.k.DeleteNeigh(vxlanIndex, n))
	}
	for _, f := range del.FDB {
		errs = append(errs, c.k.DeleteFDB(vxlanIndex, f))
	}
	// Forwarding and neighbour entries first: a route must not point at a
	// VTEP the device cannot reach yet.
	for _, f := range add.FDB {
		errs = append(errs, c.k.ReplaceFDB(vxlanIndex, f))
	}
	for _, n := range add.Neighs {
		errs = append(errs, c.k.ReplaceNeigh(vxlanIndex, n))
	}
	for _, r := range add.Routes {
		if err := c.k.ReplaceRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		c.log.Info("route to a node's pods added", "route", r.String())
	}
	return errors.Join(errs...)
}

// logSkipped logs the nodes left out, when that changes.
func (c *Controller) logSkipped(skipped map[string]string) {
	var parts []string
	for name, why := range skipped {
		parts = append(parts, name+": "+why)
	}
	slices.Sort(parts)
	s := strings.Join(parts, "; ")
	if s != c.lastSkipped && s != "" {
		c.log.Info("nodes without routes to their pods", "nodes", s)
	}
	c.lastSkipped = s
}

// ensureVXLAN creates the VXLAN device or checks the one there, recreating
// it when its VNI, port or local address differ (a changed node IP).
func (c *Controller) ensureVXLAN() (vxlanLink, error) {
	l, ok, err := c.k.Link(VXLANDevice)
	if err != nil {
		return l, err
	}
	if ok && (l.kind != "vxlan" || l.vni != VXLANVNI || l.port != VXLANPort || l.local != c.ip) {
		c.log.Info("recreating the VXLAN device", "device", VXLANDevice, "kind", l.kind, "vni", l.vni, "port", l.port, "local", l.local)
		if err := c.k.DeleteLink(l.index); err != nil {
			return l, err
		}
		ok = false
	}
	if !ok {
		_, parent, err := c.k.LocalPrefixes(c.ip)
		if err != nil {
			return l, err
		}
		if parent == 0 {
			return l, fmt.Errorf("vxlan: no interface has the node IP %s", c.ip)
		}
		if err := c.k.AddVXLAN(VXLANDevice, VXLANVNI, c.ip, parent, VXLANPort, VXLANMTU); err != nil {
			return l, err
		}
		if l, ok, err = c.k.Link(VXLANDevice); err != nil || !ok {
			return l, fmt.Errorf("vxlan device %s missing after creation: %w", VXLANDevice, err)
		}
	}
	if !l.up {
		if err := c.k.SetLinkUp(l.index); err != nil {
			return l, err
		}
	}
	if id := fmt.Sprintf("%d %s", l.index, l.mac); id != c.lastVXLAN {
		c.log.Info("VXLAN device ready", "device", VXLANDevice, "vni", VXLANVNI, "port", VXLANPort, "mac", l.mac, "mtu", l.mtu)
		c.lastVXLAN = id
	}
	return l, nil
}

// removeVXLAN deletes a VXLAN device a previous run with the VXLAN backend
// left.
func (c *Controller) removeVXLAN() error {
	l, ok, err := c.k.Link(VXLANDevice)
	if err != nil || !ok || l.kind != "vxlan" {
		return err
	}
	c.log.Info("removing the VXLAN device of an earlier backend", "device", VXLANDevice)
	return c.k.DeleteLink(l.index)
}

// publish writes this node's backend annotations when they differ.
func (c *Controller) publish(ctx context.Context, mac string) error {
	data, err := json.Marshal(BackendData{VNI: VXLANVNI, VtepMAC: mac})
	if err != nil {
		return err
	}
	want := map[string]string{
		AnnotationBackendType: string(c.cfg.Backend),
		AnnotationBackendData: string(data),
		AnnotationPublicIP:    c.ip.String(),
	}
	self, err := c.lister.Get(c.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		return nil // not registered yet; its Add event syncs again
	}
	if err != nil {
		return err
	}
	same := true
	for k, v := range want {
		same = same && self.Annotations[k] == v
	}
	if same {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	if err != nil {
		return err
	}
	if _, err := c.cfg.Client.CoreV1().Nodes().Patch(ctx, c.cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("publish VXLAN backend data on node %q: %w", c.cfg.NodeName, err)
	}
	c.log.Info("VXLAN backend data published", "node", c.cfg.NodeName, "data", string(data))
	return nil
}

// enableForwarding turns on IPv4 forwarding: pods' traffic to other nodes
// is routed through this host.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("node network: enable IPv4 forwarding: %w", err)
	}
	return nil
}

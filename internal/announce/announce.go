package announce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/internal/rtnl"
)

// DefaultInterface is the dummy interface that holds the addresses this
// node announces.
const DefaultInterface = "skiff-lb0"

// Config configures an Announcer.
type Config struct {
	Client kubernetes.Interface
	// NodeName is this node's Node.
	NodeName string
	// NodeIP is this node's InternalIP; gratuitous ARPs go out of the
	// interface that holds it, and ARP requests for the announced
	// addresses are answered there ("" or not found: none are sent or
	// answered, and only the kernel answers).
	NodeIP string
	// Interface is the dummy interface's name (DefaultInterface).
	Interface string
	// NetNS, when not 0, is an open network namespace file to work in
	// (tests); 0 is the caller's.
	NetNS int
	// ResyncPeriod is how often the interface is reconciled without a
	// change, repairing hand edits (1 minute).
	ResyncPeriod time.Duration
	// GARPs is how many gratuitous ARPs announce a new address, one a
	// GARPInterval apart (3, 1s).
	GARPs        int
	GARPInterval time.Duration
	Logger       *slog.Logger
}

// Announcer puts the pool addresses this node wins on its dummy interface.
type Announcer struct {
	cfg Config
	log *slog.Logger
	// answerARP runs the ARP responder; only tests clear it, to show what
	// the kernel alone does.
	answerARP bool
}

// New checks cfg and returns an Announcer ready to Run; it changes nothing.
func New(cfg Config) (*Announcer, error) {
	if cfg.Client == nil {
		return nil, errors.New("announce: a client is required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("announce: the node name is required")
	}
	if cfg.NodeIP != "" {
		if _, err := netip.ParseAddr(cfg.NodeIP); err != nil {
			return nil, fmt.Errorf("announce: node IP %q: %w", cfg.NodeIP, err)
		}
	}
	if cfg.Interface == "" {
		cfg.Interface = DefaultInterface
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = time.Minute
	}
	if cfg.GARPs == 0 {
		cfg.GARPs = 3
	}
	if cfg.GARPInterval == 0 {
		cfg.GARPInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Announcer{cfg: cfg, log: cfg.Logger.With("component", "announce"), answerARP: true}, nil
}

// Run announces until ctx ends, answering ARP for the addresses it
// announces. The addresses stay when it returns; until the next Run only
// the kernel answers for them.
func (a *Announcer) Run(ctx context.Context) error {
	k, err := dialKernel(a.cfg.NetNS)
	if err != nil {
		return err
	}
	defer k.Close()
	f := informers.NewSharedInformerFactory(a.cfg.Client, 0)
	services, nodes, slices := f.Core().V1().Services(), f.Core().V1().Nodes(), f.Discovery().V1().EndpointSlices()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke}
	for _, inf := range []cache.SharedIndexInformer{services.Informer(), nodes.Informer(), slices.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced, nodes.Informer().HasSynced, slices.Informer().HasSynced) {
		return nil // ctx ended
	}
	var workers sync.WaitGroup // the responder and the GARP senders
	defer workers.Wait()
	// The responder and the GARP senders end before Run returns (and the
	// kernel connection they use is closed): defers run in reverse.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var set announced
	if a.answerARP {
		workers.Add(1)
		go func() { defer workers.Done(); a.respond(ctx, k, &set) }()
	}
	resync := time.NewTicker(a.cfg.ResyncPeriod)
	defer resync.Stop()
	var retry <-chan time.Time
	backoff := time.Second
	for {
		svcs, _ := services.Lister().List(labels.Everything())
		ns, _ := nodes.Lister().List(labels.Everything())
		es, _ := slices.Lister().List(labels.Everything())
		want := Want(a.cfg.NodeName, World{Services: svcs, Nodes: ns, Slices: es})
		// Published before the interface is changed, so that a withdrawn
		// address stops being answered at once. An address answered just
		// before it is on the interface is still forwarded: the proxy's
		// rules match every load balancer address, local or not.
		set.Store(want)
		added, err := a.sync(k, want)
		for _, ip := range added {
			workers.Add(1)
			go func() { defer workers.Done(); a.announce(ctx, k, ip) }()
		}
		retry = nil
		if err != nil {
			a.log.Error("load balancer addresses not in place; retrying", "err", err, "in", backoff)
			retry = time.After(backoff)
			backoff = min(2*backoff, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-resync.C:
		case <-retry:
		}
	}
}

// sync makes the interface hold exactly want, creating it when needed and
// deleting it when empty; it returns the addresses it added.
func (a *Announcer) sync(k *kernel, want []netip.Addr) ([]netip.Addr, error) {
	l, ok, err := k.LinkByName(a.cfg.Interface)
	if err != nil {
		return nil, err
	}
	if ok && !rtnl.IsAddressDevice(l.Kind) {
		return nil, fmt.Errorf("interface %s exists and is a %q, not a dummy: not ours", a.cfg.Interface, l.Kind)
	}
	var present []netip.Addr
	if ok {
		addrs, err := k.Addrs(l.Index)
		if err != nil {
			return nil, err
		}
		for _, ad := range addrs {
			present = append(present, ad.Prefix.Addr())
		}
	}
	add, del := Diff(want, present)
	if !ok && len(want) > 0 {
		// Up: the kernel answers ARP only for the addresses of an up
		// interface.
		var kind string
		if l.Index, kind, err = k.EnsureAddressDevice(a.cfg.Interface, true); err != nil {
			return nil, err
		}
		a.log.Info("interface for load balancer addresses created", "interface", a.cfg.Interface, "kind", kind)
		ok = true
	}
	var errs []error
	for _, ip := range del {
		if err := k.DeleteAddr(l.Index, netip.PrefixFrom(ip, 32)); err != nil {
			errs = append(errs, err)
			continue
		}
		a.log.Info("load balancer address withdrawn", "address", ip, "interface", a.cfg.Interface)
	}
	var added []netip.Addr
	for _, ip := range add {
		if err := k.AddAddr(l.Index, netip.PrefixFrom(ip, 32)); err != nil {
			errs = append(errs, err)
			continue
		}
		added = append(added, ip)
		a.log.Info("load balancer address announced", "address", ip, "interface", a.cfg.Interface)
	}
	if ok && len(want) == 0 && len(errs) == 0 {
		if err := k.DeleteLink(l.Index); err != nil {
			errs = append(errs, err)
		}
	}
	return added, errors.Join(errs...)
}

// announce sends GARPs gratuitous ARPs for ip out of the interface that
// holds the node IP, while ip is still on the dummy interface.
func (a *Announcer) announce(ctx context.Context, k *kernel, ip netip.Addr) {
	nodeIP, err := netip.ParseAddr(a.cfg.NodeIP)
	if err != nil {
		return
	}
	for i := 0; i < a.cfg.GARPs; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(a.cfg.GARPInterval):
			}
		}
		addrs, err := k.Addrs(0)
		if err != nil {
			a.log.Warn("gratuitous ARP not sent", "address", ip, "err", err)
			return
		}
		lan := slices.IndexFunc(addrs, func(ad rtnl.Addr) bool { return ad.Prefix.Addr() == nodeIP })
		held := slices.ContainsFunc(addrs, func(ad rtnl.Addr) bool { return ad.Prefix == netip.PrefixFrom(ip, 32) })
		if !held {
			return // withdrawn meanwhile
		}
		if lan < 0 {
			a.log.Warn("gratuitous ARP not sent: no interface has the node IP", "address", ip, "nodeIP", nodeIP)
			return
		}
		l, err := k.LinkByIndex(addrs[lan].Index)
		if err == nil && len(l.MAC) != 6 {
			err = fmt.Errorf("interface %d has no Ethernet address", l.Index)
		}
		if err == nil {
			err = k.SendARP(l.Index, garp(l.MAC, ip))
		}
		if err != nil {
			a.log.Warn("gratuitous ARP not sent", "address", ip, "err", err)
			return
		}
	}
}

// Cleanup deletes the dummy interface and with it every address this node
// announces.
func (a *Announcer) Cleanup() error {
	k, err := dialKernel(a.cfg.NetNS)
	if err != nil {
		return err
	}
	defer k.Close()
	l, ok, err := k.LinkByName(a.cfg.Interface)
	if err != nil || !ok {
		return err
	}
	return k.DeleteLink(l.Index)
}

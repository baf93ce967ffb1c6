package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/pki"
	"github.com/skiff-sh/skiff/internal/scheduler"
)

// startComponents starts the control plane's API clients (the controller
// manager and the scheduler) in g, each with its own identity so that
// authorization can tell them apart, as upstream's kubeadm kubeconfigs do.
// They reach the API over in-process connections (see inprocess.go).
func (s *Server) startComponents(ctx context.Context, g *errgroup.Group, comps *components, inProcess *inProcessListener, caPEM []byte) error {
	cfg := s.cfg
	runControllers, runScheduler := !slices.Contains(cfg.DisableControllers, "*"), !cfg.DisableScheduler
	// Both read every pod, node and namespace: in one process they share
	// one informer cache of them (with the controller manager's
	// credentials) instead of holding two copies.
	var shared informers.SharedInformerFactory
	if runControllers && runScheduler {
		rc := inProcess.config("system:kube-controller-manager")
		protobuf(rc)
		rc.QPS, rc.Burst = -1, 0 // lists and watches only
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("shared informers: %w", err)
		}
		shared = informers.NewSharedInformerFactoryWithOptions(client, 0, controllermanager.InformerOptions()...)
		shared.Core().V1().Pods().Informer()
		shared.Core().V1().Nodes().Informer()
		shared.Core().V1().Namespaces().Informer()
		shared.Start(ctx.Done())
	}
	if runControllers {
		rc := inProcess.config("system:kube-controller-manager")
		cm, err := controllermanager.New(controllermanager.Config{
			RestConfig:  rc,
			Disabled:    cfg.DisableControllers,
			LeaderElect: true,
			Options:     cfg.Controllers,
			Informers:   shared,
			Logger:      s.log,
			RootCA:      caPEM,
		})
		if err != nil {
			return err
		}
		comps.run(g, func() error {
			if err := cm.Run(ctx); err != nil {
				return fmt.Errorf("controller manager: %w", err)
			}
			return nil
		})
	}
	if runScheduler {
		rc := inProcess.config("system:kube-scheduler")
		protobuf(rc)
		sched, err := scheduler.New(scheduler.Config{RestConfig: rc, LeaderElect: true, Informers: shared, Logger: s.log})
		if err != nil {
			return err
		}
		comps.run(g, func() error {
			if err := sched.Run(ctx); err != nil {
				return fmt.Errorf("scheduler: %w", err)
			}
			return nil
		})
	}
	return nil
}

// components tracks the running API clients so shutdown can wait for them.
type components struct{ wg sync.WaitGroup }

// run runs f in g and counts it until it returns.
func (c *components) run(g *errgroup.Group, f func() error) {
	c.wg.Add(1)
	g.Go(func() error {
		defer c.wg.Done()
		return f()
	})
}

// wait waits until every component returned, or timeout passed.
func (c *components) wait(timeout time.Duration) {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// protobuf makes rc speak protobuf, as upstream's components do.
func protobuf(rc *rest.Config) {
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
}

// startNode runs the server's own node, as a client of the API like any
// other node, with a client certificate of the node's identity.
func (s *Server) startNode(ctx context.Context, g *errgroup.Group, comps *components, url string, bundle *pki.Bundle) error {
	if s.cfg.Node == nil {
		return nil
	}
	nc := *s.cfg.Node
	if nc.NodeName == "" {
		nc.NodeName = agent.DefaultNodeName()
	}
	cert, key, err := bundle.EnsureClientCert("kubelet", "system:node:"+nc.NodeName, []string{"system:nodes"})
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	rc := &rest.Config{Host: url, TLSClientConfig: rest.TLSClientConfig{CAData: bundle.CAPEM, CertData: cert, KeyData: key},
		QPS: 50, Burst: 100, UserAgent: "skiff-kubelet/" + nc.NodeName}
	protobuf(rc)
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("node client: %w", err)
	}
	nc.Client = client
	nc.ClusterCA = bundle.CAPEM
	if nc.DataDir == "" {
		nc.DataDir = s.cfg.DataDir
	}
	if nc.ClusterCIDR == "" {
		nc.ClusterCIDR = s.cfg.Controllers.ClusterCIDR
	}
	if nc.Logger == nil {
		nc.Logger = s.log
	}
	comps.run(g, func() error {
		if err := agent.RunNode(ctx, nc); err != nil && ctx.Err() == nil {
			return fmt.Errorf("node: %w", err)
		}
		return nil
	})
	return nil
}

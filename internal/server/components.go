package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/pki"
	"github.com/skiff-sh/skiff/internal/scheduler"
)

// startComponents starts the control plane's API clients (the controller
// manager and the scheduler) in g, each with its own client certificate so
// that authorization can tell them apart, as upstream's kubeadm
// kubeconfigs do.
func (s *Server) startComponents(ctx context.Context, g *errgroup.Group, comps *components, url string, bundle *pki.Bundle) error {
	cfg := s.cfg
	if !slices.Contains(cfg.DisableControllers, "*") {
		rc, err := componentConfig(url, bundle, "kube-controller-manager", "system:kube-controller-manager")
		if err != nil {
			return err
		}
		cm, err := controllermanager.New(controllermanager.Config{
			RestConfig:  rc,
			Disabled:    cfg.DisableControllers,
			LeaderElect: true,
			Options:     cfg.Controllers,
			Logger:      s.log,
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
	if !cfg.DisableScheduler {
		rc, err := componentConfig(url, bundle, "kube-scheduler", "system:kube-scheduler")
		if err != nil {
			return err
		}
		rc.ContentType = "application/vnd.kubernetes.protobuf"
		rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		sched, err := scheduler.New(scheduler.Config{RestConfig: rc, LeaderElect: true, Logger: s.log})
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

// componentConfig is a client config for a built-in component reaching the
// API server over loopback with a client certificate for user.
func componentConfig(url string, bundle *pki.Bundle, name, user string) (*rest.Config, error) {
	cert, key, err := bundle.EnsureClientCert(name, user, nil)
	if err != nil {
		return nil, fmt.Errorf("%s certificate: %w", name, err)
	}
	return &rest.Config{
		Host: url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   bundle.CAPEM,
			CertData: cert,
			KeyData:  key,
		},
	}, nil
}

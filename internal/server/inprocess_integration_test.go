//go:build integration

package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// TestInProcessComponents runs the controllers and the scheduler, which
// reach the API over in-process connections: they must act (watch and
// write) under their own identities, publish the cluster CA, and nothing
// reaching the TLS port may act as them.
func TestInProcessComponents(t *testing.T) {
	cfg := testServerWith(t, func(*Config) {})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// waitFor polls cond until it holds, and on timeout says what it saw.
	waitFor := func(what string, cond func() (bool, string)) {
		t.Helper()
		last := ""
		for ctx.Err() == nil {
			var ok bool
			if ok, last = cond(); ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not within 60s; last seen: %s", what, last)
	}

	// The controller manager holds its leader Lease.
	waitFor("controller manager leads", func() (bool, string) {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return holder(l) != "", "holder " + holder(l)
	})
	// The cluster CA, published by the root-ca-cert-publisher.
	waitFor("kube-root-ca.crt in default", func() (bool, string) {
		cm, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return cm.Data["ca.crt"] == string(cfg.CAData), "ca.crt " + cm.Data["ca.crt"]
	})
	// A Deployment's ReplicaSet and pods: the deployment and replicaset
	// controllers saw it through their informers and wrote.
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, deployment("inproc"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the Deployment's pods", func() (bool, string) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: labels.Set{"app": "inproc"}.String()})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) > 0, "no pods"
	})
	// The scheduler is up: its own leader Lease, under its identity.
	waitFor("scheduler leads", func() (bool, string) {
		l, err := cs.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return holder(l) != "", "holder " + holder(l)
	})

	// Over TLS without credentials a request is anonymous, and refused.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's own server
	resp, err := hc.Get(cfg.Host + "/api/v1/namespaces/default/pods")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous list of pods over TLS: HTTP %d, want 401", resp.StatusCode)
	}
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

package agent

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/cri"
	"github.com/skiff-sh/skiff/internal/kubelet"
)

// startKubeletServer runs the node's kubelet HTTPS server on
// NodeIP:10250, where the API server fetches container logs (pods/log),
// until ctx ends. Only client certificates signed by the cluster CA with
// the API server's kubelet-client name are let in. Without the CA the
// server is not started: the node runs pods, but `kubectl logs` of them
// fails. A server that cannot listen is logged, not fatal to the node.
func startKubeletServer(ctx context.Context, cfg NodeConfig, rt cri.Runtime, stats *kubelet.Stats, log *slog.Logger) {
	if len(cfg.ClusterCA) == 0 {
		log.Warn("no cluster CA for the kubelet server: kubectl logs will not reach this node's pods")
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.ClusterCA) {
		log.Error("the cluster CA holds no PEM certificate; kubelet server not started")
		return
	}
	s, err := kubelet.NewServer(kubelet.ServerConfig{
		Addr:     net.JoinHostPort(cfg.NodeIP, strconv.Itoa(kubelet.DefaultServerPort)),
		Hostname: cfg.NodeName,
		Runtime:  rt,
		Pods:     boundPod(cfg.Client, cfg.NodeName),
		ClientCA: pool,
		Stats:    stats,
		Logger:   log,
	})
	if err != nil {
		log.Error("kubelet server not started", "err", err)
		return
	}
	go func() {
		if err := s.Run(ctx); err != nil {
			log.Error("kubelet server stopped; kubectl logs will not reach this node's pods", "err", err)
		}
	}()
}

// boundPod reads a pod from the API server for the kubelet server,
// reporting pods bound to other nodes as missing. One GET per log request
// costs less than a second pod watch beside the kubelet's.
func boundPod(client kubernetes.Interface, node string) func(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return func(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
		pod, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if pod.Spec.NodeName != node {
			return nil, nil
		}
		return pod, nil
	}
}

package userspace

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/proxy"
	"github.com/skiff-sh/skiff/internal/proxy/proxytest"
)

// TestProxierWithUserspace runs the whole proxy (informers, compiler,
// userspace backend) against a fake API (proxytest.RunProxier), and checks
// that the scheduler annotation takes effect: with sh, a client keeps one
// endpoint.
func TestProxierWithUserspace(t *testing.T) {
	n := proxytest.New(t)
	b := newBackend(t, n)
	proxytest.RunProxier(t, n, b, func(ctx context.Context, client kubernetes.Interface, svc *corev1.Service) {
		svc.Annotations = map[string]string{proxy.SchedulerAnnotation: string(proxy.SourceHashing)}
		if _, err := client.CoreV1().Services(svc.Namespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		proxytest.WaitUntil(t, "the sh scheduler to keep pod1's connections on one endpoint", func() bool {
			names := map[string]bool{}
			for range 6 {
				name, _, err := proxytest.Ask(n.Pod1, proxytest.ProxierVIP+":80")
				if err != nil {
					return false
				}
				names[name] = true
			}
			return len(names) == 1
		})
	})
}

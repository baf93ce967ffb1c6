package serviceaccount

import (
	"context"
	"io"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSync(t *testing.T) {
	tests := []struct {
		name string
		ns   *corev1.Namespace
		want bool
	}{
		{"active namespace gets one", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}, true},
		{"terminating namespace does not", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewSimpleClientset(tt.ns)
			f := informers.NewSharedInformerFactory(client, 0)
			c := New(f.Core().V1().Namespaces(), f.Core().V1().ServiceAccounts(), client, slog.New(slog.NewTextHandler(io.Discard, nil)))
			_ = f.Core().V1().Namespaces().Informer().GetStore().Add(tt.ns)
			if err := c.sync(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
			_, err := client.CoreV1().ServiceAccounts("a").Get(context.Background(), Name, metav1.GetOptions{})
			if got := err == nil; got != tt.want {
				t.Errorf("got exists=%v, want %v (err %v)", got, tt.want, err)
			}
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		})
	}
}

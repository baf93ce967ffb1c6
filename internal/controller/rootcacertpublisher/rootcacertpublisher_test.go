package rootcacertpublisher

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

const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestDesired(t *testing.T) {
	good := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: Name, Annotations: map[string]string{DescriptionAnnotation: Description}},
		Data: map[string]string{Key: ca}}
	tests := []struct {
		name        string
		cur         *corev1.ConfigMap
		wantChanged bool
	}{
		{name: "missing", cur: nil, wantChanged: true},
		{name: "up to date", cur: good, wantChanged: false},
		{name: "changed CA", cur: func() *corev1.ConfigMap { c := good.DeepCopy(); c.Data[Key] = "x"; return c }(), wantChanged: true},
		{name: "extra key", cur: func() *corev1.ConfigMap { c := good.DeepCopy(); c.Data["other"] = "x"; return c }(), wantChanged: true},
		{name: "annotation removed", cur: func() *corev1.ConfigMap { c := good.DeepCopy(); c.Annotations = nil; return c }(), wantChanged: true},
	}
	for _, tt := range tests {
		next, changed := Desired(tt.cur, "a", []byte(ca))
		if changed != tt.wantChanged {
			t.Errorf("%s: changed: got %v, want %v", tt.name, changed, tt.wantChanged)
		}
		if next.Data[Key] != ca || len(next.Data) != 1 || next.Annotations[DescriptionAnnotation] != Description || next.Name != Name {
			t.Errorf("%s: got %+v, want only ca.crt and the description", tt.name, next)
		}
		if tt.cur != nil && changed && tt.cur.Data[Key] == "x" && next == tt.cur {
			t.Errorf("%s: got the cached object modified, want a copy", tt.name)
		}
	}
}

func TestSync(t *testing.T) {
	active := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	stale := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: Name}, Data: map[string]string{Key: "old"}}
	tests := []struct {
		name   string
		ns     *corev1.Namespace
		cm     *corev1.ConfigMap
		wantCA string // "" = no configmap
	}{
		{name: "created in an active namespace", ns: active, wantCA: ca},
		{name: "restored when changed", ns: active, cm: stale, wantCA: ca},
		{name: "not created in a terminating namespace", ns: terminating, wantCA: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewSimpleClientset(tt.ns)
			f := informers.NewSharedInformerFactory(client, 0)
			c := New(f.Core().V1().Namespaces(), f.Core().V1().ConfigMaps(), client, []byte(ca), slog.New(slog.NewTextHandler(io.Discard, nil)))
			_ = f.Core().V1().Namespaces().Informer().GetStore().Add(tt.ns)
			if tt.cm != nil {
				if _, err := client.CoreV1().ConfigMaps("a").Create(context.Background(), tt.cm, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				_ = f.Core().V1().ConfigMaps().Informer().GetStore().Add(tt.cm)
			}
			if err := c.sync(context.Background(), "a"); err != nil {
				t.Fatal(err)
			}
			got, err := client.CoreV1().ConfigMaps("a").Get(context.Background(), Name, metav1.GetOptions{})
			if tt.wantCA == "" {
				if !apierrors.IsNotFound(err) {
					t.Errorf("got %v (err %v), want no configmap", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Data[Key] != tt.wantCA {
				t.Errorf("ca.crt: got %q, want %q", got.Data[Key], tt.wantCA)
			}
		})
	}
}

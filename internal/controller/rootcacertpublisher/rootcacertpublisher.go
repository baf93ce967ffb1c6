// Package rootcacertpublisher keeps the ConfigMap "kube-root-ca.crt" with
// the cluster CA (key ca.crt) in every active namespace, recreating it
// when deleted and restoring it when changed, as upstream's
// root-ca-cert-publisher does. Pods read it through the kube-api-access
// projected volume to verify the API server.
package rootcacertpublisher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller"
)

// Name is the ConfigMap every namespace gets; Key holds the CA bundle.
const (
	Name = "kube-root-ca.crt"
	Key  = "ca.crt"
)

// Upstream's annotation describing what the ConfigMap is for.
const (
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
		"No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Controller publishes the root CA.
type Controller struct {
	client   kubernetes.Interface
	rootCA   []byte
	nsLister corelisters.NamespaceLister
	cmLister corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *slog.Logger
}

// New returns the controller publishing rootCA (PEM).
func New(namespaces coreinformers.NamespaceInformer, configMaps coreinformers.ConfigMapInformer, client kubernetes.Interface, rootCA []byte, log *slog.Logger) *Controller {
	c := &Controller{
		client: client, rootCA: rootCA, nsLister: namespaces.Lister(), cmLister: configMaps.Lister(),
		synced: []cache.InformerSynced{namespaces.Informer().HasSynced, configMaps.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "root_ca_cert_publisher"}),
		log: log.With("controller", "root-ca-cert-publisher"),
	}
	_, _ = namespaces.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueNamespace,
		UpdateFunc: func(_, obj any) { c.enqueueNamespace(obj) },
	})
	_, _ = configMaps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { c.enqueueConfigMap(obj) },
		DeleteFunc: c.enqueueConfigMap,
	})
	return c
}

func (c *Controller) enqueueNamespace(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase != corev1.NamespaceTerminating {
		c.queue.Add(ns.Name)
	}
}

func (c *Controller) enqueueConfigMap(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == Name {
		c.queue.Add(cm.Namespace)
	}
}

// Run runs workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, "root-ca-cert-publisher", c.queue, workers, c.sync,
		controller.SyncLog{Logger: c.log, Level: slog.LevelDebug, Key: "namespace"}, c.synced...)
}

// Desired returns the ConfigMap cur should become to publish rootCA, and
// whether that differs from cur (nil when absent). Other data keys are
// dropped and the description annotation is set, as upstream.
func Desired(cur *corev1.ConfigMap, namespace string, rootCA []byte) (*corev1.ConfigMap, bool) {
	data := map[string]string{Key: string(rootCA)}
	if cur == nil {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: Name, Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data:       data,
		}, true
	}
	if maps.Equal(cur.Data, data) && len(cur.BinaryData) == 0 && cur.Annotations[DescriptionAnnotation] != "" {
		return cur, false
	}
	next := cur.DeepCopy()
	next.Data, next.BinaryData = data, nil
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[DescriptionAnnotation] = Description
	return next, true
}

func (c *Controller) sync(ctx context.Context, namespace string) error {
	ns, err := c.nsLister.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	cur, err := c.cmLister.ConfigMaps(namespace).Get(Name)
	if apierrors.IsNotFound(err) {
		cur = nil
	} else if err != nil {
		return err
	}
	next, changed := Desired(cur, namespace, c.rootCA)
	if !changed {
		return nil
	}
	if cur == nil {
		_, err = c.client.CoreV1().ConfigMaps(namespace).Create(ctx, next, metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			return nil
		case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			return nil
		case err != nil:
			return fmt.Errorf("create configmap %s/%s: %w", namespace, Name, err)
		}
		c.log.Debug("published root CA", "namespace", namespace)
		return nil
	}
	if _, err := c.client.CoreV1().ConfigMaps(namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update configmap %s/%s: %w", namespace, Name, err)
	}
	c.log.Info("restored root CA configmap", "namespace", namespace)
	return nil
}

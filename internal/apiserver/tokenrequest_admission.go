package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/apiserver/admission"
)

// defaultAccountAttempts is how often upstream's ServiceAccount plugin
// reads the "default" account before refusing a pod: the serviceaccount
// controller creates it just after its namespace, so a namespace and a pod
// created together wait for it instead of failing.
const defaultAccountAttempts = 10

// admitServiceAccount is the ServiceAccount admission plugin's part that
// needs storage: the pod's account must exist (403 otherwise, as
// upstream), and unless automounting is off the pod gets the
// kube-api-access volume and the account's image pull secrets. Mirror
// pods are left as they are, and refused when they use what a static pod
// cannot have. With ServiceAccountsOptional a missing account only means
// no volume.
func (c *call) admitServiceAccount(pod *corev1.Pod) error {
	if admission.IsMirrorPod(pod) {
		if why := admission.MirrorPodRefusal(pod); why != "" {
			return apierrors.NewForbidden(c.ep.gr(), pod.Name, errors.New(why))
		}
		return nil
	}
	ns := pod.Namespace
	if ns == "" {
		ns = c.info.Namespace
	}
	name := pod.Spec.ServiceAccountName
	sa, err := c.lookupServiceAccount(c.ctx, ns, name)
	if err != nil {
		if apierrors.IsNotFound(err) && c.s.cfg.ServiceAccountsOptional {
			return nil
		}
		return apierrors.NewForbidden(c.ep.gr(), pod.Name, fmt.Errorf("error looking up service account %s/%s: %w", ns, name, err))
	}
	if admission.ShouldAutomount(sa, pod) {
		admission.MountServiceAccountToken(pod, randomSuffix())
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.ImagePullSecrets...)
	}
	return nil
}

// lookupServiceAccount reads an account from the cache, then from etcd:
// once, or for "default" up to defaultAccountAttempts times 100-200 ms
// apart, as upstream.
func (c *call) lookupServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	st := c.s.storages[schema.GroupResource{Resource: "serviceaccounts"}]
	if st == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
	}
	if obj, err := st.GetObject(ctx, ns, name, "0"); err == nil {
		return obj.(*corev1.ServiceAccount), nil
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	attempts := 1
	if name == "default" {
		attempts = defaultAccountAttempts
	}
	wait := time.Duration(100+rand.IntN(100)) * time.Millisecond
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		obj, err := st.GetObject(ctx, ns, name, "")
		if err == nil {
			return obj.(*corev1.ServiceAccount), nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccount"}, name)
}

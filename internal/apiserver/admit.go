package apiserver

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/apiserver/admission"
	"github.com/skiff-sh/skiff/internal/quota"
	"github.com/skiff-sh/skiff/internal/storage"
)

// listStored decodes every stored object of gr in namespace (from the watch
// cache).
func (c *call) listStored(gr schema.GroupResource, namespace string) ([]runtime.Object, error) {
	st := c.s.storages[gr]
	if st == nil {
		return nil, nil
	}
	res, err := st.List(c.ctx, storage.ListOptions{Namespace: namespace, ResourceVersion: "0"})
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Object, 0, len(res.Items))
	for _, it := range res.Items {
		o, err := st.Decode(it)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// admitCreate runs the mutating and validating built-in admission plugins
// on a new object (storage version): ServiceAccount, Priority,
// DefaultTolerationSeconds and LimitRanger for pods, LimitRanger for
// claims.
func (c *call) admitCreate(obj runtime.Object) error {
	switch o := obj.(type) {
	case *corev1.Pod:
		admission.DefaultServiceAccount(o)
		if err := c.admitServiceAccount(o); err != nil {
			return err
		}
		admission.DefaultTolerations(o)
		admission.DefaultRequestsFromLimits(o)
		objs, err := c.listStored(schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}, "")
		if err != nil {
			return err
		}
		var classes []*schedulingv1.PriorityClass
		for _, x := range objs {
			classes = append(classes, x.(*schedulingv1.PriorityClass))
		}
		if msg := admission.ResolvePriority(o, classes); msg != "" {
			return apierrors.NewForbidden(c.ep.gr(), o.Name, errors.New(msg))
		}
		ranges, err := c.limitRanges(o.Namespace)
		if err != nil {
			return err
		}
		if errs := admission.LimitPod(o, ranges); len(errs) > 0 {
			return apierrors.NewForbidden(c.ep.gr(), o.Name, errors.New(admission.Message(errs)))
		}
	case *corev1.PersistentVolumeClaim:
		ranges, err := c.limitRanges(o.Namespace)
		if err != nil {
			return err
		}
		if errs := admission.LimitClaim(o, ranges); len(errs) > 0 {
			return apierrors.NewForbidden(c.ep.gr(), o.Name, errors.New(admission.Message(errs)))
		}
	}
	return nil
}

func (c *call) limitRanges(namespace string) ([]*corev1.LimitRange, error) {
	objs, err := c.listStored(schema.GroupResource{Resource: "limitranges"}, namespace)
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.LimitRange, 0, len(objs))
	for _, x := range objs {
		out = append(out, x.(*corev1.LimitRange))
	}
	return out, nil
}

// admitQuota charges a new namespaced object against the ResourceQuotas of
// its namespace, refusing it (403) when a quota would be exceeded, as
// upstream's ResourceQuota admission does. Usage is added to each quota's
// status atomically; the resourcequota controller later recomputes it from
// what exists, which also returns charges of creates that failed after
// admission.
func (c *call) admitQuota(obj runtime.Object) error {
	return c.admitQuotaChange(obj, nil)
}

// admitQuotaUpdate charges an update of a namespaced object for what it adds
// to the usage (a Service becoming a NodePort or LoadBalancer, a claim
// asking for more storage), as upstream's ResourceQuota admission does for
// updates of the resource itself (not of its subresources).
func (c *call) admitQuotaUpdate(prev, obj runtime.Object) error {
	return c.admitQuotaChange(obj, prev)
}

// admitQuotaChange charges obj's usage, less prev's when obj replaces it.
func (c *call) admitQuotaChange(obj, prev runtime.Object) error {
	if !c.ep.res.Namespaced {
		return nil
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	gr := schema.GroupResource{Group: c.ep.res.Group, Resource: c.ep.res.Name}
	qgr := schema.GroupResource{Resource: "resourcequotas"}
	objs, err := c.listStored(qgr, acc.GetNamespace())
	if err != nil || len(objs) == 0 {
		return err
	}
	usage := quota.Usage(gr, obj)
	if prev != nil {
		usage = quota.Increase(usage, quota.Usage(gr, prev))
	}
	type charge struct {
		name  string
		delta corev1.ResourceList
	}
	var charges []charge
	for _, x := range objs {
		q := x.(*corev1.ResourceQuota)
		if !quota.Matches(q, obj) {
			continue
		}
		delta := quota.Restrict(usage, q.Spec.Hard)
		if pod, ok := obj.(*corev1.Pod); ok && prev == nil && !quota.IsTerminal(pod) {
			if missing := quota.MissingRequests(q.Spec.Hard, pod); len(missing) > 0 {
				return apierrors.NewForbidden(c.ep.gr(), acc.GetName(),
					fmt.Errorf("failed quota: %s: must specify %s", q.Name, joinSemi(missing)))
			}
		}
		if len(delta) == 0 {
			continue
		}
		if msg := quota.Exceeded(q, delta); msg != "" {
			return apierrors.NewForbidden(c.ep.gr(), acc.GetName(), errors.New(msg))
		}
		charges = append(charges, charge{q.Name, delta})
	}
	if c.dryRun {
		return nil
	}
	st := c.s.storages[qgr]
	for _, ch := range charges {
		_, err := st.GuaranteedUpdate(c.ctx, acc.GetNamespace(), ch.name, storage.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
			q := cur.(*corev1.ResourceQuota)
			if msg := quota.Exceeded(q, ch.delta); msg != "" {
				return nil, apierrors.NewForbidden(c.ep.gr(), acc.GetName(), errors.New(msg))
			}
			q.Status.Used = quota.Add(q.Status.Used, ch.delta)
			return q, nil
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

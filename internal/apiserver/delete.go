package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/skiff-sh/skiff/internal/storage"
)

// deleteOptions reads DeleteOptions from the body and the query.
func (c *call) deleteOptions() (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := c.readBody()
	if err != nil {
		return nil, err
	}
	if len(body) > 0 && isProtobuf(c.r.Header.Get("Content-Type")) {
		gvk := metav1.SchemeGroupVersion.WithKind("DeleteOptions")
		if _, _, err := protobuf.NewSerializer(c.s.cfg.Scheme, c.s.cfg.Scheme).Decode(body, &gvk, opts); err != nil {
			return nil, apierrors.NewBadRequest("invalid DeleteOptions: " + err.Error())
		}
	} else if len(body) > 0 {
		data, err := toJSON(body, c.r.Header.Get("Content-Type"))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, opts); err != nil {
			return nil, apierrors.NewBadRequest("invalid DeleteOptions: " + jsonError(err))
		}
	}
	q := c.r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := isTrue(v)
		opts.OrphanDependents = &b
	}
	for _, v := range opts.DryRun {
		if v != "All" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q: supported values: \"All\"", v))
		}
		c.dryRun = true
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\"", *p))
		}
		if opts.OrphanDependents != nil {
			return nil, apierrors.NewBadRequest("orphanDependents: Invalid value: false: orphanDependents and deletionPropagation cannot be both set")
		}
	}
	return opts, nil
}

func (c *call) delete() error {
	opts, err := c.deleteOptions()
	if err != nil {
		return err
	}
	out, deleted, err := c.deleteOne(c.info.Namespace, c.info.Name, opts)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if !deleted && opts.OrphanDependents != nil && !*opts.OrphanDependents {
		code = http.StatusAccepted
	}
	return c.respond(code, out)
}

var errImmediate = errors.New("delete immediately")

// deleteOne deletes one object: immediately when nothing holds it, or by
// marking it (deletionTimestamp) when it has finalizers, is a namespace, or is
// a pod on a node that must stop it gracefully. deleted reports which.
func (c *call) deleteOne(namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if c.ep.res.Name == "namespaces" && c.ep.res.Group == "" {
		switch name {
		case "default", "kube-system", "kube-public":
			return nil, false, apierrors.NewForbidden(c.ep.gr(), name, errors.New("this namespace may not be deleted"))
		}
	}
	check := func(cur runtime.Object) error {
		acc, err := meta.Accessor(cur)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != acc.GetUID() {
				return apierrors.NewConflict(c.ep.gr(), name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, acc.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != acc.GetResourceVersion() {
				return apierrors.NewConflict(c.ep.gr(), name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, acc.GetResourceVersion()))
			}
		}
		return nil
	}
	out, err := c.ep.store.GuaranteedUpdate(c.ctx, namespace, name, storage.UpdateOptions{DryRun: c.dryRun},
		func(cur runtime.Object) (runtime.Object, error) {
			if err := check(cur); err != nil {
				return nil, err
			}
			return markForDeletion(cur, opts, c.now)
		})
	if errors.Is(err, errImmediate) {
		deleted, err := c.ep.store.Delete(c.ctx, namespace, name, c.dryRun, check)
		if err != nil {
			return nil, false, err
		}
		if !c.dryRun {
			c.s.releaseFor(c.ctx, deleted)
		}
		return deleted, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

// markForDeletion sets deletionTimestamp on an object that cannot go at
// once, or returns errImmediate.
func markForDeletion(cur runtime.Object, opts *metav1.DeleteOptions, now time.Time) (runtime.Object, error) {
	acc, err := meta.Accessor(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	grace := gracePeriod(cur, opts)
	ns, isNamespace := cur.(*corev1.Namespace)
	if !isNamespace {
		applyPropagation(acc, opts)
	}
	held := len(acc.GetFinalizers()) > 0
	if isNamespace {
		held = true
	}
	if ts := acc.GetDeletionTimestamp(); ts != nil {
		// Already being deleted: a shorter grace period may hurry it up.
		old := acc.GetDeletionGracePeriodSeconds()
		if old != nil && grace < *old {
			acc.SetDeletionGracePeriodSeconds(&grace)
			t := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
			acc.SetDeletionTimestamp(&t)
		}
		if g := acc.GetDeletionGracePeriodSeconds(); !held && (g == nil || *g == 0) {
			return nil, errImmediate
		}
		return cur, nil
	}
	if !held && grace == 0 {
		return nil, errImmediate
	}
	t := metav1.NewTime(now.Add(time.Duration(grace) * time.Second).Truncate(time.Second))
	acc.SetDeletionTimestamp(&t)
	acc.SetDeletionGracePeriodSeconds(&grace)
	if acc.GetGeneration() > 0 {
		acc.SetGeneration(acc.GetGeneration() + 1)
	}
	if isNamespace {
		ns.Status.Phase = corev1.NamespaceTerminating
	}
	return cur, nil
}

// gracePeriod is how long an object may take to go: only pods running on a
// node get one, as upstream.
func gracePeriod(obj runtime.Object, opts *metav1.DeleteOptions) int64 {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return 0
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	var g int64 = 30
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		g = *opts.GracePeriodSeconds
	}
	if g < 0 {
		g = 1
	}
	return g
}

// readyToRemove reports whether a marked object has nothing left holding
// it, so that an update removing its last finalizer deletes it.
func readyToRemove(obj runtime.Object) bool {
	acc, err := meta.Accessor(obj)
	if err != nil || acc.GetDeletionTimestamp() == nil || len(acc.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		return len(ns.Spec.Finalizers) == 0
	}
	g := acc.GetDeletionGracePeriodSeconds()
	return g == nil || *g == 0
}

func (c *call) deleteCollection() error {
	opts, err := c.deleteOptions()
	if err != nil {
		return err
	}
	lo, err := c.listOptions()
	if err != nil {
		return err
	}
	lo.Limit, lo.Continue = 0, ""
	res, err := c.ep.store.List(c.ctx, lo)
	if err != nil {
		return err
	}
	var items []json.RawMessage
	for _, it := range res.Items {
		out, _, err := c.deleteOne(it.Namespace, it.Name, opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if out, err = c.toServed(out); err != nil {
			return err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		items = append(items, b)
	}
	list := struct {
		metav1.TypeMeta `json:",inline"`
		ListMeta        metav1.ListMeta   `json:"metadata"`
		Items           []json.RawMessage `json:"items"`
	}{metav1.TypeMeta{Kind: c.ep.gvk.Kind + "List", APIVersion: c.ep.gvk.GroupVersion().String()},
		metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.ResourceVersion, 10)}, items}
	if list.Items == nil {
		list.Items = []json.RawMessage{}
	}
	data, ct, err := c.out.encode(list)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	writeBytes(c.w, http.StatusOK, ct, data)
	return nil
}

// admitNamespace refuses new objects in a namespace that does not exist or
// is being terminated.
func (c *call) admitNamespace(acc metav1.Object) error {
	if !c.ep.res.Namespaced {
		return nil
	}
	nsName := acc.GetNamespace()
	nsStore := c.s.storages[corev1.SchemeGroupVersion.WithResource("namespaces").GroupResource()]
	it, err := nsStore.Get(c.ctx, "", nsName, "0")
	if apierrors.IsNotFound(err) {
		// The cache may lag a namespace created a moment ago.
		it, err = nsStore.Get(c.ctx, "", nsName, "")
	}
	if err != nil {
		return err
	}
	obj, err := nsStore.Decode(it)
	if err != nil {
		return err
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		err := apierrors.NewForbidden(c.ep.gr(), acc.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", nsName))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    corev1.NamespaceTerminatingCause,
			Message: fmt.Sprintf("namespace %s is being terminated", nsName),
			Field:   "metadata.namespace",
		})
		return err
	}
	return nil
}

// finalizeNamespace applies an update through namespaces/finalize: only
// spec.finalizers may change.
func finalizeNamespace(next, cur runtime.Object) error {
	ns, ok1 := next.(*corev1.Namespace)
	old, ok2 := cur.(*corev1.Namespace)
	if !ok1 || !ok2 {
		return apierrors.NewBadRequest("finalize is only supported for namespaces")
	}
	fin := ns.Spec.Finalizers
	*ns = *old.DeepCopy()
	ns.Spec.Finalizers = fin
	return nil
}

package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// Claimer decides which objects belong to an owner: those it controls and
// whose labels still match (kept), orphans that match (adopted), and those
// it controls that no longer match (released). It is upstream's
// ControllerRefManager, generic over the child's type.
type Claimer struct {
	Owner    metav1.Object
	OwnerRef metav1.OwnerReference // the controller reference to set, Controller and BlockOwnerDeletion true
	Selector labels.Selector
	// CanAdopt is called once, before the first adoption, with a fresh
	// read of the owner: it must fail when the owner is being deleted or
	// was replaced (another uid), so a dying owner adopts nothing.
	CanAdopt func(ctx context.Context) error
	// Patch applies a strategic-merge patch to the named child.
	Patch func(ctx context.Context, namespace, name string, patch []byte) error

	once     sync.Once
	adoptErr error
}

// Claim returns the children of objs that belong to the owner, adopting and
// releasing as needed. Errors from individual adoptions are collected; the
// children claimed so far are still returned.
func (c *Claimer) Claim(ctx context.Context, objs []metav1.Object) ([]metav1.Object, error) {
	var claimed []metav1.Object
	var errs []error
	for _, o := range objs {
		ok, err := c.claimOne(ctx, o)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			claimed = append(claimed, o)
		}
	}
	if len(errs) > 0 {
		return claimed, fmt.Errorf("claim: %v", errs)
	}
	return claimed, nil
}

func (c *Claimer) claimOne(ctx context.Context, o metav1.Object) (bool, error) {
	ref := metav1.GetControllerOfNoCopy(o)
	matches := c.Selector.Matches(labels.Set(o.GetLabels()))
	if ref != nil {
		if ref.UID != c.Owner.GetUID() {
			return false, nil // another controller's
		}
		if matches {
			return true, nil
		}
		if c.Owner.GetDeletionTimestamp() != nil {
			return false, nil // a dying owner releases nothing
		}
		if err := c.Patch(ctx, o.GetNamespace(), o.GetName(), ReleasePatch(c.Owner.GetUID(), o.GetUID())); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
			return false, fmt.Errorf("release %s: %w", o.GetName(), err)
		}
		return false, nil
	}
	// An orphan.
	if !matches || c.Owner.GetDeletionTimestamp() != nil || o.GetDeletionTimestamp() != nil {
		return false, nil
	}
	c.once.Do(func() {
		if c.CanAdopt != nil {
			c.adoptErr = c.CanAdopt(ctx)
		}
	})
	if c.adoptErr != nil {
		return false, fmt.Errorf("can't adopt %s: %w", o.GetName(), c.adoptErr)
	}
	if err := c.Patch(ctx, o.GetNamespace(), o.GetName(), AdoptPatch(c.OwnerRef, o.GetUID())); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("adopt %s: %w", o.GetName(), err)
	}
	return true, nil
}

// AdoptPatch is the strategic-merge patch that adds ref to a child's owner
// references; the child's uid makes it fail if the child was replaced.
func AdoptPatch(ref metav1.OwnerReference, child types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{ref},
		"uid":             child,
	}})
	return b
}

// ReleasePatch is the strategic-merge patch that removes the owner's
// reference from a child.
func ReleasePatch(owner, child types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": owner}},
		"uid":             child,
	}})
	return b
}

// RecheckOwner returns a CanAdopt function that fails when get's fresh copy
// of the owner has another uid or is being deleted.
func RecheckOwner(owner metav1.Object, get func(ctx context.Context) (metav1.Object, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return err
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("original %s is gone: got uid %v, wanted %v", owner.GetName(), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s has just been deleted at %v", owner.GetName(), fresh.GetDeletionTimestamp())
		}
		return nil
	}
}

// KeyFunc is the workqueue key of an object: "namespace/name" or "name".
func KeyFunc(o metav1.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

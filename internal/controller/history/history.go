// Package history keeps the ControllerRevisions of StatefulSets and
// DaemonSets, as upstream's controller history does: each distinct pod
// template a workload has had is one ControllerRevision owned by the
// workload, named <owner>-<hash>, whose data is the strategic-merge patch
// that restores that template ({"spec":{"template":{...,"$patch":"replace"}}}),
// which is what `kubectl rollout history` and `kubectl rollout undo` read
// and apply.
//
// Revisions carry the owner's template labels plus controller-revision-hash
// so that they match the owner's selector (kubectl finds them by selector
// and controller reference). Revision numbers increase: re-applying an old
// template gives its revision the next number rather than creating a copy.
package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
)

// HashLabel is the label holding a revision's hash, on the revision and on
// the pods made from it.
const HashLabel = appsv1.ControllerRevisionHashLabelKey

// TemplatePatch is the revision data for a pod template: a strategic-merge
// patch that replaces the owner's template with tmpl.
func TemplatePatch(tmpl *corev1.PodTemplateSpec) (runtime.RawExtension, error) {
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return runtime.RawExtension{}, fmt.Errorf("encode template: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return runtime.RawExtension{}, fmt.Errorf("decode template: %w", err)
	}
	m["$patch"] = "replace"
	out, err := json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
	if err != nil {
		return runtime.RawExtension{}, fmt.Errorf("encode patch: %w", err)
	}
	return runtime.RawExtension{Raw: out}, nil
}

// Template decodes the pod template a revision made by TemplatePatch holds.
func Template(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var p struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &p); err != nil {
		return nil, fmt.Errorf("revision %s: decode template: %w", rev.Name, err)
	}
	return &p.Spec.Template, nil
}

// Hash is the hash of a revision's data, salted by collisionCount when set,
// rendered as a short DNS-safe string.
func Hash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// New builds (without creating) the revision of owner for data. templateLabels
// are the owner's pod template labels; ref is the controller reference.
func New(owner metav1.Object, ref metav1.OwnerReference, templateLabels map[string]string, data runtime.RawExtension, revision int64, collisionCount *int32) *appsv1.ControllerRevision {
	labels := maps.Clone(templateLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	hash := Hash(data.Raw, collisionCount)
	labels[HashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            owner.GetName() + "-" + hash,
			Namespace:       owner.GetNamespace(),
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{ref},
		},
		Data:     data,
		Revision: revision,
	}
}

// Equal reports whether two revisions hold the same data.
func Equal(a, b *appsv1.ControllerRevision) bool {
	return bytes.Equal(a.Data.Raw, b.Data.Raw)
}

// Sort orders revisions by revision number, then creation time, then name.
func Sort(revs []*appsv1.ControllerRevision) {
	slices.SortFunc(revs, func(a, b *appsv1.ControllerRevision) int {
		if a.Revision != b.Revision {
			if a.Revision < b.Revision {
				return -1
			}
			return 1
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			if a.CreationTimestamp.Before(&b.CreationTimestamp) {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
}

// Next is the revision number after the highest of revs.
func Next(revs []*appsv1.ControllerRevision) int64 {
	var max int64
	for _, r := range revs {
		if r.Revision > max {
			max = r.Revision
		}
	}
	return max + 1
}

// Owned returns the revisions of revs controlled by uid.
func Owned(revs []*appsv1.ControllerRevision, owner metav1.Object) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, r := range revs {
		if ref := metav1.GetControllerOfNoCopy(r); ref != nil && ref.UID == owner.GetUID() {
			out = append(out, r)
		}
	}
	return out
}

// Result is what Ensure found or made.
type Result struct {
	// Update is the revision of the owner's current template.
	Update *appsv1.ControllerRevision
	// CollisionCount is the owner's collision count after any hash
	// collision Ensure had to step over.
	CollisionCount int32
}

// Ensure finds or creates the revision for data among existing (the owner's
// revisions, sorted by Sort). An equal revision that is not the newest gets
// the next revision number (a rollback); an equal newest one is reused; else
// a new revision is created, stepping collisionCount on a name collision
// with different data.
func Ensure(ctx context.Context, client kubernetes.Interface, owner metav1.Object, ref metav1.OwnerReference, templateLabels map[string]string, data runtime.RawExtension, existing []*appsv1.ControllerRevision, collisionCount int32) (Result, error) {
	next := Next(existing)
	probe := New(owner, ref, templateLabels, data, next, &collisionCount)
	var equal []*appsv1.ControllerRevision
	for _, r := range existing {
		if Equal(r, probe) {
			equal = append(equal, r)
		}
	}
	if n := len(equal); n > 0 {
		last := equal[n-1]
		if len(existing) > 0 && existing[len(existing)-1] == last {
			return Result{Update: last, CollisionCount: collisionCount}, nil
		}
		cp := last.DeepCopy()
		cp.Revision = next
		upd, err := client.AppsV1().ControllerRevisions(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
		if err != nil {
			return Result{}, fmt.Errorf("renumber revision %s/%s: %w", cp.Namespace, cp.Name, err)
		}
		return Result{Update: upd, CollisionCount: collisionCount}, nil
	}
	for range 10 {
		rev := New(owner, ref, templateLabels, data, next, &collisionCount)
		created, err := client.AppsV1().ControllerRevisions(rev.Namespace).Create(ctx, rev, metav1.CreateOptions{})
		if err == nil {
			return Result{Update: created, CollisionCount: collisionCount}, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return Result{}, fmt.Errorf("create revision %s/%s: %w", rev.Namespace, rev.Name, err)
		}
		got, gerr := client.AppsV1().ControllerRevisions(rev.Namespace).Get(ctx, rev.Name, metav1.GetOptions{})
		if gerr != nil {
			return Result{}, fmt.Errorf("get colliding revision %s/%s: %w", rev.Namespace, rev.Name, gerr)
		}
		if ref := metav1.GetControllerOfNoCopy(got); ref != nil && ref.UID == owner.GetUID() && Equal(got, rev) {
			return Result{Update: got, CollisionCount: collisionCount}, nil
		}
		collisionCount++
	}
	return Result{}, fmt.Errorf("revision of %s/%s: too many hash collisions", owner.GetNamespace(), owner.GetName())
}

// Truncate deletes the oldest revisions of sorted revs that are not in
// live, keeping at most limit of them.
func Truncate(ctx context.Context, client kubernetes.Interface, revs []*appsv1.ControllerRevision, live map[string]bool, limit int32) error {
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	excess := len(old) - int(max(limit, 0))
	for i := 0; i < excess; i++ {
		err := client.AppsV1().ControllerRevisions(old[i].Namespace).Delete(ctx, old[i].Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete revision %s/%s: %w", old[i].Namespace, old[i].Name, err)
		}
	}
	return nil
}

package replicaset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ownerKind is what the controller needs from the kind it manages: reads
// from the cache in ReplicaSet form, a fresh read for adoption, and the
// status write in the kind's own form.
type ownerKind struct {
	gvk      schema.GroupVersionKind
	informer cache.SharedIndexInformer
	// get returns the owner as a ReplicaSet and the original object (for
	// events and the status write).
	get func(namespace, name string) (*appsv1.ReplicaSet, runtime.Object, error)
	// list returns the namespace's owners as ReplicaSets.
	list func(namespace string) ([]*appsv1.ReplicaSet, error)
	// getLive reads the owner from the API server.
	getLive func(ctx context.Context, namespace, name string) (metav1.Object, error)
	// updateStatus writes st as orig's status.
	updateStatus func(ctx context.Context, orig runtime.Object, st appsv1.ReplicaSetStatus) error
	// asReplicaSet converts an informer object, or returns nil.
	asReplicaSet func(obj any) *appsv1.ReplicaSet
}

func replicaSetKind(inf appsinformers.ReplicaSetInformer, client kubernetes.Interface) ownerKind {
	lister := inf.Lister()
	return ownerKind{
		gvk:      appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		informer: inf.Informer(),
		get: func(ns, name string) (*appsv1.ReplicaSet, runtime.Object, error) {
			rs, err := lister.ReplicaSets(ns).Get(name)
			return rs, rs, err
		},
		list: func(ns string) ([]*appsv1.ReplicaSet, error) {
			return lister.ReplicaSets(ns).List(labels.Everything())
		},
		getLive: func(ctx context.Context, ns, name string) (metav1.Object, error) {
			return client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		},
		updateStatus: func(ctx context.Context, orig runtime.Object, st appsv1.ReplicaSetStatus) error {
			rs := orig.(*appsv1.ReplicaSet).DeepCopy()
			rs.Status = st
			_, err := client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
			return err
		},
		asReplicaSet: func(obj any) *appsv1.ReplicaSet {
			rs, _ := obj.(*appsv1.ReplicaSet)
			return rs
		},
	}
}

func replicationControllerKind(inf coreinformers.ReplicationControllerInformer, client kubernetes.Interface) ownerKind {
	lister := inf.Lister()
	return ownerKind{
		gvk:      corev1.SchemeGroupVersion.WithKind("ReplicationController"),
		informer: inf.Informer(),
		get: func(ns, name string) (*appsv1.ReplicaSet, runtime.Object, error) {
			rc, err := lister.ReplicationControllers(ns).Get(name)
			if err != nil {
				return nil, nil, err
			}
			return rcToReplicaSet(rc), rc, nil
		},
		list: func(ns string) ([]*appsv1.ReplicaSet, error) {
			rcs, err := lister.ReplicationControllers(ns).List(labels.Everything())
			if err != nil {
				return nil, err
			}
			out := make([]*appsv1.ReplicaSet, 0, len(rcs))
			for _, rc := range rcs {
				out = append(out, rcToReplicaSet(rc))
			}
			return out, nil
		},
		getLive: func(ctx context.Context, ns, name string) (metav1.Object, error) {
			return client.CoreV1().ReplicationControllers(ns).Get(ctx, name, metav1.GetOptions{})
		},
		updateStatus: func(ctx context.Context, orig runtime.Object, st appsv1.ReplicaSetStatus) error {
			rc := orig.(*corev1.ReplicationController).DeepCopy()
			rc.Status = rcStatus(st)
			_, err := client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, rc, metav1.UpdateOptions{})
			return err
		},
		asReplicaSet: func(obj any) *appsv1.ReplicaSet {
			rc, ok := obj.(*corev1.ReplicationController)
			if !ok {
				return nil
			}
			return rcToReplicaSet(rc)
		},
	}
}

// rcToReplicaSet presents a ReplicationController as a ReplicaSet with the
// same metadata (so the same uid), its selector as matchLabels. The
// template is shared, not copied: callers treat it as read-only.
func rcToReplicaSet(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: rc.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        rc.Spec.Replicas,
			MinReadySeconds: rc.Spec.MinReadySeconds,
			Template:        derefTemplate(rc.Spec.Template),
		},
		Status: appsv1.ReplicaSetStatus{
			Replicas:             rc.Status.Replicas,
			FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas:        rc.Status.ReadyReplicas,
			AvailableReplicas:    rc.Status.AvailableReplicas,
			ObservedGeneration:   rc.Status.ObservedGeneration,
		},
	}
	if len(rc.Spec.Selector) > 0 {
		rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: rc.Spec.Selector}
	}
	for _, c := range rc.Status.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rs
}

func derefTemplate(t *corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	if t == nil {
		return corev1.PodTemplateSpec{}
	}
	return *t
}

func rcStatus(st appsv1.ReplicaSetStatus) corev1.ReplicationControllerStatus {
	out := corev1.ReplicationControllerStatus{
		Replicas:             st.Replicas,
		FullyLabeledReplicas: st.FullyLabeledReplicas,
		ReadyReplicas:        st.ReadyReplicas,
		AvailableReplicas:    st.AvailableReplicas,
		ObservedGeneration:   st.ObservedGeneration,
	}
	for _, c := range st.Conditions {
		out.Conditions = append(out.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return out
}

func (k ownerKind) String() string { return fmt.Sprintf("%s/%s", k.gvk.Group, k.gvk.Kind) }

package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/storage"
)

// toScale renders the scale subresource of a scalable object.
func toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	s := &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"}}
	var om *metav1.ObjectMeta
	switch o := obj.(type) {
	case *appsv1.Deployment:
		om, s.Spec.Replicas, s.Status.Replicas = &o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas
		s.Status.Selector = selectorString(o.Spec.Selector)
	case *appsv1.ReplicaSet:
		om, s.Spec.Replicas, s.Status.Replicas = &o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas
		s.Status.Selector = selectorString(o.Spec.Selector)
	case *appsv1.StatefulSet:
		om, s.Spec.Replicas, s.Status.Replicas = &o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas
		s.Status.Selector = selectorString(o.Spec.Selector)
	case *corev1.ReplicationController:
		om, s.Spec.Replicas, s.Status.Replicas = &o.ObjectMeta, deref(o.Spec.Replicas), o.Status.Replicas
		s.Status.Selector = labels.SelectorFromSet(o.Spec.Selector).String()
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%T has no scale subresource", obj))
	}
	s.ObjectMeta = metav1.ObjectMeta{Name: om.Name, Namespace: om.Namespace, UID: om.UID,
		ResourceVersion: om.ResourceVersion, CreationTimestamp: om.CreationTimestamp}
	return s, nil
}

func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	case *corev1.ReplicationController:
		o.Spec.Replicas = &n
	}
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func selectorString(ls *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return ""
	}
	return sel.String()
}

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

func (c *call) scale() error {
	if c.info.Verb == "get" {
		obj, err := c.ep.store.GetObject(c.ctx, c.info.Namespace, c.info.Name, c.r.URL.Query().Get("resourceVersion"))
		if err != nil {
			return err
		}
		s, err := toScale(obj)
		if err != nil {
			return err
		}
		writeJSON(c.w, c.r, http.StatusOK, s)
		return nil
	}
	var pt types.PatchType
	if c.info.Verb == "patch" {
		var err error
		if pt, err = patchType(c.r); err != nil {
			return err
		}
		if pt == types.ApplyYAMLPatchType {
			return unsupportedMediaType(string(pt))
		}
	} else if c.info.Verb != "update" {
		return apierrors.NewMethodNotSupported(c.ep.gr(), c.info.Verb)
	}
	body, err := c.readBody()
	if err != nil {
		return err
	}
	out, err := c.ep.store.GuaranteedUpdate(c.ctx, c.info.Namespace, c.info.Name, storage.UpdateOptions{DryRun: c.dryRun},
		func(cur runtime.Object) (runtime.Object, error) {
			curScale, err := toScale(cur)
			if err != nil {
				return nil, err
			}
			var obj runtime.Object
			if c.info.Verb == "update" {
				obj, err = c.decodeBody(body, scaleGVK)
			} else {
				curJSON, _ := json.Marshal(curScale)
				var data []byte
				if data, err = applyJSONPatch(pt, curJSON, body, &autoscalingv1.Scale{}); err != nil {
					return nil, err
				}
				obj, err = c.decode(data, scaleGVK)
			}
			if err != nil {
				return nil, err
			}
			want := obj.(*autoscalingv1.Scale)
			if rv := want.ResourceVersion; rv != "" && rv != curScale.ResourceVersion {
				return nil, apierrors.NewConflict(c.ep.gr(), c.info.Name, fmt.Errorf("%s", storageModified))
			}
			if want.Spec.Replicas < 0 {
				return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), c.info.Name, field.ErrorList{
					field.Invalid(field.NewPath("spec", "replicas"), want.Spec.Replicas, "must be greater than or equal to 0")})
			}
			next := cur.DeepCopyObject()
			setReplicas(next, want.Spec.Replicas)
			return c.prepareUpdate(cur, next, "", true)
		})
	if err != nil {
		return err
	}
	s, err := toScale(out)
	if err != nil {
		return err
	}
	writeJSON(c.w, c.r, http.StatusOK, s)
	return nil
}

// bind assigns a pod to a node (pods/binding), as the scheduler does.
func (c *call) bind() error {
	body, err := c.readBody()
	if err != nil {
		return err
	}
	obj, err := c.decodeBody(body, corev1.SchemeGroupVersion.WithKind("Binding"))
	if err != nil {
		return err
	}
	b := obj.(*corev1.Binding)
	name := c.info.Name
	if name == "" {
		name = b.Name
	} else if b.Name != "" && b.Name != name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", b.Name, name))
	}
	if b.Target.Name == "" {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), name,
			field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), name,
			field.ErrorList{field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"})})
	}
	gr := c.ep.gr()
	gr.Resource = "pods/binding"
	_, err = c.ep.store.GuaranteedUpdate(c.ctx, c.info.Namespace, name, storage.UpdateOptions{DryRun: c.dryRun},
		func(cur runtime.Object) (runtime.Object, error) {
			pod := cur.(*corev1.Pod)
			if pod.DeletionTimestamp != nil {
				return nil, apierrors.NewConflict(gr, name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", name))
			}
			if pod.Spec.NodeName != "" {
				return nil, apierrors.NewConflict(gr, name, fmt.Errorf("pod %v is already assigned to node %q", name, pod.Spec.NodeName))
			}
			if b.UID != "" && b.UID != pod.UID {
				return nil, apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
			}
			pod.Spec.NodeName = b.Target.Name
			for k, v := range b.Annotations {
				if pod.Annotations == nil {
					pod.Annotations = map[string]string{}
				}
				pod.Annotations[k] = v
			}
			setPodCondition(pod, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(c.now.Truncate(time.Second))})
			return pod, nil
		})
	if err != nil {
		return err
	}
	writeStatusOK(c.w, c.r, http.StatusCreated)
	return nil
}

func setPodCondition(pod *corev1.Pod, cond corev1.PodCondition) {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == cond.Type {
			pod.Status.Conditions[i] = cond
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, cond)
}

// evict deletes a pod unless a PodDisruptionBudget forbids it.
func (c *call) evict() error {
	body, err := c.readBody()
	if err != nil {
		return err
	}
	obj, err := c.decodeBody(body, policyv1.SchemeGroupVersion.WithKind("Eviction"))
	if err != nil {
		return err
	}
	ev := obj.(*policyv1.Eviction)
	if ev.Name != "" && ev.Name != c.info.Name {
		return apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object"))
	}
	podObj, err := c.ep.store.GetObject(c.ctx, c.info.Namespace, c.info.Name, "")
	if err != nil {
		return err
	}
	pod := podObj.(*corev1.Pod)
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if !terminal && pod.DeletionTimestamp == nil {
		if err := c.checkDisruptionBudgets(pod); err != nil {
			return err
		}
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if _, _, err := c.deleteOne(c.info.Namespace, c.info.Name, opts); err != nil {
		return err
	}
	writeStatusOK(c.w, c.r, http.StatusCreated)
	return nil
}

// checkDisruptionBudgets consumes one allowed disruption from the budget
// that covers pod, or refuses with 429 as upstream does.
func (c *call) checkDisruptionBudgets(pod *corev1.Pod) error {
	pdbs := c.s.storages[policyv1.SchemeGroupVersion.WithResource("poddisruptionbudgets").GroupResource()]
	res, err := pdbs.List(c.ctx, storage.ListOptions{Namespace: pod.Namespace, ResourceVersion: "0"})
	if err != nil {
		return err
	}
	var match []*policyv1.PodDisruptionBudget
	for _, it := range res.Items {
		o, err := pdbs.Decode(it)
		if err != nil {
			return err
		}
		pdb := o.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		match = append(match, pdb)
	}
	switch len(match) {
	case 0:
		return nil
	case 1:
	default:
		return apierrors.NewInternalError(fmt.Errorf("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."))
	}
	pdb := match[0]
	refuse := func(p *policyv1.PodDisruptionBudget) error {
		err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    policyv1.DisruptionBudgetCause,
			Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", p.Name, p.Status.DesiredHealthy, p.Status.CurrentHealthy),
		})
		return err
	}
	if pdb.Status.ObservedGeneration < pdb.Generation {
		err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget " + pdb.Name + " is still being processed by the server.",
		})
		return err
	}
	if pdb.Status.DisruptionsAllowed <= 0 {
		return refuse(pdb)
	}
	if c.dryRun {
		return nil
	}
	_, err = pdbs.GuaranteedUpdate(c.ctx, pdb.Namespace, pdb.Name, storage.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*policyv1.PodDisruptionBudget)
		if p.Status.DisruptionsAllowed <= 0 {
			return nil, refuse(p)
		}
		p.Status.DisruptionsAllowed--
		if p.Status.DisruptedPods == nil {
			p.Status.DisruptedPods = map[string]metav1.Time{}
		}
		p.Status.DisruptedPods[pod.Name] = metav1.NewTime(c.now.Truncate(time.Second))
		return p, nil
	})
	return err
}

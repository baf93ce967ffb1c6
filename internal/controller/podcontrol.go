package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
)

// Event reasons shared by the controllers that create pods, as upstream.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// PodControl creates and deletes pods on behalf of an owner, recording the
// events upstream records.
type PodControl struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
}

// PodFromTemplate builds the pod an owner creates from its template: the
// template's labels, annotations, finalizers and spec, a generateName of
// the owner's name and a dash, and the controller reference.
func PodFromTemplate(tmpl *corev1.PodTemplateSpec, owner metav1.Object, ref *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels:       copyMap(tmpl.Labels),
			Annotations:  copyMap(tmpl.Annotations),
			GenerateName: owner.GetName() + "-",
			Namespace:    owner.GetNamespace(),
			Finalizers:   append([]string(nil), tmpl.Finalizers...),
		},
	}
	if ref != nil {
		p.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	p.Spec = *tmpl.Spec.DeepCopy()
	return p
}

// CreatePod creates pod for owner (an object the recorder can refer to).
// A namespace being terminated is reported as such, without an event
// storm: upstream skips the FailedCreate event in that case.
func (pc PodControl) CreatePod(ctx context.Context, pod *corev1.Pod, owner runtime.Object) (*corev1.Pod, error) {
	if len(pod.Labels) == 0 {
		return nil, fmt.Errorf("unable to create pods, no labels")
	}
	out, err := pc.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			pc.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return nil, err
	}
	pc.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", out.Name)
	return out, nil
}

// DeletePod deletes a pod of owner; a pod already gone is not an error.
func (pc PodControl) DeletePod(ctx context.Context, namespace, name string, owner runtime.Object) error {
	err := pc.Client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		pc.Recorder.Eventf(owner, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("delete pod %s/%s: %w", namespace, name, err)
	}
	pc.Recorder.Eventf(owner, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", name)
	return nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

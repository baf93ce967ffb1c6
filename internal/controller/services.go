package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// EnqueueKey returns an event handler that adds an object's key to q,
// tombstones included.
func EnqueueKey(q workqueue.TypedInterface[string]) func(obj any) {
	return func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			q.Add(key)
		}
	}
}

// PodServicesHandler returns the pod event handler of the endpoint
// controllers: it adds to q the key of every service whose selector matches
// the pod's labels, as they are or, on an update, as they were.
func PodServicesHandler(services corelisters.ServiceLister, q workqueue.TypedInterface[string]) cache.ResourceEventHandlerFuncs {
	changed := func(old, obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		sets := []labels.Set{pod.Labels}
		if o, ok := old.(*corev1.Pod); ok {
			if o.ResourceVersion == pod.ResourceVersion {
				return
			}
			sets = append(sets, o.Labels)
		}
		svcs, err := services.Services(pod.Namespace).List(labels.Everything())
		if err != nil {
			return
		}
		for _, s := range svcs {
			if s.Spec.Selector == nil {
				continue
			}
			sel := labels.SelectorFromSet(s.Spec.Selector)
			for _, ls := range sets {
				if sel.Matches(ls) {
					q.Add(s.Namespace + "/" + s.Name)
					break
				}
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { changed(nil, obj) },
		UpdateFunc: changed,
		DeleteFunc: func(obj any) { changed(nil, obj) },
	}
}

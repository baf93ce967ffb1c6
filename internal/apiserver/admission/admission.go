// Package admission holds the built-in admission plugins Skiff's API server
// runs on create, as pure functions over the object and the policy objects
// they consult (the caller reads those from storage):
//
//   - ServiceAccount: pods run as "default" unless they name an account;
//   - DefaultTolerationSeconds: pods tolerate not-ready and unreachable
//     NoExecute taints for 300 s unless they say otherwise;
//   - Priority: priorityClassName resolves to spec.priority and
//     preemptionPolicy (the globalDefault class when none is named, the
//     two system classes always known);
//   - LimitRanger: containers get default requests and limits, and pods,
//     containers and claims are checked against min, max and ratio.
//
// Functions that can refuse return a message; the caller answers 403
// Forbidden with it, as upstream does.
package admission

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/utils/ptr"
)

// DefaultServiceAccount names the account a pod runs as when it names none.
func DefaultServiceAccount(pod *corev1.Pod) {
	if IsMirrorPod(pod) {
		return // its spec is the static pod's, as upstream
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = pod.Spec.DeprecatedServiceAccount
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
}

// DefaultRequestsFromLimits gives a container without a request the
// request equal to its limit, as upstream's pod defaulting does.
func DefaultRequestsFromLimits(pod *corev1.Pod) {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			r := &cs[i].Resources
			for k, v := range r.Limits {
				if _, ok := r.Requests[k]; !ok {
					if r.Requests == nil {
						r.Requests = corev1.ResourceList{}
					}
					r.Requests[k] = v.DeepCopy()
				}
			}
		}
	}
}

// DefaultTolerationSeconds is upstream's default for both tolerations.
const DefaultTolerationSeconds int64 = 300

// DefaultTolerations adds the not-ready and unreachable NoExecute
// tolerations a pod lacks.
func DefaultTolerations(pod *corev1.Pod) {
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		has := false
		for _, t := range pod.Spec.Tolerations {
			keyOK := t.Key == key || (t.Key == "" && t.Operator == corev1.TolerationOpExists)
			effectOK := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
			if keyOK && effectOK {
				has = true
			}
		}
		if !has {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(DefaultTolerationSeconds)})
		}
	}
}

// System priority classes, known even when not stored.
var systemClasses = []schedulingv1.PriorityClass{
	{Value: 2000001000, Description: "Used for system critical pods that must not be moved from their current node."},
	{Value: 2000000000, Description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."},
}

// SystemPriorityClasses returns system-node-critical and
// system-cluster-critical.
func SystemPriorityClasses() []schedulingv1.PriorityClass {
	out := make([]schedulingv1.PriorityClass, len(systemClasses))
	copy(out, systemClasses)
	out[0].Name, out[1].Name = "system-node-critical", "system-cluster-critical"
	for i := range out {
		out[i].PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
	}
	return out
}

// ResolvePriority sets spec.priority and spec.preemptionPolicy from the
// pod's class (or the global default). It returns a refusal message.
func ResolvePriority(pod *corev1.Pod, classes []*schedulingv1.PriorityClass) string {
	var pc *schedulingv1.PriorityClass
	name := pod.Spec.PriorityClassName
	if name == "" {
		for _, c := range classes {
			if c.GlobalDefault && (pc == nil || c.Value < pc.Value) {
				pc = c
			}
		}
	} else {
		for _, c := range classes {
			if c.Name == name {
				pc = c
			}
		}
		if pc == nil {
			for _, s := range SystemPriorityClasses() {
				if s.Name == name {
					pc = &s
				}
			}
		}
		if pc == nil {
			return fmt.Sprintf("no PriorityClass with name %s was found", name)
		}
	}
	var value int32
	policy := corev1.PreemptLowerPriority
	if pc != nil {
		value = pc.Value
		pod.Spec.PriorityClassName = pc.Name
		if pc.PreemptionPolicy != nil {
			policy = *pc.PreemptionPolicy
		}
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != value {
		return fmt.Sprintf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, value)
	}
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != policy {
		return fmt.Sprintf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, policy)
	}
	pod.Spec.Priority = ptr.To(value)
	pod.Spec.PreemptionPolicy = ptr.To(policy)
	return ""
}

// LimitRangerAnnotation records the defaults LimitRanger set.
const LimitRangerAnnotation = "kubernetes.io/limit-ranger"

// itemDefaults applies upstream's LimitRange defaulting to an item: a max
// without default becomes the default limit, the default limit (then the
// min) the default request.
func itemDefaults(it corev1.LimitRangeItem) (limits, requests corev1.ResourceList) {
	limits, requests = corev1.ResourceList{}, corev1.ResourceList{}
	for k, v := range it.Default {
		limits[k] = v
	}
	for k, v := range it.Max {
		if _, ok := limits[k]; !ok {
			limits[k] = v
		}
	}
	for k, v := range it.DefaultRequest {
		requests[k] = v
	}
	for k, v := range limits {
		if _, ok := requests[k]; !ok {
			requests[k] = v
		}
	}
	for k, v := range it.Min {
		if _, ok := requests[k]; !ok {
			requests[k] = v
		}
	}
	return limits, requests
}

func names(l []corev1.ResourceName) string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = string(n)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// LimitPod applies the Container defaults of the ranges to the pod's
// containers, then checks containers and the pod against every Container
// and Pod item. It returns the refusal messages.
func LimitPod(pod *corev1.Pod, ranges []*corev1.LimitRange) []string {
	var notes []string
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			if it.Type != corev1.LimitTypeContainer {
				continue
			}
			lims, reqs := itemDefaults(it)
			for _, cs := range []([]corev1.Container){pod.Spec.InitContainers, pod.Spec.Containers} {
				for i := range cs {
					c := &cs[i]
					var setReq, setLim []corev1.ResourceName
					for k, v := range lims {
						if _, ok := c.Resources.Limits[k]; !ok {
							if c.Resources.Limits == nil {
								c.Resources.Limits = corev1.ResourceList{}
							}
							c.Resources.Limits[k] = v.DeepCopy()
							setLim = append(setLim, k)
						}
					}
					for k, v := range reqs {
						if _, ok := c.Resources.Requests[k]; !ok {
							if c.Resources.Requests == nil {
								c.Resources.Requests = corev1.ResourceList{}
							}
							// A request never exceeds the container's limit.
							if l, ok := c.Resources.Limits[k]; ok && v.Cmp(l) > 0 {
								v = l
							}
							c.Resources.Requests[k] = v.DeepCopy()
							setReq = append(setReq, k)
						}
					}
					if len(setReq) > 0 {
						notes = append(notes, fmt.Sprintf("%s request for container %s", names(setReq), c.Name))
					}
					if len(setLim) > 0 {
						notes = append(notes, fmt.Sprintf("%s limit for container %s", names(setLim), c.Name))
					}
				}
			}
		}
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[LimitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
	var errs []string
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			switch it.Type {
			case corev1.LimitTypeContainer:
				for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
					errs = append(errs, check(it, "Container", c.Resources.Requests, c.Resources.Limits)...)
				}
			case corev1.LimitTypePod:
				req, lim := corev1.ResourceList{}, corev1.ResourceList{}
				for _, c := range pod.Spec.Containers {
					sum(req, c.Resources.Requests)
					sum(lim, c.Resources.Limits)
				}
				errs = append(errs, check(it, "Pod", req, lim)...)
			}
		}
	}
	return errs
}

func sum(into, l corev1.ResourceList) {
	for k, v := range l {
		cur := into[k]
		cur.Add(v)
		into[k] = cur
	}
}

// LimitClaim checks a PersistentVolumeClaim against PersistentVolumeClaim
// items.
func LimitClaim(pvc *corev1.PersistentVolumeClaim, ranges []*corev1.LimitRange) []string {
	var errs []string
	for _, lr := range ranges {
		for _, it := range lr.Spec.Limits {
			if it.Type == corev1.LimitTypePersistentVolumeClaim {
				errs = append(errs, check(corev1.LimitRangeItem{Min: it.Min, Max: it.Max}, "PersistentVolumeClaim", pvc.Spec.Resources.Requests, pvc.Spec.Resources.Limits)...)
			}
		}
	}
	return errs
}

// check validates requests and limits against one item with upstream's
// messages.
func check(it corev1.LimitRangeItem, kind string, req, lim corev1.ResourceList) []string {
	var errs []string
	for _, k := range sortedKeys(it.Min) {
		min := it.Min[k]
		r, ok := req[k]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("minimum %s usage per %s is %s.  No request is specified", k, kind, min.String()))
		case r.Cmp(min) < 0:
			errs = append(errs, fmt.Sprintf("minimum %s usage per %s is %s, but request is %s", k, kind, min.String(), r.String()))
		}
	}
	for _, k := range sortedKeys(it.Max) {
		max := it.Max[k]
		l, ok := lim[k]
		if kind == "PersistentVolumeClaim" {
			l, ok = req[k]
		}
		switch {
		case !ok && kind == "PersistentVolumeClaim":
			errs = append(errs, fmt.Sprintf("maximum %s usage per %s is %s.  No request is specified", k, kind, max.String()))
		case !ok:
			errs = append(errs, fmt.Sprintf("maximum %s usage per %s is %s.  No limit is specified", k, kind, max.String()))
		case l.Cmp(max) > 0 && kind == "PersistentVolumeClaim":
			errs = append(errs, fmt.Sprintf("maximum %s usage per %s is %s, but request is %s", k, kind, max.String(), l.String()))
		case l.Cmp(max) > 0:
			errs = append(errs, fmt.Sprintf("maximum %s usage per %s is %s, but limit is %s", k, kind, max.String(), l.String()))
		}
	}
	for _, k := range sortedKeys(it.MaxLimitRequestRatio) {
		ratio := it.MaxLimitRequestRatio[k]
		l, lok := lim[k]
		r, rok := req[k]
		if !lok {
			continue
		}
		if !rok || r.IsZero() {
			errs = append(errs, fmt.Sprintf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", k, kind, ratio.String()))
			continue
		}
		got := float64(l.MilliValue()) / float64(r.MilliValue())
		if got > float64(ratio.MilliValue())/1000 {
			errs = append(errs, fmt.Sprintf("%s max limit to request ratio per %s is %s, but provided ratio is %f", k, kind, ratio.String(), got))
		}
	}
	return errs
}

func sortedKeys(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Message joins refusal messages as upstream's aggregate errors print.
func Message(errs []string) string {
	if len(errs) == 1 {
		return errs[0]
	}
	return "[" + strings.Join(errs, ", ") + "]"
}

// Package quota is the arithmetic of ResourceQuota, shared by the API
// server's admission (which charges a new object against the quotas of its
// namespace) and the resourcequota controller (which recomputes usage from
// what exists): what an object uses, which quotas it falls under, and how a
// refusal reads. It does no I/O.
package quota

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CountName is the object-count resource of gr ("count/pods",
// "count/deployments.apps").
func CountName(gr schema.GroupResource) corev1.ResourceName {
	if gr.Group == "" {
		return corev1.ResourceName("count/" + gr.Resource)
	}
	return corev1.ResourceName("count/" + gr.Resource + "." + gr.Group)
}

// IsTerminal reports a pod that no longer uses quota.
func IsTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func add(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	cur := l[name]
	cur.Add(q)
	l[name] = cur
}

// podCompute is the larger of the containers' sum and any init container,
// plus overhead, as the scheduler and quota count it.
func podCompute(p *corev1.Pod, pick func(corev1.ResourceRequirements) corev1.ResourceList) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		for k, v := range pick(c.Resources) {
			add(sum, k, v)
		}
	}
	for _, c := range p.Spec.InitContainers {
		for k, v := range pick(c.Resources) {
			if cur, ok := sum[k]; !ok || v.Cmp(cur) > 0 {
				sum[k] = v.DeepCopy()
			}
		}
	}
	for k, v := range p.Spec.Overhead {
		if _, ok := sum[k]; ok {
			add(sum, k, v)
		}
	}
	return sum
}

// Usage is what obj, a gr, charges against a quota.
func Usage(gr schema.GroupResource, obj runtime.Object) corev1.ResourceList {
	one := resource.MustParse("1")
	out := corev1.ResourceList{CountName(gr): one.DeepCopy()}
	switch o := obj.(type) {
	case *corev1.Pod:
		if IsTerminal(o) {
			return corev1.ResourceList{}
		}
		out[corev1.ResourcePods] = one.DeepCopy()
		req := podCompute(o, func(r corev1.ResourceRequirements) corev1.ResourceList { return r.Requests })
		lim := podCompute(o, func(r corev1.ResourceRequirements) corev1.ResourceList { return r.Limits })
		for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
			if q, ok := req[n]; ok {
				out["requests."+n] = q.DeepCopy()
				if n != corev1.ResourceEphemeralStorage {
					out[n] = q.DeepCopy()
				}
			}
			if q, ok := lim[n]; ok {
				out["limits."+n] = q.DeepCopy()
			}
		}
	case *corev1.Service:
		out[corev1.ResourceServices] = one.DeepCopy()
		switch o.Spec.Type {
		case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			np := 0
			for _, p := range o.Spec.Ports {
				if p.NodePort != 0 || o.Spec.Type == corev1.ServiceTypeNodePort || o.Spec.AllocateLoadBalancerNodePorts == nil || *o.Spec.AllocateLoadBalancerNodePorts {
					np++
				}
			}
			out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(np), resource.DecimalSI)
			if o.Spec.Type == corev1.ServiceTypeLoadBalancer {
				out[corev1.ResourceServicesLoadBalancers] = one.DeepCopy()
			}
		}
	case *corev1.ConfigMap:
		out[corev1.ResourceConfigMaps] = one.DeepCopy()
	case *corev1.Secret:
		out[corev1.ResourceSecrets] = one.DeepCopy()
	case *corev1.PersistentVolumeClaim:
		out[corev1.ResourcePersistentVolumeClaims] = one.DeepCopy()
		if q, ok := o.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			out[corev1.ResourceRequestsStorage] = q.DeepCopy()
		}
	case *corev1.ReplicationController:
		out[corev1.ResourceReplicationControllers] = one.DeepCopy()
	case *corev1.ResourceQuota:
		out[corev1.ResourceQuotas] = one.DeepCopy()
	}
	return out
}

// Matches reports whether obj falls under the quota's scopes.
func Matches(q *corev1.ResourceQuota, obj runtime.Object) bool {
	pod, isPod := obj.(*corev1.Pod)
	for _, s := range q.Spec.Scopes {
		if !isPod {
			return false
		}
		if !scopeMatches(s, pod) {
			return false
		}
	}
	return true
}

func bestEffort(p *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
				return false
			}
		}
	}
	return true
}

func scopeMatches(s corev1.ResourceQuotaScope, p *corev1.Pod) bool {
	switch s {
	case corev1.ResourceQuotaScopeTerminating:
		return p.Spec.ActiveDeadlineSeconds != nil
	case corev1.ResourceQuotaScopeNotTerminating:
		return p.Spec.ActiveDeadlineSeconds == nil
	case corev1.ResourceQuotaScopeBestEffort:
		return bestEffort(p)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !bestEffort(p)
	}
	return true
}

// Restrict keeps the resources of l that hard names.
func Restrict(l, hard corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range l {
		if _, ok := hard[k]; ok {
			out[k] = v
		}
	}
	return out
}

// Increase returns what grew from old to cur: for every resource of cur,
// cur - old where that is positive. An update is charged only for what it
// adds, as upstream's quota admission does; what it frees is returned when
// the resourcequota controller recomputes usage.
func Increase(cur, old corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range cur {
		d := v.DeepCopy()
		if o, ok := old[k]; ok {
			d.Sub(o)
		}
		if d.Sign() > 0 {
			out[k] = d
		}
	}
	return out
}

// Add returns a + b.
func Add(a, b corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range a {
		out[k] = v.DeepCopy()
	}
	for k, v := range b {
		add(out, k, v)
	}
	return out
}

// MissingRequests names what a pod's containers must specify for a quota
// that tracks compute resources: "requests.cpu for: web" and so on.
func MissingRequests(hard corev1.ResourceList, p *corev1.Pod) []string {
	type need struct {
		name corev1.ResourceName
		res  corev1.ResourceName
		lim  bool
	}
	var needs []need
	for k := range hard {
		switch k {
		case corev1.ResourceCPU, corev1.ResourceRequestsCPU:
			needs = append(needs, need{corev1.ResourceRequestsCPU, corev1.ResourceCPU, false})
		case corev1.ResourceMemory, corev1.ResourceRequestsMemory:
			needs = append(needs, need{corev1.ResourceRequestsMemory, corev1.ResourceMemory, false})
		case corev1.ResourceLimitsCPU:
			needs = append(needs, need{corev1.ResourceLimitsCPU, corev1.ResourceCPU, true})
		case corev1.ResourceLimitsMemory:
			needs = append(needs, need{corev1.ResourceLimitsMemory, corev1.ResourceMemory, true})
		}
	}
	seen := map[corev1.ResourceName]bool{}
	var out []string
	for _, n := range needs {
		if seen[n.name] {
			continue
		}
		seen[n.name] = true
		var missing []string
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			l := c.Resources.Requests
			if n.lim {
				l = c.Resources.Limits
			}
			if _, ok := l[n.res]; !ok {
				missing = append(missing, c.Name)
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("%s for: %s", n.name, strings.Join(missing, ",")))
		}
	}
	sort.Strings(out)
	return out
}

// Format prints a resource list as upstream's messages do: "cpu=1,pods=2",
// sorted by name.
func Format(l corev1.ResourceList) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := l[corev1.ResourceName(k)]
		parts[i] = k + "=" + v.String()
	}
	return strings.Join(parts, ",")
}

// Exceeded checks charging delta against q. It returns the refusal
// message, or "" when the charge fits.
func Exceeded(q *corev1.ResourceQuota, delta corev1.ResourceList) string {
	var unknown []string
	req, used, lim := corev1.ResourceList{}, corev1.ResourceList{}, corev1.ResourceList{}
	for k, d := range delta {
		hard, ok := q.Spec.Hard[k]
		if !ok {
			continue
		}
		if _, ok := q.Status.Hard[k]; !ok {
			unknown = append(unknown, string(k))
			continue
		}
		u := q.Status.Used[k]
		sum := u.DeepCopy()
		sum.Add(d)
		if sum.Cmp(hard) > 0 {
			req[k], used[k], lim[k] = d, u, hard
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Sprintf("status unknown for quota: %s, resources: %s", q.Name, strings.Join(unknown, ","))
	}
	if len(req) == 0 {
		return ""
	}
	return fmt.Sprintf("exceeded quota: %s, requested: %s, used: %s, limited: %s", q.Name, Format(req), Format(used), Format(lim))
}

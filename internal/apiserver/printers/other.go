package printers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubectl/pkg/util/storage"
)

func ingressRow(ing *networkingv1.Ingress, now time.Time) []interface{} {
	class := none
	if ing.Spec.IngressClassName != nil {
		class = *ing.Spec.IngressClassName
	}
	ports := "80"
	if len(ing.Spec.TLS) != 0 {
		ports = "80, 443"
	}
	set := sets.New[string]()
	for _, in := range ing.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			set.Insert(in.IP)
		} else if in.Hostname != "" {
			set.Insert(in.Hostname)
		}
	}
	return []interface{}{
		ing.Name, class, ingressHosts(ing.Spec.Rules), strings.Join(sets.List(set), ","), ports,
		age(ing.CreationTimestamp, now),
	}
}

// ingressHosts lists rule hosts until it holds three, "*" when no rule names
// a host. Any rule left once three hosts are listed makes it add "+ N more",
// N counting every rule past the third whether or not it names a host.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == max {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	s := strings.Join(hosts, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", s, len(rules)-max)
	}
	return s
}

func ingressClassRow(ic *networkingv1.IngressClass, now time.Time) []interface{} {
	params := none
	if p := ic.Spec.Parameters; p != nil {
		params = p.Kind
		if p.APIGroup != nil {
			params += "." + *p.APIGroup
		}
		params += "/" + p.Name
	}
	return []interface{}{ic.Name, ic.Spec.Controller, params, age(ic.CreationTimestamp, now)}
}

func endpointSliceRow(s *discoveryv1.EndpointSlice, now time.Time) []interface{} {
	const max = 3
	var ports []string
	for _, p := range s.Ports {
		if len(ports) == max {
			break
		}
		switch {
		case p.Port != nil:
			ports = append(ports, strconv.Itoa(int(*p.Port)))
		case p.Name != nil:
			ports = append(ports, *p.Name)
		default:
			ports = append(ports, "*")
		}
	}
	var addrs []string
	count := 0
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			if len(addrs) < max {
				addrs = append(addrs, a)
			}
			count++
		}
	}
	return []interface{}{
		s.Name, string(s.AddressType), listWithMore(ports, len(s.Ports), max), listWithMore(addrs, count, max),
		age(s.CreationTimestamp, now),
	}
}

func leaseRow(l *coordinationv1.Lease, now time.Time) []interface{} {
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return []interface{}{l.Name, holder, age(l.CreationTimestamp, now)}
}

// roleBindingRow serves RoleBinding and ClusterRoleBinding. Service accounts
// show as namespace/name; subjects of other kinds are not listed.
func roleBindingRow(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time, now time.Time) []interface{} {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		}
	}
	return []interface{}{
		name, ref.Kind + "/" + ref.Name, age(created, now),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "),
	}
}

// storageClassRow marks the default class in its name and shows the
// defaults the API server would apply for unset policies.
func storageClassRow(sc *storagev1.StorageClass, now time.Time) []interface{} {
	name := sc.Name
	if storage.IsDefaultAnnotationText(sc.ObjectMeta) == "Yes" {
		name += " (default)"
	}
	reclaim := string(corev1.PersistentVolumeReclaimDelete)
	if sc.ReclaimPolicy != nil {
		reclaim = string(*sc.ReclaimPolicy)
	}
	binding := string(storagev1.VolumeBindingImmediate)
	if sc.VolumeBindingMode != nil {
		binding = string(*sc.VolumeBindingMode)
	}
	expansion := false
	if sc.AllowVolumeExpansion != nil {
		expansion = *sc.AllowVolumeExpansion
	}
	return []interface{}{name, sc.Provisioner, reclaim, binding, expansion, age(sc.CreationTimestamp, now)}
}

func podDisruptionBudgetRow(pdb *policyv1.PodDisruptionBudget, now time.Time) []interface{} {
	minAvailable, maxUnavailable := "N/A", "N/A"
	if pdb.Spec.MinAvailable != nil {
		minAvailable = pdb.Spec.MinAvailable.String()
	}
	if pdb.Spec.MaxUnavailable != nil {
		maxUnavailable = pdb.Spec.MaxUnavailable.String()
	}
	return []interface{}{
		pdb.Name, minAvailable, maxUnavailable, int64(pdb.Status.DisruptionsAllowed), age(pdb.CreationTimestamp, now),
	}
}

func priorityClassRow(pc *schedulingv1.PriorityClass, now time.Time) []interface{} {
	preemption := ""
	if pc.PreemptionPolicy != nil {
		preemption = string(*pc.PreemptionPolicy)
	}
	return []interface{}{pc.Name, int64(pc.Value), pc.GlobalDefault, age(pc.CreationTimestamp, now), preemption}
}

package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubectl/pkg/util/storage"
)

const (
	// labelNodeRolePrefix marks a node role by key: node-role.kubernetes.io/<role>.
	labelNodeRolePrefix = "node-role.kubernetes.io/"
	// labelNodeRole is the older form that carries the role as the value.
	labelNodeRole = "kubernetes.io/role"
)

func podTemplateRow(t *corev1.PodTemplate) []interface{} {
	names, images := containerCells(t.Template.Spec.Containers)
	return []interface{}{t.Name, names, images, labels.FormatLabels(t.Template.Labels)}
}

func replicationControllerRow(rc *corev1.ReplicationController, now time.Time) []interface{} {
	var desired int32
	if rc.Spec.Replicas != nil {
		desired = *rc.Spec.Replicas
	}
	var containers []corev1.Container
	if rc.Spec.Template != nil {
		containers = rc.Spec.Template.Spec.Containers
	}
	names, images := containerCells(containers)
	return []interface{}{
		rc.Name, int64(desired), int64(rc.Status.Replicas), int64(rc.Status.ReadyReplicas), age(rc.CreationTimestamp, now),
		names, images, labels.FormatLabels(rc.Spec.Selector),
	}
}

func serviceRow(svc *corev1.Service, now time.Time) []interface{} {
	clusterIP := none
	switch {
	case svc.Spec.ClusterIP != "":
		// Conversion to the internal type makes spec.clusterIP authoritative.
		clusterIP = svc.Spec.ClusterIP
	case len(svc.Spec.ClusterIPs) > 0:
		clusterIP = svc.Spec.ClusterIPs[0]
	}
	ports := servicePorts(svc.Spec.Ports)
	if ports == "" {
		ports = none
	}
	return []interface{}{
		svc.Name, string(svc.Spec.Type), clusterIP, serviceExternalIP(svc), ports, age(svc.CreationTimestamp, now),
		labels.FormatLabels(svc.Spec.Selector),
	}
}

// serviceExternalIP is the EXTERNAL-IP cell: external IPs for ClusterIP and
// NodePort services, load-balancer ingress points (then external IPs) for
// LoadBalancer services, "<pending>" while a load balancer has none, and the
// DNS name of an ExternalName service.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return none
	case corev1.ServiceTypeLoadBalancer:
		addrs := loadBalancerAddresses(svc.Status.LoadBalancer.Ingress)
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(append(addrs, svc.Spec.ExternalIPs...), ",")
		}
		if len(addrs) > 0 {
			return strings.Join(addrs, ",")
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return unknown
}

// loadBalancerAddresses returns the sorted, de-duplicated IP (or else
// hostname) of each ingress point. Upstream clips the list to 16 characters
// only in narrow output; the server always renders wide, so it is never
// clipped here.
func loadBalancerAddresses(ingress []corev1.LoadBalancerIngress) []string {
	set := sets.New[string]()
	for _, in := range ingress {
		if in.IP != "" {
			set.Insert(in.IP)
		} else if in.Hostname != "" {
			set.Insert(in.Hostname)
		}
	}
	return sets.List(set)
}

func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

func endpointsRow(ep *corev1.Endpoints, now time.Time) []interface{} {
	return []interface{}{ep.Name, formatEndpoints(ep), age(ep.CreationTimestamp, now)}
}

// formatEndpoints lists up to three host:port pairs (bare IPs for subsets
// without ports, as headless services have) and counts the rest.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return none
	}
	const max = 3
	var list []string
	count := 0
	add := func(s string) {
		if len(list) < max {
			list = append(list, s)
		}
	}
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				add(a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				add(net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if count > max {
		return fmt.Sprintf("%s + %d more...", s, count-max)
	}
	return s
}

func nodeRow(node *corev1.Node, now time.Time) []interface{} {
	// Only the Ready condition shows; the last one of that type wins.
	var ready *corev1.NodeCondition
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			ready = &node.Status.Conditions[i]
		}
	}
	var status []string
	switch {
	case ready == nil:
		status = append(status, "Unknown")
	case ready.Status == corev1.ConditionTrue:
		status = append(status, string(corev1.NodeReady))
	default:
		status = append(status, "Not"+string(corev1.NodeReady))
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	roles := strings.Join(nodeRoles(node), ",")
	if roles == "" {
		roles = none
	}
	info := node.Status.NodeInfo
	return []interface{}{
		node.Name, strings.Join(status, ","), roles, age(node.CreationTimestamp, now), info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP), nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeRoles collects roles from node-role.kubernetes.io/<role> label keys
// and kubernetes.io/role label values, sorted and de-duplicated.
func nodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); role != "" {
				roles.Insert(role)
			}
		case k == labelNodeRole && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

// nodeAddress is the node's first address of the type, or "<none>".
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return none
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// secretRow counts data keys as the stored object has them: the versioned
// stringData is merged into data when it is converted.
func secretRow(s *corev1.Secret, now time.Time) []interface{} {
	n := len(s.Data)
	for k := range s.StringData {
		if _, ok := s.Data[k]; !ok {
			n++
		}
	}
	return []interface{}{s.Name, string(s.Type), int64(n), age(s.CreationTimestamp, now)}
}

func persistentVolumeRow(pv *corev1.PersistentVolume, now time.Time) []interface{} {
	claim := ""
	if ref := pv.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	volumeMode := unset
	if pv.Spec.VolumeMode != nil {
		volumeMode = string(*pv.Spec.VolumeMode)
	}
	vac := unset
	if pv.Spec.VolumeAttributesClassName != nil {
		vac = *pv.Spec.VolumeAttributesClassName
	}
	return []interface{}{
		pv.Name, capacity.String(), storage.GetAccessModesAsString(pv.Spec.AccessModes),
		string(pv.Spec.PersistentVolumeReclaimPolicy), phase, claim, storage.GetPersistentVolumeClass(pv),
		vac, pv.Status.Reason, age(pv.CreationTimestamp, now), volumeMode,
	}
}

// persistentVolumeClaimRow shows capacity and access modes only once the
// claim is bound to a volume, from the claim's status.
func persistentVolumeClaimRow(pvc *corev1.PersistentVolumeClaim, now time.Time) []interface{} {
	phase := string(pvc.Status.Phase)
	if pvc.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, accessModes := "", ""
	if pvc.Spec.VolumeName != "" {
		accessModes = storage.GetAccessModesAsString(pvc.Status.AccessModes)
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
	}
	vac := unset
	if pvc.Spec.VolumeAttributesClassName != nil {
		vac = *pvc.Spec.VolumeAttributesClassName
	}
	volumeMode := unset
	if pvc.Spec.VolumeMode != nil {
		volumeMode = string(*pvc.Spec.VolumeMode)
	}
	return []interface{}{
		pvc.Name, phase, pvc.Spec.VolumeName, capacity, accessModes,
		storage.GetPersistentVolumeClaimClass(pvc), vac, age(pvc.CreationTimestamp, now), volumeMode,
	}
}

// resourceQuotaRow prints "resource: used/hard" for every hard limit, sorted
// by name; limits.* resources go to the LIMIT column, the rest to REQUEST.
func resourceQuotaRow(q *corev1.ResourceQuota, now time.Time) []interface{} {
	names := make([]string, 0, len(q.Status.Hard))
	for name := range q.Status.Hard {
		names = append(names, string(name))
	}
	sort.Strings(names)
	var requests, limits []string
	for _, name := range names {
		used := q.Status.Used[corev1.ResourceName(name)]
		hard := q.Status.Hard[corev1.ResourceName(name)]
		entry := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if pieces := strings.Split(name, "."); len(pieces) > 1 && pieces[0] == "limits" {
			limits = append(limits, entry)
		} else {
			requests = append(requests, entry)
		}
	}
	return []interface{}{q.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), age(q.CreationTimestamp, now)}
}

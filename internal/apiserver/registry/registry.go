// Package registry describes the resources the API server serves: their
// group, versions, kind, scope, short names, categories and subresources,
// exactly as upstream Kubernetes publishes them in discovery. It holds facts
// only; the behaviour of a resource (defaulting, validation, strategy, table
// columns) lives in the sibling packages defaults, validation, strategy and
// printers, each a pure function of the object.
package registry

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Verbs every ordinary resource supports.
var (
	fullVerbs    = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	nsVerbs      = []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	subGetUpdate = []string{"get", "patch", "update"}
)

// Subresource is a subresource of a Resource (pods/status, deployments/scale).
type Subresource struct {
	Name string
	// Kind is the kind exchanged through the subresource; empty means the
	// parent's kind.
	Group, Version, Kind string
	Verbs                []string
}

// Resource is one REST resource as discovery describes it.
type Resource struct {
	Group string
	// Versions are the served versions, the preferred (and storage) one first.
	Versions     []string
	Name         string // plural, as in the URL
	SingularName string
	Kind         string
	Namespaced   bool
	ShortNames   []string
	Categories   []string
	Verbs        []string
	Subresources []Subresource
}

// GroupResource returns the resource's group and plural name.
func (r *Resource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.Group, Resource: r.Name}
}

// StorageGVK returns the group, version and kind objects are stored as.
func (r *Resource) StorageGVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Versions[0], Kind: r.Kind}
}

// HasSubresource reports whether the resource has the named subresource.
func (r *Resource) HasSubresource(name string) bool {
	return r.Subresource(name) != nil
}

// Subresource returns the named subresource or nil.
func (r *Resource) Subresource(name string) *Subresource {
	for i := range r.Subresources {
		if r.Subresources[i].Name == name {
			return &r.Subresources[i]
		}
	}
	return nil
}

func status() Subresource { return Subresource{Name: "status", Verbs: subGetUpdate} }

func scale() Subresource {
	return Subresource{Name: "scale", Group: "autoscaling", Version: "v1", Kind: "Scale", Verbs: subGetUpdate}
}

// All returns every resource the server serves, in discovery order (groups in
// upstream priority order, resources alphabetically within a group).
func All() []Resource {
	all := []string{"all"}
	return []Resource{
		// core/v1
		{Group: "", Versions: []string{"v1"}, Name: "bindings", SingularName: "binding", Kind: "Binding", Namespaced: true, Verbs: []string{"create"}},
		{Group: "", Versions: []string{"v1"}, Name: "configmaps", SingularName: "configmap", Kind: "ConfigMap", Namespaced: true, ShortNames: []string{"cm"}, Verbs: fullVerbs},
		{Group: "", Versions: []string{"v1"}, Name: "endpoints", SingularName: "endpoints", Kind: "Endpoints", Namespaced: true, ShortNames: []string{"ep"}, Verbs: fullVerbs},
		{Group: "", Versions: []string{"v1"}, Name: "events", SingularName: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"}, Verbs: fullVerbs},
		{Group: "", Versions: []string{"v1"}, Name: "limitranges", SingularName: "limitrange", Kind: "LimitRange", Namespaced: true, ShortNames: []string{"limits"}, Verbs: fullVerbs},
		{Group: "", Versions: []string{"v1"}, Name: "namespaces", SingularName: "namespace", Kind: "Namespace", ShortNames: []string{"ns"}, Verbs: nsVerbs,
			Subresources: []Subresource{{Name: "finalize", Verbs: []string{"update"}}, status()}},
		{Group: "", Versions: []string{"v1"}, Name: "nodes", SingularName: "node", Kind: "Node", ShortNames: []string{"no"}, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "", Versions: []string{"v1"}, Name: "persistentvolumeclaims", SingularName: "persistentvolumeclaim", Kind: "PersistentVolumeClaim", Namespaced: true, ShortNames: []string{"pvc"}, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "", Versions: []string{"v1"}, Name: "persistentvolumes", SingularName: "persistentvolume", Kind: "PersistentVolume", ShortNames: []string{"pv"}, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "", Versions: []string{"v1"}, Name: "pods", SingularName: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{
				{Name: "attach", Verbs: []string{"get", "create"}},
				{Name: "binding", Kind: "Binding", Verbs: []string{"create"}},
				{Name: "eviction", Group: "policy", Version: "v1", Kind: "Eviction", Verbs: []string{"create"}},
				{Name: "exec", Verbs: []string{"get", "create"}},
				{Name: "log", Verbs: []string{"get"}},
				{Name: "portforward", Verbs: []string{"get", "create"}},
				status(),
			}},
		{Group: "", Versions: []string{"v1"}, Name: "podtemplates", SingularName: "podtemplate", Kind: "PodTemplate", Namespaced: true, Verbs: fullVerbs},
		{Group: "", Versions: []string{"v1"}, Name: "replicationcontrollers", SingularName: "replicationcontroller", Kind: "ReplicationController", Namespaced: true, ShortNames: []string{"rc"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{scale(), status()}},
		{Group: "", Versions: []string{"v1"}, Name: "resourcequotas", SingularName: "resourcequota", Kind: "ResourceQuota", Namespaced: true, ShortNames: []string{"quota"}, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "", Versions: []string{"v1"}, Name: "secrets", SingularName: "secret", Kind: "Secret", Namespaced: true, Verbs: fullVerbs},
		{Group: "", Versions: []string{"v1"}, Name: "serviceaccounts", SingularName: "serviceaccount", Kind: "ServiceAccount", Namespaced: true, ShortNames: []string{"sa"}, Verbs: fullVerbs,
			Subresources: []Subresource{{Name: "token", Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest", Verbs: []string{"create"}}}},
		{Group: "", Versions: []string{"v1"}, Name: "services", SingularName: "service", Kind: "Service", Namespaced: true, ShortNames: []string{"svc"}, Categories: all,
			Verbs:        []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
			Subresources: []Subresource{status()}},

		// apps/v1
		{Group: "apps", Versions: []string{"v1"}, Name: "controllerrevisions", SingularName: "controllerrevision", Kind: "ControllerRevision", Namespaced: true, Verbs: fullVerbs},
		{Group: "apps", Versions: []string{"v1"}, Name: "daemonsets", SingularName: "daemonset", Kind: "DaemonSet", Namespaced: true, ShortNames: []string{"ds"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "apps", Versions: []string{"v1"}, Name: "deployments", SingularName: "deployment", Kind: "Deployment", Namespaced: true, ShortNames: []string{"deploy"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{scale(), status()}},
		{Group: "apps", Versions: []string{"v1"}, Name: "replicasets", SingularName: "replicaset", Kind: "ReplicaSet", Namespaced: true, ShortNames: []string{"rs"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{scale(), status()}},
		{Group: "apps", Versions: []string{"v1"}, Name: "statefulsets", SingularName: "statefulset", Kind: "StatefulSet", Namespaced: true, ShortNames: []string{"sts"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{scale(), status()}},

		// authentication.k8s.io/v1: reviews are answered, not stored.
		{Group: "authentication.k8s.io", Versions: []string{"v1"}, Name: "selfsubjectreviews", Kind: "SelfSubjectReview", Verbs: []string{"create"}},

		// autoscaling: v2 is preferred and stored; v1 is served by conversion.
		{Group: "autoscaling", Versions: []string{"v2", "v1"}, Name: "horizontalpodautoscalers", SingularName: "horizontalpodautoscaler", Kind: "HorizontalPodAutoscaler", Namespaced: true, ShortNames: []string{"hpa"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},

		// batch/v1
		{Group: "batch", Versions: []string{"v1"}, Name: "cronjobs", SingularName: "cronjob", Kind: "CronJob", Namespaced: true, ShortNames: []string{"cj"}, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "batch", Versions: []string{"v1"}, Name: "jobs", SingularName: "job", Kind: "Job", Namespaced: true, Categories: all, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},

		// coordination.k8s.io/v1
		{Group: "coordination.k8s.io", Versions: []string{"v1"}, Name: "leases", SingularName: "lease", Kind: "Lease", Namespaced: true, Verbs: fullVerbs},

		// discovery.k8s.io/v1
		{Group: "discovery.k8s.io", Versions: []string{"v1"}, Name: "endpointslices", SingularName: "endpointslice", Kind: "EndpointSlice", Namespaced: true, Verbs: fullVerbs},

		// events.k8s.io/v1 shares storage with core/v1 events.
		{Group: "events.k8s.io", Versions: []string{"v1"}, Name: "events", SingularName: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"}, Verbs: fullVerbs},

		// networking.k8s.io/v1
		{Group: "networking.k8s.io", Versions: []string{"v1"}, Name: "ingressclasses", SingularName: "ingressclass", Kind: "IngressClass", Verbs: fullVerbs},
		{Group: "networking.k8s.io", Versions: []string{"v1"}, Name: "ingresses", SingularName: "ingress", Kind: "Ingress", Namespaced: true, ShortNames: []string{"ing"}, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},
		{Group: "networking.k8s.io", Versions: []string{"v1"}, Name: "networkpolicies", SingularName: "networkpolicy", Kind: "NetworkPolicy", Namespaced: true, ShortNames: []string{"netpol"}, Verbs: fullVerbs},

		// policy/v1
		{Group: "policy", Versions: []string{"v1"}, Name: "poddisruptionbudgets", SingularName: "poddisruptionbudget", Kind: "PodDisruptionBudget", Namespaced: true, ShortNames: []string{"pdb"}, Verbs: fullVerbs,
			Subresources: []Subresource{status()}},

		// rbac.authorization.k8s.io/v1
		{Group: "rbac.authorization.k8s.io", Versions: []string{"v1"}, Name: "clusterrolebindings", SingularName: "clusterrolebinding", Kind: "ClusterRoleBinding", Verbs: fullVerbs},
		{Group: "rbac.authorization.k8s.io", Versions: []string{"v1"}, Name: "clusterroles", SingularName: "clusterrole", Kind: "ClusterRole", Verbs: fullVerbs},
		{Group: "rbac.authorization.k8s.io", Versions: []string{"v1"}, Name: "rolebindings", SingularName: "rolebinding", Kind: "RoleBinding", Namespaced: true, Verbs: fullVerbs},
		{Group: "rbac.authorization.k8s.io", Versions: []string{"v1"}, Name: "roles", SingularName: "role", Kind: "Role", Namespaced: true, Verbs: fullVerbs},

		// scheduling.k8s.io/v1
		{Group: "scheduling.k8s.io", Versions: []string{"v1"}, Name: "priorityclasses", SingularName: "priorityclass", Kind: "PriorityClass", ShortNames: []string{"pc"}, Verbs: fullVerbs},

		// storage.k8s.io/v1
		{Group: "storage.k8s.io", Versions: []string{"v1"}, Name: "storageclasses", SingularName: "storageclass", Kind: "StorageClass", ShortNames: []string{"sc"}, Verbs: fullVerbs},
	}
}

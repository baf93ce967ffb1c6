package apiserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// groupPriority orders groups in /apis as upstream does, so that
// `kubectl api-resources` lists them in the same order.
func groupPriority(g string) int {
	order := []string{"", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling",
		"batch", "certificates.k8s.io", "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
		"admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io",
		"node.k8s.io", "discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io"}
	if i := slices.Index(order, g); i >= 0 {
		return i
	}
	return len(order)
}

// discovery holds the discovery documents, built once.
type discovery struct {
	apiVersions []byte                         // /api
	groupList   []byte                         // /apis
	groups      map[string][]byte              // /apis/<group>
	resources   map[schema.GroupVersion][]byte // /api/v1, /apis/<group>/<version>
	aggCore     []byte                         // /api, aggregated
	aggGroups   []byte                         // /apis, aggregated
	versions    map[string][]string            // group -> versions, preferred first
	lists       map[schema.GroupVersion]*metav1.APIResourceList
}

func newDiscovery(all []registry.Resource, publicAddress string) *discovery {
	d := &discovery{
		groups:    map[string][]byte{},
		resources: map[schema.GroupVersion][]byte{},
		versions:  map[string][]string{},
		lists:     map[schema.GroupVersion]*metav1.APIResourceList{},
	}
	var groupNames []string
	for i := range all {
		r := &all[i]
		if _, ok := d.versions[r.Group]; !ok {
			groupNames = append(groupNames, r.Group)
		}
		for _, v := range r.Versions {
			if !slices.Contains(d.versions[r.Group], v) {
				d.versions[r.Group] = append(d.versions[r.Group], v)
			}
			gv := schema.GroupVersion{Group: r.Group, Version: v}
			list := d.lists[gv]
			if list == nil {
				list = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
				d.lists[gv] = list
			}
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: r.Name, SingularName: r.SingularName, Namespaced: r.Namespaced, Kind: r.Kind,
				Verbs: r.Verbs, ShortNames: r.ShortNames, Categories: r.Categories,
			})
			for _, sub := range r.Subresources {
				ar := metav1.APIResource{Name: r.Name + "/" + sub.Name, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: sub.Verbs}
				if sub.Kind != "" {
					ar.Kind, ar.Group, ar.Version = sub.Kind, sub.Group, sub.Version
				}
				list.APIResources = append(list.APIResources, ar)
			}
		}
	}
	sort.SliceStable(groupNames, func(i, j int) bool { return groupPriority(groupNames[i]) < groupPriority(groupNames[j]) })

	cidrs := []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: publicAddress}}
	d.apiVersions = mustJSON(&metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}, ServerAddressByClientCIDRs: cidrs})
	groupList := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	core := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	groups := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	for _, g := range groupNames {
		agg := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		var gvs []metav1.GroupVersionForDiscovery
		for _, v := range d.versions[g] {
			gv := schema.GroupVersion{Group: g, Version: v}
			gvs = append(gvs, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: v})
			d.resources[gv] = mustJSON(d.lists[gv])
			agg.Versions = append(agg.Versions, aggregatedVersion(all, gv))
		}
		if g == "" {
			core.Items = append(core.Items, agg)
			continue
		}
		apiGroup := metav1.APIGroup{Name: g, Versions: gvs, PreferredVersion: gvs[0]}
		groupList.Groups = append(groupList.Groups, apiGroup)
		apiGroup.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
		d.groups[g] = mustJSON(&apiGroup)
		groups.Items = append(groups.Items, agg)
	}
	d.groupList = mustJSON(groupList)
	d.aggCore = mustJSON(core)
	d.aggGroups = mustJSON(groups)
	return d
}

func aggregatedVersion(all []registry.Resource, gv schema.GroupVersion) apidiscoveryv2.APIVersionDiscovery {
	out := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
	for i := range all {
		r := &all[i]
		if r.Group != gv.Group || !slices.Contains(r.Versions, gv.Version) {
			continue
		}
		scope := apidiscoveryv2.ScopeCluster
		if r.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		rd := apidiscoveryv2.APIResourceDiscovery{
			Resource:         r.Name,
			ResponseKind:     &metav1.GroupVersionKind{Group: r.Group, Version: gv.Version, Kind: r.Kind},
			Scope:            scope,
			SingularResource: r.SingularName,
			Verbs:            r.Verbs,
			ShortNames:       r.ShortNames,
			Categories:       r.Categories,
		}
		for _, sub := range r.Subresources {
			kind := &metav1.GroupVersionKind{Group: r.Group, Version: gv.Version, Kind: r.Kind}
			if sub.Kind != "" {
				kind = &metav1.GroupVersionKind{Group: sub.Group, Version: sub.Version, Kind: sub.Kind}
			}
			rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource: sub.Name, ResponseKind: kind, Verbs: sub.Verbs,
			})
		}
		out.Resources = append(out.Resources, rd)
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only static, well-formed values are passed
	}
	return b
}

// serveDiscovery answers the discovery paths; it reports false when the path
// is a resource path instead.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, info *requestInfo) bool {
	if info.IsResource {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{}, r.Method))
		return true
	}
	o, err := negotiate(r)
	if err != nil {
		writeError(w, r, err)
		return true
	}
	d := s.discovery
	parts := splitPath(r.URL.Path)
	var data []byte
	switch {
	case len(parts) == 1 && parts[0] == "api":
		data = d.apiVersions
		if o.discovery != "" {
			writeBytes(w, http.StatusOK, o.discovery, d.aggCore)
			return true
		}
	case len(parts) == 1 && parts[0] == "apis":
		data = d.groupList
		if o.discovery != "" {
			writeBytes(w, http.StatusOK, o.discovery, d.aggGroups)
			return true
		}
	case len(parts) == 2 && parts[0] == "api":
		data = d.resources[schema.GroupVersion{Version: parts[1]}]
	case len(parts) == 2 && parts[0] == "apis":
		data = d.groups[parts[1]]
	case len(parts) == 3 && parts[0] == "apis":
		data = d.resources[schema.GroupVersion{Group: parts[1], Version: parts[2]}]
	}
	if data == nil {
		writeError(w, r, apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "",
			"the server could not find the requested resource", 0, false))
		return true
	}
	out, ct, err := o.render(data)
	if err != nil {
		writeError(w, r, err)
		return true
	}
	writeBytes(w, http.StatusOK, ct, out)
	return true
}

func dedupSorted(in []string) []string {
	sort.Strings(in)
	return slices.Compact(in)
}

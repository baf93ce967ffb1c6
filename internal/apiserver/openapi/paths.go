package openapi

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// Media types of request and response bodies, as the server negotiates them.
var (
	// Skiff answers in JSON or YAML; it reads protobuf bodies but never
	// writes protobuf, so it does not advertise it.
	produces      = []string{"application/json", "application/yaml"}
	producesWatch = append(append([]string{}, produces...), "application/json;stream=watch")
	consumesAny   = []string{"*/*"}
	consumesPatch = []string{
		"application/json-patch+json",
		"application/merge-patch+json",
		"application/strategic-merge-patch+json",
		"application/apply-patch+yaml",
	}
)

// deleteReturnsObject lists the resources whose DELETE answers with the
// object (in its terminating state) rather than a Status, as upstream's
// stores for them do.
var deleteReturnsObject = map[schema.GroupResource]bool{
	{Resource: "pods"}:                   true,
	{Resource: "services"}:               true,
	{Resource: "persistentvolumes"}:      true,
	{Resource: "persistentvolumeclaims"}: true,
}

// Query parameters. Descriptions are short statements of what the server
// does with each.
var (
	paramPretty          = queryParam("pretty", "string", "If true, the response is indented for reading by people.")
	paramDryRun          = queryParam("dryRun", "string", "If All, the request is validated and processed in full but nothing is persisted. No other value is accepted.")
	paramFieldManager    = queryParam("fieldManager", "string", "Name of the actor making the change, recorded in metadata.managedFields. At most 128 printable characters. Required for apply patches.")
	paramFieldValidation = queryParam("fieldValidation", "string", "What to do with unknown and duplicate fields in the body: Ignore drops them, Warn (the default) drops them and returns a warning for each, Strict rejects the request with an error.")
	paramForce           = queryParam("force", "boolean", "For apply patches only: take over fields owned by other managers instead of failing with a conflict. Must be unset for other patch types.")
	paramLabelSelector   = queryParam("labelSelector", "string", "Only objects whose labels match this selector. Defaults to all objects.")
	paramFieldSelector   = queryParam("fieldSelector", "string", "Only objects whose fields match this selector. Defaults to all objects.")
	paramLimit           = queryParam("limit", "integer", "Maximum number of items to return. When more exist, metadata.continue of the list holds a token that fetches the next chunk.")
	paramContinue        = queryParam("continue", "string", "The metadata.continue token of a previous limited list, to fetch the next chunk. An expired token fails with 410 Gone.")
	paramResourceVersion = queryParam("resourceVersion", "string", "Which resource version the result must be at least as new as, or exactly at (see resourceVersionMatch). Unset means the most recent.")
	paramRVMatch         = queryParam("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan. Only valid together with resourceVersion.")
	paramWatch           = queryParam("watch", "boolean", "Instead of a list, return a stream of ADDED, MODIFIED and DELETED events for the selected objects.")
	paramBookmarks       = queryParam("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events, which carry only a newer resourceVersion. Ignored unless watching.")
	paramInitialEvents   = queryParam("sendInitialEvents", "boolean", "When watching, start with an ADDED event per existing object, then a BOOKMARK annotated \"k8s.io/initial-events-end\". Requires resourceVersionMatch=NotOlderThan.")
	paramTimeout         = queryParam("timeoutSeconds", "integer", "Limit on the duration of the list or watch call, in seconds.")
	paramGracePeriod     = queryParam("gracePeriodSeconds", "integer", "Seconds the object has to terminate before it is deleted; 0 deletes at once. Unset uses the object's own default.")
	paramPropagation     = queryParam("propagationPolicy", "string", "How dependents are garbage collected: Orphan, Background or Foreground. Unset uses the resource's default.")
	paramOrphan          = queryParam("orphanDependents", "boolean", "Deprecated, use propagationPolicy. True orphans the dependents, false deletes them.")
)

var (
	listParams             = []spec.Parameter{paramBookmarks, paramContinue, paramFieldSelector, paramLabelSelector, paramLimit, paramResourceVersion, paramRVMatch, paramInitialEvents, paramTimeout, paramWatch}
	writeParams            = []spec.Parameter{paramDryRun, paramFieldManager, paramFieldValidation}
	deleteParams           = []spec.Parameter{paramDryRun, paramGracePeriod, paramOrphan, paramPropagation}
	deleteCollectionParams = []spec.Parameter{paramContinue, paramDryRun, paramFieldSelector, paramGracePeriod, paramLabelSelector,
		paramLimit, paramOrphan, paramPropagation, paramResourceVersion, paramRVMatch, paramInitialEvents, paramTimeout}
)

func queryParam(name, typ, description string) spec.Parameter {
	p := spec.Parameter{ParamProps: spec.ParamProps{Name: name, In: "query", Description: description}}
	p.Type = typ
	p.UniqueItems = true
	return p
}

func pathParam(name, description string) spec.Parameter {
	p := spec.Parameter{ParamProps: spec.ParamProps{Name: name, In: "path", Description: description, Required: true}}
	p.Type = "string"
	p.UniqueItems = true
	return p
}

func bodyParam(definition string, required bool) spec.Parameter {
	s := refSchema(definition)
	return spec.Parameter{ParamProps: spec.ParamProps{Name: "body", In: "body", Required: required, Schema: &s}}
}

var paramNamespace = pathParam("namespace", "Namespace of the object, which is also its scope for authorization.")

// document is the set of paths of one OpenAPI v3 document ("api/v1",
// "apis/apps/v1", "apis/apps", "apis", "api"); the v2 document is their
// union.
type document struct {
	paths map[string]spec.PathItem
}

// pathBuilder builds the paths of the served resources and the definitions
// they refer to.
type pathBuilder struct {
	defs   *definitions
	scheme *runtime.Scheme
	docs   map[string]*document
	order  []string
}

func (b *pathBuilder) doc(key string) *document {
	if d, ok := b.docs[key]; ok {
		return d
	}
	d := &document{paths: map[string]spec.PathItem{}}
	b.docs[key] = d
	b.order = append(b.order, key)
	return d
}

// goType resolves gvk to its Go type through the scheme.
func (b *pathBuilder) goType(gvk schema.GroupVersionKind) (reflect.Type, error) {
	obj, err := b.scheme.New(gvk)
	if err != nil {
		return nil, fmt.Errorf("kind %s: %w", gvk, err)
	}
	return reflect.TypeOf(obj).Elem(), nil
}

func (b *pathBuilder) defOf(gvk schema.GroupVersionKind) (string, error) {
	t, err := b.goType(gvk)
	if err != nil {
		return "", err
	}
	return b.defs.ref(t), nil
}

func (b *pathBuilder) meta(v interface{}) string {
	return b.defs.ref(reflect.TypeOf(v))
}

// groupOpName turns an API group into the word upstream puts into operation
// IDs: "" -> Core, rbac.authorization.k8s.io -> RbacAuthorization.
func groupOpName(group string) string {
	if group == "" {
		return "Core"
	}
	var sb strings.Builder
	for _, part := range strings.Split(strings.TrimSuffix(group, ".k8s.io"), ".") {
		sb.WriteString(upperFirst(part))
	}
	return sb.String()
}

// groupTag is the tag of a group's operations: "" -> core,
// rbac.authorization.k8s.io -> rbacAuthorization.
func groupTag(group string) string {
	g := groupOpName(group)
	r, n := utf8.DecodeRuneInString(g)
	return string(unicode.ToLower(r)) + g[n:]
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// gvPath is the URL prefix of a group-version: /api/v1, /apis/apps/v1.
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// opContext holds what every operation of one resource version shares.
type opContext struct {
	gv        schema.GroupVersion
	tag       string
	opGV      string // "AppsV1"
	scope     string // "Namespaced" or ""
	kind      string
	namespace []spec.Parameter // the namespace path parameter, for namespaced resources
}

func (c *opContext) op(id, action, description string, gvk schema.GroupVersionKind, params []spec.Parameter, consumes, produces []string, responses map[int]string) *spec.Operation {
	op := &spec.Operation{OperationProps: spec.OperationProps{
		ID:          id,
		Description: description,
		Tags:        []string{c.tag},
		Schemes:     []string{"https"},
		Consumes:    consumes,
		Produces:    produces,
		Parameters:  append([]spec.Parameter(nil), params...),
		Responses:   responsesOf(responses),
	}}
	op.AddExtension(extAction, action)
	op.AddExtension(extGVK, gvkExtension(gvk))
	return op
}

// responsesOf maps status codes to the definitions of their bodies; "" means
// no body.
func responsesOf(codes map[int]string) *spec.Responses {
	r := &spec.Responses{ResponsesProps: spec.ResponsesProps{StatusCodeResponses: map[int]spec.Response{}}}
	for code, def := range codes {
		resp := spec.Response{ResponseProps: spec.ResponseProps{Description: statusText(code)}}
		if def != "" {
			s := refSchema(def)
			resp.Schema = &s
		}
		r.StatusCodeResponses[code] = resp
	}
	r.StatusCodeResponses[401] = spec.Response{ResponseProps: spec.ResponseProps{Description: "Unauthorized"}}
	return r
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	}
	return fmt.Sprint(code)
}

// resource adds the paths of one resource in one of its versions.
func (b *pathBuilder) resource(r *registry.Resource, version string) error {
	gv := schema.GroupVersion{Group: r.Group, Version: version}
	gvk := gv.WithKind(r.Kind)
	kindDef, err := b.defOf(gvk)
	if err != nil {
		return fmt.Errorf("resource %s: %w", r.GroupResource(), err)
	}
	verbs := map[string]bool{}
	for _, v := range r.Verbs {
		verbs[v] = true
	}
	var listDef string
	if verbs["list"] || verbs["watch"] {
		if listDef, err = b.defOf(gv.WithKind(r.Kind + "List")); err != nil {
			return fmt.Errorf("resource %s: %w", r.GroupResource(), err)
		}
	}
	status := b.meta(metav1.Status{})
	deleteOpts := b.meta(metav1.DeleteOptions{})
	patch := b.meta(metav1.Patch{})
	watchEvent := b.meta(metav1.WatchEvent{})

	c := &opContext{gv: gv, tag: groupTag(r.Group) + "_" + version, opGV: groupOpName(r.Group) + upperFirst(version), kind: r.Kind}
	prefix := gvPath(gv)
	collection := prefix + "/" + r.Name
	watchCollection := prefix + "/watch/" + r.Name
	if r.Namespaced {
		c.scope = "Namespaced"
		c.namespace = []spec.Parameter{paramNamespace}
		collection = prefix + "/namespaces/{namespace}/" + r.Name
		watchCollection = prefix + "/watch/namespaces/{namespace}/" + r.Name
	}
	nameParam := pathParam("name", "Name of the "+r.Kind+".")
	itemParams := append([]spec.Parameter{nameParam}, c.namespace...)
	itemParams = append(itemParams, paramPretty)
	collParams := append(append([]spec.Parameter(nil), c.namespace...), paramPretty)
	d := b.doc(strings.TrimPrefix(prefix, "/"))
	scoped := c.scope + r.Kind

	// The collection.
	var coll spec.PathItem
	if verbs["list"] {
		coll.Get = c.op("list"+c.opGV+scoped, "list", "list or watch objects of kind "+r.Kind, gvk,
			listParams, consumesAny, producesWatch, map[int]string{200: listDef})
	}
	if verbs["create"] {
		coll.Post = c.op("create"+c.opGV+scoped, "post", "create a "+r.Kind, gvk,
			append([]spec.Parameter{bodyParam(kindDef, true)}, writeParams...), consumesAny, produces,
			map[int]string{200: kindDef, 201: kindDef, 202: kindDef})
	}
	if verbs["deletecollection"] {
		coll.Delete = c.op("delete"+c.opGV+"Collection"+scoped, "deletecollection", "delete collection of "+r.Kind, gvk,
			append([]spec.Parameter{bodyParam(deleteOpts, false)}, deleteCollectionParams...), consumesAny, produces,
			map[int]string{200: status})
	}
	if coll.Get != nil || coll.Post != nil || coll.Delete != nil {
		coll.Parameters = collParams
		d.paths[collection] = coll
	}

	// The item.
	var item spec.PathItem
	if verbs["get"] {
		item.Get = c.op("read"+c.opGV+scoped, "get", "read the specified "+r.Kind, gvk,
			nil, consumesAny, produces, map[int]string{200: kindDef})
	}
	if verbs["update"] {
		item.Put = c.op("replace"+c.opGV+scoped, "put", "replace the specified "+r.Kind, gvk,
			append([]spec.Parameter{bodyParam(kindDef, true)}, writeParams...), consumesAny, produces,
			map[int]string{200: kindDef, 201: kindDef})
	}
	if verbs["patch"] {
		item.Patch = c.op("patch"+c.opGV+scoped, "patch", "partially update the specified "+r.Kind, gvk,
			append(append([]spec.Parameter{bodyParam(patch, true)}, writeParams...), paramForce), consumesPatch, produces,
			map[int]string{200: kindDef, 201: kindDef})
	}
	if verbs["delete"] {
		deleted := status
		if deleteReturnsObject[r.GroupResource()] {
			deleted = kindDef
		}
		item.Delete = c.op("delete"+c.opGV+scoped, "delete", "delete a "+r.Kind, gvk,
			append([]spec.Parameter{bodyParam(deleteOpts, false)}, deleteParams...), consumesAny, produces,
			map[int]string{200: deleted, 202: deleted})
	}
	if item.Get != nil || item.Put != nil || item.Patch != nil || item.Delete != nil {
		item.Parameters = itemParams
		d.paths[collection+"/{name}"] = item
	}

	// Watches, and the list across namespaces.
	if verbs["watch"] {
		watchListParams := append(append([]spec.Parameter(nil), listParams...), collParams...)
		d.paths[watchCollection] = spec.PathItem{PathItemProps: spec.PathItemProps{
			Parameters: watchListParams,
			Get: c.op("watch"+c.opGV+scoped+"List", "watchlist",
				"watch individual changes to a list of "+r.Kind+". deprecated: use the 'watch' parameter with a list operation instead.",
				gvk, nil, consumesAny, producesWatch, map[int]string{200: watchEvent}),
		}}
		d.paths[watchCollection+"/{name}"] = spec.PathItem{PathItemProps: spec.PathItemProps{
			Parameters: append(append([]spec.Parameter(nil), listParams...), itemParams...),
			Get: c.op("watch"+c.opGV+scoped, "watch",
				"watch changes to an object of kind "+r.Kind+". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
				gvk, nil, consumesAny, producesWatch, map[int]string{200: watchEvent}),
		}}
	}
	if r.Namespaced && verbs["list"] {
		all := append(append([]spec.Parameter(nil), listParams...), paramPretty)
		d.paths[prefix+"/"+r.Name] = spec.PathItem{PathItemProps: spec.PathItemProps{
			Parameters: all,
			Get: c.op("list"+c.opGV+r.Kind+"ForAllNamespaces", "list", "list or watch objects of kind "+r.Kind, gvk,
				nil, consumesAny, producesWatch, map[int]string{200: listDef}),
		}}
		if verbs["watch"] {
			d.paths[prefix+"/watch/"+r.Name] = spec.PathItem{PathItemProps: spec.PathItemProps{
				Parameters: all,
				Get: c.op("watch"+c.opGV+r.Kind+"ListForAllNamespaces", "watchlist",
					"watch individual changes to a list of "+r.Kind+". deprecated: use the 'watch' parameter with a list operation instead.",
					gvk, nil, consumesAny, producesWatch, map[int]string{200: watchEvent}),
			}}
		}
	}

	for i := range r.Subresources {
		if err := b.subresource(d, c, &r.Subresources[i], collection+"/{name}", itemParams); err != nil {
			return fmt.Errorf("resource %s: %w", r.GroupResource(), err)
		}
	}
	return nil
}

// subresource adds the path of one subresource (status, scale, binding,
// eviction, finalize).
func (b *pathBuilder) subresource(d *document, c *opContext, sub *registry.Subresource, itemPath string, itemParams []spec.Parameter) error {
	gvk := c.gv.WithKind(c.kind)
	if sub.Kind != "" {
		gvk.Kind = sub.Kind
	}
	if sub.Version != "" {
		gvk.Group, gvk.Version = sub.Group, sub.Version
	}
	def, err := b.defOf(gvk)
	if err != nil {
		return fmt.Errorf("subresource %s: %w", sub.Name, err)
	}
	suffix := c.scope + c.kind + upperFirst(sub.Name)
	// Upstream describes status and scale with the subresource's name, and
	// the other subresources with the kind they exchange.
	what := sub.Name + " of the specified " + c.kind
	var p spec.PathItem
	for _, verb := range sub.Verbs {
		switch verb {
		case "get":
			p.Get = c.op("read"+c.opGV+suffix, "get", "read "+what, gvk,
				nil, consumesAny, produces, map[int]string{200: def})
		case "update":
			p.Put = c.op("replace"+c.opGV+suffix, "put", "replace "+what, gvk,
				append([]spec.Parameter{bodyParam(def, true)}, writeParams...), consumesAny, produces,
				map[int]string{200: def, 201: def})
		case "patch":
			p.Patch = c.op("patch"+c.opGV+suffix, "patch", "partially update "+what, gvk,
				append(append([]spec.Parameter{bodyParam(b.meta(metav1.Patch{}), true)}, writeParams...), paramForce), consumesPatch, produces,
				map[int]string{200: def, 201: def})
		case "create":
			p.Post = c.op("create"+c.opGV+suffix, "post", "create "+article(gvk.Kind)+" "+gvk.Kind+" for the specified "+c.kind, gvk,
				append([]spec.Parameter{bodyParam(def, true)}, writeParams...), consumesAny, produces,
				map[int]string{200: def, 201: def, 202: def})
		}
	}
	p.Parameters = itemParams
	d.paths[itemPath+"/"+sub.Name] = p
	return nil
}

func article(word string) string {
	if word != "" && strings.ContainsRune("AEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// discoveryPaths adds the discovery endpoints: /api/, /apis/, each group's
// /apis/<group>/ and each group-version's resource list.
func (b *pathBuilder) discoveryPaths(gvs []schema.GroupVersion) {
	resourceList := b.meta(metav1.APIResourceList{})
	groups := map[string]bool{}
	for _, gv := range gvs {
		c := &opContext{gv: gv, tag: groupTag(gv.Group) + "_" + gv.Version, opGV: groupOpName(gv.Group) + upperFirst(gv.Version)}
		d := b.doc(strings.TrimPrefix(gvPath(gv), "/"))
		d.paths[gvPath(gv)+"/"] = spec.PathItem{PathItemProps: spec.PathItemProps{
			Get: c.discoveryOp("get"+c.opGV+"APIResources", "get available resources", resourceList),
		}}
		if gv.Group != "" && !groups[gv.Group] {
			groups[gv.Group] = true
			c := &opContext{tag: groupTag(gv.Group)}
			d := b.doc("apis/" + gv.Group)
			d.paths["/apis/"+gv.Group+"/"] = spec.PathItem{PathItemProps: spec.PathItemProps{
				Get: c.discoveryOp("get"+groupOpName(gv.Group)+"APIGroup", "get information of a group", b.meta(metav1.APIGroup{})),
			}}
		}
	}
	c := &opContext{tag: "core"}
	b.doc("api").paths["/api/"] = spec.PathItem{PathItemProps: spec.PathItemProps{
		Get: c.discoveryOp("getCoreAPIVersions", "get available API versions", b.meta(metav1.APIVersions{})),
	}}
	c = &opContext{tag: "apis"}
	b.doc("apis").paths["/apis/"] = spec.PathItem{PathItemProps: spec.PathItemProps{
		Get: c.discoveryOp("getAPIVersions", "get available API versions", b.meta(metav1.APIGroupList{})),
	}}
}

func (c *opContext) discoveryOp(id, description, def string) *spec.Operation {
	return &spec.Operation{OperationProps: spec.OperationProps{
		ID:          id,
		Description: description,
		Tags:        []string{c.tag},
		Schemes:     []string{"https"},
		Consumes:    []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"},
		Produces:    produces,
		Responses:   responsesOf(map[int]string{200: def}),
	}}
}

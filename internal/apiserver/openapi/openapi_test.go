package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// testSpec builds the documents for the real resource table once for all
// tests; building takes a good part of a second.
var testSpec = sync.OnceValues(func() (*Spec, error) {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return nil, err
	}
	return New(registry.All(), s)
})

func mustSpec(t *testing.T) *Spec {
	t.Helper()
	s, err := testSpec()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// inProcess is a RoundTripper that hands requests to a handler, and, like
// net/http's transport, asks for gzip and undoes it transparently.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	askedGzip := false
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "gzip")
		askedGzip = true
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	resp := rec.Result()
	if askedGzip && resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(plain))
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = int64(len(plain))
	}
	return resp, nil
}

// discoveryClient is client-go's discovery client talking to the Spec.
func discoveryClient(t *testing.T) *discovery.DiscoveryClient {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: "http://openapi.test", Transport: inProcess{mustSpec(t)}})
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	return dc
}

func toJSON(t *testing.T, v interface{}) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

// TestSchemas checks attributes of the definitions Schemas returns, which are
// also the definitions of the v2 document.
func TestSchemas(t *testing.T) {
	defs := mustSpec(t).Schemas()
	const (
		deployment = "io.k8s.api.apps.v1.Deployment"
		depSpec    = "io.k8s.api.apps.v1.DeploymentSpec"
		strategy   = "io.k8s.api.apps.v1.DeploymentStrategy"
		podSpec    = "io.k8s.api.core.v1.PodSpec"
		container  = "io.k8s.api.core.v1.Container"
		objectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
	)
	tests := []struct {
		name       string
		definition string
		property   string // "" for the definition itself
		attribute  string // "$ref", "type", "format", "description", "required", "default" or an extension
		want       string // JSON
	}{
		{"deployment spec", deployment, "spec", "$ref", `"#/definitions/io.k8s.api.apps.v1.DeploymentSpec"`},
		{"deployment gvk", deployment, "", "x-kubernetes-group-version-kind", `[{"group":"apps","kind":"Deployment","version":"v1"}]`},
		{"list gvk", "io.k8s.api.apps.v1.DeploymentList", "", "x-kubernetes-group-version-kind", `[{"group":"apps","kind":"DeploymentList","version":"v1"}]`},
		{"strategy ref", depSpec, "strategy", "$ref", `"#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"`},
		{"strategy field doc", depSpec, "strategy", "description", toJSON(t, appsv1.DeploymentSpec{}.SwaggerDoc()["strategy"])},
		{"strategy patch", depSpec, "strategy", "x-kubernetes-patch-strategy", `"retainKeys"`},
		{"struct default", depSpec, "strategy", "default", `{}`},
		{"strategy type doc", strategy, "", "description", toJSON(t, appsv1.DeploymentStrategy{}.SwaggerDoc()[""])},
		{"containers merge key", podSpec, "containers", "x-kubernetes-patch-merge-key", `"name"`},
		{"containers patch", podSpec, "containers", "x-kubernetes-patch-strategy", `"merge"`},
		{"containers list type", podSpec, "containers", "x-kubernetes-list-type", `"map"`},
		{"containers keys", podSpec, "containers", "x-kubernetes-list-map-keys", `["name"]`},
		{"container ports keys", container, "ports", "x-kubernetes-list-map-keys", `["containerPort","protocol"]`},
		{"container required", container, "", "required", `["name"]`},
		{"node selector atomic", podSpec, "nodeSelector", "x-kubernetes-map-type", `"atomic"`},
		{"node selector values", podSpec, "nodeSelector", "additionalProperties", `{"default":"","type":"string"}`},
		{"finalizers set", objectMeta, "finalizers", "x-kubernetes-list-type", `"set"`},
		{"timestamp ref", objectMeta, "creationTimestamp", "$ref", `"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Time"`},
		{"time type", "io.k8s.apimachinery.pkg.apis.meta.v1.Time", "", "type", `"string"`},
		{"time format", "io.k8s.apimachinery.pkg.apis.meta.v1.Time", "", "format", `"date-time"`},
		{"quantity type", "io.k8s.apimachinery.pkg.api.resource.Quantity", "", "type", `"string"`},
		{"int-or-string format", "io.k8s.apimachinery.pkg.util.intstr.IntOrString", "", "format", `"int-or-string"`},
		{"raw extension", "io.k8s.apimachinery.pkg.runtime.RawExtension", "", "type", `"object"`},
		{"bytes", "io.k8s.api.core.v1.Secret", "data", "additionalProperties", `{"format":"byte","type":"string"}`},
		{"int32", "io.k8s.api.apps.v1.DeploymentSpec", "replicas", "format", `"int32"`},
		{"atomic struct", "io.k8s.api.core.v1.LocalObjectReference", "", "x-kubernetes-map-type", `"atomic"`},
		{"meta kind in core", "io.k8s.apimachinery.pkg.apis.meta.v1.Status", "", "x-kubernetes-group-version-kind", `[{"group":"","kind":"Status","version":"v1"}]`},
		{"scale gvk", "io.k8s.api.autoscaling.v1.Scale", "", "x-kubernetes-group-version-kind", `[{"group":"autoscaling","kind":"Scale","version":"v1"}]`},
		{"resources map", "io.k8s.api.core.v1.ResourceRequirements", "limits", "additionalProperties", `{"$ref":"#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := defs[tt.definition]
			if s == nil {
				t.Fatalf("definition %s missing", tt.definition)
			}
			if tt.property != "" {
				p, ok := s.Properties[tt.property]
				if !ok {
					t.Fatalf("%s has no property %q", tt.definition, tt.property)
				}
				s = &p
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(toJSON(t, s)), &m); err != nil {
				t.Fatal(err)
			}
			got := string(m[tt.attribute])
			if !sameJSON(got, tt.want) {
				t.Errorf("%s.%s %s: got %s, want %s", tt.definition, tt.property, tt.attribute, got, tt.want)
			}
		})
	}
}

// TestDeleteOptionsKinds checks that the meta types shared by all groups
// name every served group-version, as clients look them up by kind.
func TestDeleteOptionsKinds(t *testing.T) {
	defs := mustSpec(t).Schemas()
	var gvks []map[string]string
	if err := defs["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"].Extensions.GetObject(extGVK, &gvks); err != nil {
		t.Fatalf("DeleteOptions %s: %v", extGVK, err)
	}
	for _, want := range []schema.GroupVersion{{Version: "v1"}, {Group: "apps", Version: "v1"}, {Group: "autoscaling", Version: "v2"}, {Group: "rbac.authorization.k8s.io", Version: "v1"}} {
		found := false
		for _, g := range gvks {
			found = found || (g["group"] == want.Group && g["version"] == want.Version && g["kind"] == "DeleteOptions")
		}
		if !found {
			t.Errorf("DeleteOptions kinds: got %v, want one for %s", gvks, want)
		}
	}
}

// TestOperations checks the v2 paths for upstream's operation IDs, actions
// and kinds.
func TestOperations(t *testing.T) {
	data, err := mustSpec(t).v2.plain()
	if err != nil {
		t.Fatal(err)
	}
	var doc spec.Swagger
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decode v2: %v", err)
	}
	tests := []struct {
		path, method, id, action string
		gvk                      string // JSON, "" for none
	}{
		{"/apis/apps/v1/namespaces/{namespace}/deployments", "get", "listAppsV1NamespacedDeployment", "list", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/namespaces/{namespace}/deployments", "post", "createAppsV1NamespacedDeployment", "post", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/namespaces/{namespace}/deployments", "delete", "deleteAppsV1CollectionNamespacedDeployment", "deletecollection", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patch", "patchAppsV1NamespacedDeployment", "patch", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "put", "replaceAppsV1NamespacedDeploymentScale", "put", `{"group":"autoscaling","kind":"Scale","version":"v1"}`},
		{"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status", "get", "readAppsV1NamespacedDeploymentStatus", "get", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/deployments", "get", "listAppsV1DeploymentForAllNamespaces", "list", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/watch/namespaces/{namespace}/deployments", "get", "watchAppsV1NamespacedDeploymentList", "watchlist", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/apis/apps/v1/watch/namespaces/{namespace}/deployments/{name}", "get", "watchAppsV1NamespacedDeployment", "watch", `{"group":"apps","kind":"Deployment","version":"v1"}`},
		{"/api/v1/namespaces/{namespace}/pods/{name}/eviction", "post", "createCoreV1NamespacedPodEviction", "post", `{"group":"policy","kind":"Eviction","version":"v1"}`},
		{"/api/v1/namespaces/{namespace}/pods/{name}/binding", "post", "createCoreV1NamespacedPodBinding", "post", `{"group":"","kind":"Binding","version":"v1"}`},
		{"/api/v1/namespaces/{namespace}/bindings", "post", "createCoreV1NamespacedBinding", "post", `{"group":"","kind":"Binding","version":"v1"}`},
		{"/api/v1/namespaces/{name}/finalize", "put", "replaceCoreV1NamespaceFinalize", "put", `{"group":"","kind":"Namespace","version":"v1"}`},
		{"/api/v1/nodes", "get", "listCoreV1Node", "list", `{"group":"","kind":"Node","version":"v1"}`},
		{"/apis/rbac.authorization.k8s.io/v1/clusterroles", "delete", "deleteRbacAuthorizationV1CollectionClusterRole", "deletecollection", `{"group":"rbac.authorization.k8s.io","kind":"ClusterRole","version":"v1"}`},
		{"/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/{name}", "get", "readAutoscalingV1NamespacedHorizontalPodAutoscaler", "get", `{"group":"autoscaling","kind":"HorizontalPodAutoscaler","version":"v1"}`},
		{"/apis/apps/v1/", "get", "getAppsV1APIResources", "", ""},
		{"/apis/apps/", "get", "getAppsAPIGroup", "", ""},
		{"/api/", "get", "getCoreAPIVersions", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			item, ok := doc.Paths.Paths[tt.path]
			if !ok {
				t.Fatalf("path %s missing", tt.path)
			}
			op := map[string]*spec.Operation{"get": item.Get, "post": item.Post, "put": item.Put, "patch": item.Patch, "delete": item.Delete}[tt.method]
			if op == nil {
				t.Fatalf("%s %s: no operation", tt.method, tt.path)
			}
			if op.ID != tt.id {
				t.Errorf("%s %s operationId: got %s, want %s", tt.method, tt.path, op.ID, tt.id)
			}
			if got, _ := op.Extensions.GetString(extAction); got != tt.action {
				t.Errorf("%s %s action: got %q, want %q", tt.method, tt.path, got, tt.action)
			}
			got := ""
			if v, ok := op.Extensions[extGVK]; ok {
				got = toJSON(t, v)
			}
			if got != tt.gvk {
				t.Errorf("%s %s kind: got %s, want %s", tt.method, tt.path, got, tt.gvk)
			}
		})
	}
	if _, ok := doc.Paths.Paths["/api/v1/namespaces"]; !ok {
		t.Errorf("path /api/v1/namespaces missing")
	} else if doc.Paths.Paths["/api/v1/namespaces"].Delete != nil {
		t.Errorf("namespaces: got a deletecollection operation, want none (the resource has no such verb)")
	}
}

// TestFieldValidationSupport runs cli-runtime's own check, the one kubectl
// makes before it sends fieldValidation: the v3 document of the
// group-version must have a PATCH operation of the kind with that query
// parameter.
func TestFieldValidationSupport(t *testing.T) {
	client := discoveryClient(t).OpenAPIV3()
	// The CRD finder is consulted only for group-versions missing from the
	// documents; a nil dynamic client makes that a test failure.
	verifier := resource.NewQueryParamVerifierV3(nil, client, resource.QueryParamFieldValidation)
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Version: "v1", Kind: "Pod"},
		{Version: "v1", Kind: "Namespace"},
		{Group: "batch", Version: "v1", Kind: "CronJob"},
		{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"},
		{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
		{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"},
	} {
		if err := verifier.HasSupport(gvk); err != nil {
			t.Errorf("fieldValidation support for %s: got %v, want none", gvk, err)
		}
	}
}

// TestV3Documents parses every v3 document the way client-go does and checks
// that each is self-contained: every $ref resolves inside it, which kubectl
// explain relies on.
func TestV3Documents(t *testing.T) {
	client := discoveryClient(t).OpenAPIV3()
	paths, err := client.Paths()
	if err != nil {
		t.Fatalf("openapi v3 paths: %v", err)
	}
	for _, want := range []string{"api", "apis", "api/v1", "apis/apps", "apis/apps/v1", "apis/autoscaling/v2", "apis/rbac.authorization.k8s.io/v1"} {
		if _, ok := paths[want]; !ok {
			t.Errorf("v3 discovery: no entry %q", want)
		}
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		data, err := paths[key].Schema("application/json")
		if err != nil {
			t.Errorf("%s: fetch: %v", key, err)
			continue
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Errorf("%s: spec3 decode: %v", key, err)
			continue
		}
		if doc.Version != "3.0.0" {
			t.Errorf("%s: openapi version: got %q, want 3.0.0", key, doc.Version)
		}
		var raw interface{}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		schemas := map[string]bool{}
		if doc.Components != nil {
			for name := range doc.Components.Schemas {
				schemas[name] = true
			}
		}
		walkRefs(raw, func(ref string) {
			name, ok := strings.CutPrefix(ref, "#/components/schemas/")
			if !ok || !schemas[name] {
				t.Errorf("%s: $ref %q does not resolve", key, ref)
			}
		})
	}

	root := openapi3.NewRoot(client)
	doc, err := root.GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
	if err != nil {
		t.Fatalf("openapi3 GVSpec apps/v1: %v", err)
	}
	item := doc.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
	if item == nil || item.Patch == nil {
		t.Fatalf("apps/v1: no PATCH on deployments/{name}")
	}
	var params []string
	for _, p := range item.Patch.Parameters {
		params = append(params, p.In+":"+p.Name)
	}
	if !contains(params, "query:fieldValidation") {
		t.Errorf("deployments PATCH parameters: got %v, want query:fieldValidation among them", params)
	}
	var media []string
	for m := range item.Patch.RequestBody.Content {
		media = append(media, m)
	}
	sort.Strings(media)
	want := []string{"application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}
	if !reflect.DeepEqual(media, want) {
		t.Errorf("deployments PATCH media types: got %v, want %v", media, want)
	}
	depSpec := doc.Components.Schemas["io.k8s.api.apps.v1.DeploymentSpec"]
	strategy := depSpec.Properties["strategy"]
	if len(strategy.AllOf) != 1 || strategy.AllOf[0].Ref.String() != "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy" {
		t.Errorf("v3 DeploymentSpec.strategy: got %s, want the reference wrapped in allOf", toJSON(t, strategy))
	}
	ios := doc.Components.Schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	if got := toJSON(t, ios.OneOf); got != `[{"type":"integer"},{"type":"string"}]` {
		t.Errorf("v3 IntOrString oneOf: got %s, want integer or string", got)
	}
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b string) bool {
	var va, vb interface{}
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func walkRefs(v interface{}, visit func(string)) {
	switch v := v.(type) {
	case map[string]interface{}:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				visit(s)
			}
			walkRefs(e, visit)
		}
	case []interface{}:
		for _, e := range v {
			walkRefs(e, visit)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestV2Protobuf fetches v2 as client-go does (protobuf) and feeds it to
// kube-openapi's and kubectl's model parsers.
func TestV2Protobuf(t *testing.T) {
	doc, err := discoveryClient(t).OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	models, err := proto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("NewOpenAPIData: %v", err)
	}
	if models.LookupModel("io.k8s.api.core.v1.Pod") == nil {
		t.Errorf("model io.k8s.api.core.v1.Pod: got none, want it")
	}
	resources, err := kubectlopenapi.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("kubectl NewOpenAPIData: %v", err)
	}
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "Pod"},
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
	} {
		model := resources.LookupResource(gvk)
		if model == nil {
			t.Errorf("kubectl LookupResource(%s): got none, want a model", gvk)
			continue
		}
		kind, ok := model.(*proto.Kind)
		if !ok {
			t.Errorf("kubectl LookupResource(%s): got %T, want *proto.Kind", gvk, model)
			continue
		}
		if _, ok := kind.Fields["metadata"]; !ok {
			t.Errorf("kubectl LookupResource(%s): no metadata field", gvk)
		}
	}
	// Patch metadata as kubectl apply reads it.
	podSpec := models.LookupModel("io.k8s.api.core.v1.PodSpec").(*proto.Kind)
	containers := podSpec.Fields["containers"]
	if got := containers.GetExtensions()[extPatchMergeKey]; got != "name" {
		t.Errorf("v2 protobuf PodSpec.containers merge key: got %v, want name", got)
	}
}

// TestApplyPatchMetadata builds a strategic merge patch the way kubectl
// apply does with OpenAPI v3: the kind's schema is found by its
// x-kubernetes-group-version-kind and the merge keys are read along the
// path, through allOf-wrapped references.
func TestApplyPatchMetadata(t *testing.T) {
	doc, err := openapi3.NewRoot(discoveryClient(t).OpenAPIV3()).GVSpec(appsv1.SchemeGroupVersion)
	if err != nil {
		t.Fatalf("GVSpec apps/v1: %v", err)
	}
	var meta *strategicpatch.PatchMetaFromOpenAPIV3
	for _, s := range doc.Components.Schemas {
		var gvks []map[string]string
		if s.Extensions.GetObject(extGVK, &gvks) == nil && len(gvks) == 1 && gvks[0]["kind"] == "Deployment" && gvks[0]["group"] == "apps" {
			meta = &strategicpatch.PatchMetaFromOpenAPIV3{Schema: s, SchemaList: doc.Components.Schemas}
		}
	}
	if meta == nil {
		t.Fatalf("apps/v1 document: no schema with kind apps/v1 Deployment")
	}
	deployment := func(image string) []byte {
		return []byte(`{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"a","image":"` + image + `"},{"name":"b","image":"b"}]}}}}`)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(deployment("a:1"), deployment("a:2"), deployment("a:1"), *meta, false)
	if err != nil {
		t.Fatalf("CreateThreeWayMergePatch: %v", err)
	}
	want := `{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"image":"a:2","name":"a"}]}}}}`
	if !sameJSON(string(patch), want) {
		t.Errorf("apply patch: got %s, want %s", patch, want)
	}
}

// TestExplain renders explain output with the package kubectl explain uses,
// from the documents as the server sends them.
func TestExplain(t *testing.T) {
	client := discoveryClient(t).OpenAPIV3()
	strategyDoc := appsv1.DeploymentSpec{}.SwaggerDoc()["strategy"]
	tests := []struct {
		name      string
		gvr       schema.GroupVersionResource
		fields    []string
		recursive bool
		want      []string
	}{
		{
			name:   "deployment.spec.strategy",
			gvr:    appsv1.SchemeGroupVersion.WithResource("deployments"),
			fields: []string{"spec", "strategy"},
			want: []string{
				"GROUP:      apps\n", "KIND:       Deployment\n", "VERSION:    v1\n",
				"FIELD: strategy <DeploymentStrategy>\n",
				"DESCRIPTION:\n", strings.Fields(strategyDoc)[0],
				"FIELDS:\n", "rollingUpdate\t<RollingUpdateDeployment>", "type\t<string>",
			},
		},
		{
			name:   "pod.spec.containers.name",
			gvr:    corev1.SchemeGroupVersion.WithResource("pods"),
			fields: []string{"spec", "containers"},
			want:   []string{"KIND:       Pod\n", "FIELD: containers <[]Container>", "name\t<string> -required-", "resources\t<ResourceRequirements>"},
		},
		{
			name:      "pods recursive",
			gvr:       corev1.SchemeGroupVersion.WithResource("pods"),
			recursive: true,
			want:      []string{"KIND:       Pod\n", "spec\t<PodSpec>", "    containers\t<[]Container> -required-", "creationTimestamp\t<string>"},
		},
		{
			name:   "rolling update int-or-string",
			gvr:    appsv1.SchemeGroupVersion.WithResource("deployments"),
			fields: []string{"spec", "strategy", "rollingUpdate"},
			want:   []string{"maxSurge\t<IntOrString>"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := explainv2.PrintModelDescription(tt.fields, &out, client, tt.gvr, tt.recursive, 0, "plaintext"); err != nil {
				t.Fatalf("explain: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("explain output: got\n%s\nwant it to contain %q", out.String(), w)
				}
			}
		})
	}
}

// TestTypeConverter builds server-side apply's type converter from the
// definitions and converts objects with it; list keys matter here (two ports
// that differ only in protocol are distinct entries).
func TestTypeConverter(t *testing.T) {
	tc, err := managedfields.NewTypeConverter(mustSpec(t).Schemas(), false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Finalizers: []string{"a", "b"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "dns", Image: "dns",
			Ports: []corev1.ContainerPort{{ContainerPort: 53, Protocol: "UDP"}, {ContainerPort: 53, Protocol: "TCP"}},
		}}},
	}
	replicas := int32(2)
	maxSurge := intstr.FromString("25%")
	deployment := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &maxSurge}},
			Template: corev1.PodTemplateSpec{Spec: pod.Spec},
		},
	}
	for _, obj := range []runtime.Object{pod, deployment,
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Data: map[string]string{"k": "v"}},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 53, Protocol: "UDP"}, {Port: 53, Protocol: "TCP"}}}},
	} {
		if _, err := tc.ObjectToTyped(obj); err != nil {
			t.Errorf("ObjectToTyped(%s): got %v, want no error", obj.GetObjectKind().GroupVersionKind(), err)
		}
	}
}

// TestServeHTTP checks the HTTP contract: negotiation, hashes, caching and
// errors.
func TestServeHTTP(t *testing.T) {
	s := mustSpec(t)
	apps := s.v3["apis/apps/v1"]
	tests := []struct {
		name        string
		method      string
		target      string
		header      map[string]string
		wantStatus  int
		wantHeaders map[string]string
		wantJSON    bool
	}{
		{name: "v2 json", target: "/openapi/v2", header: map[string]string{"Accept": "application/json"},
			wantStatus: 200, wantHeaders: map[string]string{"Content-Type": "application/json", "Etag": `"` + s.v2.etag + `"`}, wantJSON: true},
		{name: "v2 default", target: "/openapi/v2",
			wantStatus: 200, wantHeaders: map[string]string{"Content-Type": "application/json"}, wantJSON: true},
		{name: "v2 protobuf", target: "/openapi/v2", header: map[string]string{"Accept": mediaV2ProtoLegacy + ", application/json"},
			wantStatus: 200, wantHeaders: map[string]string{"Content-Type": mediaV2Proto}},
		{name: "v2 prefers higher quality", target: "/openapi/v2", header: map[string]string{"Accept": "application/json;q=0.5, " + mediaV2Proto},
			wantStatus: 200, wantHeaders: map[string]string{"Content-Type": mediaV2Proto}},
		{name: "v2 unacceptable", target: "/openapi/v2", header: map[string]string{"Accept": "text/html"}, wantStatus: 406},
		{name: "v3 discovery", target: "/openapi/v3", wantStatus: 200,
			wantHeaders: map[string]string{"Content-Type": "application/json"}, wantJSON: true},
		{name: "v3 document", target: "/openapi/v3/apis/apps/v1", wantStatus: 200,
			wantHeaders: map[string]string{"Content-Type": "application/json", "Etag": `"` + apps.etag + `"`, "Cache-Control": ""}, wantJSON: true},
		{name: "v3 current hash", target: v3URL("apis/apps/v1", apps.etag), wantStatus: 200,
			wantHeaders: map[string]string{"Cache-Control": "public, immutable, max-age=31536000"}, wantJSON: true},
		{name: "v3 old hash", target: "/openapi/v3/apis/apps/v1?hash=0123", wantStatus: 301,
			wantHeaders: map[string]string{"Location": v3URL("apis/apps/v1", apps.etag)}},
		{name: "v3 not modified", target: "/openapi/v3/apis/apps/v1", header: map[string]string{"If-None-Match": `"` + apps.etag + `"`},
			wantStatus: 304},
		{name: "v3 protobuf", target: "/openapi/v3/api/v1", header: map[string]string{"Accept": mediaV3Proto},
			wantStatus: 200, wantHeaders: map[string]string{"Content-Type": mediaV3Proto}},
		{name: "v3 unknown group-version", target: "/openapi/v3/apis/example.com/v1", wantStatus: 404},
		{name: "v3 trailing slash", target: "/openapi/v3/", wantStatus: 404},
		{name: "unknown", target: "/openapi/v4", wantStatus: 404},
		{name: "post", method: "POST", target: "/openapi/v2", wantStatus: 405, wantHeaders: map[string]string{"Allow": "GET, HEAD"}},
		{name: "gzip", target: "/openapi/v3", header: map[string]string{"Accept-Encoding": "gzip"},
			wantStatus: 200, wantHeaders: map[string]string{"Content-Encoding": "gzip"}, wantJSON: true},
		{name: "gzip refused", target: "/openapi/v3", header: map[string]string{"Accept-Encoding": "gzip;q=0, identity"},
			wantStatus: 200, wantHeaders: map[string]string{"Content-Encoding": ""}, wantJSON: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tt.target, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s: got status %d, want %d (body %.200s)", method, tt.target, rec.Code, tt.wantStatus, rec.Body.String())
			}
			for k, want := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s %s header %s: got %q, want %q", method, tt.target, k, got, want)
				}
			}
			if !tt.wantJSON {
				return
			}
			body := rec.Body.Bytes()
			if rec.Header().Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip body: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gzip body: %v", err)
				}
			}
			if !json.Valid(body) {
				t.Errorf("%s %s: body is not JSON: %.200s", method, tt.target, body)
			}
		})
	}
}

// TestUnknownKind checks that a resource the scheme cannot resolve fails New
// with an error naming it.
func TestUnknownKind(t *testing.T) {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	_, err := New([]registry.Resource{{Group: "example.com", Versions: []string{"v1"}, Name: "widgets", Kind: "Widget", Verbs: []string{"get"}}}, s)
	if err == nil || !strings.Contains(err.Error(), "widgets.example.com") {
		t.Errorf("New with an unregistered kind: got %v, want an error naming widgets.example.com", err)
	}
}

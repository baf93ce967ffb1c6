package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/openapiconv"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// Spec holds the generated documents, built once and served from memory.
type Spec struct {
	v2        blob            // the OpenAPI v2 document, JSON
	v3        map[string]blob // OpenAPI v3 documents by discovery key ("apis/apps/v1")
	discovery blob            // the /openapi/v3 index

	// The protobuf form of v2 is made on first request: clients that
	// want it are few, and converting takes time and memory.
	v2ProtoOnce sync.Once
	v2Proto     blob
	v2ProtoErr  error
}

// blob is one serialized document, kept gzip-compressed: the documents are
// JSON that shrinks about tenfold, nearly every client accepts gzip, and the
// server's memory budget is small.
type blob struct {
	gz   []byte
	size int    // length of the plain document
	etag string // of the plain document: upper-case hex SHA-512, as upstream
}

// newBlob compresses data; etag is the entity tag to serve it under, or ""
// for the document's own hash.
func newBlob(data []byte, etag string) (blob, error) {
	if etag == "" {
		etag = fmt.Sprintf("%X", sha512.Sum512(data))
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return blob{}, err
	}
	if err := zw.Close(); err != nil {
		return blob{}, err
	}
	return blob{gz: bytes.Clone(buf.Bytes()), size: len(data), etag: etag}, nil
}

// plain returns the uncompressed document.
func (b blob) plain() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b.gz))
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(make([]byte, 0, b.size))
	if _, err := io.Copy(out, zr); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// New builds the documents for the given resources; scheme resolves a GroupVersionKind to its Go type
// (use scheme.New(gvk)); the caller passes a scheme with all k8s.io/api types registered
// (k8s.io/client-go/kubernetes/scheme's AddToScheme into runtime.NewScheme()).
func New(resources []registry.Resource, scheme *runtime.Scheme) (*Spec, error) {
	gvs, served := groupVersions(resources)
	defs := newDefinitions(kindsByType(scheme, served), listSemantics(scheme))
	b := &pathBuilder{defs: defs, scheme: scheme, docs: map[string]*document{}}
	for i := range resources {
		for _, v := range resources[i].Versions {
			if err := b.resource(&resources[i], v); err != nil {
				return nil, fmt.Errorf("openapi: %w", err)
			}
		}
	}
	b.discoveryPaths(gvs)
	if defs.err != nil {
		return nil, fmt.Errorf("openapi: %w", defs.err)
	}

	info := &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: apiVersion()}}
	s := &Spec{v3: map[string]blob{}}

	all := spec.Paths{Paths: map[string]spec.PathItem{}}
	for _, key := range b.order {
		for p, item := range b.docs[key].paths {
			all.Paths[p] = item
		}
	}
	v2, err := json.Marshal(swagger(info, &all, defs, defs.closure(pathRefs(&all))))
	if err != nil {
		return nil, fmt.Errorf("openapi: marshal v2: %w", err)
	}
	if s.v2, err = newBlob(v2, ""); err != nil {
		return nil, fmt.Errorf("openapi: compress v2: %w", err)
	}

	index := discoveryIndex{Paths: map[string]discoveryEntry{}}
	for _, key := range b.order {
		data, err := json.Marshal(v3Document(info, b.docs[key], defs))
		if err != nil {
			return nil, fmt.Errorf("openapi: marshal v3 %s: %w", key, err)
		}
		doc, err := newBlob(data, "")
		if err != nil {
			return nil, fmt.Errorf("openapi: compress v3 %s: %w", key, err)
		}
		s.v3[key] = doc
		index.Paths[key] = discoveryEntry{ServerRelativeURL: v3URL(key, doc.etag)}
	}
	data, err := json.Marshal(index)
	if err != nil {
		return nil, fmt.Errorf("openapi: marshal v3 discovery: %w", err)
	}
	if s.discovery, err = newBlob(data, ""); err != nil {
		return nil, fmt.Errorf("openapi: compress v3 discovery: %w", err)
	}
	return s, nil
}

// groupVersions returns the group-versions that have resources, in the order
// given, and the set of all served group-versions: those plus the ones only
// reached through subresources (autoscaling/v1 Scale, policy/v1 Eviction)
// and the one the meta types (Status, APIResourceList) are registered in.
func groupVersions(resources []registry.Resource) ([]schema.GroupVersion, map[schema.GroupVersion]bool) {
	var gvs []schema.GroupVersion
	served := map[schema.GroupVersion]bool{}
	for i := range resources {
		r := &resources[i]
		for _, v := range r.Versions {
			gv := schema.GroupVersion{Group: r.Group, Version: v}
			if !served[gv] {
				served[gv] = true
				gvs = append(gvs, gv)
			}
		}
		for _, sub := range r.Subresources {
			if sub.Version != "" {
				served[schema.GroupVersion{Group: sub.Group, Version: sub.Version}] = true
			}
		}
	}
	served[schema.GroupVersion{Version: "v1"}] = true
	return gvs, served
}

// v3Document converts one document's paths, with the definitions they need,
// to OpenAPI v3 as upstream serves it: references with siblings wrapped in
// allOf, and values that may be a number or a string as a oneOf.
func v3Document(info *spec.Info, d *document, defs *definitions) *spec3.OpenAPI {
	paths := &spec.Paths{Paths: d.paths}
	doc := openapiconv.ConvertV2ToV3(swagger(info, paths, defs, defs.closure(pathRefs(paths))))
	for name, v3 := range defs.v3 {
		if _, ok := doc.Components.Schemas[name]; ok {
			doc.Components.Schemas[name] = v3
		}
	}
	doc.Components.SecuritySchemes = spec3.SecuritySchemes{"BearerToken": &spec3.SecurityScheme{
		SecuritySchemeProps: spec3.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header",
			Description: "Bearer Token authentication",
		},
	}}
	doc.SecurityRequirement = []map[string][]string{{"BearerToken": {}}}
	return doc
}

// discoveryIndex is the body of GET /openapi/v3.
type discoveryIndex struct {
	Paths map[string]discoveryEntry `json:"paths"`
}

type discoveryEntry struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

// v3URL is the address of a v3 document including its content hash, which
// lets clients cache it for good.
func v3URL(key, etag string) string {
	return (&url.URL{Path: "/openapi/v3/" + key, RawQuery: url.Values{"hash": {etag}}.Encode()}).String()
}

// swagger assembles a v2 document of the given paths and definitions.
func swagger(info *spec.Info, paths *spec.Paths, defs *definitions, names []string) *spec.Swagger {
	definitions := make(spec.Definitions, len(names))
	for _, name := range names {
		definitions[name] = *defs.schemas[name]
	}
	return &spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        info,
		Paths:       paths,
		Definitions: definitions,
		SecurityDefinitions: spec.SecurityDefinitions{"BearerToken": &spec.SecurityScheme{
			SecuritySchemeProps: spec.SecuritySchemeProps{
				Type: "apiKey", Name: "authorization", In: "header",
				Description: "Bearer Token authentication",
			},
		}},
		Security: []map[string][]string{{"BearerToken": {}}},
	}}
}

// pathRefs returns the definitions the operations of paths refer to.
func pathRefs(paths *spec.Paths) []string {
	var out []string
	visit := func(name string) { out = append(out, name) }
	params := func(ps []spec.Parameter) {
		for i := range ps {
			refs(ps[i].Schema, visit)
		}
	}
	for _, item := range paths.Paths {
		params(item.Parameters)
		for _, op := range []*spec.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op == nil {
				continue
			}
			params(op.Parameters)
			if op.Responses == nil {
				continue
			}
			for _, resp := range op.Responses.StatusCodeResponses {
				refs(resp.Schema, visit)
			}
		}
	}
	return out
}

// kindsByType inverts the scheme: for each Go type, the kinds it is served
// as in the served group-versions, sorted as upstream lists them.
func kindsByType(scheme *runtime.Scheme, served map[schema.GroupVersion]bool) map[reflect.Type][]schema.GroupVersionKind {
	out := map[reflect.Type][]schema.GroupVersionKind{}
	for gvk, t := range scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || !served[gvk.GroupVersion()] {
			continue
		}
		out[t] = append(out[t], gvk)
	}
	for _, gvks := range out {
		sort.Slice(gvks, func(i, j int) bool {
			a, b := gvks[i], gvks[j]
			if a.Group != b.Group {
				return a.Group < b.Group
			}
			if a.Version != b.Version {
				return a.Version < b.Version
			}
			return a.Kind < b.Kind
		})
	}
	return out
}

// apiVersion is the Kubernetes release whose API the k8s.io/api module in
// the binary describes: module v0.X.Y is Kubernetes v1.X.Y.
func apiVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "k8s.io/api" && strings.HasPrefix(dep.Version, "v0.") {
				return "v1." + strings.TrimPrefix(dep.Version, "v0.")
			}
		}
	}
	return "unversioned"
}

// Schemas returns the definitions keyed by name (io.k8s.api.apps.v1.Deployment), for other users.
// They are in OpenAPI v2 form (references point into #/definitions/) and
// decoded afresh from the served document on each call rather than kept, so
// the caller owns the result and should call it once.
func (s *Spec) Schemas() map[string]*spec.Schema {
	var doc struct {
		Definitions map[string]*spec.Schema `json:"definitions"`
	}
	data, err := s.v2.plain()
	if err == nil {
		err = json.Unmarshal(data, &doc)
	}
	if err != nil {
		// New compressed and marshalled these very bytes.
		panic(fmt.Sprintf("openapi: decode own v2 document: %v", err))
	}
	return doc.Definitions
}

// v2Protobuf returns the v2 document in the gnostic protobuf form client-go
// asks for, building it on first use.
func (s *Spec) v2Protobuf() (blob, error) {
	s.v2ProtoOnce.Do(func() {
		plain, err := s.v2.plain()
		if err != nil {
			s.v2ProtoErr = fmt.Errorf("openapi: decompress v2 document: %w", err)
			return
		}
		doc, err := openapi_v2.ParseDocument(plain)
		if err != nil {
			s.v2ProtoErr = fmt.Errorf("openapi: parse v2 document: %w", err)
			return
		}
		data, err := proto.Marshal(doc)
		if err != nil {
			s.v2ProtoErr = fmt.Errorf("openapi: marshal v2 protobuf: %w", err)
			return
		}
		// Same tag as the JSON form, as upstream does: the content is the
		// same document, and Vary: Accept separates the two in caches.
		s.v2Proto, s.v2ProtoErr = newBlob(data, s.v2.etag)
	})
	return s.v2Proto, s.v2ProtoErr
}

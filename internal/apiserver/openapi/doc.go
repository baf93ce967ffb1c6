// Package openapi owns the OpenAPI documents of the API server: the v2
// document at /openapi/v2 and the v3 index at /openapi/v3 with one document
// per group-version (/openapi/v3/apis/apps/v1) and per discovery root
// (/openapi/v3/api, /openapi/v3/apis, /openapi/v3/apis/<group>).
//
// Clients depend on these documents, so they follow upstream's shape: kubectl
// explain renders the v3 schemas; kubectl and cli-runtime look for a
// fieldValidation query parameter on the PATCH operation of a kind before
// they trust the server to validate fields; kubectl apply reads the patch
// strategy and merge keys; client-go fetches v2 as gnostic protobuf; and
// server-side apply builds its type converter from Schemas().
//
// # Where the content comes from
//
// Schemas are made by reflection over the Go types the scheme maps each
// served kind to. Names follow upstream (io.k8s.api.apps.v1.Deployment);
// descriptions come from each type's SwaggerDoc; JSON tags give property
// names, requiredness (not omitempty and not a pointer) and defaults
// ({} for embedded structs, the zero value for scalars that are always
// written); patchStrategy and patchMergeKey tags become the
// x-kubernetes-patch-* extensions. List and map semantics
// (x-kubernetes-list-type, -list-map-keys, -map-type) live only in comments
// of k8s.io/api, so they are read from the structured-merge-diff schema
// client-go ships for apply configurations, which is generated from
// upstream's own OpenAPI. Types with a custom wire form (metav1.Time,
// resource.Quantity, intstr.IntOrString) describe themselves through their
// OpenAPISchemaType methods; in v3 the values that may be a number or a
// string become a oneOf, as upstream has them.
//
// Paths are the upstream set for each resource and version in the registry:
// list, create and deletecollection on the collection; read, replace, patch
// and delete on the item; watch paths; the list across namespaces; and the
// registry's subresources. Operation IDs, tags, x-kubernetes-action and the
// operation's x-kubernetes-group-version-kind match upstream's.
//
// # Lifecycle
//
// New does all the work once, at start: it builds the documents, serializes
// them, keeps only the gzip-compressed bytes and drops everything else. The
// documents never change afterwards, so a Spec is safe for concurrent use
// and needs no locking beyond the one-time protobuf conversion of v2, which
// happens on the first request that asks for it. ServeHTTP sends the
// compressed bytes as they are to clients that accept gzip (it sets
// Content-Encoding itself, so it must not sit behind another compressing
// handler that ignores that header) and decompresses for the rest.
//
// v3 documents are addressed by their content hash (the ETag, an upper-case
// hex SHA-512 as upstream uses); a request naming the current hash may be
// cached for good, one naming an old hash is redirected to the current one.
package openapi

// Package validation owns the semantic checks the API server runs before it
// stores an object: the Kubernetes equivalent of
// pkg/apis/*/validation/validation.go plus the immutability rules that live in
// upstream's pkg/registry/*/strategy.go. It answers one question, "would a
// real cluster accept this write?", as a field.ErrorList whose paths, types and
// messages match upstream, so the server can wrap it with
// apierrors.NewInvalid and return the same 422 a kube-apiserver returns.
//
// The package is pure: every function takes typed k8s.io/api objects and
// returns errors, with no I/O, clock or shared state. It never mutates its
// input; where upstream validates a normalised copy (a Job's generated
// selector, a Service's clusterIPs synced from clusterIP) it builds that copy
// itself.
//
// # Contract with the caller
//
// The server must call these functions at the same point upstream's generic
// registry calls strategy.Validate / ValidateUpdate:
//
//   - after defaulting (the defaults package), because many fields upstream
//     relies on defaulting for are reported as "Required value" when missing
//     (imagePullPolicy, terminationMessagePolicy, dnsPolicy, restartPolicy,
//     service sessionAffinity, deployment strategy, ...);
//   - after the object's namespace has been set from the URL for namespaced
//     kinds and cleared for cluster-scoped kinds;
//   - on create, after metadata.uid and metadata.creationTimestamp have been
//     filled (a Job's generated selector is derived from its uid);
//   - on update, after an unconditional update has been given the stored
//     resourceVersion (upstream rejects an empty one: "must be specified for
//     an update").
//
// ValidateCreate, ValidateUpdate and ValidateStatusUpdate each also run the
// checks upstream's generic registry applies to every resource (metadata name
// is a valid path segment, namespace present or absent as the scope demands,
// metadata immutability), so callers need nothing else. Exact duplicate errors
// are removed, which upstream only does in the Status message.
//
// Objects of a type this package does not know get the generic metadata
// checks only.
package validation

// Package defaults applies the API defaulting of upstream Kubernetes to typed
// k8s.io/api objects, so that an object read back from Skiff after a write
// carries exactly the fields a real API server would have filled in. It is a
// shared leaf: the API server defaults every object it decodes, and the node
// agent defaults the static pods it reads from manifest files, as upstream's
// kubelet does, since those never pass through the API server.
//
// Upstream defaults an object every time it is decoded: when a request body is
// read and again when the stored bytes are read back. The defaults are the
// SetDefaults_* functions of kubernetes/kubernetes pkg/apis/<group>/<version>
// plus the "+default=" markers on k8s.io/api types, walked by the generated
// defaulters over every nested struct (a PodSpec inside a Deployment template is
// defaulted the same way as one inside a Pod, a ResourceList anywhere is rounded
// up to milli precision). Default reproduces that walk for every kind in the
// registry package, with the feature gates at their upstream defaults for the
// k8s.io/api version in go.mod.
//
// Skiff stores and serves v1 objects without an internal version, so the few
// normalizations upstream gets for free from the v1 -> internal -> v1 round
// trip are applied here as well, because a caller cannot tell them apart from
// defaulting: spec.serviceAccount mirrors spec.serviceAccountName, a Secret's
// stringData is merged into data, and the singular/plural pairs
// status.podIP/podIPs, status.hostIP/hostIPs and spec.podCIDR/podCIDRs agree.
//
// Contract:
//   - Default mutates its argument in place and never fails; objects of kinds it
//     does not know are left untouched.
//   - Default is idempotent: applying it to its own output changes nothing. The
//     API server may therefore call it on every decode, like upstream.
//   - Only the object itself is consulted. Defaults that need cluster state
//     (admission: service account token volumes, default tolerations, priority,
//     default storage class, LimitRanger; the Service IP allocator) belong to
//     other packages.
//   - autoscaling/v1 HorizontalPodAutoscalers get the v1 defaults only. The v2
//     defaults (such as the 80% CPU metric) appear upstream when the stored v2
//     object is decoded, so callers serving v1 from v2 storage must default the
//     v2 form too.
package defaults

package strategy

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// generationKinds are the kinds whose upstream strategy sets
// metadata.generation to 1 on create and bumps it when the desired state
// changes. Every other built-in kind leaves generation alone.
var generationKinds = map[schema.GroupKind]bool{
	{Group: "", Kind: "Pod"}:                                          true,
	{Group: "", Kind: "PodTemplate"}:                                  true,
	{Group: "", Kind: "ReplicationController"}:                        true,
	{Group: "apps", Kind: "DaemonSet"}:                                true,
	{Group: "apps", Kind: "Deployment"}:                               true,
	{Group: "apps", Kind: "ReplicaSet"}:                               true,
	{Group: "apps", Kind: "StatefulSet"}:                              true,
	{Group: "batch", Kind: "CronJob"}:                                 true,
	{Group: "batch", Kind: "Job"}:                                     true,
	{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:                true,
	{Group: "networking.k8s.io", Kind: "Ingress"}:                     true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:               true,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                    true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: true,
}

// HasGeneration reports whether upstream maintains metadata.generation for
// this kind: set to 1 on create and incremented when the spec (or what the
// kind's strategy compares) changes.
func HasGeneration(gk schema.GroupKind) bool {
	return generationKinds[gk]
}

// PrepareForCreate normalises a new object before validation, as upstream's
// strategies do: client-sent status is cleared for kinds with a status
// subresource (Node keeps it, because kubelets register with status), the
// status fields upstream initialises are set (Pod phase Pending and QoS
// class, Namespace phase Active, PersistentVolume and PersistentVolumeClaim
// phase Pending), generation is set to 1 for the kinds upstream tracks, and
// per-kind rules apply (Namespace "kubernetes" finalizer, Job selector,
// Service clusterIPs, DaemonSet template generation, ServiceAccount secret
// references, PersistentVolumeClaim data sources).
func PrepareForCreate(obj runtime.Object) {
	if m, err := meta.Accessor(obj); err == nil {
		// A new object cannot already be terminating.
		m.SetDeletionTimestamp(nil)
		m.SetDeletionGracePeriodSeconds(nil)
	}

	switch o := obj.(type) {
	// core/v1
	case *corev1.Pod:
		preparePodCreate(o)
	case *corev1.PodTemplate:
		o.Generation = 1
	case *corev1.ReplicationController:
		o.Status = corev1.ReplicationControllerStatus{}
		o.Generation = 1
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		ensureKubernetesFinalizer(o)
		setNamespaceNameLabel(o)
	case *corev1.Node:
		// Nodes may set every field, status included, on create.
	case *corev1.Service:
		o.Status = corev1.ServiceStatus{}
		normalizeClusterIPs(o, nil)
	case *corev1.PersistentVolume:
		o.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
		if !o.CreationTimestamp.IsZero() {
			t := o.CreationTimestamp
			o.Status.LastPhaseTransitionTime = &t
		}
	case *corev1.PersistentVolumeClaim:
		// Upstream clears the status and its storage defaulting fills
		// phase Pending on every read, so clients always see Pending.
		o.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
		normalizeDataSources(&o.Spec)
	case *corev1.ResourceQuota:
		o.Status = corev1.ResourceQuotaStatus{}
	case *corev1.ServiceAccount:
		cleanSecretReferences(o)

	// apps/v1
	case *appsv1.Deployment:
		o.Status = appsv1.DeploymentStatus{}
		o.Generation = 1
	case *appsv1.ReplicaSet:
		o.Status = appsv1.ReplicaSetStatus{}
		o.Generation = 1
	case *appsv1.StatefulSet:
		o.Status = appsv1.StatefulSetStatus{}
		o.Generation = 1
	case *appsv1.DaemonSet:
		o.Status = appsv1.DaemonSetStatus{}
		o.Generation = 1
		tg := templateGeneration(o)
		if tg < 1 {
			tg = 1
		}
		setTemplateGeneration(o, tg)

	// autoscaling
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
	case *autoscalingv1.HorizontalPodAutoscaler:
		o.Status = autoscalingv1.HorizontalPodAutoscalerStatus{}

	// batch/v1
	case *batchv1.Job:
		generateJobSelector(o)
		o.Status = batchv1.JobStatus{}
		o.Generation = 1
	case *batchv1.CronJob:
		o.Status = batchv1.CronJobStatus{}
		o.Generation = 1

	// others
	case *discoveryv1.EndpointSlice:
		o.Generation = 1
	case *networkingv1.Ingress:
		o.Status = networkingv1.IngressStatus{}
		o.Generation = 1
	case *networkingv1.IngressClass:
		o.Generation = 1
	case *networkingv1.NetworkPolicy:
		o.Generation = 1
	case *policyv1.PodDisruptionBudget:
		o.Status = policyv1.PodDisruptionBudgetStatus{}
		o.Generation = 1
	}
}

// PrepareForUpdate normalises an update through the main resource: the
// system metadata and generation are taken from old, status is kept from old
// for kinds with a status subresource, generation is bumped when the spec
// (or what upstream compares: the pod template of a PodTemplate, the
// annotations of a Deployment, everything but metadata of an EndpointSlice)
// changed, and the per-kind rules apply (Namespace finalizers kept, Service
// allocated values kept and type-dependent fields dropped, DaemonSet
// template generation).
func PrepareForUpdate(obj, old runtime.Object) {
	resetSystemMeta(obj, old)

	switch o := obj.(type) {
	// core/v1
	case *corev1.Pod:
		if p, ok := old.(*corev1.Pod); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *corev1.PodTemplate:
		if p, ok := old.(*corev1.PodTemplate); ok {
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Template, p.Template))
		}
	case *corev1.ReplicationController:
		if p, ok := old.(*corev1.ReplicationController); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *corev1.Namespace:
		if p, ok := old.(*corev1.Namespace); ok {
			// Finalizers change only through the finalize subresource.
			o.Spec.Finalizers = p.Spec.Finalizers
			o.Status = p.Status
		}
		setNamespaceNameLabel(o)
	case *corev1.Node:
		if p, ok := old.(*corev1.Node); ok {
			o.Status = p.Status
		}
	case *corev1.Service:
		if p, ok := old.(*corev1.Service); ok {
			prepareServiceUpdate(o, p)
		}
	case *corev1.PersistentVolume:
		if p, ok := old.(*corev1.PersistentVolume); ok {
			o.Status = p.Status
		}
	case *corev1.PersistentVolumeClaim:
		if p, ok := old.(*corev1.PersistentVolumeClaim); ok {
			o.Status = p.Status
		}
		normalizeDataSources(&o.Spec)
	case *corev1.ResourceQuota:
		if p, ok := old.(*corev1.ResourceQuota); ok {
			o.Status = p.Status
		}
	case *corev1.ServiceAccount:
		cleanSecretReferences(o)

	// apps/v1
	case *appsv1.Deployment:
		if p, ok := old.(*appsv1.Deployment); ok {
			o.Status = p.Status
			// Annotations count because the deployment controller copies
			// them to its replica sets.
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec) ||
				!apiequality.Semantic.DeepEqual(o.Annotations, p.Annotations))
		}
	case *appsv1.ReplicaSet:
		if p, ok := old.(*appsv1.ReplicaSet); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *appsv1.StatefulSet:
		if p, ok := old.(*appsv1.StatefulSet); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *appsv1.DaemonSet:
		if p, ok := old.(*appsv1.DaemonSet); ok {
			prepareDaemonSetUpdate(o, p)
		}

	// autoscaling
	case *autoscalingv2.HorizontalPodAutoscaler:
		if p, ok := old.(*autoscalingv2.HorizontalPodAutoscaler); ok {
			o.Status = p.Status
		}
	case *autoscalingv1.HorizontalPodAutoscaler:
		if p, ok := old.(*autoscalingv1.HorizontalPodAutoscaler); ok {
			o.Status = p.Status
		}

	// batch/v1
	case *batchv1.Job:
		if p, ok := old.(*batchv1.Job); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *batchv1.CronJob:
		if p, ok := old.(*batchv1.CronJob); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}

	// others
	case *discoveryv1.EndpointSlice:
		if p, ok := old.(*discoveryv1.EndpointSlice); ok {
			// An EndpointSlice has no spec: everything outside metadata is
			// its desired state, and so are its labels.
			changed := !apiequality.Semantic.DeepEqual(o.AddressType, p.AddressType) ||
				!apiequality.Semantic.DeepEqual(o.Endpoints, p.Endpoints) ||
				!apiequality.Semantic.DeepEqual(o.Ports, p.Ports) ||
				!apiequality.Semantic.DeepEqual(o.Labels, p.Labels)
			bumpIf(o, changed)
		}
	case *networkingv1.Ingress:
		if p, ok := old.(*networkingv1.Ingress); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *networkingv1.IngressClass:
		if p, ok := old.(*networkingv1.IngressClass); ok {
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *networkingv1.NetworkPolicy:
		if p, ok := old.(*networkingv1.NetworkPolicy); ok {
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	case *policyv1.PodDisruptionBudget:
		if p, ok := old.(*policyv1.PodDisruptionBudget); ok {
			o.Status = p.Status
			bumpIf(o, !apiequality.Semantic.DeepEqual(o.Spec, p.Spec))
		}
	}
}

// PrepareForStatusUpdate normalises an update through the /status
// subresource: the spec (and the metadata upstream's status strategies
// protect: a Pod's deletionTimestamp and ownerReferences, a Deployment's
// labels, a DaemonSet's template generation) is taken from old, as are the
// system metadata and generation. Other metadata may change, as upstream
// allows.
func PrepareForStatusUpdate(obj, old runtime.Object) {
	resetSystemMeta(obj, old)

	switch o := obj.(type) {
	// core/v1
	case *corev1.Pod:
		if p, ok := old.(*corev1.Pod); ok {
			preparePodStatusUpdate(o, p)
		}
	case *corev1.ReplicationController:
		if p, ok := old.(*corev1.ReplicationController); ok {
			o.Spec = p.Spec
		}
	case *corev1.Namespace:
		if p, ok := old.(*corev1.Namespace); ok {
			o.Spec = p.Spec
		}
		setNamespaceNameLabel(o)
	case *corev1.Node:
		if p, ok := old.(*corev1.Node); ok {
			o.Spec = p.Spec
		}
	case *corev1.Service:
		if p, ok := old.(*corev1.Service); ok {
			o.Spec = p.Spec
		}
	case *corev1.PersistentVolume:
		if p, ok := old.(*corev1.PersistentVolume); ok {
			o.Spec = p.Spec
			// Keep the transition time while the phase stays; a phase
			// change without a client-set time is stamped by upstream with
			// the current time, which a pure function cannot read.
			if o.Status.Phase == p.Status.Phase && o.Status.LastPhaseTransitionTime == nil {
				o.Status.LastPhaseTransitionTime = p.Status.LastPhaseTransitionTime
			}
		}
	case *corev1.PersistentVolumeClaim:
		if p, ok := old.(*corev1.PersistentVolumeClaim); ok {
			o.Spec = p.Spec
		}
	case *corev1.ResourceQuota:
		if p, ok := old.(*corev1.ResourceQuota); ok {
			o.Spec = p.Spec
		}

	// apps/v1
	case *appsv1.Deployment:
		if p, ok := old.(*appsv1.Deployment); ok {
			o.Spec = p.Spec
			o.Labels = p.Labels
		}
	case *appsv1.ReplicaSet:
		if p, ok := old.(*appsv1.ReplicaSet); ok {
			o.Spec = p.Spec
		}
	case *appsv1.StatefulSet:
		if p, ok := old.(*appsv1.StatefulSet); ok {
			o.Spec = p.Spec
		}
	case *appsv1.DaemonSet:
		if p, ok := old.(*appsv1.DaemonSet); ok {
			o.Spec = p.Spec
			// Upstream keeps the template generation in the spec; on the
			// v1 wire it is an annotation, which must follow the spec.
			setTemplateGeneration(o, templateGeneration(p))
		}

	// autoscaling
	case *autoscalingv2.HorizontalPodAutoscaler:
		if p, ok := old.(*autoscalingv2.HorizontalPodAutoscaler); ok {
			o.Spec = p.Spec
		}
	case *autoscalingv1.HorizontalPodAutoscaler:
		if p, ok := old.(*autoscalingv1.HorizontalPodAutoscaler); ok {
			o.Spec = p.Spec
		}

	// batch/v1
	case *batchv1.Job:
		if p, ok := old.(*batchv1.Job); ok {
			o.Spec = p.Spec
		}
	case *batchv1.CronJob:
		if p, ok := old.(*batchv1.CronJob); ok {
			o.Spec = p.Spec
		}

	// others
	case *networkingv1.Ingress:
		if p, ok := old.(*networkingv1.Ingress); ok {
			o.Spec = p.Spec
		}
	case *policyv1.PodDisruptionBudget:
		if p, ok := old.(*policyv1.PodDisruptionBudget); ok {
			o.Spec = p.Spec
		}
	}
}

// resetSystemMeta applies upstream's rest.BeforeUpdate rules for metadata
// no update may change.
func resetSystemMeta(obj, old runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	om, err := meta.Accessor(old)
	if err != nil {
		return
	}
	m.SetGeneration(om.GetGeneration())
	if m.GetUID() == "" {
		m.SetUID(om.GetUID())
	}
	if ct := om.GetCreationTimestamp(); !ct.IsZero() {
		m.SetCreationTimestamp(ct)
	}
	if dt := om.GetDeletionTimestamp(); dt != nil && !dt.IsZero() {
		m.SetDeletionTimestamp(dt)
	}
	if g := om.GetDeletionGracePeriodSeconds(); g != nil && m.GetDeletionGracePeriodSeconds() == nil {
		m.SetDeletionGracePeriodSeconds(g)
	}
}

// bumpIf increments the generation of obj, which resetSystemMeta has set to
// the old generation, when changed is true.
func bumpIf(obj metav1.Object, changed bool) {
	if changed {
		obj.SetGeneration(obj.GetGeneration() + 1)
	}
}

// ensureKubernetesFinalizer appends the "kubernetes" finalizer every new
// namespace must carry; it is not defaulting because it may be removed later
// through the finalize subresource.
func ensureKubernetesFinalizer(ns *corev1.Namespace) {
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

// setNamespaceNameLabel forces the kubernetes.io/metadata.name label to the
// namespace's name, as upstream's defaulting and Canonicalize do (the latter
// covers names generated from generateName).
func setNamespaceNameLabel(ns *corev1.Namespace) {
	if ns.Name == "" {
		return
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
}

// cleanSecretReferences keeps only the name of each secret reference of a
// service account, as upstream does.
func cleanSecretReferences(sa *corev1.ServiceAccount) {
	for i, s := range sa.Secrets {
		sa.Secrets[i] = corev1.ObjectReference{Name: s.Name}
	}
}

// normalizeDataSources mirrors dataSource and dataSourceRef of a claim when
// only one is set, so that old and new clients see the same data source.
func normalizeDataSources(spec *corev1.PersistentVolumeClaimSpec) {
	switch {
	case spec.DataSource != nil && spec.DataSourceRef == nil:
		spec.DataSourceRef = &corev1.TypedObjectReference{
			APIGroup: copyString(spec.DataSource.APIGroup),
			Kind:     spec.DataSource.Kind,
			Name:     spec.DataSource.Name,
		}
	case spec.DataSourceRef != nil && spec.DataSource == nil:
		// A cross-namespace reference has no local equivalent.
		if spec.DataSourceRef.Namespace == nil || *spec.DataSourceRef.Namespace == "" {
			spec.DataSource = &corev1.TypedLocalObjectReference{
				APIGroup: copyString(spec.DataSourceRef.APIGroup),
				Kind:     spec.DataSourceRef.Kind,
				Name:     spec.DataSourceRef.Name,
			}
		}
	}
}

func copyString(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// templateGeneration reads the DaemonSet template generation, which apps/v1
// carries in the deprecated.daemonset.template.generation annotation.
func templateGeneration(ds *appsv1.DaemonSet) int64 {
	v, ok := ds.Annotations[appsv1.DeprecatedTemplateGeneration]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func setTemplateGeneration(ds *appsv1.DaemonSet, n int64) {
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[appsv1.DeprecatedTemplateGeneration] = strconv.FormatInt(n, 10)
}

// prepareDaemonSetUpdate keeps status and template generation from old and
// bumps the template generation (and generation) when the pod template
// changed, the generation alone for any other spec change.
func prepareDaemonSetUpdate(ds, old *appsv1.DaemonSet) {
	ds.Status = old.Status
	tg := templateGeneration(old)
	switch {
	case !apiequality.Semantic.DeepEqual(ds.Spec.Template, old.Spec.Template):
		tg++
		ds.Generation = old.Generation + 1
	case !apiequality.Semantic.DeepEqual(ds.Spec, old.Spec):
		ds.Generation = old.Generation + 1
	}
	setTemplateGeneration(ds, tg)
}

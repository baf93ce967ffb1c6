package validation

import (
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// fixtures returns one valid object per group/kind the registry serves
// (subresource kinds included), keyed "group/Kind".
func fixtures() map[string]runtime.Object {
	one := intstr.FromInt32(1)
	return map[string]runtime.Object{
		"/Binding":   &corev1.Binding{ObjectMeta: objMeta("web"), Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}},
		"/ConfigMap": newConfigMap(),
		"/Endpoints": &corev1.Endpoints{ObjectMeta: objMeta("web"), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.244.0.5"}},
			Ports:     []corev1.EndpointPort{{Port: 8080, Protocol: corev1.ProtocolTCP}},
		}}},
		"/Event": &corev1.Event{
			ObjectMeta:     objMeta("web.17a"),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
			Reason:         "Started", Message: "Started container", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "kubelet"}, Count: 1,
		},
		"/LimitRange": &corev1.LimitRange{ObjectMeta: objMeta("limits"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceCPU: quantity("1")},
		}}}},
		"/Namespace":             newNamespace(),
		"/Node":                  newNode(),
		"/PersistentVolumeClaim": newPVC(),
		"/PersistentVolume":      newPV(),
		"/Pod":                   newPod(),
		"/PodTemplate":           &corev1.PodTemplate{ObjectMeta: objMeta("tmpl"), Template: podTemplate(map[string]string{"app": "web"})},
		"/ReplicationController": newReplicationController(),
		"/ResourceQuota": &corev1.ResourceQuota{ObjectMeta: objMeta("quota"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			corev1.ResourcePods: quantity("10"),
		}}},
		"/Secret":         newSecret(),
		"/ServiceAccount": &corev1.ServiceAccount{ObjectMeta: objMeta("builder")},
		"/Service":        newService(),
		"policy/Eviction": &policyv1.Eviction{ObjectMeta: objMeta("web")},
		"autoscaling/Scale": &autoscalingv1.Scale{ObjectMeta: objMeta("web"),
			Spec: autoscalingv1.ScaleSpec{Replicas: 3}},
		"authentication.k8s.io/TokenRequest":      &authenticationv1.TokenRequest{ObjectMeta: objMeta("default")},
		"authentication.k8s.io/SelfSubjectReview": &authenticationv1.SelfSubjectReview{ObjectMeta: clusterMeta("me")},
		"apps/ControllerRevision": &appsv1.ControllerRevision{ObjectMeta: objMeta("web-1"),
			Data: runtime.RawExtension{Raw: []byte(`{}`)}, Revision: 1},
		"apps/DaemonSet":                      newDaemonSet(),
		"apps/Deployment":                     newDeployment(),
		"apps/ReplicaSet":                     newReplicaSet(),
		"apps/StatefulSet":                    newStatefulSet(),
		"autoscaling/HorizontalPodAutoscaler": newHPA(),
		"batch/CronJob":                       newCronJob(),
		"batch/Job":                           storedJob(),
		"coordination.k8s.io/Lease": &coordinationv1.Lease{ObjectMeta: objMeta("node-1"),
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("node-1"), LeaseDurationSeconds: ptr(int32(40))}},
		"discovery.k8s.io/EndpointSlice": &discoveryv1.EndpointSlice{
			ObjectMeta:  objMeta("web-abc"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80)), Protocol: ptr(corev1.ProtocolTCP)}},
		},
		"events.k8s.io/Event": &eventsv1.Event{
			ObjectMeta:          objMeta("web.17b"),
			EventTime:           metav1.NewMicroTime(time.Unix(1700000000, 0)),
			ReportingController: "example.com/controller", ReportingInstance: "ctrl-1",
			Action: "Reconcile", Reason: "Synced", Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
			Type: corev1.EventTypeNormal,
		},
		"networking.k8s.io/IngressClass": &networkingv1.IngressClass{ObjectMeta: clusterMeta("skiff"),
			Spec: networkingv1.IngressClassSpec{Controller: "skiff.sh/ingress"}},
		"networking.k8s.io/Ingress": newIngress(),
		"networking.k8s.io/NetworkPolicy": &networkingv1.NetworkPolicy{ObjectMeta: objMeta("db"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		}},
		"policy/PodDisruptionBudget": &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("web"), Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		}},
		"rbac.authorization.k8s.io/ClusterRoleBinding": &rbacv1.ClusterRoleBinding{ObjectMeta: clusterMeta("viewers"),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "viewer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder", Namespace: "ci"}}},
		"rbac.authorization.k8s.io/ClusterRole": &rbacv1.ClusterRole{ObjectMeta: clusterMeta("viewer"),
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}},
		"rbac.authorization.k8s.io/RoleBinding": &rbacv1.RoleBinding{ObjectMeta: objMeta("read-pods"),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "builder"}}},
		"rbac.authorization.k8s.io/Role": &rbacv1.Role{ObjectMeta: objMeta("reader"),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}},
		"scheduling.k8s.io/PriorityClass": &schedulingv1.PriorityClass{ObjectMeta: clusterMeta("high"), Value: 1000,
			PreemptionPolicy: ptr(corev1.PreemptLowerPriority)},
		"storage.k8s.io/StorageClass": &storagev1.StorageClass{ObjectMeta: clusterMeta("standard"), Provisioner: "skiff.sh/local",
			ReclaimPolicy: ptr(corev1.PersistentVolumeReclaimDelete), VolumeBindingMode: ptr(storagev1.VolumeBindingImmediate)},
	}
}

// servedKinds lists every group/Kind the registry serves, with whether it is
// namespaced; subresource kinds take their parent's scope.
func servedKinds() map[string]bool {
	kinds := map[string]bool{}
	for _, r := range registry.All() {
		kinds[r.Group+"/"+r.Kind] = r.Namespaced
		for _, s := range r.Subresources {
			if s.Kind == "" {
				continue
			}
			g := r.Group
			if s.Group != "" {
				g = s.Group
			}
			kinds[g+"/"+s.Kind] = r.Namespaced
		}
	}
	return kinds
}

// TestEveryRegistryKind proves each kind the server serves is dispatched:
// its valid fixture passes create and a no-op update, a bad name is
// rejected, and the namespace rule follows the registry's scope.
func TestEveryRegistryKind(t *testing.T) {
	fx := fixtures()
	for key, namespaced := range servedKinds() {
		t.Run(key, func(t *testing.T) {
			obj, ok := fx[key]
			if !ok {
				t.Fatalf("got no fixture for %s, want one", key)
			}
			if errs := ValidateCreate(obj.DeepCopyObject()); len(errs) != 0 {
				t.Fatalf("got create errors %v, want none", errs)
			}
			if key == "policy/Eviction" || key == "authentication.k8s.io/TokenRequest" || key == "authentication.k8s.io/SelfSubjectReview" {
				return // evictions and reviews are not stored, so never updated; no metadata rules apply.
			}
			if errs := ValidateUpdate(obj.DeepCopyObject(), obj.DeepCopyObject()); len(errs) != 0 {
				t.Errorf("got update errors %v, want none", errs)
			}

			bad := obj.DeepCopyObject()
			m, _ := meta.Accessor(bad)
			m.SetName("a/b")
			if !hasError(ValidateCreate(bad), field.ErrorTypeInvalid, "metadata.name") {
				t.Errorf("got %v for name a/b, want an Invalid metadata.name error", ValidateCreate(bad))
			}

			scoped := obj.DeepCopyObject()
			m, _ = meta.Accessor(scoped)
			want := fe{field.ErrorTypeForbidden, "metadata.namespace"}
			m.SetNamespace("default")
			if namespaced {
				want = fe{field.ErrorTypeRequired, "metadata.namespace"}
				m.SetNamespace("")
			}
			if key == "/Event" {
				// Upstream's legacy event validation reports the namespace itself.
				want = invalid("namespace")
			}
			if errs := ValidateCreate(scoped); !hasError(errs, want.t, want.f) {
				t.Errorf("got %v for the wrong namespace, want a %s error", errs, want)
			}
		})
	}
}

func hasError(errs field.ErrorList, typ field.ErrorType, path string) bool {
	for _, e := range errs {
		if e.Type == typ && e.Field == path {
			return true
		}
	}
	return false
}

func TestUnknownTypeGetsMetadataChecks(t *testing.T) {
	// A list has no ObjectMeta; the accessor fails and is reported.
	expectErrors(t, ValidateCreate(&corev1.PodList{}), fe{field.ErrorTypeInternal, "metadata"})
	cm := &storagev1.CSIDriver{ObjectMeta: clusterMeta("Bad_Name")}
	if errs := ValidateCreate(cm); len(errs) != 0 {
		t.Errorf("got %v, want none: an unknown kind only gets path-segment name checks", errs)
	}
	cm.Name = "a/b"
	expectErrors(t, ValidateCreate(cm), invalid("metadata.name"))
}

func TestUpdateTypeMismatch(t *testing.T) {
	errs := ValidateUpdate(newPod(), newService())
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Fatalf("got %v, want one InternalError", errs)
	}
	errs = ValidateStatusUpdate(newPod(), newService())
	if len(errs) != 1 || errs[0].Type != field.ErrorTypeInternal {
		t.Fatalf("got %v, want one InternalError", errs)
	}
}

func TestMetadataUpdateRules(t *testing.T) {
	runUpdate(t, newConfigMap, false, []updateCase[*corev1.ConfigMap]{
		{name: "labels may change", mutate: func(c *corev1.ConfigMap) { c.Labels = map[string]string{"tier": "web"} }},
		{name: "name immutable", mutate: func(c *corev1.ConfigMap) { c.Name = "other" }, want: []fe{invalid("metadata.name")}},
		{name: "namespace immutable", mutate: func(c *corev1.ConfigMap) { c.Namespace = "kube-system" }, want: []fe{invalid("metadata.namespace")}},
		{name: "uid immutable", mutate: func(c *corev1.ConfigMap) { c.UID = "other" }, want: []fe{invalid("metadata.uid")}},
		{name: "resourceVersion required", mutate: func(c *corev1.ConfigMap) { c.ResourceVersion = "" }, want: []fe{invalid("metadata.resourceVersion")}},
	})
	old, cm := newConfigMap(), newConfigMap()
	cm.Name = "other"
	expectMessage(t, ValidateUpdate(cm, old), `metadata.name: Invalid value: "other": field is immutable`)
}

func TestScale(t *testing.T) {
	fresh := func() *autoscalingv1.Scale {
		return &autoscalingv1.Scale{ObjectMeta: objMeta("web"), Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	}
	runCreate(t, fresh, []createCase[*autoscalingv1.Scale]{
		{name: "valid"},
		{name: "zero replicas", mutate: func(s *autoscalingv1.Scale) { s.Spec.Replicas = 0 }},
		{name: "negative replicas", mutate: func(s *autoscalingv1.Scale) { s.Spec.Replicas = -1 }, want: []fe{invalid("spec.replicas")}},
	})
	runUpdate(t, fresh, false, []updateCase[*autoscalingv1.Scale]{
		{name: "scale up", mutate: func(s *autoscalingv1.Scale) { s.Spec.Replicas = 10 }},
		{name: "negative replicas", mutate: func(s *autoscalingv1.Scale) { s.Spec.Replicas = -1 }, want: []fe{invalid("spec.replicas")}},
	})
	s := fresh()
	s.Spec.Replicas = -1
	expectMessage(t, ValidateCreate(s), "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
}

func TestDeploymentUnsupportedStrategyMessage(t *testing.T) {
	d := newDeployment()
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "BlueGreen"}
	expectMessage(t, ValidateCreate(d),
		`spec.strategy: Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported values: "Recreate", "RollingUpdate"`)
}

// TestDoesNotMutate checks the functions never write to their inputs, even
// where upstream validates a normalised copy.
func TestDoesNotMutate(t *testing.T) {
	objs := []runtime.Object{newService(), newSecret(), newJob(), newDeployment(), newStatefulSet(), newPod()}
	for _, o := range objs {
		before := o.DeepCopyObject()
		ValidateCreate(o)
		if !equality.Semantic.DeepEqual(before, o) {
			t.Errorf("ValidateCreate mutated its %T input", o)
		}
		old := o.DeepCopyObject()
		ValidateUpdate(o, old)
		ValidateStatusUpdate(o, old)
		if !equality.Semantic.DeepEqual(before, o) || !equality.Semantic.DeepEqual(before, old) {
			t.Errorf("ValidateUpdate mutated its %T inputs", o)
		}
	}
}

// TestBriefExamples pins the three messages the API server's 422 bodies are
// most often built from.
func TestBriefExamples(t *testing.T) {
	d := newDeployment()
	d.Spec.Template.Labels = map[string]string{"app": "x"}
	expectMessage(t, ValidateCreate(d),
		"spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`")

	d = newDeployment()
	d.Spec.Template.Spec.Containers[0].Image = ""
	expectMessage(t, ValidateCreate(d), "spec.template.spec.containers[0].image: Required value")

	d = newDeployment()
	d.Name = "Foo"
	expectMessage(t, ValidateCreate(d), `metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`)
}

package printers

import (
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	rbacv1beta1 "k8s.io/api/rbac/v1beta1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Descriptions upstream writes out instead of taking them from a field's doc.
const (
	containersDescription = "Names of each container in the template."
	imagesDescription     = "Images referenced by each container in the template."
	readyPodsDescription  = "Number of the pod with ready state"
)

// Column types as upstream names them. Several numeric-looking columns are
// typed "string" upstream (their cells are preformatted); that is kept.
const (
	typeString  = "string"
	typeInteger = "integer"
	typeBoolean = "boolean"
	typeDate    = "date"
)

// Group names of the served API groups that have printers.
const (
	groupCore         = ""
	groupApps         = "apps"
	groupAutoscaling  = "autoscaling"
	groupBatch        = "batch"
	groupCoordination = "coordination.k8s.io"
	groupDiscovery    = "discovery.k8s.io"
	groupEvents       = "events.k8s.io"
	groupNetworking   = "networking.k8s.io"
	groupPolicy       = "policy"
	groupRBAC         = "rbac.authorization.k8s.io"
	groupScheduling   = "scheduling.k8s.io"
	groupStorage      = "storage.k8s.io"
)

// ColumnDefinitions returns the table columns for a kind, in upstream order. Columns with Priority 1
// are the extra `-o wide` columns. The first column is always "Name" (Format "name"), except for
// Event (core and events.k8s.io), where upstream leads with "Last Seen" and shows Name only wide.
// For an unknown kind it returns upstream's default columns: Name, Created At (Type "date").
func ColumnDefinitions(gk schema.GroupKind) []metav1.TableColumnDefinition {
	switch gk {
	case schema.GroupKind{Group: groupCore, Kind: "Pod"}:
		return podColumns()
	case schema.GroupKind{Group: groupCore, Kind: "PodTemplate"}:
		return podTemplateColumns()
	case schema.GroupKind{Group: groupCore, Kind: "ReplicationController"}:
		return replicationControllerColumns()
	case schema.GroupKind{Group: groupCore, Kind: "Service"}:
		return serviceColumns()
	case schema.GroupKind{Group: groupCore, Kind: "Endpoints"}:
		return endpointsColumns()
	case schema.GroupKind{Group: groupCore, Kind: "Node"}:
		return nodeColumns()
	case schema.GroupKind{Group: groupCore, Kind: "Event"}, schema.GroupKind{Group: groupEvents, Kind: "Event"}:
		return eventColumns()
	case schema.GroupKind{Group: groupCore, Kind: "Namespace"}:
		return namespaceColumns()
	case schema.GroupKind{Group: groupCore, Kind: "Secret"}:
		return secretColumns()
	case schema.GroupKind{Group: groupCore, Kind: "ServiceAccount"}:
		return serviceAccountColumns()
	case schema.GroupKind{Group: groupCore, Kind: "PersistentVolume"}:
		return persistentVolumeColumns()
	case schema.GroupKind{Group: groupCore, Kind: "PersistentVolumeClaim"}:
		return persistentVolumeClaimColumns()
	case schema.GroupKind{Group: groupCore, Kind: "ConfigMap"}:
		return configMapColumns()
	case schema.GroupKind{Group: groupCore, Kind: "ResourceQuota"}:
		return resourceQuotaColumns()
	case schema.GroupKind{Group: groupApps, Kind: "Deployment"}:
		return deploymentColumns()
	case schema.GroupKind{Group: groupApps, Kind: "ReplicaSet"}:
		return replicaSetColumns()
	case schema.GroupKind{Group: groupApps, Kind: "StatefulSet"}:
		return statefulSetColumns()
	case schema.GroupKind{Group: groupApps, Kind: "DaemonSet"}:
		return daemonSetColumns()
	case schema.GroupKind{Group: groupApps, Kind: "ControllerRevision"}:
		return controllerRevisionColumns()
	case schema.GroupKind{Group: groupBatch, Kind: "Job"}:
		return jobColumns()
	case schema.GroupKind{Group: groupBatch, Kind: "CronJob"}:
		return cronJobColumns()
	case schema.GroupKind{Group: groupAutoscaling, Kind: "HorizontalPodAutoscaler"}:
		return horizontalPodAutoscalerColumns()
	case schema.GroupKind{Group: groupNetworking, Kind: "Ingress"}:
		return ingressColumns()
	case schema.GroupKind{Group: groupNetworking, Kind: "IngressClass"}:
		return ingressClassColumns()
	case schema.GroupKind{Group: groupNetworking, Kind: "NetworkPolicy"}:
		return networkPolicyColumns()
	case schema.GroupKind{Group: groupDiscovery, Kind: "EndpointSlice"}:
		return endpointSliceColumns()
	case schema.GroupKind{Group: groupCoordination, Kind: "Lease"}:
		return leaseColumns()
	case schema.GroupKind{Group: groupRBAC, Kind: "RoleBinding"}:
		return roleBindingColumns("roleBinding", rbacv1beta1.RoleBinding{}.SwaggerDoc()["roleRef"])
	case schema.GroupKind{Group: groupRBAC, Kind: "ClusterRoleBinding"}:
		return roleBindingColumns("clusterRoleBinding", rbacv1beta1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"])
	case schema.GroupKind{Group: groupStorage, Kind: "StorageClass"}:
		return storageClassColumns()
	case schema.GroupKind{Group: groupPolicy, Kind: "PodDisruptionBudget"}:
		return podDisruptionBudgetColumns()
	case schema.GroupKind{Group: groupScheduling, Kind: "PriorityClass"}:
		return priorityClassColumns()
	}
	return defaultColumns()
}

func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wide marks a column as one shown only by `kubectl get -o wide`.
func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition {
	c.Priority = 1
	return c
}

func objectMetaDoc(field string) string {
	return metav1.ObjectMeta{}.SwaggerDoc()[field]
}

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: typeString, Format: "name", Description: objectMetaDoc("name")}
}

func ageColumn() metav1.TableColumnDefinition {
	return column("Age", typeString, objectMetaDoc("creationTimestamp"))
}

func defaultColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Created At", typeDate, objectMetaDoc("creationTimestamp")),
	}
}

func podColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Ready", typeString, "The aggregate readiness state of this pod for accepting traffic."),
		column("Status", typeString, "The aggregate status of the containers in this pod."),
		column("Restarts", typeString, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
		ageColumn(),
		wide(column("IP", typeString, corev1.PodStatus{}.SwaggerDoc()["podIP"])),
		wide(column("Node", typeString, corev1.PodSpec{}.SwaggerDoc()["nodeName"])),
		wide(column("Nominated Node", typeString, corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"])),
		wide(column("Readiness Gates", typeString, corev1.PodSpec{}.SwaggerDoc()["readinessGates"])),
	}
}

func podTemplateColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Containers", typeString, containersDescription),
		column("Images", typeString, imagesDescription),
		column("Pod Labels", typeString, "The labels for the pod template."),
	}
}

func podDisruptionBudgetColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Min Available", typeString, "The minimum number of pods that must be available."),
		column("Max Unavailable", typeString, "The maximum number of pods that may be unavailable."),
		column("Allowed Disruptions", typeInteger, "Calculated number of pods that may be disrupted at this time."),
		ageColumn(),
	}
}

func replicationControllerColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Desired", typeInteger, corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"]),
		column("Current", typeInteger, corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"]),
		column("Ready", typeInteger, corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"]),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
		wide(column("Selector", typeString, corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"])),
	}
}

func replicaSetColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Desired", typeInteger, extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
		column("Current", typeInteger, extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
		column("Ready", typeInteger, extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
		wide(column("Selector", typeString, extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["selector"])),
	}
}

func daemonSetColumns() []metav1.TableColumnDefinition {
	status := extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Desired", typeInteger, status["desiredNumberScheduled"]),
		column("Current", typeInteger, status["currentNumberScheduled"]),
		column("Ready", typeInteger, status["numberReady"]),
		column("Up-to-date", typeInteger, status["updatedNumberScheduled"]),
		column("Available", typeInteger, status["numberAvailable"]),
		column("Node Selector", typeString, corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
		wide(column("Selector", typeString, extensionsv1beta1.DaemonSetSpec{}.SwaggerDoc()["selector"])),
	}
}

func jobColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", typeString, "Status of the job."),
		column("Completions", typeString, batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
		column("Duration", typeString, "Time required to complete the job."),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
		wide(column("Selector", typeString, batchv1.JobSpec{}.SwaggerDoc()["selector"])),
	}
}

func cronJobColumns() []metav1.TableColumnDefinition {
	spec := batchv1beta1.CronJobSpec{}.SwaggerDoc()
	status := batchv1beta1.CronJobStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Schedule", typeString, spec["schedule"]),
		column("Timezone", typeString, spec["timeZone"]),
		column("Suspend", typeBoolean, spec["suspend"]),
		column("Active", typeInteger, status["active"]),
		column("Last Schedule", typeString, status["lastScheduleTime"]),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
		wide(column("Selector", typeString, batchv1.JobSpec{}.SwaggerDoc()["selector"])),
	}
}

func serviceColumns() []metav1.TableColumnDefinition {
	spec := corev1.ServiceSpec{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Type", typeString, spec["type"]),
		column("Cluster-IP", typeString, spec["clusterIP"]),
		column("External-IP", typeString, spec["externalIPs"]),
		column("Port(s)", typeString, spec["ports"]),
		ageColumn(),
		wide(column("Selector", typeString, spec["selector"])),
	}
}

func ingressColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Class", typeString, "The name of the IngressClass resource that should be used for additional configuration"),
		column("Hosts", typeString, "Hosts that incoming requests are matched against before the ingress rule"),
		column("Address", typeString, "Address is a list containing ingress points for the load-balancer"),
		column("Ports", typeString, "Ports of TLS configurations that open"),
		ageColumn(),
	}
}

func ingressClassColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Controller", typeString, "Controller that is responsible for handling this class"),
		column("Parameters", typeString, "A reference to a resource with additional parameters"),
		ageColumn(),
	}
}

func statefulSetColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Ready", typeString, readyPodsDescription),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
	}
}

func endpointsColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Endpoints", typeString, corev1.Endpoints{}.SwaggerDoc()["subsets"]),
		ageColumn(),
	}
}

func nodeColumns() []metav1.TableColumnDefinition {
	info := corev1.NodeSystemInfo{}.SwaggerDoc()
	addresses := corev1.NodeStatus{}.SwaggerDoc()["addresses"]
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", typeString, "The status of the node"),
		column("Roles", typeString, "The roles of the node"),
		ageColumn(),
		column("Version", typeString, info["kubeletVersion"]),
		wide(column("Internal-IP", typeString, addresses)),
		wide(column("External-IP", typeString, addresses)),
		wide(column("OS-Image", typeString, info["osImage"])),
		wide(column("Kernel-Version", typeString, info["kernelVersion"])),
		wide(column("Container-Runtime", typeString, info["containerRuntimeVersion"])),
	}
}

func eventColumns() []metav1.TableColumnDefinition {
	event := corev1.Event{}.SwaggerDoc()
	name := nameColumn()
	name.Priority = 1
	return []metav1.TableColumnDefinition{
		column("Last Seen", typeString, event["lastTimestamp"]),
		column("Type", typeString, event["type"]),
		column("Reason", typeString, event["reason"]),
		column("Object", typeString, event["involvedObject"]),
		wide(column("Subobject", typeString, corev1.ObjectReference{}.SwaggerDoc()["fieldPath"])),
		wide(column("Source", typeString, event["source"])),
		column("Message", typeString, event["message"]),
		wide(column("First Seen", typeString, event["firstTimestamp"])),
		wide(column("Count", typeString, event["count"])),
		name,
	}
}

func namespaceColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", typeString, "The status of the namespace"),
		ageColumn(),
	}
}

func secretColumns() []metav1.TableColumnDefinition {
	secret := corev1.Secret{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Type", typeString, secret["type"]),
		column("Data", typeString, secret["data"]),
		ageColumn(),
	}
}

func serviceAccountColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{nameColumn(), ageColumn()}
}

func persistentVolumeColumns() []metav1.TableColumnDefinition {
	spec := corev1.PersistentVolumeSpec{}.SwaggerDoc()
	status := corev1.PersistentVolumeStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Capacity", typeString, spec["capacity"]),
		column("Access Modes", typeString, spec["accessModes"]),
		column("Reclaim Policy", typeString, spec["persistentVolumeReclaimPolicy"]),
		column("Status", typeString, status["phase"]),
		column("Claim", typeString, spec["claimRef"]),
		column("StorageClass", typeString, "StorageClass of the pv"),
		column("VolumeAttributesClass", typeString, "VolumeAttributesClass of the pv"),
		column("Reason", typeString, status["reason"]),
		ageColumn(),
		wide(column("VolumeMode", typeString, spec["volumeMode"])),
	}
}

func persistentVolumeClaimColumns() []metav1.TableColumnDefinition {
	spec := corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()
	status := corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", typeString, status["phase"]),
		column("Volume", typeString, spec["volumeName"]),
		column("Capacity", typeString, status["capacity"]),
		column("Access Modes", typeString, status["accessModes"]),
		column("StorageClass", typeString, "StorageClass of the pvc"),
		column("VolumeAttributesClass", typeString, "VolumeAttributesClass of the pvc"),
		ageColumn(),
		wide(column("VolumeMode", typeString, spec["volumeMode"])),
	}
}

func deploymentColumns() []metav1.TableColumnDefinition {
	status := extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Ready", typeString, readyPodsDescription),
		column("Up-to-date", typeString, status["updatedReplicas"]),
		column("Available", typeString, status["availableReplicas"]),
		ageColumn(),
		wide(column("Containers", typeString, containersDescription)),
		wide(column("Images", typeString, imagesDescription)),
		wide(column("Selector", typeString, extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"])),
	}
}

// horizontalPodAutoscalerColumns takes its descriptions from autoscaling/v2:
// upstream names autoscaling/v2beta1, which k8s.io/api no longer ships; the
// v2 field docs are its successor's.
func horizontalPodAutoscalerColumns() []metav1.TableColumnDefinition {
	spec := autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Reference", typeString, spec["scaleTargetRef"]),
		column("Targets", typeString, spec["metrics"]),
		column("MinPods", typeString, spec["minReplicas"]),
		column("MaxPods", typeString, spec["maxReplicas"]),
		column("Replicas", typeString, autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]),
		ageColumn(),
	}
}

func configMapColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Data", typeString, corev1.ConfigMap{}.SwaggerDoc()["data"]),
		ageColumn(),
	}
}

func networkPolicyColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Pod-Selector", typeString, extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]),
		ageColumn(),
	}
}

// roleBindingColumns serves RoleBinding and ClusterRoleBinding, whose columns
// differ only in the noun of their descriptions.
func roleBindingColumns(noun, roleRefDescription string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Role", typeString, roleRefDescription),
		ageColumn(),
		wide(column("Users", typeString, "Users in the "+noun)),
		wide(column("Groups", typeString, "Groups in the "+noun)),
		wide(column("ServiceAccounts", typeString, "ServiceAccounts in the "+noun)),
	}
}

func leaseColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Holder", typeString, coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
		ageColumn(),
	}
}

func storageClassColumns() []metav1.TableColumnDefinition {
	sc := storagev1.StorageClass{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Provisioner", typeString, sc["provisioner"]),
		column("ReclaimPolicy", typeString, sc["reclaimPolicy"]),
		column("VolumeBindingMode", typeString, sc["volumeBindingMode"]),
		column("AllowVolumeExpansion", typeString, sc["allowVolumeExpansion"]),
		ageColumn(),
	}
}

func controllerRevisionColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Controller", typeString, "Controller of the object"),
		column("Revision", typeString, appsv1beta1.ControllerRevision{}.SwaggerDoc()["revision"]),
		ageColumn(),
	}
}

func resourceQuotaColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Request", typeString, "Request represents a minimum amount of cpu/memory that a container may consume."),
		column("Limit", typeString, "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
		ageColumn(),
	}
}

func priorityClassColumns() []metav1.TableColumnDefinition {
	pc := schedulingv1.PriorityClass{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Value", typeInteger, pc["value"]),
		column("Global-Default", typeBoolean, pc["globalDefault"]),
		ageColumn(),
		column("PreemptionPolicy", typeString, pc["preemptionPolicy"]),
	}
}

func endpointSliceColumns() []metav1.TableColumnDefinition {
	slice := discoveryv1beta1.EndpointSlice{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("AddressType", typeString, slice["addressType"]),
		column("Ports", typeString, slice["ports"]),
		column("Endpoints", typeString, slice["endpoints"]),
		ageColumn(),
	}
}

package controllermanager

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// initFuncs maps each controller's name (upstream's short name, as
// kube-controller-manager's --controllers flag takes it) to its start
// function. Each start function lives in start_<name>.go.
func initFuncs() map[string]InitFunc {
	return map[string]InitFunc{
		// One line per controller, kept sorted.
		"cronjob":                 startCronJob,
		"daemonset":               startDaemonSet,
		"deployment":              startDeployment,
		"disruption":              startDisruption,
		"endpoint":                startEndpoint,
		"endpointslice":           startEndpointSlice,
		"endpointslicemirroring":  startEndpointSliceMirroring,
		"garbagecollector":        startGarbageCollector,
		"job":                     startJob,
		"namespace":               startNamespace,
		"nodeipam":                startNodeIPAM,
		"nodelifecycle":           startNodeLifecycle,
		"persistentvolume-binder": startPersistentVolumeBinder,
		"podgc":                   startPodGC,
		"replicaset":              startReplicaSet,
		"replicationcontroller":   startReplicationController,
		"resourcequota":           startResourceQuota,
		"root-ca-cert-publisher":  startRootCACertPublisher,
		"serviceaccount":          startServiceAccount,
		"servicelb":               startServiceLB,
		"statefulset":             startStatefulSet,
		"ttl-after-finished":      startTTLAfterFinished,
	}
}

func metav1ObjectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

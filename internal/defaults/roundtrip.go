package defaults

import (
	corev1 "k8s.io/api/core/v1"
)

// The functions in this file reproduce what upstream's v1 -> internal -> v1
// conversion does to an object on its way into and out of storage. Skiff has
// no internal version, so without them a client would read back fields that no
// real API server returns (stringData) or pairs that disagree (podIP/podIPs).

// syncServiceAccountAlias keeps the deprecated spec.serviceAccount equal to
// spec.serviceAccountName; the old field is only an input alias for the new.
func syncServiceAccountAlias(spec *corev1.PodSpec) {
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
}

// mergeStringData folds the write-only stringData into data; stringData wins
// over data for the same key and is never returned.
func mergeStringData(s *corev1.Secret) {
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

// syncPodIPs makes status.podIP/hostIP the first entry of podIPs/hostIPs. The
// singular field wins when both are set and disagree, for old clients that
// only know it.
func syncPodIPs(st *corev1.PodStatus) {
	if st.PodIP != "" && (len(st.PodIPs) == 0 || st.PodIPs[0].IP != st.PodIP) {
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	if len(st.PodIPs) > 0 {
		st.PodIP = st.PodIPs[0].IP
	}
	if st.HostIP != "" && (len(st.HostIPs) == 0 || st.HostIPs[0].IP != st.HostIP) {
		st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	}
	if len(st.HostIPs) > 0 {
		st.HostIP = st.HostIPs[0].IP
	}
}

// syncPodCIDRs does for spec.podCIDR/podCIDRs what syncPodIPs does for pods.
func syncPodCIDRs(spec *corev1.NodeSpec) {
	if spec.PodCIDR != "" && (len(spec.PodCIDRs) == 0 || spec.PodCIDRs[0] != spec.PodCIDR) {
		spec.PodCIDRs = []string{spec.PodCIDR}
	}
	if len(spec.PodCIDRs) > 0 {
		spec.PodCIDR = spec.PodCIDRs[0]
	}
}

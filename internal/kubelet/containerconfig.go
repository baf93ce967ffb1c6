package kubelet

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// waitingCreateContainerConfigError is upstream's reason for a container
// whose configuration (an env source) cannot be resolved.
const waitingCreateContainerConfigError = "CreateContainerConfigError"

// sandboxConfig is the runtime configuration of a pod's sandbox.
func (k *Kubelet) sandboxConfig(pod *corev1.Pod, attempt uint32) SandboxConfig {
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	var hostIP string
	if ips := k.hostIPs(); len(ips) > 0 {
		hostIP = ips[0]
	}
	cfg := SandboxConfig{
		PodUID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, Attempt: attempt,
		Hostname: hostname, Subdomain: pod.Spec.Subdomain,
		HostNetwork: pod.Spec.HostNetwork, HostIPC: pod.Spec.HostIPC, HostPID: pod.Spec.HostPID,
		ShareProcessNamespace: pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace,
		HostIP:                hostIP, PodCIDR: k.podCIDR(), Labels: pod.Labels,
		PortMappings: portMappings(pod),
		DNS:          podDNS(pod, k.cfg.ClusterDNS, k.cfg.ClusterDomain),
		CgroupParent: cgroupParent(qosClass(pod), pod.UID),
	}
	for _, a := range pod.Spec.HostAliases {
		cfg.HostAliases = append(cfg.HostAliases, HostAlias{IP: a.IP, Hostnames: a.Hostnames})
	}
	if sc := pod.Spec.SecurityContext; sc != nil && len(sc.Sysctls) > 0 {
		cfg.Sysctls = map[string]string{}
		for _, s := range sc.Sysctls {
			cfg.Sysctls[s.Name] = s.Value
		}
	}
	return cfg
}

// containerConfig turns a container spec into what the runtime needs,
// resolving its environment from the API.
func (k *Kubelet) containerConfig(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, attempt uint32,
	podIPs []string, mounts []Mount) (ContainerConfig, error) {
	env, err := k.containerEnv(ctx, pod, spec, podIPs)
	if err != nil {
		return ContainerConfig{}, err
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	expand := func(in []string) []string {
		if in == nil {
			return nil
		}
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expandEnv(s, vars)
		}
		return out
	}
	var memCap int64
	if m, ok := k.cfg.Capacity[corev1.ResourceMemory]; ok {
		memCap = m.Value()
	}
	cfg := ContainerConfig{
		Name: spec.Name, Attempt: attempt, Image: spec.Image,
		Command: expand(spec.Command), Args: expand(spec.Args), WorkingDir: spec.WorkingDir,
		Env:       env,
		Mounts:    mounts,
		Resources: containerResources(spec, qosClass(pod), memCap),
		Security:  containerSecurity(pod, spec),
		TTY:       spec.TTY, Stdin: spec.Stdin, StdinOnce: spec.StdinOnce,
	}
	return cfg, nil
}

// containerEnv resolves a container's environment in upstream's order:
// service links, then envFrom, then env, each later one winning, with
// $(VAR) references in env values expanded from what came before.
func (k *Kubelet) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIPs []string) ([]EnvVar, error) {
	var order []string
	vals := map[string]string{}
	set := func(name, value string) {
		if _, ok := vals[name]; !ok {
			order = append(order, name)
		}
		vals[name] = value
	}
	if k.cfg.Images != nil { // a real node; simulated ones skip the API reads
		svcs, err := k.serviceLinks(ctx, pod)
		if err != nil {
			return nil, err
		}
		for _, e := range serviceEnv(svcs) {
			set(e.Name, e.Value)
		}
	}
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	configMap := func(name string, optional *bool) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		cm, err := k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			cm, err = nil, nil
		} else if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("configmap %q not found", name)
		}
		if err != nil {
			return nil, err
		}
		cms[name] = cm
		return cm, nil
	}
	secret := func(name string, optional *bool) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			s, err = nil, nil
		} else if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %q not found", name)
		}
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := configMap(from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
			if err != nil {
				return nil, err
			}
			if cm != nil {
				for key, v := range cm.Data {
					if len(validation.IsEnvVarName(from.Prefix+key)) == 0 {
						set(from.Prefix+key, v)
					}
				}
			}
		case from.SecretRef != nil:
			s, err := secret(from.SecretRef.Name, from.SecretRef.Optional)
			if err != nil {
				return nil, err
			}
			if s != nil {
				for key, v := range s.Data {
					if len(validation.IsEnvVarName(from.Prefix+key)) == 0 {
						set(from.Prefix+key, string(v))
					}
				}
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandEnv(e.Value, vals))
			continue
		}
		f := e.ValueFrom
		switch {
		case f.FieldRef != nil:
			v, err := fieldRefValue(pod, f.FieldRef.FieldPath, podIPs, k.hostIPs())
			if err != nil {
				return nil, err
			}
			set(e.Name, v)
		case f.ResourceFieldRef != nil:
			target := c
			if f.ResourceFieldRef.ContainerName != "" {
				if t := findContainer(pod, f.ResourceFieldRef.ContainerName, false); t != nil {
					target = t
				}
			}
			v, err := resourceFieldValue(target, f.ResourceFieldRef, k.allocatable())
			if err != nil {
				return nil, err
			}
			set(e.Name, v)
		case f.ConfigMapKeyRef != nil:
			ref := f.ConfigMapKeyRef
			cm, err := configMap(ref.Name, ref.Optional)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			set(e.Name, v)
		case f.SecretKeyRef != nil:
			ref := f.SecretKeyRef
			s, err := secret(ref.Name, ref.Optional)
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			set(e.Name, string(v))
		}
	}
	out := make([]EnvVar, 0, len(order))
	for _, n := range order {
		out = append(out, EnvVar{Name: n, Value: vals[n]})
	}
	return out, nil
}

// listServices returns the Services of a namespace, from the informer's
// cache when the kubelet has one. The objects are shared: read only.
func (k *Kubelet) listServices(ctx context.Context, ns string) ([]*corev1.Service, error) {
	if k.services != nil {
		return k.services.Services(ns).List(labels.Everything())
	}
	list, err := k.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Service, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// getService returns one Service, from the informer's cache when the
// kubelet has one.
func (k *Kubelet) getService(ctx context.Context, ns, name string) (*corev1.Service, error) {
	if k.services != nil {
		return k.services.Services(ns).Get(name)
	}
	return k.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
}

// serviceLinks returns the services whose variables a pod gets: those of
// its namespace when enableServiceLinks (default true), and always the
// API server's own "kubernetes" service.
func (k *Kubelet) serviceLinks(ctx context.Context, pod *corev1.Pod) ([]*corev1.Service, error) {
	var out []*corev1.Service
	seen := map[string]bool{}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		list, err := k.listServices(ctx, pod.Namespace)
		if err != nil {
			return nil, fmt.Errorf("list services for the environment: %w", err)
		}
		for _, s := range list {
			out = append(out, s)
			seen[s.Name] = true
		}
	}
	if pod.Namespace != metav1.NamespaceDefault || !seen["kubernetes"] {
		s, err := k.getService(ctx, metav1.NamespaceDefault, "kubernetes")
		if err == nil {
			if seen["kubernetes"] {
				// a service of the pod's namespace named kubernetes is shadowed
				for i, o := range out {
					if o.Name == "kubernetes" {
						out[i] = s
					}
				}
			} else {
				out = append(out, s)
			}
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get the kubernetes service: %w", err)
		}
	}
	return out, nil
}

// allocatable is the node's allocatable resources.
func (k *Kubelet) allocatable() corev1.ResourceList {
	if k.cfg.Allocatable != nil {
		return k.cfg.Allocatable
	}
	return k.cfg.Capacity
}

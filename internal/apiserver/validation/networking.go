package validation

import (
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	ingressClassAnnotation       = "kubernetes.io/ingress.class"
	maxLenIngressClassController = 250
)

var (
	supportedPathTypes   = []string{string(networkingv1.PathTypeExact), string(networkingv1.PathTypeImplementationSpecific), string(networkingv1.PathTypePrefix)}
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
)

// Ingress

func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMeta(&ing.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateIngressSpec(&ing.Spec, field.NewPath("spec"))...)
}

func validateIngressCreate(ing *networkingv1.Ingress) field.ErrorList {
	allErrs := validateIngress(ing)
	if v, ok := ing.Annotations[ingressClassAnnotation]; ok && ing.Spec.IngressClassName != nil && v != *ing.Spec.IngressClassName {
		allErrs = append(allErrs, field.Invalid(field.NewPath("annotations").Child(ingressClassAnnotation), v, "must match `ingressClassName` when both are specified"))
	}
	return allErrs
}

func validateIngressUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validateIngress(ing)...)
}

func validateIngressSpec(spec *networkingv1.IngressSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		allErrs = append(allErrs, field.Invalid(fldPath, internalValue(spec.Rules), "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		allErrs = append(allErrs, validateIngressBackend(spec.DefaultBackend, fldPath.Child("defaultBackend"))...)
	}
	for i, rule := range spec.Rules {
		p := fldPath.Child("rules").Index(i)
		if rule.Host != "" {
			if net.ParseIP(rule.Host) != nil {
				allErrs = append(allErrs, field.Invalid(p.Child("host"), rule.Host, "must be a DNS name, not an IP address"))
			}
			if strings.Contains(rule.Host, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(rule.Host) {
					allErrs = append(allErrs, field.Invalid(p.Child("host"), rule.Host, msg))
				}
			} else {
				allErrs = append(allErrs, validateDNS1123Subdomain(rule.Host, p.Child("host"))...)
			}
		}
		if http := rule.HTTP; http != nil {
			hp := p.Child("http")
			if len(http.Paths) == 0 {
				allErrs = append(allErrs, field.Required(hp.Child("paths"), ""))
			}
			for j := range http.Paths {
				allErrs = append(allErrs, validateHTTPIngressPath(&http.Paths[j], hp.Child("paths").Index(j))...)
			}
		}
	}
	tlsPath := fldPath.Child("tls")
	for i, tls := range spec.TLS {
		for j, host := range tls.Hosts {
			hp := tlsPath.Index(i).Child("hosts").Index(j)
			if strings.Contains(host, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(host) {
					allErrs = append(allErrs, field.Invalid(hp, host, msg))
				}
				continue
			}
			allErrs = append(allErrs, validateDNS1123Subdomain(host, hp)...)
		}
		if tls.SecretName != "" {
			allErrs = append(allErrs, validateName(tls.SecretName, nameIsDNSSubdomain, tlsPath.Index(i).Child("secretName"))...)
		}
	}
	if spec.IngressClassName != nil {
		allErrs = append(allErrs, validateName(*spec.IngressClassName, nameIsDNSSubdomain, fldPath.Child("ingressClassName"))...)
	}
	return allErrs
}

func validateHTTPIngressPath(p *networkingv1.HTTPIngressPath, fldPath *field.Path) field.ErrorList {
	if p.PathType == nil {
		return field.ErrorList{field.Required(fldPath.Child("pathType"), "pathType must be specified")}
	}
	var allErrs field.ErrorList
	switch *p.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(p.Path, "/") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p.Path, "must be an absolute path"))
		}
		if p.Path != "" {
			for _, seq := range invalidPathSequences {
				if strings.Contains(p.Path, seq) {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p.Path, fmt.Sprintf("must not contain '%s'", seq)))
				}
			}
			for _, suf := range invalidPathSuffixes {
				if strings.HasSuffix(p.Path, suf) {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p.Path, fmt.Sprintf("cannot end with '%s'", suf)))
				}
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p.Path, "must be an absolute path"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("pathType"), *p.PathType, supportedPathTypes))
	}
	return append(allErrs, validateIngressBackend(&p.Backend, fldPath.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, fldPath *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(fldPath, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		return validateTypedLocalObjectReference(b.Resource, fldPath.Child("resource"))
	case b.Service != nil:
		var allErrs field.ErrorList
		if b.Service.Name == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("service", "name"), ""))
		} else {
			allErrs = append(allErrs, validateName(b.Service.Name, nameIsDNS1035Label, fldPath.Child("service", "name"))...)
		}
		port := b.Service.Port
		switch {
		case port.Name != "" && port.Number != 0:
			allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
		case port.Name != "":
			for _, msg := range validation.IsValidPortName(port.Name) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "name"), port.Name, msg))
			}
		case port.Number != 0:
			for _, msg := range validation.IsValidPortNum(int(port.Number)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("service", "port", "number"), port.Number, msg))
			}
		default:
			allErrs = append(allErrs, field.Required(fldPath, "port name or number is required"))
		}
		return allErrs
	}
	return field.ErrorList{field.Invalid(fldPath, "", "resource or service backend is required")}
}

func validateTypedLocalObjectReference(r *corev1.TypedLocalObjectReference, fldPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var allErrs field.ErrorList
	if r.APIGroup != nil {
		allErrs = append(allErrs, validateDNS1123Subdomain(*r.APIGroup, fldPath.Child("apiGroup"))...)
	}
	if r.Kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), "kind is required"))
	} else {
		allErrs = append(allErrs, validateName(r.Kind, path.ValidatePathSegmentName, fldPath.Child("kind"))...)
	}
	if r.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "name is required"))
	} else {
		allErrs = append(allErrs, validateName(r.Name, path.ValidatePathSegmentName, fldPath.Child("name"))...)
	}
	return allErrs
}

func validateIngressStatusUpdate(ing, old *networkingv1.Ingress) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ing.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	for i, lb := range ing.Status.LoadBalancer.Ingress {
		p := field.NewPath("status", "loadBalancer").Child("ingress").Index(i)
		if lb.IP != "" {
			allErrs = append(allErrs, validateIP(p.Child("ip"), lb.IP)...)
		}
		allErrs = append(allErrs, validateLoadBalancerHostname(lb.Hostname, p.Child("hostname"))...)
	}
	return allErrs
}

// IngressClass

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMeta(&ic.ObjectMeta, false, nameIsDNSSubdomain, field.NewPath("metadata"))
	specPath := field.NewPath("spec")
	if len(ic.Spec.Controller) > maxLenIngressClassController {
		allErrs = append(allErrs, field.TooLong(specPath.Child("controller"), "", maxLenIngressClassController))
	}
	allErrs = append(allErrs, validation.IsDomainPrefixedPath(specPath.Child("controller"), ic.Spec.Controller)...)
	if p := ic.Spec.Parameters; p != nil {
		pp := specPath.Child("parameters")
		allErrs = append(allErrs, validateTypedLocalObjectReference(&corev1.TypedLocalObjectReference{APIGroup: p.APIGroup, Kind: p.Kind, Name: p.Name}, pp)...)
		scopes := []string{networkingv1.IngressClassParametersReferenceScopeCluster, networkingv1.IngressClassParametersReferenceScopeNamespace}
		switch deref(p.Scope, "\x00") {
		case "\x00":
			allErrs = append(allErrs, field.Required(pp.Child("scope"), ""))
		case networkingv1.IngressClassParametersReferenceScopeNamespace:
			if p.Namespace == nil {
				allErrs = append(allErrs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
			} else {
				allErrs = append(allErrs, validateName(*p.Namespace, nameIsDNSLabel, pp.Child("namespace"))...)
			}
		case networkingv1.IngressClassParametersReferenceScopeCluster:
			if p.Namespace != nil {
				allErrs = append(allErrs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
			}
		default:
			allErrs = append(allErrs, field.NotSupported(pp.Child("scope"), *p.Scope, scopes))
		}
	}
	return allErrs
}

func validateIngressClassUpdate(ic, old *networkingv1.IngressClass) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&ic.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateImmutableField(ic.Spec.Controller, old.Spec.Controller, field.NewPath("spec").Child("controller"))...)
	return append(allErrs, validateIngressClass(ic)...)
}

// NetworkPolicy

func validateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	allErrs := validateObjectMeta(&np.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	return append(allErrs, validateNetworkPolicySpec(&np.Spec, field.NewPath("spec"))...)
}

func validateNetworkPolicyUpdate(np, old *networkingv1.NetworkPolicy) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&np.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validateNetworkPolicySpec(&np.Spec, field.NewPath("spec"))...)
}

func validateNetworkPolicySpec(spec *networkingv1.NetworkPolicySpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateLabelSelector(&spec.PodSelector, fldPath.Child("podSelector"))
	for i, rule := range spec.Ingress {
		p := fldPath.Child("ingress").Index(i)
		for j := range rule.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(&rule.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range rule.From {
			allErrs = append(allErrs, validateNetworkPolicyPeer(&rule.From[j], p.Child("from").Index(j))...)
		}
	}
	for i, rule := range spec.Egress {
		p := fldPath.Child("egress").Index(i)
		for j := range rule.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(&rule.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range rule.To {
			allErrs = append(allErrs, validateNetworkPolicyPeer(&rule.To[j], p.Child("to").Index(j))...)
		}
	}
	ptPath := fldPath.Child("policyTypes")
	if len(spec.PolicyTypes) > 2 {
		return append(allErrs, field.Invalid(ptPath, &spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			allErrs = append(allErrs, field.NotSupported(ptPath.Index(i), t, []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}))
		}
	}
	return allErrs
}

func validateNetworkPolicyPort(port *networkingv1.NetworkPolicyPort, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if port.Protocol != nil && !isProtocolSupported(*port.Protocol) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("protocol"), *port.Protocol, []string{string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP)}))
	}
	if port.Port == nil {
		if port.EndPort != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is not specified"))
		}
		return allErrs
	}
	if port.Port.Type == intstr.Int {
		for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port.IntVal, msg))
		}
		if port.EndPort != nil {
			if *port.EndPort < port.Port.IntVal {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), port.Port.IntVal, "must be greater than or equal to `port`"))
			}
			for _, msg := range validation.IsValidPortNum(int(*port.EndPort)) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, msg))
			}
		}
		return allErrs
	}
	if port.EndPort != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
	}
	for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port.StrVal, msg))
	}
	return allErrs
}

func validateNetworkPolicyPeer(peer *networkingv1.NetworkPolicyPeer, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.PodSelector, fldPath.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.NamespaceSelector, fldPath.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		allErrs = append(allErrs, validateIPBlock(peer.IPBlock, fldPath.Child("ipBlock"))...)
	}
	if n == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a peer"))
	} else if n > 1 && peer.IPBlock != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath, "may not specify both ipBlock and another peer"))
	}
	return allErrs
}

func validateIPBlock(b *networkingv1.IPBlock, fldPath *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(fldPath.Child("cidr"), "")}
	}
	allErrs := validateCIDR(fldPath.Child("cidr"), b.CIDR)
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil {
		return allErrs
	}
	for i, ex := range b.Except {
		p := fldPath.Child("except").Index(i)
		errs := validateCIDR(p, ex)
		allErrs = append(allErrs, errs...)
		_, exNet, err := net.ParseCIDR(ex)
		if err != nil {
			continue
		}
		cidrLen, _ := cidr.Mask.Size()
		exLen, _ := exNet.Mask.Size()
		if !cidr.Contains(exNet.IP) || cidrLen >= exLen {
			allErrs = append(allErrs, field.Invalid(p, ex, "must be a strict subset of `cidr`"))
		}
	}
	return allErrs
}

package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/auth"
)

// Upstream's TokenRequest limits and the kubelet's projected-token
// lifetime, which upstream extends to a year (warning after the asked-for
// hour) for pod-bound tokens meant for the API server
// (--service-account-extend-token-expiration, on by default).
const (
	defaultTokenSeconds  int64 = 60 * 60
	minTokenSeconds      int64 = 10 * 60
	maxTokenSeconds      int64 = 1 << 32
	warnOnlyTokenSeconds int64 = 3607
	extendedTokenSeconds int64 = 365 * 24 * 60 * 60
)

var tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// ServiceAccountObjects reads service accounts, pods and secrets from the
// watch cache, for the service-account token authenticator.
func (s *Server) ServiceAccountObjects() auth.ServiceAccountObjects { return saObjects{s} }

type saObjects struct{ s *Server }

func getTyped[T any](ctx context.Context, s *Server, resource, ns, name string) (T, error) {
	var zero T
	st := s.storages[schema.GroupResource{Resource: resource}]
	if st == nil {
		return zero, apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
	}
	obj, err := st.GetObject(ctx, ns, name, "0")
	if err != nil {
		return zero, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("%s %s/%s: unexpected type %T", resource, ns, name, obj)
	}
	return t, nil
}

func (o saObjects) ServiceAccount(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	return getTyped[*corev1.ServiceAccount](ctx, o.s, "serviceaccounts", ns, name)
}

func (o saObjects) Pod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return getTyped[*corev1.Pod](ctx, o.s, "pods", ns, name)
}

func (o saObjects) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return getTyped[*corev1.Secret](ctx, o.s, "secrets", ns, name)
}

// validateTokenRequest defaults and checks a TokenRequest as upstream's
// registry does before issuing: the name and namespace, if given, must be
// the service account's; audiences default to the API server's;
// expirationSeconds lies in [10 minutes, 2^32 s].
func validateTokenRequest(req *authenticationv1.TokenRequest, ns, name string, apiAudiences []string) error {
	gk := tokenRequestGVK.GroupKind()
	if req.Name != "" && req.Name != name {
		return apierrors.NewInvalid(gk, name, field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), req.Name,
			"must match the service account name if specified")})
	}
	if req.Namespace != "" && req.Namespace != ns {
		return apierrors.NewInvalid(gk, name, field.ErrorList{field.Invalid(field.NewPath("metadata", "namespace"), req.Namespace,
			"must match the service account namespace if specified")})
	}
	req.Name, req.Namespace = name, ns
	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = append([]string(nil), apiAudiences...)
	}
	if req.Spec.ExpirationSeconds == nil {
		v := defaultTokenSeconds
		req.Spec.ExpirationSeconds = &v
	}
	var errs field.ErrorList
	p := field.NewPath("spec", "expirationSeconds")
	if exp := *req.Spec.ExpirationSeconds; exp < minTokenSeconds {
		errs = append(errs, field.Invalid(p, exp, "may not specify a duration less than 10 minutes"))
	} else if exp > maxTokenSeconds {
		errs = append(errs, field.Invalid(p, exp, "may not specify a duration larger than 2^32 seconds"))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(gk, "", errs)
	}
	return nil
}

// tokenLifetime is how long an issued token is valid and, for an extended
// token, after how long it warns: upstream extends a pod-bound request of
// exactly 3607 s for the API server's audiences to a year.
func tokenLifetime(expirationSeconds int64, podBound bool, audiences, apiAudiences []string) (exp, warnAfter time.Duration) {
	exp = time.Duration(expirationSeconds) * time.Second
	if podBound && expirationSeconds == warnOnlyTokenSeconds && len(audiences) > 0 &&
		!slices.ContainsFunc(audiences, func(a string) bool { return !slices.Contains(apiAudiences, a) }) {
		return time.Duration(extendedTokenSeconds) * time.Second, exp
	}
	return exp, 0
}

// createToken serves POST serviceaccounts/{name}/token: it issues a token
// for the service account, bound to a pod or secret when asked, and
// answers 201 with the TokenRequest carrying the token.
func (c *call) createToken() error {
	issuer := tokenIssuer(c.s.cfg.Authenticator)
	if issuer == nil {
		return apierrors.NewServiceUnavailable("service account token issuing is not configured")
	}
	body, err := c.readBody()
	if err != nil {
		return err
	}
	obj, err := c.decodeBody(body, tokenRequestGVK)
	if err != nil {
		return err
	}
	req := obj.(*authenticationv1.TokenRequest)
	ns, name := c.info.Namespace, c.info.Name
	objs := saObjects{c.s}
	sa, err := objs.ServiceAccount(c.ctx, ns, name)
	if err != nil {
		return err
	}
	if err := validateTokenRequest(req, ns, name, issuer.Audiences); err != nil {
		return err
	}
	now := c.now
	req.CreationTimestamp = metav1.NewTime(now)
	req.Status = authenticationv1.TokenRequestStatus{}

	tr := auth.TokenRequest{ServiceAccount: sa, Audiences: req.Spec.Audiences, Now: now, ID: uuid.NewString()}
	if ref := req.Spec.BoundObjectRef; ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("boundObjectRef.apiVersion %q: %v", ref.APIVersion, err))
		}
		gvk := gv.WithKind(ref.Kind)
		var uid string
		switch {
		case gvk.Group == "" && gvk.Kind == "Pod":
			pod, err := objs.Pod(c.ctx, ns, ref.Name)
			if err != nil {
				return err
			}
			if pod.Spec.ServiceAccountName != name {
				return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", name))
			}
			tr.Pod, uid = pod, string(pod.UID)
			if pod.Spec.NodeName != "" {
				tr.Node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.NodeName}}
				if st := c.s.storages[schema.GroupResource{Resource: "nodes"}]; st != nil {
					if n, err := st.GetObject(c.ctx, "", pod.Spec.NodeName, "0"); err == nil {
						tr.Node = n.(*corev1.Node)
					}
				}
			}
		case gvk.Group == "" && gvk.Kind == "Secret":
			secret, err := objs.Secret(c.ctx, ns, ref.Name)
			if err != nil {
				return err
			}
			tr.Secret, uid = secret, string(secret.UID)
		default:
			return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", gvk.String()))
		}
		if ref.UID != "" && string(ref.UID) != uid {
			return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name,
				fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
		}
	}
	tr.Expiration, tr.WarnAfter = tokenLifetime(*req.Spec.ExpirationSeconds, tr.Pod != nil, req.Spec.Audiences, issuer.Audiences)
	token, err := issuer.Sign(auth.NewTokenClaims(issuer.Issuer, tr))
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	out := req.DeepCopy()
	out.Status = authenticationv1.TokenRequestStatus{
		Token:               token,
		ExpirationTimestamp: metav1.NewTime(now.Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second)),
	}
	out.SetGroupVersionKind(tokenRequestGVK)
	c.s.log.Debug("service account token issued", "serviceaccount", ns+"/"+name, "audiences", req.Spec.Audiences,
		"pod", boundName(tr.Pod), "user", c.userOf())
	if c.out.proto {
		msg, err := marshalProto(out)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		writeBytes(c.w, http.StatusCreated, protobufType, protoEnvelope(tokenRequestGVK, msg))
		return nil
	}
	data, ct, err := c.out.encode(out)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	writeBytes(c.w, http.StatusCreated, ct, data)
	return nil
}

// tokenIssuer finds the issuer of the service-account token authenticator
// in the server's authenticator (a Union), so the server issues exactly
// the tokens it accepts; nil when there is none.
func tokenIssuer(a auth.Authenticator) *auth.ServiceAccountIssuer {
	switch x := a.(type) {
	case *auth.ServiceAccountTokens:
		return x.Issuer
	case auth.Union:
		for _, y := range x {
			if i := tokenIssuer(y); i != nil {
				return i
			}
		}
	}
	return nil
}

func boundName(p *corev1.Pod) string {
	if p == nil {
		return ""
	}
	return p.Name
}

package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultServiceAccountIssuer is upstream's --service-account-issuer
// default, which also serves as the API server's audience.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Service-account user names and groups, as upstream spells them.
const (
	ServiceAccountUsernamePrefix = "system:serviceaccount:"
	ServiceAccountsGroup         = "system:serviceaccounts"
)

// Keys of User.Extra for a token bound to a pod, as upstream names them.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// tokenLeeway tolerates clock skew on exp, nbf and iat, as upstream's
// validator does.
const tokenLeeway = time.Minute

// invalidationGrace is how long after a bound object's deletion began its
// tokens are still accepted, as upstream.
const invalidationGrace = 60 * time.Second

// errNotOurs marks a bearer token that is not a JWT from this issuer; the
// next authenticator may know it.
var errNotOurs = errors.New("not a service account token of this issuer")

// ObjectRef names a bound object in a token.
type ObjectRef struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// KubernetesClaims is the "kubernetes.io" private claim of a
// service-account token.
type KubernetesClaims struct {
	Namespace      string     `json:"namespace,omitempty"`
	ServiceAccount ObjectRef  `json:"serviceaccount"`
	Pod            *ObjectRef `json:"pod,omitempty"`
	Secret         *ObjectRef `json:"secret,omitempty"`
	Node           *ObjectRef `json:"node,omitempty"`
	// WarnAfter is set on tokens whose lifetime was extended beyond what
	// was asked for; clients should have refreshed them by then.
	WarnAfter int64 `json:"warnafter,omitempty"`
}

// TokenClaims are the claims of a service-account token.
type TokenClaims struct {
	Issuer     string            `json:"iss"`
	Subject    string            `json:"sub"`
	Audience   []string          `json:"aud"`
	Expiry     int64             `json:"exp"`
	IssuedAt   int64             `json:"iat"`
	NotBefore  int64             `json:"nbf"`
	ID         string            `json:"jti,omitempty"`
	Kubernetes *KubernetesClaims `json:"kubernetes.io,omitempty"`
}

// TokenRequest describes a token to issue: for whom, to whom, for how long
// and bound to which objects (pod, secret and node may be nil).
type TokenRequest struct {
	ServiceAccount *corev1.ServiceAccount
	Pod            *corev1.Pod
	Secret         *corev1.Secret
	Node           *corev1.Node
	Audiences      []string
	Now            time.Time
	Expiration     time.Duration
	// WarnAfter, when not zero, is the lifetime asked for of a token
	// issued with a longer Expiration.
	WarnAfter time.Duration
	ID        string
}

// NewTokenClaims computes the claims of a token for r, as upstream's
// token.Claims does.
func NewTokenClaims(issuer string, r TokenRequest) TokenClaims {
	sa := r.ServiceAccount
	now := r.Now.Unix()
	c := TokenClaims{
		Issuer:    issuer,
		Subject:   ServiceAccountUsernamePrefix + sa.Namespace + ":" + sa.Name,
		Audience:  append([]string(nil), r.Audiences...),
		Expiry:    r.Now.Add(r.Expiration).Unix(),
		IssuedAt:  now,
		NotBefore: now,
		ID:        r.ID,
		Kubernetes: &KubernetesClaims{
			Namespace:      sa.Namespace,
			ServiceAccount: ObjectRef{Name: sa.Name, UID: string(sa.UID)},
		},
	}
	if r.Pod != nil {
		c.Kubernetes.Pod = &ObjectRef{Name: r.Pod.Name, UID: string(r.Pod.UID)}
	}
	if r.Secret != nil {
		c.Kubernetes.Secret = &ObjectRef{Name: r.Secret.Name, UID: string(r.Secret.UID)}
	}
	if r.Node != nil {
		c.Kubernetes.Node = &ObjectRef{Name: r.Node.Name, UID: string(r.Node.UID)}
	}
	if r.WarnAfter > 0 {
		c.Kubernetes.WarnAfter = r.Now.Add(r.WarnAfter).Unix()
	}
	return c
}

// ServiceAccountIssuer signs service-account tokens (JWS compact
// serialization, ES256 for an ECDSA P-256 key, RS256 for an RSA key) and
// verifies its own.
type ServiceAccountIssuer struct {
	key crypto.Signer
	alg string
	kid string
	// Issuer is the iss claim of issued tokens.
	Issuer string
	// Audiences are the API server's own; a token must name one of them
	// to authenticate to it. The first is the default of TokenRequests.
	Audiences []string
}

// NewServiceAccountIssuer returns an issuer signing with key as issuer;
// the API audiences default to the issuer, as upstream's.
func NewServiceAccountIssuer(key crypto.Signer, issuer string, audiences ...string) (*ServiceAccountIssuer, error) {
	if issuer == "" {
		issuer = DefaultServiceAccountIssuer
	}
	if len(audiences) == 0 {
		audiences = []string{issuer}
	}
	i := &ServiceAccountIssuer{key: key, Issuer: issuer, Audiences: audiences}
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("service-account key: only the P-256 curve is supported")
		}
		i.alg = "ES256"
	case *rsa.PublicKey:
		i.alg = "RS256"
	default:
		return nil, fmt.Errorf("service-account key: unsupported key type %T", k)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	// Upstream's key id: the hash of the public key's DER.
	sum := sha256.Sum256(der)
	i.kid = base64.RawURLEncoding.EncodeToString(sum[:])
	return i, nil
}

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// Sign returns the signed token of c.
func (i *ServiceAccountIssuer) Sign(c TokenClaims) (string, error) {
	h, err := json.Marshal(jwsHeader{Alg: i.alg, Kid: i.kid})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := i.key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			return "", fmt.Errorf("sign token: %w", err)
		}
		// JWS wants the two 32-byte integers, not ASN.1.
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:]); err != nil {
			return "", fmt.Errorf("sign token: %w", err)
		}
	default:
		return "", fmt.Errorf("sign token: unsupported signer %T", k)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Parse checks token's signature and issuer and returns its claims. It
// wraps errNotOurs when the token is not one of this issuer's, so another
// authenticator may try it. Times and audiences are checked by Validate.
func (i *ServiceAccountIssuer) Parse(token string) (*TokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errNotOurs
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errNotOurs
	}
	var h jwsHeader
	var c TokenClaims
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &c) != nil {
		return nil, errNotOurs
	}
	if c.Issuer != i.Issuer {
		return nil, errNotOurs
	}
	if h.Alg != i.alg {
		return nil, fmt.Errorf("token signed with %q, want %q", h.Alg, i.alg)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch k := i.key.Public().(type) {
	case *ecdsa.PublicKey:
		if len(sig) != 64 || !ecdsa.Verify(k, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil, errors.New("invalid token signature")
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) != nil {
			return nil, errors.New("invalid token signature")
		}
	}
	return &c, nil
}

// Validate checks a parsed token's times (with upstream's one-minute
// leeway), that it names one of audiences, and that it carries the
// service-account claims.
func Validate(c *TokenClaims, audiences []string, now time.Time) error {
	n := now.Unix()
	leeway := int64(tokenLeeway / time.Second)
	switch {
	case c.Expiry == 0 || n > c.Expiry+leeway:
		return errors.New("token has expired")
	case c.NotBefore != 0 && n+leeway < c.NotBefore:
		return errors.New("token is not valid yet")
	case c.IssuedAt != 0 && n+leeway < c.IssuedAt:
		return errors.New("token issued in the future")
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(audiences, a) }) {
		return errors.New("token audiences are invalid")
	}
	k := c.Kubernetes
	if k == nil || k.Namespace == "" || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" {
		return errors.New("token lacks the kubernetes.io service account claims")
	}
	if c.Subject != ServiceAccountUsernamePrefix+k.Namespace+":"+k.ServiceAccount.Name {
		return errors.New("token subject does not match its service account claim")
	}
	return nil
}

// ServiceAccountObjects reads the objects a token names; a missing object
// is a NotFound API error.
type ServiceAccountObjects interface {
	ServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
	Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// CheckBound decides whether a token's service account and bound objects
// (nil when the token names none or they are gone) still stand: each must
// exist with the uid the token names and not have started deleting more
// than a minute before now, as upstream's validator decides.
func CheckBound(k *KubernetesClaims, sa *corev1.ServiceAccount, pod *corev1.Pod, secret *corev1.Secret, now time.Time) error {
	deletedLongAgo := func(dt *metav1.Time) bool {
		return dt != nil && dt.Time.Before(now.Add(-invalidationGrace))
	}
	if sa == nil {
		return fmt.Errorf("service account %s/%s has been deleted", k.Namespace, k.ServiceAccount.Name)
	}
	if string(sa.UID) != k.ServiceAccount.UID {
		return fmt.Errorf("service account uid (%s) does not match claim (%s)", sa.UID, k.ServiceAccount.UID)
	}
	if deletedLongAgo(sa.DeletionTimestamp) {
		return errors.New("token has been invalidated")
	}
	if k.Pod != nil {
		if pod == nil {
			return fmt.Errorf("pod %s/%s has been deleted", k.Namespace, k.Pod.Name)
		}
		if string(pod.UID) != k.Pod.UID {
			return fmt.Errorf("pod uid (%s) does not match claim (%s)", pod.UID, k.Pod.UID)
		}
		if deletedLongAgo(pod.DeletionTimestamp) {
			return errors.New("token has been invalidated")
		}
	}
	if k.Secret != nil {
		if secret == nil {
			return fmt.Errorf("secret %s/%s has been deleted", k.Namespace, k.Secret.Name)
		}
		if string(secret.UID) != k.Secret.UID {
			return fmt.Errorf("secret uid (%s) does not match claim (%s)", secret.UID, k.Secret.UID)
		}
		if deletedLongAgo(secret.DeletionTimestamp) {
			return errors.New("token has been invalidated")
		}
	}
	return nil
}

// ServiceAccountUser is the user a valid token authenticates as.
func ServiceAccountUser(c *TokenClaims) *User {
	k := c.Kubernetes
	u := &User{
		Name:   c.Subject,
		UID:    k.ServiceAccount.UID,
		Groups: []string{ServiceAccountsGroup, ServiceAccountsGroup + ":" + k.Namespace, "system:authenticated"},
	}
	extra := map[string][]string{}
	if k.Pod != nil {
		extra[ExtraPodName] = []string{k.Pod.Name}
		extra[ExtraPodUID] = []string{k.Pod.UID}
	}
	if k.Node != nil {
		extra[ExtraNodeName] = []string{k.Node.Name}
		if k.Node.UID != "" {
			extra[ExtraNodeUID] = []string{k.Node.UID}
		}
	}
	if c.ID != "" {
		extra[ExtraCredentialID] = []string{"JTI=" + c.ID}
	}
	if len(extra) > 0 {
		u.Extra = extra
	}
	return u
}

// ServiceAccountTokens authenticates bearer tokens issued by Issuer whose
// service account and bound objects still exist.
type ServiceAccountTokens struct {
	Issuer  *ServiceAccountIssuer
	Objects ServiceAccountObjects
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Authenticate implements Authenticator.
func (a *ServiceAccountTokens) Authenticate(r *http.Request) (*User, bool, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false, nil
	}
	c, err := a.Issuer.Parse(strings.TrimSpace(token))
	if errors.Is(err, errNotOurs) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("service account token: %w", err)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	if err := Validate(c, a.Issuer.Audiences, now); err != nil {
		return nil, false, fmt.Errorf("service account token: %w", err)
	}
	k := c.Kubernetes
	ctx := r.Context()
	sa, err := a.Objects.ServiceAccount(ctx, k.Namespace, k.ServiceAccount.Name)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, false, fmt.Errorf("service account token: %w", err)
		}
		sa = nil
	}
	var pod *corev1.Pod
	if k.Pod != nil {
		if pod, err = a.Objects.Pod(ctx, k.Namespace, k.Pod.Name); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, false, fmt.Errorf("service account token: %w", err)
			}
			pod = nil
		}
	}
	var secret *corev1.Secret
	if k.Secret != nil {
		if secret, err = a.Objects.Secret(ctx, k.Namespace, k.Secret.Name); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, false, fmt.Errorf("service account token: %w", err)
			}
			secret = nil
		}
	}
	if err := CheckBound(k, sa, pod, secret, now); err != nil {
		return nil, false, fmt.Errorf("service account token: %w", err)
	}
	return ServiceAccountUser(c), true, nil
}

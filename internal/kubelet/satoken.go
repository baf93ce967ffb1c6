package kubelet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Upstream's token manager refreshes a token once 80% of its lifetime
// passed or it is 24 hours old, whichever comes first, less a jitter of up
// to 10 s so pods started together do not refresh together.
const (
	tokenMaxTTL     = 24 * time.Hour
	tokenMaxJitter  = 10 * time.Second
	defaultTokenTTL = int64(3600)
)

// tokenManager caches the service-account tokens of projected volumes,
// asking the API (serviceaccounts/token) for a new one only when the
// cached one is due for a refresh: volumes are rewritten every few
// seconds, tokens must not be.
type tokenManager struct {
	client kubernetes.Interface
	// jitter returns the refresh jitter; tests make it zero.
	jitter func() time.Duration

	mu    sync.Mutex
	cache map[string]*authenticationv1.TokenRequest
}

func newTokenManager(client kubernetes.Interface) *tokenManager {
	return &tokenManager{
		client: client,
		jitter: func() time.Duration { return time.Duration(rand.Float64() * float64(tokenMaxJitter)) },
		cache:  map[string]*authenticationv1.TokenRequest{},
	}
}

// tokenKey identifies a token: the account, audiences, lifetime and bound
// object of its request.
func tokenKey(ns, sa string, tr *authenticationv1.TokenRequest) string {
	var exp int64
	if tr.Spec.ExpirationSeconds != nil {
		exp = *tr.Spec.ExpirationSeconds
	}
	ref := ""
	if b := tr.Spec.BoundObjectRef; b != nil {
		ref = fmt.Sprintf("%s/%s/%s/%s", b.APIVersion, b.Kind, b.Name, b.UID)
	}
	return fmt.Sprintf("%q/%q/%q/%d/%q", ns, sa, strings.Join(tr.Spec.Audiences, ","), exp, ref)
}

// requiresRefresh decides whether a cached token must be replaced at now,
// as upstream's kubelet: when it is older than 24 h or has less than 20%
// of its requested lifetime left, each less jitter.
func requiresRefresh(tr *authenticationv1.TokenRequest, now time.Time, jitter time.Duration) bool {
	if tr.Spec.ExpirationSeconds == nil {
		return true
	}
	ttl := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	exp := tr.Status.ExpirationTimestamp.Time
	iat := exp.Add(-ttl)
	if now.After(iat.Add(tokenMaxTTL - jitter)) {
		return true
	}
	return now.After(exp.Add(-ttl/5 - jitter))
}

// get returns a token for account sa in ns as tr asks, from the cache
// while it is fresh. When a refresh fails, a cached token that has not
// expired yet is still returned.
func (m *tokenManager) get(ctx context.Context, ns, sa string, tr *authenticationv1.TokenRequest, now time.Time) (*authenticationv1.TokenRequest, error) {
	key := tokenKey(ns, sa, tr)
	m.mu.Lock()
	cached := m.cache[key]
	// Forget tokens that expired: their pods are gone or will ask again.
	for k, t := range m.cache {
		if now.After(t.Status.ExpirationTimestamp.Time) {
			delete(m.cache, k)
		}
	}
	m.mu.Unlock()
	if cached != nil && !requiresRefresh(cached, now, m.jitter()) {
		return cached, nil
	}
	got, err := m.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		if cached != nil && now.Before(cached.Status.ExpirationTimestamp.Time) {
			return cached, nil
		}
		return nil, err
	}
	if got.Spec.ExpirationSeconds == nil {
		got.Spec.ExpirationSeconds = tr.Spec.ExpirationSeconds
	}
	m.mu.Lock()
	m.cache[key] = got
	m.mu.Unlock()
	return got, nil
}

// serviceAccountTokenPayload is the file of a serviceAccountToken
// projection: a token of the pod's service account for the projection's
// audience (default the API server's) and lifetime, bound to the pod.
func (m *volumeManager) serviceAccountTokenPayload(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, mode int32) (map[string]fileProjection, error) {
	exp := defaultTokenTTL
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	var auds []string
	if src.Audience != "" {
		auds = []string{src.Audience}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         auds,
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	got, err := m.tokens.get(ctx, pod.Namespace, pod.Spec.ServiceAccountName, tr, m.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("failed to fetch token: %w", err)
	}
	return map[string]fileProjection{src.Path: {Data: []byte(got.Status.Token), Mode: mode}}, nil
}

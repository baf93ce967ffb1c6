package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type fakeObjects struct {
	sas     map[string]*corev1.ServiceAccount
	pods    map[string]*corev1.Pod
	secrets map[string]*corev1.Secret
}

func notFound(res, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: res}, name)
}

func (f *fakeObjects) ServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	if o, ok := f.sas[ns+"/"+name]; ok {
		return o, nil
	}
	return nil, notFound("serviceaccounts", name)
}

func (f *fakeObjects) Pod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if o, ok := f.pods[ns+"/"+name]; ok {
		return o, nil
	}
	return nil, notFound("pods", name)
}

func (f *fakeObjects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if o, ok := f.secrets[ns+"/"+name]; ok {
		return o, nil
	}
	return nil, notFound("secrets", name)
}

func testIssuer(t *testing.T, key crypto.Signer) *ServiceAccountIssuer {
	t.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	i, err := NewServiceAccountIssuer(key, "")
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestServiceAccountTokenAuthenticate(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "default", UID: "sa-uid"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web", UID: "pod-uid"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := testIssuer(t, nil)
	rs := testIssuer(t, rsaKey)
	other := testIssuer(t, nil)

	base := TokenRequest{ServiceAccount: sa, Pod: pod, Node: node, Audiences: []string{DefaultServiceAccountIssuer},
		Now: now, Expiration: time.Hour, ID: "jti-1"}
	tests := []struct {
		name    string
		signer  *ServiceAccountIssuer
		req     func(r TokenRequest) TokenRequest
		objects func(o *fakeObjects)
		mangle  func(string) string
		at      time.Duration
		wantOK  bool
		wantErr string
	}{
		{name: "valid ES256", signer: ec, wantOK: true},
		{name: "valid RS256", signer: rs, wantOK: true},
		{name: "expired", signer: ec, at: 2 * time.Hour, wantErr: "expired"},
		{name: "within leeway after expiry", signer: ec, at: time.Hour + 30*time.Second, wantOK: true},
		{name: "wrong audience", signer: ec, req: func(r TokenRequest) TokenRequest { r.Audiences = []string{"vault"}; return r },
			wantErr: "audiences"},
		{name: "other key, same issuer", signer: other, wantErr: "signature"},
		{name: "tampered payload", signer: ec, mangle: func(s string) string {
			p := strings.Split(s, ".")
			return p[0] + "." + p[1] + "x." + p[2]
		}, wantOK: false},
		{name: "not a jwt", signer: ec, mangle: func(string) string { return "static-token" }},
		{name: "service account deleted", signer: ec, objects: func(o *fakeObjects) { delete(o.sas, "ns1/default") }, wantErr: "deleted"},
		{name: "service account recreated", signer: ec, objects: func(o *fakeObjects) {
			o.sas["ns1/default"] = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "default", UID: "new"}}
		}, wantErr: "does not match"},
		{name: "pod deleted", signer: ec, objects: func(o *fakeObjects) { delete(o.pods, "ns1/web") }, wantErr: "deleted"},
		{name: "pod deleting for long", signer: ec, objects: func(o *fakeObjects) {
			p := pod.DeepCopy()
			p.DeletionTimestamp = &metav1.Time{Time: now.Add(-2 * time.Minute)}
			o.pods["ns1/web"] = p
		}, wantErr: "invalidated"},
		{name: "pod deleting just now", signer: ec, objects: func(o *fakeObjects) {
			p := pod.DeepCopy()
			p.DeletionTimestamp = &metav1.Time{Time: now.Add(-10 * time.Second)}
			o.pods["ns1/web"] = p
		}, wantOK: true},
		{name: "unbound token", signer: ec, req: func(r TokenRequest) TokenRequest { r.Pod, r.Node = nil, nil; return r },
			objects: func(o *fakeObjects) { delete(o.pods, "ns1/web") }, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := &fakeObjects{sas: map[string]*corev1.ServiceAccount{"ns1/default": sa}, pods: map[string]*corev1.Pod{"ns1/web": pod}}
			if tt.objects != nil {
				tt.objects(objs)
			}
			req := base
			if tt.req != nil {
				req = tt.req(req)
			}
			tok, err := tt.signer.Sign(NewTokenClaims(tt.signer.Issuer, req))
			if err != nil {
				t.Fatal(err)
			}
			if tt.mangle != nil {
				tok = tt.mangle(tok)
			}
			verifier := ec
			if tt.signer == rs {
				verifier = rs
			}
			a := &ServiceAccountTokens{Issuer: verifier, Objects: objs, Now: func() time.Time { return now.Add(tt.at) }}
			r := httptest.NewRequest("GET", "/api", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			u, ok, err := a.Authenticate(r)
			if ok != tt.wantOK {
				t.Fatalf("ok: got %v, want %v (err %v)", ok, tt.wantOK, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err: got %v, want one containing %q", err, tt.wantErr)
			}
			if !ok {
				return
			}
			if u.Name != "system:serviceaccount:ns1:default" || u.UID != "sa-uid" {
				t.Errorf("user: got %s (uid %s), want system:serviceaccount:ns1:default (uid sa-uid)", u.Name, u.UID)
			}
			wantGroups := []string{"system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"}
			if !slices.Equal(u.Groups, wantGroups) {
				t.Errorf("groups: got %v, want %v", u.Groups, wantGroups)
			}
			if req.Pod != nil {
				if got := u.Extra[ExtraPodName]; !slices.Equal(got, []string{"web"}) {
					t.Errorf("extra pod-name: got %v, want [web]", got)
				}
				if got := u.Extra[ExtraPodUID]; !slices.Equal(got, []string{"pod-uid"}) {
					t.Errorf("extra pod-uid: got %v, want [pod-uid]", got)
				}
			} else if _, has := u.Extra[ExtraPodName]; has {
				t.Errorf("unbound token: got extra pod-name %v, want none", u.Extra[ExtraPodName])
			}
		})
	}
}

func TestNewTokenClaims(t *testing.T) {
	now := time.Unix(1_000, 0)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "b", UID: "u"}}
	c := NewTokenClaims("iss", TokenRequest{ServiceAccount: sa, Audiences: []string{"x"}, Now: now,
		Expiration: 365 * 24 * time.Hour, WarnAfter: 3607 * time.Second, ID: "j"})
	if c.Subject != "system:serviceaccount:a:b" {
		t.Errorf("sub: got %q, want system:serviceaccount:a:b", c.Subject)
	}
	if c.Expiry != 1_000+365*24*3600 || c.IssuedAt != 1_000 || c.NotBefore != 1_000 {
		t.Errorf("times: got exp %d iat %d nbf %d, want %d 1000 1000", c.Expiry, c.IssuedAt, c.NotBefore, 1_000+365*24*3600)
	}
	if c.Kubernetes.WarnAfter != 1_000+3607 {
		t.Errorf("warnafter: got %d, want %d", c.Kubernetes.WarnAfter, 1_000+3607)
	}
	if c.Kubernetes.Pod != nil || c.Kubernetes.Namespace != "a" || c.Kubernetes.ServiceAccount.UID != "u" {
		t.Errorf("kubernetes.io claim: got %+v", c.Kubernetes)
	}
}

func TestServiceAccountTokensInUnionFallThrough(t *testing.T) {
	// A static token is not a JWT of the issuer: the token table must
	// still see it.
	u := Union{&ServiceAccountTokens{Issuer: testIssuer(t, nil), Objects: &fakeObjects{}},
		NewTokens(map[string]User{"abc": {Name: "alice"}})}
	r := httptest.NewRequest("GET", "/api", nil)
	r.Header.Set("Authorization", "Bearer abc")
	got, ok, err := u.Authenticate(r)
	if !ok || err != nil || got.Name != "alice" {
		t.Errorf("got %v %v %v, want alice", got, ok, err)
	}
}

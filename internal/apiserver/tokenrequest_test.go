package apiserver

import (
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/auth"
)

func TestValidateTokenRequest(t *testing.T) {
	api := []string{"https://kubernetes.default.svc.cluster.local"}
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name      string
		req       authenticationv1.TokenRequest
		wantCode  int32
		wantMsg   string
		wantExp   int64
		wantAudie string
	}{
		{name: "defaults", wantExp: 3600, wantAudie: api[0]},
		{name: "own audience and duration", req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{"vault"}, ExpirationSeconds: i64(7200)}}, wantExp: 7200, wantAudie: "vault"},
		{name: "minimum", req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: i64(600)}}, wantExp: 600, wantAudie: api[0]},
		{name: "too short", req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: i64(599)}},
			wantCode: 422, wantMsg: "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"},
		{name: "too long", req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: i64(1<<32 + 1)}},
			wantCode: 422, wantMsg: "may not specify a duration larger than 2^32 seconds"},
		{name: "other name", req: authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
			wantCode: 422, wantMsg: "metadata.name: Invalid value: \"other\": must match the service account name if specified"},
		{name: "other namespace", req: authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "x"}},
			wantCode: 422, wantMsg: "must match the service account namespace if specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req.DeepCopy()
			err := validateTokenRequest(req, "ns1", "default", api)
			if tt.wantCode != 0 {
				se, ok := err.(apierrors.APIStatus)
				if !ok {
					t.Fatalf("got %v, want a %d status", err, tt.wantCode)
				}
				if se.Status().Code != tt.wantCode || !strings.Contains(se.Status().Message, tt.wantMsg) {
					t.Errorf("got %d %q, want %d containing %q", se.Status().Code, se.Status().Message, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *req.Spec.ExpirationSeconds != tt.wantExp || req.Spec.Audiences[0] != tt.wantAudie {
				t.Errorf("got exp %d aud %v, want %d [%s]", *req.Spec.ExpirationSeconds, req.Spec.Audiences, tt.wantExp, tt.wantAudie)
			}
			if req.Name != "default" || req.Namespace != "ns1" {
				t.Errorf("got %s/%s, want ns1/default", req.Namespace, req.Name)
			}
		})
	}
}

func TestTokenLifetime(t *testing.T) {
	api := []string{"https://kubernetes.default.svc.cluster.local"}
	year := 365 * 24 * time.Hour
	tests := []struct {
		name     string
		exp      int64
		pod      bool
		auds     []string
		wantExp  time.Duration
		wantWarn time.Duration
	}{
		{name: "kubelet projected token is extended", exp: 3607, pod: true, auds: api, wantExp: year, wantWarn: 3607 * time.Second},
		{name: "not bound to a pod", exp: 3607, auds: api, wantExp: 3607 * time.Second},
		{name: "other audience", exp: 3607, pod: true, auds: []string{"vault"}, wantExp: 3607 * time.Second},
		{name: "other duration", exp: 3600, pod: true, auds: api, wantExp: time.Hour},
	}
	for _, tt := range tests {
		exp, warn := tokenLifetime(tt.exp, tt.pod, tt.auds, api)
		if exp != tt.wantExp || warn != tt.wantWarn {
			t.Errorf("%s: got %v/%v, want %v/%v", tt.name, exp, warn, tt.wantExp, tt.wantWarn)
		}
	}
}

func TestTokenIssuerFromUnion(t *testing.T) {
	i := &auth.ServiceAccountIssuer{Issuer: "x"}
	if got := tokenIssuer(auth.Union{auth.X509{}, &auth.ServiceAccountTokens{Issuer: i}}); got != i {
		t.Errorf("got %v, want the union's issuer", got)
	}
	if got := tokenIssuer(auth.Union{auth.X509{}}); got != nil {
		t.Errorf("got %v, want nil", got)
	}
}

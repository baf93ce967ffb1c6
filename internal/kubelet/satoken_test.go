package kubelet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func TestRequiresRefresh(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := func(ttl int64) *authenticationv1.TokenRequest {
		return &authenticationv1.TokenRequest{
			Spec:   authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(ttl)},
			Status: authenticationv1.TokenRequestStatus{ExpirationTimestamp: metav1.NewTime(issued.Add(time.Duration(ttl) * time.Second))},
		}
	}
	tests := []struct {
		name   string
		ttl    int64
		after  time.Duration
		jitter time.Duration
		want   bool
	}{
		{name: "fresh", ttl: 3607, after: 10 * time.Minute, want: false},
		{name: "just under 80%", ttl: 3600, after: 47 * time.Minute, want: false},
		{name: "past 80%", ttl: 3600, after: 49 * time.Minute, want: true},
		{name: "jitter brings it forward", ttl: 3600, after: 48*time.Minute - 5*time.Second, jitter: 10 * time.Second, want: true},
		{name: "long token before a day", ttl: 7 * 24 * 3600, after: 23 * time.Hour, want: false},
		{name: "long token after a day", ttl: 7 * 24 * 3600, after: 24*time.Hour + time.Second, want: true},
	}
	for _, tt := range tests {
		if got := requiresRefresh(tr(tt.ttl), issued.Add(tt.after), tt.jitter); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// tokenReactor answers serviceaccounts/token creates with token-<n>, as
// the API server would, recording the requests; fail makes it refuse.
type tokenReactor struct {
	now  func() time.Time
	reqs []*authenticationv1.TokenRequest
	fail bool
}

func (r *tokenReactor) react(a k8stesting.Action) (bool, runtime.Object, error) {
	ca, ok := a.(k8stesting.CreateAction)
	if !ok || a.GetSubresource() != "token" {
		return false, nil, nil
	}
	if r.fail {
		return true, nil, errors.New("api server unavailable")
	}
	req := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
	r.reqs = append(r.reqs, req)
	out := req.DeepCopy()
	out.Status.Token = fmt.Sprintf("token-%d", len(r.reqs))
	out.Status.ExpirationTimestamp = metav1.NewTime(r.now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))
	return true, out, nil
}

func TestServiceAccountTokenProjection(t *testing.T) {
	m, cs, clk := newTestVolumeManager(t)
	m.tokens.jitter = func() time.Duration { return 0 }
	r := &tokenReactor{now: clk.Now}
	cs.PrependReactor("create", "serviceaccounts", r.react)
	pod := volumePod("uid-tok")
	pod.Spec.ServiceAccountName = "robot"
	src := &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o644), Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3600), Audience: "vault"}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}
	payload := func() map[string]fileProjection {
		t.Helper()
		got, err := m.projectedPayload(context.Background(), pod, src)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	got := payload()
	if string(got["token"].Data) != "token-1" || got["token"].Mode != 0o644 || string(got["namespace"].Data) != "default" {
		t.Fatalf("payload: got token %q mode %o namespace %q, want token-1 644 default", got["token"].Data, got["token"].Mode, got["namespace"].Data)
	}
	if len(r.reqs) != 1 {
		t.Fatalf("requests: got %d, want 1", len(r.reqs))
	}
	req := r.reqs[0]
	if ref := req.Spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.Name != "web" || ref.UID != "uid-tok" || ref.APIVersion != "v1" {
		t.Errorf("boundObjectRef: got %+v, want v1 Pod web uid-tok", req.Spec.BoundObjectRef)
	}
	if len(req.Spec.Audiences) != 1 || req.Spec.Audiences[0] != "vault" || *req.Spec.ExpirationSeconds != 3600 {
		t.Errorf("spec: got audiences %v expiration %d, want [vault] 3600", req.Spec.Audiences, *req.Spec.ExpirationSeconds)
	}
	if acts := cs.Actions(); acts[len(acts)-1].GetNamespace() != "default" {
		t.Errorf("namespace: got %q, want default", acts[len(acts)-1].GetNamespace())
	}

	// Rewritten every few seconds, the volume keeps its token until 80%
	// of the lifetime passed.
	clk.Step(40 * time.Minute)
	if got := payload(); string(got["token"].Data) != "token-1" || len(r.reqs) != 1 {
		t.Errorf("after 40 min: got %q after %d requests, want token-1 after 1", got["token"].Data, len(r.reqs))
	}
	clk.Step(9 * time.Minute)
	if got := payload(); string(got["token"].Data) != "token-2" || len(r.reqs) != 2 {
		t.Errorf("after 49 min: got %q after %d requests, want token-2 after 2", got["token"].Data, len(r.reqs))
	}

	// A failed refresh keeps a token that has not expired.
	r.fail = true
	clk.Step(50 * time.Minute)
	if got := payload(); string(got["token"].Data) != "token-2" {
		t.Errorf("failed refresh: got %q, want the cached token-2", got["token"].Data)
	}
	clk.Step(20 * time.Minute)
	if _, err := m.projectedPayload(context.Background(), pod, src); err == nil {
		t.Errorf("failed refresh of an expired token: got no error, want one")
	}
}

func TestServiceAccountTokenDefaultAudience(t *testing.T) {
	m, cs, clk := newTestVolumeManager(t)
	r := &tokenReactor{now: clk.Now}
	cs.PrependReactor("create", "serviceaccounts", r.react)
	pod := volumePod("uid-def")
	pod.Spec.ServiceAccountName = "default"
	if _, err := m.serviceAccountTokenPayload(context.Background(), pod, &corev1.ServiceAccountTokenProjection{Path: "token"}, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(r.reqs) != 1 || len(r.reqs[0].Spec.Audiences) != 0 || *r.reqs[0].Spec.ExpirationSeconds != 3600 {
		t.Errorf("got %+v, want no audiences (the API server's) and 3600 s", r.reqs)
	}
}

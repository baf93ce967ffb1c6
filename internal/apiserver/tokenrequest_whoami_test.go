package apiserver

import (
	"slices"
	"testing"

	"github.com/skiff-sh/skiff/internal/auth"
)

func TestSelfSubjectReviewFor(t *testing.T) {
	u := &auth.User{Name: "system:serviceaccount:a:default", UID: "u1",
		Groups: []string{"system:serviceaccounts", "system:authenticated"},
		Extra:  map[string][]string{auth.ExtraPodName: {"web"}}}
	r := selfSubjectReviewFor(u)
	got := r.Status.UserInfo
	if got.Username != u.Name || got.UID != "u1" || !slices.Equal(got.Groups, u.Groups) {
		t.Errorf("userInfo: got %+v, want %+v", got, u)
	}
	if v := got.Extra[auth.ExtraPodName]; len(v) != 1 || v[0] != "web" {
		t.Errorf("extra pod-name: got %v, want [web]", v)
	}
	if r.Kind != "SelfSubjectReview" || r.APIVersion != "authentication.k8s.io/v1" {
		t.Errorf("type: got %s %s, want authentication.k8s.io/v1 SelfSubjectReview", r.APIVersion, r.Kind)
	}
	// The review must not share the user's slices.
	got.Groups[0] = "changed"
	if u.Groups[0] != "system:serviceaccounts" {
		t.Errorf("groups: the review shares the user's slice")
	}
	if r := selfSubjectReviewFor(&auth.User{Name: "admin"}); r.Status.UserInfo.Extra != nil {
		t.Errorf("no extra: got %v, want nil", r.Status.UserInfo.Extra)
	}
}

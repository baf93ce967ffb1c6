package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTokensAcceptJoinTokenForms(t *testing.T) {
	tokens := NewTokens(map[string]User{"s3cret": {Name: "skiff:agent-bootstrap"}})
	hash := strings.Repeat("0f", 32)
	tests := []struct {
		bearer string
		want   bool
	}{
		{"s3cret", true},
		{"K10" + hash + "::s3cret", true},
		{"K10" + hash + "::wrong", false},
		{"wrong", false},
		{"X10" + hash + "::s3cret", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/api", nil)
		r.Header.Set("Authorization", "Bearer "+tt.bearer)
		u, ok, err := tokens.Authenticate(r)
		if ok != tt.want || (ok && u.Name != "skiff:agent-bootstrap") || (!ok && err == nil) {
			t.Errorf("bearer %q: got user %v ok %v err %v, want ok %v", tt.bearer, u, ok, err, tt.want)
		}
	}
}

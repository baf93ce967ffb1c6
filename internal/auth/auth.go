// Package auth authenticates API requests and decides whether an
// authenticated user may make them.
//
// Authentication turns a request into a User: a verified client certificate
// (CN is the user, O the groups), a service-account token this server
// signed (serviceaccount.go) or a bearer token from a static token table. A request that yields no user is anonymous; the API server refuses
// it except on the public health and version endpoints.
//
// Authorization is a pluggable step after authentication. AlwaysAllow lets
// every authenticated user do everything; RBAC replaces it later.
package auth

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// User is an authenticated identity.
type User struct {
	Name   string
	UID    string
	Groups []string
	// Extra holds further attributes, such as the pod a service-account
	// token is bound to (authentication.kubernetes.io/pod-name).
	Extra map[string][]string
}

// Authenticator finds the user making a request. ok is false when the
// request carries no credentials this authenticator understands.
type Authenticator interface {
	Authenticate(r *http.Request) (u *User, ok bool, err error)
}

// Union tries authenticators in order and returns the first user found.
type Union []Authenticator

// Authenticate implements Authenticator.
func (a Union) Authenticate(r *http.Request) (*User, bool, error) {
	var errs []string
	for _, x := range a {
		u, ok, err := x.Authenticate(r)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if ok {
			return u, true, nil
		}
	}
	if len(errs) > 0 {
		return nil, false, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil, false, nil
}

// X509 authenticates requests whose TLS client certificate was verified
// against the cluster CA by the server's TLS configuration.
type X509 struct{}

// Authenticate implements Authenticator.
func (X509) Authenticate(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	c := r.TLS.VerifiedChains[0][0]
	if c.Subject.CommonName == "" {
		return nil, false, fmt.Errorf("client certificate has no common name")
	}
	groups := append([]string(nil), c.Subject.Organization...)
	return &User{Name: c.Subject.CommonName, Groups: append(groups, "system:authenticated")}, true, nil
}

// Tokens authenticates static bearer tokens.
type Tokens struct {
	byToken map[string]User
}

// NewTokens returns a token table.
func NewTokens(m map[string]User) *Tokens {
	t := &Tokens{byToken: map[string]User{}}
	for k, v := range m {
		t.byToken[k] = v
	}
	return t
}

// LoadTokenFile reads a token file in upstream's format: one
// `token,user,uid,"group1,group2"` line per token.
func LoadTokenFile(path string) (map[string]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd := csv.NewReader(f)
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	recs, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	out := map[string]User{}
	for i, rec := range recs {
		if len(rec) == 0 || strings.HasPrefix(rec[0], "#") {
			continue
		}
		if len(rec) < 3 {
			return nil, fmt.Errorf("token file %s line %d: want token,user,uid[,groups]", path, i+1)
		}
		u := User{Name: rec[1], UID: rec[2]}
		if len(rec) > 3 && rec[3] != "" {
			u.Groups = strings.Split(rec[3], ",")
		}
		out[rec[0]] = u
	}
	return out, nil
}

// Authenticate implements Authenticator.
func (t *Tokens) Authenticate(r *http.Request) (*User, bool, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, false, nil
	}
	token = strings.TrimSpace(token)
	if u, ok := t.lookup(token); ok {
		return u, true, nil
	}
	// A join token in its full form, K10<CA hash>::<secret>, is accepted
	// for its secret, so an agent may send either.
	if head, secret, ok := strings.Cut(token, "::"); ok && strings.HasPrefix(head, "K10") {
		if u, ok := t.lookup(secret); ok {
			return u, true, nil
		}
	}
	return nil, false, fmt.Errorf("invalid bearer token")
}

func (t *Tokens) lookup(token string) (*User, bool) {
	for k, u := range t.byToken {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			u.Groups = append(append([]string(nil), u.Groups...), "system:authenticated")
			return &u, true
		}
	}
	return nil, false
}

// Attributes describe a request for authorization.
type Attributes struct {
	User        *User
	Verb        string
	Namespace   string
	APIGroup    string
	Resource    string
	Subresource string
	Name        string
	// Path is set for non-resource requests.
	Path string
}

// Authorizer decides whether a request may proceed.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (allowed bool, reason string, err error)
}

// AlwaysAllow authorizes every authenticated request.
type AlwaysAllow struct{}

// Authorize implements Authorizer.
func (AlwaysAllow) Authorize(context.Context, Attributes) (bool, string, error) {
	return true, "", nil
}

type userKey struct{}

// WithUser returns a context carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user of a request context, or nil.
func UserFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}

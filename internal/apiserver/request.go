package apiserver

import (
	"context"
	"net/http"
	"strings"
)

// requestInfo is what the URL of a request says about it.
type requestInfo struct {
	IsResource  bool
	Verb        string // get, list, watch, create, update, patch, delete, deletecollection
	APIPrefix   string // "api" or "apis"
	Group       string
	Version     string
	Namespace   string
	Resource    string
	Name        string
	Subresource string
	Path        string
}

// isNamespaceSubresource reports whether s is a subresource of a namespace,
// whose URL has the shape of a namespaced collection.
func isNamespaceSubresource(s string) bool { return s == "status" || s == "finalize" }

// parseRequest classifies a request by its path and method, as upstream's
// RequestInfoFactory does.
func parseRequest(r *http.Request) *requestInfo {
	info := &requestInfo{Path: r.URL.Path, Verb: strings.ToLower(r.Method)}
	parts := splitPath(r.URL.Path)
	if len(parts) < 2 || (parts[0] != "api" && parts[0] != "apis") {
		return info
	}
	info.APIPrefix = parts[0]
	parts = parts[1:]
	if info.APIPrefix == "apis" {
		if len(parts) < 2 {
			return info
		}
		info.Group = parts[0]
		parts = parts[1:]
	}
	info.Version = parts[0]
	parts = parts[1:]
	if len(parts) == 0 {
		return info
	}
	info.IsResource = true
	watchPath := false
	if parts[0] == "watch" {
		watchPath = true
		parts = parts[1:]
	}
	if len(parts) >= 3 && parts[0] == "namespaces" && !isNamespaceSubresource(parts[2]) {
		info.Namespace = parts[1]
		parts = parts[2:]
	} else if len(parts) >= 2 && parts[0] == "namespaces" {
		info.Namespace = parts[1]
	}
	switch len(parts) {
	case 0:
		info.IsResource = false
		return info
	case 1:
		info.Resource = parts[0]
	case 2:
		info.Resource, info.Name = parts[0], parts[1]
	default:
		info.Resource, info.Name, info.Subresource = parts[0], parts[1], strings.Join(parts[2:], "/")
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		info.Verb = "get"
		if info.Name == "" {
			info.Verb = "list"
			if watchPath || isTrue(q.Get("watch")) {
				info.Verb = "watch"
			}
		} else if watchPath {
			info.Verb = "watch"
		}
	case http.MethodPost:
		info.Verb = "create"
	case http.MethodPut:
		info.Verb = "update"
	case http.MethodPatch:
		info.Verb = "patch"
	case http.MethodDelete:
		info.Verb = "delete"
		if info.Name == "" {
			info.Verb = "deletecollection"
		}
	}
	return info
}

func isTrue(s string) bool { return s == "true" || s == "1" }

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

type requestInfoKey struct{}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

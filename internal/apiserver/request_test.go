package apiserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		method, url string
		want        requestInfo
	}{
		{"GET", "/api/v1/namespaces/default/pods", requestInfo{IsResource: true, Verb: "list", APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=true", requestInfo{IsResource: true, Verb: "watch", APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods"}},
		{"GET", "/api/v1/watch/namespaces/default/pods", requestInfo{IsResource: true, Verb: "watch", APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods"}},
		{"GET", "/api/v1/namespaces/default/pods/web", requestInfo{IsResource: true, Verb: "get", APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods", Name: "web"}},
		{"PUT", "/api/v1/namespaces/default/pods/web/status", requestInfo{IsResource: true, Verb: "update", APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods", Name: "web", Subresource: "status"}},
		{"GET", "/api/v1/namespaces/kube-system", requestInfo{IsResource: true, Verb: "get", APIPrefix: "api", Version: "v1", Namespace: "kube-system", Resource: "namespaces", Name: "kube-system"}},
		{"PUT", "/api/v1/namespaces/gone/finalize", requestInfo{IsResource: true, Verb: "update", APIPrefix: "api", Version: "v1", Namespace: "gone", Resource: "namespaces", Name: "gone", Subresource: "finalize"}},
		{"GET", "/api/v1/namespaces", requestInfo{IsResource: true, Verb: "list", APIPrefix: "api", Version: "v1", Resource: "namespaces"}},
		{"DELETE", "/apis/apps/v1/namespaces/a/deployments", requestInfo{IsResource: true, Verb: "deletecollection", APIPrefix: "apis", Group: "apps", Version: "v1", Namespace: "a", Resource: "deployments"}},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/web/scale", requestInfo{IsResource: true, Verb: "patch", APIPrefix: "apis", Group: "apps", Version: "v1", Namespace: "a", Resource: "deployments", Name: "web", Subresource: "scale"}},
		{"GET", "/apis/apps/v1/deployments", requestInfo{IsResource: true, Verb: "list", APIPrefix: "apis", Group: "apps", Version: "v1", Resource: "deployments"}},
		{"GET", "/apis/apps/v1", requestInfo{Verb: "get", APIPrefix: "apis", Group: "apps", Version: "v1"}},
		{"GET", "/apis", requestInfo{Verb: "get"}},
		{"GET", "/healthz", requestInfo{Verb: "get"}},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(tc.method, tc.url, nil)
		got := *parseRequest(r)
		got.Path = ""
		if got != tc.want {
			t.Errorf("%s %s: got %+v, want %+v", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		accept  string
		want    output
		wantErr bool
	}{
		{"", output{}, false},
		{"application/json", output{}, false},
		{"application/yaml", output{yaml: true}, false},
		{"application/vnd.kubernetes.protobuf, application/json", output{proto: true}, false},
		{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", output{as: "Table"}, false},
		{"application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", output{as: "PartialObjectMetadataList"}, false},
		{"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", output{discovery: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}, false},
		{"application/json;as=Unknown;v=v1;g=meta.k8s.io", output{}, true},
		{"application/vnd.kubernetes.protobuf", output{proto: true}, false},
		{"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json", output{}, false},
		{"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json", output{proto: true, as: "PartialObjectMetadataList"}, false},
		{"text/html", output{}, true},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/api/v1/pods", nil)
		r.Header.Set("Accept", tc.accept)
		got, err := negotiate(r)
		if (err != nil) != tc.wantErr {
			t.Errorf("Accept %q: error %v, want error %v", tc.accept, err, tc.wantErr)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("Accept %q: got %+v, want %+v", tc.accept, got, tc.want)
		}
	}
}

func TestPanicBecomes500AndServerKeepsServing(t *testing.T) {
	s := &Server{log: discardLogger()}
	calls := 0
	h := s.withRecovery(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			panic("boom")
		}
		w.WriteHeader(http.StatusOK)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/pods", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"kind":"Status"`) {
		t.Fatalf("panicking handler: got %d %s, want a 500 Status", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/pods", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("request after the panic: got %d, want 200", rec.Code)
	}
}

package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// TestSplicedLists serves lists spliced from their items' encodings, in
// JSON and in protobuf, over a real HTTP server (which refuses a body
// longer than its Content-Length, and whose client fails on a shorter
// one), with no item, one, and items that together span several of the
// writer's chunks, and decodes each as client-go does.
func TestSplicedLists(t *testing.T) {
	podGVK := schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	pod := func(i, pad int) *corev1.Pod {
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns", Annotations: map[string]string{"pad": strings.Repeat("x", pad)}},
		}
	}
	for _, tc := range []struct {
		name     string
		n, pad   int
		wantSize int // at least
	}{
		{"empty", 0, 0, 0},
		{"one", 1, 10, 0},
		{"several chunks", 40, 20 << 10, 3 * bodyChunk},
	} {
		var js, msgs [][]byte
		for i := range tc.n {
			p := pod(i, tc.pad)
			j, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			m, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			js, msgs = append(js, j), append(msgs, m)
		}
		lm := metav1.ListMeta{ResourceVersion: "42", Continue: "c"}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/proto" {
				c := &call{w: w, ep: &endpoint{gvk: podGVK}}
				if err := c.writeProtoList(lm, msgs); err != nil {
					t.Error(err)
				}
				return
			}
			writeJSONList(w, podGVK, lm, js)
		}))
		for _, path := range []string{"/json", "/proto"} {
			resp, err := srv.Client().Get(srv.URL + path)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, path, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s %s: reading the body: %v", tc.name, path, err)
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("%s %s: Content-Length %s, body %d bytes", tc.name, path, cl, len(body))
			}
			if len(body) < tc.wantSize {
				t.Errorf("%s %s: body %d bytes, want at least %d", tc.name, path, len(body), tc.wantSize)
			}
			var list corev1.PodList
			obj, gvk, err := clientgoscheme.Codecs.UniversalDeserializer().Decode(body, nil, &list)
			if err != nil {
				t.Fatalf("%s %s: decode: %v", tc.name, path, err)
			}
			if obj != &list || gvk.Kind != "PodList" || gvk.Version != "v1" {
				t.Errorf("%s %s: decoded %T as %v", tc.name, path, obj, gvk)
			}
			if list.ResourceVersion != "42" || list.Continue != "c" || len(list.Items) != tc.n {
				t.Errorf("%s %s: list rv %q continue %q with %d items, want 42, c, %d", tc.name, path, list.ResourceVersion, list.Continue, len(list.Items), tc.n)
			}
			for i, p := range list.Items {
				if p.Name != fmt.Sprintf("p%d", i) || len(p.Annotations["pad"]) != tc.pad {
					t.Errorf("%s %s: item %d is %s with a %d-byte annotation", tc.name, path, i, p.Name, len(p.Annotations["pad"]))
				}
			}
		}
		srv.Close()
	}
}

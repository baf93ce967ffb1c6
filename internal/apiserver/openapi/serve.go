package openapi

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
)

// Media types of the documents. The protobuf types exist in two spellings;
// clients send either and get the second back, as from upstream.
const (
	mediaJSON            = "application/json"
	mediaV2ProtoLegacy   = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mediaV2Proto         = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mediaV3ProtoLegacy   = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
	mediaV3Proto         = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	immutableCacheMaxAge = 365 * 24 * time.Hour
)

// ServeHTTP serves /openapi/v2 and /openapi/v3[/...]; it is mounted at those paths.
func (s *Spec) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch path := r.URL.Path; {
	case path == "/openapi/v2":
		s.serveV2(w, r)
	case path == "/openapi/v3":
		w.Header().Set("Content-Type", mediaJSON)
		serveBlob(w, r, s.discovery)
	case strings.HasPrefix(path, "/openapi/v3/"):
		s.serveV3(w, r, strings.TrimPrefix(path, "/openapi/v3/"))
	default:
		http.NotFound(w, r)
	}
}

func (s *Spec) serveV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	switch negotiate(r.Header.Get("Accept"), mediaJSON, mediaV2ProtoLegacy, mediaV2Proto) {
	case mediaJSON:
		w.Header().Set("Content-Type", mediaJSON)
		serveBlob(w, r, s.v2)
	case mediaV2Proto, mediaV2ProtoLegacy:
		b, err := s.v2Protobuf()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", mediaV2Proto)
		serveBlob(w, r, b)
	default:
		http.Error(w, "acceptable media types: "+mediaJSON+", "+mediaV2Proto, http.StatusNotAcceptable)
	}
}

// serveV3 serves the document of one group-version. A request that names the
// current hash of the document may be cached for good; one that names an
// outdated hash is sent to the current one, as upstream does.
func (s *Spec) serveV3(w http.ResponseWriter, r *http.Request, key string) {
	doc, ok := s.v3[key]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Add("Vary", "Accept")
	if hash := r.URL.Query().Get("hash"); hash != "" {
		if hash != doc.etag {
			http.Redirect(w, r, v3URL(key, doc.etag), http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Cache-Control", "public, immutable, max-age="+strconv.Itoa(int(immutableCacheMaxAge.Seconds())))
		w.Header().Set("Expires", time.Now().Add(immutableCacheMaxAge).UTC().Format(http.TimeFormat))
	}
	switch negotiate(r.Header.Get("Accept"), mediaJSON, mediaV3Proto, mediaV3ProtoLegacy) {
	case mediaJSON:
		w.Header().Set("Content-Type", mediaJSON)
		serveBlob(w, r, doc)
	case mediaV3Proto, mediaV3ProtoLegacy:
		// Rarely asked for (client-go fetches JSON), so converted per
		// request rather than kept.
		pb, err := v3Protobuf(doc)
		if err != nil {
			http.Error(w, fmt.Sprintf("openapi: convert %s to protobuf: %v", key, err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", mediaV3Proto)
		serveBlob(w, r, pb)
	default:
		http.Error(w, "acceptable media types: "+mediaJSON+", "+mediaV3Proto, http.StatusNotAcceptable)
	}
}

// v3Protobuf converts a v3 document to the gnostic protobuf form.
func v3Protobuf(doc blob) (blob, error) {
	plain, err := doc.plain()
	if err != nil {
		return blob{}, err
	}
	parsed, err := openapi_v3.ParseDocument(plain)
	if err != nil {
		return blob{}, err
	}
	data, err := proto.Marshal(parsed)
	if err != nil {
		return blob{}, err
	}
	return newBlob(data, doc.etag)
}

// serveBlob writes b, compressed when the client accepts gzip (as Go's and
// so client-go's transport does by default), and answers If-None-Match.
func serveBlob(w http.ResponseWriter, r *http.Request, b blob) {
	h := w.Header()
	h.Set("Etag", strconv.Quote(b.etag))
	h.Add("Vary", "Accept-Encoding")
	if etagMatches(r.Header.Get("If-None-Match"), b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(b.gz)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(b.gz)
		}
		return
	}
	plain, err := b.plain()
	if err != nil {
		http.Error(w, "openapi: decompress document: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(plain)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(plain)
	}
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == strconv.Quote(etag) {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, c := range qualityList(header) {
		if c.value == "gzip" || c.value == "*" {
			return true
		}
	}
	return false
}

// negotiate picks the first of offers (the first is the default for
// wildcards) that the Accept header allows, preferring higher quality
// values; "" when none is acceptable. A missing header accepts anything.
func negotiate(accept string, offers ...string) string {
	if strings.TrimSpace(accept) == "" {
		return offers[0]
	}
	for _, c := range qualityList(accept) {
		for _, offer := range offers {
			typ, _, _ := strings.Cut(offer, "/")
			if c.value == offer || c.value == "*/*" || c.value == typ+"/*" {
				return offer
			}
		}
	}
	return ""
}

type qualityValue struct {
	value string
	q     float64
}

// qualityList parses a header of comma-separated values with optional
// ";q=" weights (Accept, Accept-Encoding) into the acceptable values, best
// first; values weighted 0 are refused and left out.
func qualityList(header string) []qualityValue {
	var out []qualityValue
	for _, part := range strings.Split(header, ",") {
		value, params, _ := strings.Cut(part, ";")
		c := qualityValue{value: strings.ToLower(strings.TrimSpace(value)), q: 1}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					c.q = q
				}
			}
		}
		if c.value != "" && c.q > 0 {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].q > out[j].q })
	return out
}

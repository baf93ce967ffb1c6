package apiserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// output is what the client asked the response to be.
type output struct {
	// proto asks for Kubernetes' protobuf encoding; only plain objects,
	// lists and watches have one (errors, tables and the like are JSON).
	proto  bool
	yaml   bool
	pretty bool
	// as is "", "Table", "PartialObjectMetadata" or
	// "PartialObjectMetadataList" (from the Accept header's as= parameter).
	as string
	// discovery is set for aggregated discovery (as=APIGroupDiscoveryList).
	discovery string // the media type to answer with
}

// negotiate picks the response format from the Accept header, as upstream
// does: the first acceptable entry wins.
func negotiate(r *http.Request) (output, error) {
	out := output{pretty: isTrue(r.URL.Query().Get("pretty"))}
	accept := r.Header.Get("Accept")
	if strings.TrimSpace(accept) == "" {
		return out, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "application/yaml", "*/*", "application/*":
		case protobufType:
			o := out
			o.proto = true
			if as := params["as"]; as != "" || len(params) > 0 {
				// Metadata-only objects and lists, which the garbage
				// collector's informers ask for, have a protobuf form;
				// tables here do not: try the next entry.
				if (as != "PartialObjectMetadata" && as != "PartialObjectMetadataList") || params["g"] != "meta.k8s.io" || params["v"] != "v1" {
					continue
				}
				o.as = as
			}
			return o, nil
		default:
			continue
		}
		o := out
		o.yaml = mt == "application/yaml"
		if as := params["as"]; as != "" {
			switch {
			case as == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1"):
				o.as = as
			case (as == "PartialObjectMetadata" || as == "PartialObjectMetadataList") && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1"):
				o.as = as
			case as == "APIGroupDiscoveryList" && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2":
				o.discovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
			default:
				continue
			}
		}
		return o, nil
	}
	return out, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "get", schema.GroupResource{}, "",
		fmt.Sprintf("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf (got %q)", accept), 0, false)
}

// encode renders v as the client asked.
func (o output) encode(v any) ([]byte, string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	return o.render(data)
}

// render turns JSON into the requested output format.
func (o output) render(data []byte) ([]byte, string, error) {
	if o.yaml {
		y, err := yaml.JSONToYAML(data)
		return y, "application/yaml", err
	}
	if o.pretty {
		var buf bytes.Buffer
		if err := json.Indent(&buf, data, "", "  "); err == nil {
			data = buf.Bytes()
		}
	}
	return data, "application/json", nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	o, err := negotiate(r)
	if err != nil {
		o = output{}
	}
	data, ct, err := o.encode(v)
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	writeBytes(w, code, ct, data)
}

func writeBytes(w http.ResponseWriter, code int, contentType string, data []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// bodyChunk is the most a spliced body holds in memory at once.
const bodyChunk = 256 << 10

// splicedBody writes a response of a known size made of many pieces (a
// list's items, kept encoded by the store) through one buffer of at most
// bodyChunk: a list of 10,000 pods is 37-50 MB, which would otherwise be
// copied into one allocation of that size (and the memory cleared first)
// before its first byte is sent. Write errors (a client gone) are
// dropped, as writeBytes drops them.
type splicedBody struct {
	bw *bufio.Writer
}

func startSplicedBody(w http.ResponseWriter, code int, contentType string, size int) splicedBody {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(code)
	return splicedBody{bw: bufio.NewWriterSize(w, min(max(size, 16), bodyChunk))}
}

func (b splicedBody) write(p []byte) { _, _ = b.bw.Write(p) }

func (b splicedBody) end() { _ = b.bw.Flush() }

// statusFor converts any error into the Status object a client expects.
func statusFor(err error) *metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		st.Kind, st.APIVersion = "Status", "v1"
		if st.Status == "" {
			st.Status = metav1.StatusFailure
		}
		return &st
	}
	st := apierrors.NewInternalError(err).Status()
	st.Kind, st.APIVersion = "Status", "v1"
	return &st
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := statusFor(err)
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	data, _ := json.Marshal(st)
	writeBytes(w, code, "application/json", data)
}

// writeStatusOK writes a success Status, as upstream answers some calls
// (binding, eviction).
func writeStatusOK(w http.ResponseWriter, r *http.Request, code int) {
	writeJSON(w, r, code, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Code:     int32(code),
	})
}

// addWarning adds an HTTP Warning header, which kubectl prints.
func addWarning(w http.ResponseWriter, msg string) {
	w.Header().Add("Warning", `299 - `+strconv.Quote(msg))
}

// toRaw encodes an object as JSON for embedding.
func toRaw(obj runtime.Object) (runtime.RawExtension, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return runtime.RawExtension{}, err
	}
	return runtime.RawExtension{Raw: data}, nil
}

// unsupportedMediaType is the 415 upstream answers for a body it cannot read.
func unsupportedMediaType(contentType string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnsupportedMediaType,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got %q)", contentType),
	}}
}

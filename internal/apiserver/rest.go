package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/skiff-sh/skiff/internal/apiserver/convert"
	"github.com/skiff-sh/skiff/internal/apiserver/strategy"
	"github.com/skiff-sh/skiff/internal/apiserver/validation"
	"github.com/skiff-sh/skiff/internal/auth"
	"github.com/skiff-sh/skiff/internal/defaults"
	"github.com/skiff-sh/skiff/internal/storage"
)

// call is one resource request being served.
type call struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	info *requestInfo
	ep   *endpoint
	out  output
	now  time.Time

	dryRun          bool
	fieldManager    string
	fieldValidation string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	info := requestInfoFrom(r.Context())
	if s.serveDiscovery(w, r, info) {
		return
	}
	c := &call{s: s, w: w, r: r, ctx: r.Context(), info: info, now: time.Now()}
	if err := c.serve(); err != nil {
		writeError(w, r, err)
	}
}

func (c *call) serve() error {
	info := c.info
	if info.Resource == "bindings" && info.Verb == "create" && info.Group == "" {
		info.Subresource = "binding"
		info.Resource = "pods"
	}
	if info.Group == "authentication.k8s.io" && info.Version == "v1" && info.Resource == "selfsubjectreviews" {
		return c.selfSubjectReview()
	}
	ep, err := c.s.endpoint(info)
	if err != nil {
		return err
	}
	c.ep = ep
	if ep.res.Namespaced != (info.Namespace != "") && (info.Name != "" || info.Verb == "create" || !ep.res.Namespaced) {
		if !(ep.res.Name == "namespaces" && info.Namespace == info.Name) {
			return notFoundPath()
		}
	}
	if info.Subresource != "" && !ep.res.HasSubresource(info.Subresource) {
		return notFoundPath()
	}
	if info.Subresource == "log" {
		return c.podLog() // text, not a negotiated object
	}
	if info.Subresource == "exec" || info.Subresource == "attach" {
		return c.podExec(info.Subresource == "attach") // an upgraded stream, proxied to the kubelet
	}
	if info.Subresource == "portforward" {
		return c.podPortForward() // an upgraded stream, proxied to the kubelet
	}
	if c.out, err = negotiate(c.r); err != nil {
		return err
	}
	q := c.r.URL.Query()
	for _, v := range q["dryRun"] {
		if v != "All" {
			return apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q: supported values: \"All\"", v))
		}
		c.dryRun = true
	}
	c.fieldManager = q.Get("fieldManager")
	if c.fieldManager == "" {
		c.fieldManager = managerFromUserAgent(c.r.UserAgent())
	}
	switch v := q.Get("fieldValidation"); v {
	case "", "Warn", "Strict", "Ignore":
		c.fieldValidation = v
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("fieldValidation: Unsupported value: %q: supported values: \"Ignore\", \"Strict\", \"Warn\"", v))
	}

	switch info.Subresource {
	case "":
		switch info.Verb {
		case "get":
			return c.get()
		case "list":
			return c.list()
		case "watch":
			return c.watch()
		case "create":
			return c.create()
		case "update":
			return c.update("")
		case "patch":
			return c.patch("")
		case "delete":
			return c.delete()
		case "deletecollection":
			return c.deleteCollection()
		}
	case "status":
		switch info.Verb {
		case "get":
			return c.get()
		case "update":
			return c.update("status")
		case "patch":
			return c.patch("status")
		}
	case "scale":
		return c.scale()
	case "binding":
		if info.Verb == "create" {
			return c.bind()
		}
	case "eviction":
		if info.Verb == "create" {
			return c.evict()
		}
	case "token":
		if info.Verb == "create" {
			return c.createToken()
		}
	case "finalize":
		if info.Verb == "update" {
			return c.update("finalize")
		}
	}
	return apierrors.NewMethodNotSupported(c.ep.gr(), info.Verb)
}

func notFoundPath() error {
	return apierrors.NewGenericServerResponse(http.StatusNotFound, "get", schema.GroupResource{}, "",
		"the server could not find the requested resource", 0, false)
}

// managerFromUserAgent derives a field manager name from the user agent, as
// upstream does when a client names none: the program name.
func managerFromUserAgent(ua string) string {
	if i := strings.IndexByte(ua, '/'); i >= 0 {
		ua = ua[:i]
	}
	if len(ua) > 128 {
		ua = ua[:128]
	}
	return ua
}

// readBody reads the request body within the size limit.
func (c *call) readBody() ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", c.s.cfg.MaxBodyBytes))
		}
		return nil, apierrors.NewBadRequest("unable to read request body: " + err.Error())
	}
	return body, nil
}

// toJSON converts a request body to JSON according to its content type.
func toJSON(body []byte, contentType string) ([]byte, error) {
	ct := contentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch ct {
	case "application/yaml", "application/apply-patch+yaml":
		j, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, apierrors.NewBadRequest("error decoding YAML: " + err.Error())
		}
		return j, nil
	case "", "application/json", "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "*/*":
		return body, nil
	case "application/vnd.kubernetes.protobuf":
		return nil, unsupportedMediaType(ct)
	}
	return nil, unsupportedMediaType(ct)
}

// decode parses an object of the endpoint's kind from JSON, applying the
// request's field validation: Strict fails on unknown or duplicate fields,
// Warn (the default) reports them as warnings, Ignore drops them.
func (c *call) decode(data []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v", gvk.Kind, jsonError(err)))
	}
	if tm.APIVersion != "" && tm.APIVersion != gvk.GroupVersion().String() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, gvk.GroupVersion().String()))
	}
	if tm.Kind != "" && tm.Kind != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", tm.Kind, gvk.Kind))
	}
	into, err := c.s.cfg.Scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	ser := k8sjson.NewSerializerWithOptions(k8sjson.DefaultMetaFactory, c.s.cfg.Scheme, c.s.cfg.Scheme, k8sjson.SerializerOptions{Strict: true})
	obj, _, err := ser.Decode(data, &gvk, into)
	if err != nil {
		if !runtime.IsStrictDecodingError(err) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v", gvk.Kind, jsonError(err)))
		}
		sde, _ := runtime.AsStrictDecodingError(err)
		switch c.fieldValidation {
		case "Strict":
			msgs := make([]string, 0, len(sde.Errors()))
			for _, e := range sde.Errors() {
				msgs = append(msgs, e.Error())
			}
			return nil, apierrors.NewBadRequest("strict decoding error: " + strings.Join(msgs, ", "))
		case "Ignore":
		default:
			for _, e := range sde.Errors() {
				addWarning(c.w, e.Error())
			}
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

// decodeBody reads an object of kind gvk from a request body in JSON,
// YAML or protobuf, as its Content-Type says.
func (c *call) decodeBody(body []byte, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if isProtobuf(c.r.Header.Get("Content-Type")) {
		into, err := c.s.cfg.Scheme.New(gvk)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		obj, _, err := protobuf.NewSerializer(c.s.cfg.Scheme, c.s.cfg.Scheme).Decode(body, &gvk, into)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v", gvk.Kind, err))
		}
		if got := obj.GetObjectKind().GroupVersionKind(); got.Kind != "" && got != gvk {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
		}
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		return obj, nil
	}
	data, err := toJSON(body, c.r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	return c.decode(data, gvk)
}

func isProtobuf(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(ct) == "application/vnd.kubernetes.protobuf"
}

func jsonError(err error) string {
	s := err.Error()
	return strings.TrimPrefix(s, "json: ")
}

// toStorage converts a served-version object to the storage version.
func (c *call) toStorage(obj runtime.Object) (runtime.Object, error) {
	if c.ep.gvk == c.ep.storageGVK {
		return obj, nil
	}
	out, err := convert.Convert(obj, c.ep.storageGVK)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return out, nil
}

// toServed converts a stored object to the version the request addressed.
func (c *call) toServed(obj runtime.Object) (runtime.Object, error) {
	if c.ep.gvk == c.ep.storageGVK {
		obj.GetObjectKind().SetGroupVersionKind(c.ep.gvk)
		return obj, nil
	}
	out, err := convert.Convert(obj, c.ep.gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return out, nil
}

// respond writes an object in the requested version and format.
func (c *call) respond(code int, obj runtime.Object) error {
	obj, err := c.toServed(obj)
	if err != nil {
		return err
	}
	if c.out.proto {
		msg, gvk, err := c.protoObject(obj)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		writeBytes(c.w, code, protobufType, protoEnvelope(gvk, msg))
		return nil
	}
	var v any = obj
	switch c.out.as {
	case "Table":
		t, err := c.table([]runtime.Object{obj}, metav1.ListMeta{})
		if err != nil {
			return err
		}
		v = t
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		v = partial(obj)
	}
	data, ct, err := c.out.encode(v)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	writeBytes(c.w, code, ct, data)
	return nil
}

// respondItem writes a stored item, straight from its cached encoding when
// no conversion is needed.
func (c *call) respondItem(it *storage.Item) error {
	if c.out.proto && c.out.as == "" && c.ep.gvk == c.ep.storageGVK {
		msg, err := c.itemProto(it)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		writeBytes(c.w, http.StatusOK, protobufType, protoEnvelope(c.ep.gvk, msg))
		return nil
	}
	if c.out.as == "" && !c.out.yaml && !c.out.pretty && c.ep.gvk == c.ep.storageGVK {
		data, err := c.ep.store.JSON(it)
		if err != nil {
			return err
		}
		writeBytes(c.w, http.StatusOK, "application/json", data)
		return nil
	}
	obj, err := c.ep.store.Decode(it)
	if err != nil {
		return err
	}
	return c.respond(http.StatusOK, obj)
}

func partial(obj runtime.Object) *metav1.PartialObjectMetadata {
	acc, _ := meta.Accessor(obj)
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}}
	if o, ok := acc.(*metav1.ObjectMeta); ok {
		p.ObjectMeta = *o
	} else if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		p.ObjectMeta = *m.GetObjectMeta().(*metav1.ObjectMeta)
	}
	return p
}

func (c *call) get() error {
	rv := c.r.URL.Query().Get("resourceVersion")
	it, err := c.ep.store.Get(c.ctx, c.info.Namespace, c.info.Name, rv)
	if err != nil {
		return err
	}
	return c.respondItem(it)
}

// listOptions parses the list and watch query parameters.
func (c *call) listOptions() (storage.ListOptions, error) {
	q := c.r.URL.Query()
	opts := storage.ListOptions{
		Namespace:            c.info.Namespace,
		ResourceVersion:      q.Get("resourceVersion"),
		ResourceVersionMatch: metav1.ResourceVersionMatch(q.Get("resourceVersionMatch")),
		Continue:             q.Get("continue"),
		AllowBookmarks:       isTrue(q.Get("allowWatchBookmarks")),
	}
	if c.ep.res.Name == "namespaces" {
		opts.Namespace = ""
	}
	switch opts.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchExact, metav1.ResourceVersionMatchNotOlderThan:
	default:
		return opts, apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch: Unsupported value: %q", opts.ResourceVersionMatch))
	}
	if opts.ResourceVersionMatch != "" && opts.ResourceVersion == "" && c.info.Verb != "watch" {
		return opts, invalidOptions("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && opts.ResourceVersion == "0" {
		return opts, invalidOptions("resourceVersionMatch", "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q", v))
		}
		opts.Limit = n
	}
	if v := q.Get("sendInitialEvents"); v != "" {
		b := isTrue(v)
		opts.SendInitialEvents = &b
	}
	var err error
	if opts.Label, err = labels.Parse(q.Get("labelSelector")); err != nil {
		return opts, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	if v := q.Get("fieldSelector"); v != "" {
		sel, err := fields.ParseSelector(v)
		if err != nil {
			return opts, apierrors.NewBadRequest(err.Error())
		}
		allowed := strategy.SelectableFields(c.ep.gvk.GroupKind())
		for _, req := range sel.Requirements() {
			if !contains(allowed, req.Field) {
				return opts, apierrors.NewBadRequest(strategy.FieldLabelError(c.ep.gvk.GroupKind(), req.Field).Error())
			}
		}
		opts.Field = sel
	}
	return opts, nil
}

func invalidOptions(f, msg string) error {
	return apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "ListOptions"}, "",
		field.ErrorList{field.Forbidden(field.NewPath(f), msg)})
}

func (c *call) list() error {
	opts, err := c.listOptions()
	if err != nil {
		return err
	}
	res, err := c.ep.store.List(c.ctx, opts)
	if err != nil {
		return err
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(res.ResourceVersion, 10), Continue: res.Continue, RemainingItemCount: res.RemainingItemCount}
	if c.out.proto && c.out.as == "" && c.ep.gvk == c.ep.storageGVK {
		if err := c.writeProtoItems(lm, res.Items); err != nil {
			return apierrors.NewInternalError(err)
		}
		return nil
	}
	if c.out.as == "" && !c.out.yaml && !c.out.pretty && c.ep.gvk == c.ep.storageGVK {
		return writeRawList(c.w, c.ep.store, c.ep.gvk, lm, res.Items)
	}
	objs := make([]runtime.Object, 0, len(res.Items))
	for _, it := range res.Items {
		obj, err := c.ep.store.Decode(it)
		if err != nil {
			return err
		}
		if obj, err = c.toServed(obj); err != nil {
			return err
		}
		objs = append(objs, obj)
	}
	if c.out.proto {
		if err := c.writeProtoObjects(lm, objs); err != nil {
			return apierrors.NewInternalError(err)
		}
		return nil
	}
	var v any
	switch c.out.as {
	case "Table":
		if v, err = c.table(objs, lm); err != nil {
			return err
		}
	case "PartialObjectMetadata", "PartialObjectMetadataList":
		l := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadataList", APIVersion: "meta.k8s.io/v1"}, ListMeta: lm}
		for _, o := range objs {
			l.Items = append(l.Items, *partial(o))
		}
		v = l
	default:
		raws := make([]json.RawMessage, len(objs))
		for i, o := range objs {
			b, err := json.Marshal(o)
			if err != nil {
				return apierrors.NewInternalError(err)
			}
			raws[i] = b
		}
		v = struct {
			metav1.TypeMeta `json:",inline"`
			ListMeta        metav1.ListMeta   `json:"metadata"`
			Items           []json.RawMessage `json:"items"`
		}{metav1.TypeMeta{Kind: c.ep.gvk.Kind + "List", APIVersion: c.ep.gvk.GroupVersion().String()}, lm, raws}
	}
	data, ct, err := c.out.encode(v)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	writeBytes(c.w, http.StatusOK, ct, data)
	return nil
}

// writeRawList writes a list by splicing the JSON encodings of its items,
// which the store keeps once made; the ones not made yet are made on every
// core.
func writeRawList(w http.ResponseWriter, store *storage.Resource, gvk schema.GroupVersionKind, lm metav1.ListMeta, items []*storage.Item) error {
	datas := make([][]byte, len(items))
	errs := make([]error, len(items))
	workers := min(goruntime.GOMAXPROCS(0), len(items))
	var wg sync.WaitGroup
	for n := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := n; i < len(items); i += workers {
				datas[i], errs[i] = store.JSON(items[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	writeJSONList(w, gvk, lm, datas)
	return nil
}

// writeJSONList writes a list spliced from its items' JSON encodings.
func writeJSONList(w http.ResponseWriter, gvk schema.GroupVersionKind, lm metav1.ListMeta, items [][]byte) {
	head, _ := json.Marshal(struct {
		metav1.TypeMeta `json:",inline"`
		ListMeta        metav1.ListMeta `json:"metadata"`
	}{metav1.TypeMeta{Kind: gvk.Kind + "List", APIVersion: gvk.GroupVersion().String()}, lm})
	head = append(head[:len(head)-1], `,"items":[`...) // without its closing brace
	size := len(head) + len("]}")
	for _, d := range items {
		size += len(d) + len(",")
	}
	if len(items) > 0 {
		size-- // no comma before the first
	}
	body := startSplicedBody(w, http.StatusOK, "application/json", size)
	body.write(head)
	for i, d := range items {
		if i > 0 {
			body.write([]byte{','})
		}
		body.write(d)
	}
	body.write([]byte("]}"))
	body.end()
}

// newObjectMeta fills the fields the server owns on a new object.
func (c *call) prepareCreate(obj runtime.Object) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if c.ep.res.Namespaced {
		switch ns := acc.GetNamespace(); {
		case ns == "":
			acc.SetNamespace(c.info.Namespace)
		case ns != c.info.Namespace:
			return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		acc.SetNamespace("")
	}
	if acc.GetName() == "" && acc.GetGenerateName() != "" {
		acc.SetName(acc.GetGenerateName() + randomSuffix())
	}
	acc.SetUID(types.UID(uuid.NewString()))
	acc.SetCreationTimestamp(metav1.NewTime(c.now.Truncate(time.Second)))
	acc.SetDeletionTimestamp(nil)
	acc.SetDeletionGracePeriodSeconds(nil)
	acc.SetResourceVersion("")
	acc.SetSelfLink("")
	acc.SetGeneration(0)
	strategy.PrepareForCreate(obj)
	if err := c.admitNamespace(acc); err != nil {
		return err
	}
	if err := c.admitCreate(obj); err != nil {
		return err
	}
	if errs := validation.ValidateCreate(obj); len(errs) > 0 {
		return apierrors.NewInvalid(c.ep.gvk.GroupKind(), acc.GetName(), errs)
	}
	return c.admitQuota(obj)
}

// randomSuffix is the 5-character suffix upstream appends to generateName.
func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := []byte(uuid.NewString())
	out := make([]byte, 5)
	for i := range out {
		out[i] = alphabet[int(b[i*2])%len(alphabet)]
	}
	return string(out)
}

func (c *call) create() error {
	body, err := c.readBody()
	if err != nil {
		return err
	}
	obj, err := c.decodeBody(body, c.ep.gvk)
	if err != nil {
		return err
	}
	defaults.Default(obj)
	if obj, err = c.toStorage(obj); err != nil {
		return err
	}
	generated := false
	if acc, err := meta.Accessor(obj); err == nil {
		generated = acc.GetName() == "" && acc.GetGenerateName() != ""
	}
	for attempt := 0; ; attempt++ {
		try := obj.DeepCopyObject()
		out, err := c.createObject(try)
		if apierrors.IsAlreadyExists(err) && generated && attempt < 8 {
			continue
		}
		if err != nil {
			return err
		}
		return c.respond(http.StatusCreated, out)
	}
}

// createObject runs the create path for a decoded, defaulted object in the
// storage version: server fields, admission, validation, allocation, store.
func (c *call) createObject(obj runtime.Object) (runtime.Object, error) {
	if err := c.prepareCreate(obj); err != nil {
		return nil, err
	}
	empty, _ := c.s.cfg.Scheme.New(c.ep.storageGVK)
	obj = c.ep.manager("").UpdateNoErrors(empty, obj, c.fieldManager)
	release, err := c.s.allocateFor(c.ctx, nil, obj, c.dryRun)
	if err != nil {
		return nil, err
	}
	out, err := c.ep.store.Create(c.ctx, obj, c.dryRun)
	if err != nil {
		release()
		return nil, err
	}
	return out, nil
}

// manager returns the field manager that records updates of storage-version
// objects through a subresource.
func (e *endpoint) manager(sub string) fieldManager {
	if fm := e.managers[sub]; fm != nil {
		return fm
	}
	return e.managers[""]
}

// applier returns the field manager for server-side apply, which works on
// objects in the served version.
func (e *endpoint) applier(sub string) fieldManager {
	if fm := e.appliers[sub]; fm != nil {
		return fm
	}
	return e.appliers[""]
}

// fieldManager is the part of managedfields.FieldManager the handlers use.
type fieldManager interface {
	UpdateNoErrors(liveObj, newObj runtime.Object, manager string) runtime.Object
	Apply(liveObj, appliedObj runtime.Object, manager string, force bool) (runtime.Object, error)
}

// allowCreateOnUpdate lists the resources that upstream lets PUT create.
func allowCreateOnUpdate(resource string) bool {
	switch resource {
	case "endpoints", "events", "leases", "endpointslices":
		return true
	}
	return false
}

func (c *call) update(sub string) error {
	body, err := c.readBody()
	if err != nil {
		return err
	}
	obj, err := c.decodeBody(body, c.ep.gvk)
	if err != nil {
		return err
	}
	defaults.Default(obj)
	if obj, err = c.toStorage(obj); err != nil {
		return err
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if acc.GetName() != c.info.Name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", acc.GetName(), c.info.Name))
	}
	if c.ep.res.Namespaced {
		if acc.GetNamespace() == "" {
			acc.SetNamespace(c.info.Namespace)
		} else if acc.GetNamespace() != c.info.Namespace {
			return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	return c.write(sub == "" && allowCreateOnUpdate(c.ep.res.Name), func(cur runtime.Object) (runtime.Object, error) {
		next := obj.DeepCopyObject()
		if cur == nil {
			if err := c.prepareCreate(next); err != nil {
				return nil, err
			}
			empty, _ := c.s.cfg.Scheme.New(c.ep.storageGVK)
			return c.ep.manager("").UpdateNoErrors(empty, next, c.fieldManager), nil
		}
		return c.prepareUpdate(cur, next, sub, true)
	})
}

// write stores a new state of the addressed object and answers with it.
// compute derives the new state from the current one, or creates it when
// cur is nil (only if allowCreate). write claims and releases what Services
// hold, completes deletions the write allowed, and answers 201 on creation.
func (c *call) write(allowCreate bool, compute func(cur runtime.Object) (runtime.Object, error)) error {
	created := false
	var release func()
	var prev runtime.Object
	out, err := c.ep.store.GuaranteedUpdate(c.ctx, c.info.Namespace, c.info.Name,
		storage.UpdateOptions{DryRun: c.dryRun, AllowCreate: allowCreate},
		func(cur runtime.Object) (runtime.Object, error) {
			next, err := compute(cur)
			if err != nil {
				return nil, err
			}
			if release != nil {
				release() // an earlier attempt's claims
			}
			created, prev = cur == nil, cur
			release, err = c.s.allocateFor(c.ctx, cur, next, c.dryRun)
			return next, err
		})
	if err != nil {
		if release != nil {
			release()
		}
		return err
	}
	if prev != nil && !c.dryRun {
		c.s.releaseDropped(c.ctx, prev, out)
	}
	if out, err = c.finishUpdate(out); err != nil {
		return err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return c.respond(code, out)
}

// prepareUpdate turns a client's new state into the state to store, given
// the current one: preconditions, server-owned fields, strategy, validation
// and managed fields.
func (c *call) prepareUpdate(cur, next runtime.Object, sub string, trackFields bool) (runtime.Object, error) {
	curAcc, err := meta.Accessor(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	acc, err := meta.Accessor(next)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if rv := acc.GetResourceVersion(); rv != "" && rv != curAcc.GetResourceVersion() {
		return nil, apierrors.NewConflict(c.ep.gr(), c.info.Name, errors.New(storageModified))
	}
	if uid := acc.GetUID(); uid != "" && uid != curAcc.GetUID() {
		return nil, apierrors.NewConflict(c.ep.gr(), c.info.Name,
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, curAcc.GetUID()))
	}
	acc.SetUID(curAcc.GetUID())
	acc.SetCreationTimestamp(curAcc.GetCreationTimestamp())
	acc.SetDeletionTimestamp(curAcc.GetDeletionTimestamp())
	acc.SetDeletionGracePeriodSeconds(curAcc.GetDeletionGracePeriodSeconds())
	acc.SetGeneration(curAcc.GetGeneration())
	acc.SetResourceVersion(curAcc.GetResourceVersion())
	acc.SetSelfLink("")
	var errs field.ErrorList
	switch sub {
	case "status":
		strategy.PrepareForStatusUpdate(next, cur)
		errs = validation.ValidateStatusUpdate(next, cur)
	case "finalize":
		if err := finalizeNamespace(next, cur); err != nil {
			return nil, err
		}
		errs = validation.ValidateUpdate(next, cur)
	default:
		strategy.PrepareForUpdate(next, cur)
		errs = validation.ValidateUpdate(next, cur)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(c.ep.gvk.GroupKind(), c.info.Name, errs)
	}
	if sub == "" {
		if err := c.admitQuotaUpdate(cur, next); err != nil {
			return nil, err
		}
	}
	if trackFields {
		msub := c.ep.managerSub(sub)
		if mf, ok := ownedUpdate(curAcc, acc, cur, next, c.fieldManager, c.ep.storageGVK.GroupVersion().String(), msub,
			c.ep.reset[msub], time.Now(), c.s.fieldSets); ok {
			acc.SetManagedFields(mf)
		} else {
			next = c.ep.manager(sub).UpdateNoErrors(cur, next, c.fieldManager)
		}
	}
	return next, nil
}

const storageModified = "the object has been modified; please apply your changes to the latest version and try again"

// finishUpdate completes a deletion that an update made possible: an object
// marked for deletion whose last finalizer was just removed goes away.
func (c *call) finishUpdate(out runtime.Object) (runtime.Object, error) {
	acc, err := meta.Accessor(out)
	if err != nil || acc.GetDeletionTimestamp() == nil || len(acc.GetFinalizers()) > 0 || c.dryRun {
		return out, nil
	}
	if !readyToRemove(out) {
		return out, nil
	}
	rv := acc.GetResourceVersion()
	deleted, err := c.ep.store.Delete(c.ctx, acc.GetNamespace(), acc.GetName(), false, func(cur runtime.Object) error {
		// A conflict makes the store re-read etcd once when its cached copy
		// is older than the update just written; a second one means somebody
		// else wrote since, and that writer decides.
		if ca, _ := meta.Accessor(cur); ca.GetResourceVersion() != rv {
			return apierrors.NewConflict(c.ep.gr(), acc.GetName(), errors.New(storageModified))
		}
		return nil
	})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	c.s.releaseFor(c.ctx, deleted)
	return out, nil
}

// userOf returns the requesting user's name.
func (c *call) userOf() string {
	if u := auth.UserFrom(c.ctx); u != nil {
		return u.Name
	}
	return ""
}

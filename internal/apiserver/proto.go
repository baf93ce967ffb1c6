package apiserver

import (
	"encoding/binary"
	"fmt"
	"net/http"

	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/storage"
)

// Kubernetes' protobuf wire format, as client-go and upstream components
// speak it: a four-byte magic, then a runtime.Unknown whose TypeMeta names
// the kind and whose raw field is the object's own protobuf message. A list
// is one message with the ListMeta as field 1 and every item as a repeated
// field 2, so a list can be spliced from its items' messages. Watch streams
// are length-prefixed WatchEvent messages whose object is an enveloped
// object.
const (
	protobufType       = "application/vnd.kubernetes.protobuf"
	protobufWatchType  = "application/vnd.kubernetes.protobuf;stream=watch"
	protoMagic         = "k8s\x00"
	unknownTypeMeta    = 1 // runtime.Unknown fields
	unknownRaw         = 2
	typeMetaAPIVersion = 1 // runtime.TypeMeta fields
	typeMetaKind       = 2
	listMetaField      = 1 // every <Kind>List message
	listItemsField     = 2
	watchEventType     = 1 // metav1.WatchEvent fields
	watchEventObject   = 2
	watchEventRaw      = 1 // runtime.RawExtension's raw bytes
)

type protoMarshaler interface {
	Marshal() ([]byte, error)
}

// marshalProto returns obj's protobuf message, without the envelope.
func marshalProto(obj any) ([]byte, error) {
	m, ok := obj.(protoMarshaler)
	if !ok {
		return nil, fmt.Errorf("%T has no protobuf encoding", obj)
	}
	return m.Marshal()
}

// protoEnvelope wraps a message as the object of kind gvk.
func protoEnvelope(gvk schema.GroupVersionKind, raw []byte) []byte {
	return appendProtoEnvelope(make([]byte, 0, protoEnvelopeSize(gvk, raw)), gvk, raw)
}

// typeMetaSize is the size of the runtime.TypeMeta message naming gvk.
func typeMetaSize(gvk schema.GroupVersionKind) int {
	return protowire.SizeTag(typeMetaAPIVersion) + protowire.SizeBytes(apiVersionLen(gvk)) +
		protowire.SizeTag(typeMetaKind) + protowire.SizeBytes(len(gvk.Kind))
}

// apiVersionLen is len(gvk.GroupVersion().String()).
func apiVersionLen(gvk schema.GroupVersionKind) int {
	if gvk.Group == "" {
		return len(gvk.Version)
	}
	return len(gvk.Group) + 1 + len(gvk.Version)
}

// protoEnvelopeSize is the size of protoEnvelope(gvk, raw).
func protoEnvelopeSize(gvk schema.GroupVersionKind, raw []byte) int {
	return protoEnvelopeHeadSize(gvk, len(raw)) + len(raw)
}

// protoEnvelopeHeadSize is the size of the envelope's bytes before a
// message of n bytes.
func protoEnvelopeHeadSize(gvk schema.GroupVersionKind, n int) int {
	return len(protoMagic) + protowire.SizeTag(unknownTypeMeta) + protowire.SizeBytes(typeMetaSize(gvk)) +
		protowire.SizeTag(unknownRaw) + protowire.SizeVarint(uint64(n))
}

// appendProtoEnvelope appends protoEnvelope(gvk, raw) to b.
func appendProtoEnvelope(b []byte, gvk schema.GroupVersionKind, raw []byte) []byte {
	return append(appendProtoEnvelopeHead(b, gvk, len(raw)), raw...)
}

// appendProtoEnvelopeHead appends the envelope's bytes that come before a
// message of n bytes.
func appendProtoEnvelopeHead(b []byte, gvk schema.GroupVersionKind, n int) []byte {
	b = append(b, protoMagic...)
	b = protowire.AppendTag(b, unknownTypeMeta, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(typeMetaSize(gvk)))
	b = protowire.AppendTag(b, typeMetaAPIVersion, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(apiVersionLen(gvk)))
	if gvk.Group != "" {
		b = append(append(b, gvk.Group...), '/')
	}
	b = append(b, gvk.Version...)
	b = protowire.AppendTag(b, typeMetaKind, protowire.BytesType)
	b = protowire.AppendString(b, gvk.Kind)
	b = protowire.AppendTag(b, unknownRaw, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// itemProto returns a stored item's protobuf message: the store keeps
// it. Only for endpoints served in their storage version.
func (c *call) itemProto(it *storage.Item) ([]byte, error) {
	return it.Proto, nil
}

// writeProtoItems writes a list of stored items, spliced from their
// (memoized) messages.
func (c *call) writeProtoItems(lm metav1.ListMeta, items []*storage.Item) error {
	msgs := make([][]byte, len(items))
	for i, it := range items {
		var err error
		if msgs[i], err = c.itemProto(it); err != nil {
			return err
		}
	}
	return c.writeProtoList(lm, msgs)
}

// writeProtoObjects writes a list of typed objects of the served kind.
func (c *call) writeProtoObjects(lm metav1.ListMeta, objs []runtime.Object) error {
	msgs := make([][]byte, len(objs))
	for i, o := range objs {
		var err error
		if msgs[i], _, err = c.protoObject(o); err != nil {
			return err
		}
	}
	return c.writeProtoList(lm, msgs)
}

// partialGVK is the kind of metadata-only objects.
var partialGVK = metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata")

// isPartial reports whether the client asked for metadata only.
func (c *call) isPartial() bool {
	return c.out.as == "PartialObjectMetadata" || c.out.as == "PartialObjectMetadataList"
}

// protoObject returns the message and kind an object of the served kind is
// sent as: the object itself, or its metadata only.
func (c *call) protoObject(obj runtime.Object) ([]byte, schema.GroupVersionKind, error) {
	if c.isPartial() {
		msg, err := marshalProto(partial(obj))
		return msg, partialGVK, err
	}
	msg, err := marshalProto(obj)
	return msg, c.ep.gvk, err
}

// writeProtoList writes the enveloped list message made of msgs, spliced
// into the response as it goes.
func (c *call) writeProtoList(lm metav1.ListMeta, msgs [][]byte) error {
	lmb, err := lm.Marshal()
	if err != nil {
		return err
	}
	size := protowire.SizeTag(listMetaField) + protowire.SizeBytes(len(lmb))
	for _, m := range msgs {
		size += protowire.SizeTag(listItemsField) + protowire.SizeBytes(len(m))
	}
	gvk := c.ep.gvk
	if c.isPartial() {
		gvk = partialGVK
	}
	gvk.Kind += "List"
	head := appendProtoEnvelopeHead(nil, gvk, size)
	head = protowire.AppendTag(head, listMetaField, protowire.BytesType)
	head = protowire.AppendBytes(head, lmb)
	body := startSplicedBody(c.w, http.StatusOK, protobufType, protoEnvelopeHeadSize(gvk, size)+size)
	body.write(head)
	var tag [binary.MaxVarintLen64 + 1]byte
	for _, m := range msgs {
		t := protowire.AppendTag(tag[:0], listItemsField, protowire.BytesType)
		body.write(protowire.AppendVarint(t, uint64(len(m))))
		body.write(m)
	}
	body.end()
	return nil
}

// protoWatchFrame encodes one watch event: a length prefix, then a
// WatchEvent message (type, field 1; object, field 2: a RawExtension whose
// raw bytes, its field 1, are the enveloped object), written as
// WatchEvent.Marshal writes it but into one buffer: a watch sends one of
// these per event and watcher.
func (c *call) protoWatchFrame(typ string, gvk schema.GroupVersionKind, msg []byte) ([]byte, error) {
	env := protoEnvelopeSize(gvk, msg)
	ext := protowire.SizeTag(watchEventRaw) + protowire.SizeBytes(env)
	size := protowire.SizeTag(watchEventType) + protowire.SizeBytes(len(typ)) + protowire.SizeTag(watchEventObject) + protowire.SizeBytes(ext)
	frame := make([]byte, 4, 4+size)
	binary.BigEndian.PutUint32(frame, uint32(size))
	frame = protowire.AppendTag(frame, watchEventType, protowire.BytesType)
	frame = protowire.AppendString(frame, typ)
	frame = protowire.AppendTag(frame, watchEventObject, protowire.BytesType)
	frame = protowire.AppendVarint(frame, uint64(ext))
	frame = protowire.AppendTag(frame, watchEventRaw, protowire.BytesType)
	frame = protowire.AppendVarint(frame, uint64(env))
	return appendProtoEnvelope(frame, gvk, msg), nil
}

// protoBookmark is the message of a bookmark event's object: an empty
// object of the watched kind carrying only the resourceVersion (and the
// initial-events-end annotation).
func (c *call) protoBookmark(rv string, initialEnd bool) ([]byte, error) {
	var obj runtime.Object = &metav1.PartialObjectMetadata{}
	if !c.isPartial() {
		var err error
		if obj, err = c.s.cfg.Scheme.New(c.ep.gvk); err != nil {
			return nil, err
		}
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	acc.SetResourceVersion(rv)
	if initialEnd {
		acc.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return marshalProto(obj)
}

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
	var tm []byte
	tm = protowire.AppendTag(tm, typeMetaAPIVersion, protowire.BytesType)
	tm = protowire.AppendString(tm, gvk.GroupVersion().String())
	tm = protowire.AppendTag(tm, typeMetaKind, protowire.BytesType)
	tm = protowire.AppendString(tm, gvk.Kind)
	size := len(protoMagic) + protowire.SizeTag(unknownTypeMeta) + protowire.SizeBytes(len(tm)) +
		protowire.SizeTag(unknownRaw) + protowire.SizeBytes(len(raw))
	b := make([]byte, 0, size)
	b = append(b, protoMagic...)
	b = protowire.AppendTag(b, unknownTypeMeta, protowire.BytesType)
	b = protowire.AppendBytes(b, tm)
	b = protowire.AppendTag(b, unknownRaw, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	return b
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

// writeProtoList writes the list message made of msgs.
func (c *call) writeProtoList(lm metav1.ListMeta, msgs [][]byte) error {
	lmb, err := lm.Marshal()
	if err != nil {
		return err
	}
	size := protowire.SizeTag(listMetaField) + protowire.SizeBytes(len(lmb))
	for _, m := range msgs {
		size += protowire.SizeTag(listItemsField) + protowire.SizeBytes(len(m))
	}
	raw := make([]byte, 0, size)
	raw = protowire.AppendTag(raw, listMetaField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, lmb)
	for _, m := range msgs {
		raw = protowire.AppendTag(raw, listItemsField, protowire.BytesType)
		raw = protowire.AppendBytes(raw, m)
	}
	gvk := c.ep.gvk
	if c.isPartial() {
		gvk = partialGVK
	}
	gvk.Kind += "List"
	writeBytes(c.w, http.StatusOK, protobufType, protoEnvelope(gvk, raw))
	return nil
}

// protoWatchFrame encodes one watch event: a length prefix, then a
// WatchEvent message whose object is the enveloped object.
func (c *call) protoWatchFrame(typ string, gvk schema.GroupVersionKind, msg []byte) ([]byte, error) {
	ev := metav1.WatchEvent{Type: typ, Object: runtime.RawExtension{Raw: protoEnvelope(gvk, msg)}}
	b, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(frame, uint32(len(b)))
	return append(frame, b...), nil
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

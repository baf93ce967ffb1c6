package storage

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of Kubernetes' protobuf messages that spliceRV reads: every
// top-level object carries its ObjectMeta as field 1, and ObjectMeta's
// name, namespace and resourceVersion are its fields 1, 3 and 6.
// runtime.Unknown, the envelope an object is stored in, has the object's
// message as field 2.
const (
	objectMetaField = 1
	metaName        = 1
	metaNamespace   = 3
	metaResourceVer = 6
	unknownRawField = 2
)

// envelopedRaw returns the object's message inside a stored protobuf
// envelope, without copying it, and false if value is not one.
func envelopedRaw(value []byte) ([]byte, bool) {
	if !bytes.HasPrefix(value, []byte(protoMagic)) {
		return nil, false
	}
	b := value[len(protoMagic):]
	var raw []byte
	found := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if num == unknownRawField && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, false
			}
			raw, found = v, true
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, false
		}
		b = b[m:]
	}
	return raw, found
}

// spliceRV returns a copy of an object's protobuf message with its
// resourceVersion set to rv, and the object's name and namespace, without
// decoding the object: the bytes are those Marshal gives for the object
// with that resourceVersion, since the generated code writes ObjectMeta
// first and its fields in order, every string field even when empty. It
// answers ok=false for a message not laid out that way (the caller then
// decodes and encodes the object).
func spliceRV(msg []byte, rv string) (out []byte, name, namespace string, ok bool) {
	num, typ, n := protowire.ConsumeTag(msg)
	if n < 0 || num != objectMetaField || typ != protowire.BytesType {
		return nil, "", "", false
	}
	meta, m := protowire.ConsumeBytes(msg[n:])
	if m < 0 {
		return nil, "", "", false
	}
	rest := msg[n+m:]
	// Find resourceVersion among ObjectMeta's first fields.
	start, end := -1, -1
	for off := 0; off < len(meta); {
		fnum, ftyp, tn := protowire.ConsumeTag(meta[off:])
		if tn < 0 || fnum > metaResourceVer {
			return nil, "", "", false
		}
		if ftyp != protowire.BytesType {
			return nil, "", "", false
		}
		v, vn := protowire.ConsumeBytes(meta[off+tn:])
		if vn < 0 {
			return nil, "", "", false
		}
		switch fnum {
		case metaName:
			name = string(v)
		case metaNamespace:
			namespace = string(v)
		case metaResourceVer:
			start, end = off, off+tn+vn
		}
		off += tn + vn
		if start >= 0 {
			break
		}
	}
	if start < 0 {
		return nil, "", "", false
	}
	metaLen := len(meta) - (end - start) + protowire.SizeTag(metaResourceVer) + protowire.SizeBytes(len(rv))
	out = make([]byte, 0, protowire.SizeTag(objectMetaField)+protowire.SizeBytes(metaLen)+len(rest))
	out = protowire.AppendTag(out, objectMetaField, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(metaLen))
	out = append(out, meta[:start]...)
	out = protowire.AppendTag(out, metaResourceVer, protowire.BytesType)
	out = protowire.AppendString(out, rv)
	out = append(out, meta[end:]...)
	out = append(out, rest...)
	return out, name, namespace, true
}

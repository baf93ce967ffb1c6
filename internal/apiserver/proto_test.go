package apiserver

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// envelopeByMessages is the envelope as built from the TypeMeta message
// first, as protoEnvelope once did: the reference for the one-pass form.
func envelopeByMessages(gvk schema.GroupVersionKind, raw []byte) []byte {
	var tm []byte
	tm = protowire.AppendTag(tm, typeMetaAPIVersion, protowire.BytesType)
	tm = protowire.AppendString(tm, gvk.GroupVersion().String())
	tm = protowire.AppendTag(tm, typeMetaKind, protowire.BytesType)
	tm = protowire.AppendString(tm, gvk.Kind)
	b := []byte(protoMagic)
	b = protowire.AppendTag(b, unknownTypeMeta, protowire.BytesType)
	b = protowire.AppendBytes(b, tm)
	b = protowire.AppendTag(b, unknownRaw, protowire.BytesType)
	return protowire.AppendBytes(b, raw)
}

// TestProtoWatchFrame checks the one-buffer watch frame against
// WatchEvent.Marshal of the enveloped object, and that client-go decodes
// it.
func TestProtoWatchFrame(t *testing.T) {
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "kube-node-lease", ResourceVersion: "42"}}
	leaseMsg, err := lease.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := &call{}
	for _, tc := range []struct {
		typ string
		gvk schema.GroupVersionKind
		msg []byte
	}{
		{"MODIFIED", coordinationv1.SchemeGroupVersion.WithKind("Lease"), leaseMsg},
		{"ADDED", schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, []byte{}},
		{"BOOKMARK", partialGVK, bytes.Repeat([]byte{0x0a, 0x00}, 200)},
		{"DELETED", schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, bytes.Repeat([]byte("x"), 70000)},
		{"", schema.GroupVersionKind{Group: strings.Repeat("g", 130), Version: "v1", Kind: "K"}, nil},
	} {
		env := protoEnvelope(tc.gvk, tc.msg)
		if want := envelopeByMessages(tc.gvk, tc.msg); !bytes.Equal(env, want) {
			t.Errorf("%s %s: envelope %x, want %x", tc.typ, tc.gvk, env, want)
		}
		ev := metav1.WatchEvent{Type: tc.typ, Object: runtime.RawExtension{Raw: env}}
		want, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.protoWatchFrame(tc.typ, tc.gvk, tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		if n := binary.BigEndian.Uint32(got); int(n) != len(got)-4 {
			t.Errorf("%s %s: length prefix %d, want %d", tc.typ, tc.gvk, n, len(got)-4)
		}
		if !bytes.Equal(got[4:], want) {
			t.Errorf("%s %s: frame differs from WatchEvent.Marshal:\ngot  %x\nwant %x", tc.typ, tc.gvk, got[4:min(len(got), 80)], want[:min(len(want), 76)])
		}
	}

	// What a protobuf informer does with a frame.
	frame, err := c.protoWatchFrame("MODIFIED", coordinationv1.SchemeGroupVersion.WithKind("Lease"), leaseMsg)
	if err != nil {
		t.Fatal(err)
	}
	var ev metav1.WatchEvent
	if err := ev.Unmarshal(frame[4:]); err != nil {
		t.Fatal(err)
	}
	obj, _, err := protobuf.NewSerializer(clientgoscheme.Scheme, clientgoscheme.Scheme).Decode(ev.Object.Raw, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := obj.(*coordinationv1.Lease)
	if ev.Type != "MODIFIED" || !ok || got.Name != "n1" || got.ResourceVersion != "42" {
		t.Errorf("decoded %q %#v, want MODIFIED of lease n1 at resourceVersion 42", ev.Type, obj)
	}
}

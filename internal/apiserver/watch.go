package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/storage"
)

// watch streams events as newline-separated JSON WatchEvents over a chunked
// response, until the client goes, the timeout passes, or the store ends the
// watch (the client then resumes from the last resourceVersion it saw).
func (c *call) watch() error {
	opts, err := c.listOptions()
	if err != nil {
		return err
	}
	// Like upstream, an unspecified timeout is spread over 30-60 minutes so
	// that clients do not all reconnect at once.
	timeout := time.Duration(1800+rand.IntN(1800)) * time.Second
	if v := c.r.URL.Query().Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", v))
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	w, err := c.ep.store.Watch(ctx, opts)
	if err != nil {
		return err
	}
	defer w.Stop()

	flusher, _ := c.w.(http.Flusher)
	encode := c.watchFrame
	if c.out.proto {
		encode = c.protoWatchEvent
		c.w.Header().Set("Content-Type", protobufWatchType)
	} else {
		c.w.Header().Set("Content-Type", "application/json")
	}
	c.w.Header().Set("Cache-Control", "no-cache, private")
	c.w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	first := true
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			return nil
		}
		frame, err := encode(ev, &first)
		if err != nil {
			c.s.log.Warn("encode watch event", "resource", c.ep.gr().String(), "err", err)
			return nil
		}
		if frame == nil {
			continue
		}
		if _, err := c.w.Write(frame); err != nil {
			return nil
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// protoWatchEvent encodes one event for a protobuf watch.
func (c *call) protoWatchEvent(ev storage.Event, _ *bool) ([]byte, error) {
	var msg []byte
	var err error
	gvk := c.ep.gvk
	switch {
	case ev.Type == watch.Bookmark:
		msg, err = c.protoBookmark(strconv.FormatInt(ev.RV, 10), ev.InitialEventsEnd)
		if c.isPartial() {
			gvk = partialGVK
		}
	case c.ep.gvk == c.ep.storageGVK && c.out.as == "":
		msg, err = c.itemProto(ev.Item)
	default:
		var o runtime.Object
		if o, err = c.ep.store.Decode(ev.Item); err != nil {
			return nil, err
		}
		if o, err = c.toServed(o); err != nil {
			return nil, err
		}
		msg, gvk, err = c.protoObject(o)
	}
	if err != nil {
		return nil, err
	}
	return c.protoWatchFrame(string(ev.Type), gvk, msg)
}

// watchFrame encodes one event, or returns nil for an event this client
// does not get (bookmarks in table output).
func (c *call) watchFrame(ev storage.Event, first *bool) ([]byte, error) {
	var obj []byte
	switch {
	case ev.Type == watch.Bookmark:
		kind, apiVersion := c.ep.gvk.Kind, c.ep.gvk.GroupVersion().String()
		switch c.out.as {
		case "":
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			// Metadata informers wait for the initial-events-end bookmark.
			kind, apiVersion = "PartialObjectMetadata", "meta.k8s.io/v1"
		default:
			return nil, nil
		}
		b := map[string]any{
			"kind":       kind,
			"apiVersion": apiVersion,
			"metadata":   map[string]any{"resourceVersion": strconv.FormatInt(ev.RV, 10)},
		}
		if ev.InitialEventsEnd {
			b["metadata"].(map[string]any)["annotations"] = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
		}
		var err error
		if obj, err = json.Marshal(b); err != nil {
			return nil, err
		}
	case c.out.as == "" && c.ep.gvk == c.ep.storageGVK:
		var err error
		if obj, err = c.ep.store.JSON(ev.Item); err != nil {
			return nil, err
		}
	default:
		o, err := c.ep.store.Decode(ev.Item)
		if err != nil {
			return nil, err
		}
		if o, err = c.toServed(o); err != nil {
			return nil, err
		}
		var v any = o
		switch c.out.as {
		case "Table":
			t, err := c.table([]runtime.Object{o}, metav1.ListMeta{ResourceVersion: strconv.FormatInt(ev.RV, 10)})
			if err != nil {
				return nil, err
			}
			if !*first {
				t.ColumnDefinitions = nil
			}
			*first = false
			v = t
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			v = partial(o)
		}
		if obj, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	frame := make([]byte, 0, len(obj)+32)
	frame = append(frame, `{"type":"`...)
	frame = append(frame, ev.Type...)
	frame = append(frame, `","object":`...)
	frame = append(frame, obj...)
	frame = append(frame, "}\n"...)
	return frame, nil
}

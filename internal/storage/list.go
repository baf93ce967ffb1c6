package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ListResult is one page of a list.
type ListResult struct {
	Items              []*Item
	ResourceVersion    int64
	Continue           string
	RemainingItemCount *int64
}

// continueToken is the wire form upstream uses for continue tokens.
type continueToken struct {
	APIVersion string `json:"v"`
	RV         int64  `json:"rv"`
	Start      string `json:"start"` // key relative to the resource prefix
}

func encodeContinue(rv int64, start string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", RV: rv, Start: start})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, apierrors.NewBadRequest("continue key is not valid: " + err.Error())
	}
	if err := json.Unmarshal(b, &t); err != nil || t.APIVersion != "meta.k8s.io/v1" || t.RV <= 0 ||
		strings.Contains(t.Start, "..") || strings.HasPrefix(t.Start, "/") {
		return t, apierrors.NewBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	return t, nil
}

// List returns the objects that match opts. See the package documentation
// for where each kind of list is served from.
func (r *Resource) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	f := opts.filter()
	prefix := r.nsPrefix(opts.Namespace)
	start := prefix
	var atRV int64
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		start = r.prefix + tok.Start
		if !strings.HasPrefix(start, prefix) {
			return nil, apierrors.NewBadRequest("continue key is not valid: it belongs to another list")
		}
		atRV = tok.RV
		// The cache can serve the page only if nothing in this resource
		// changed since the first page.
		r.mu.RLock()
		unchanged := r.lastRV <= atRV
		r.mu.RUnlock()
		if !unchanged {
			return r.listEtcd(ctx, prefix, start, atRV, opts.Limit, f)
		}
		return r.listCache(ctx, prefix, start, 0, opts.Limit, f)
	}

	var need int64
	switch {
	case opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact:
		rv, err := parseRV(opts.ResourceVersion)
		if err != nil {
			return nil, err
		}
		return r.listEtcd(ctx, prefix, start, rv, opts.Limit, f)
	case opts.ResourceVersion == "":
		rev, err := r.s.currentRevision(ctx)
		if err != nil {
			return nil, err
		}
		need = rev
	case opts.ResourceVersion == "0":
	default:
		rv, err := parseRV(opts.ResourceVersion)
		if err != nil {
			return nil, err
		}
		if opts.Limit > 0 && opts.ResourceVersionMatch == "" {
			// Legacy semantics: a limited list at a version is exact.
			return r.listEtcd(ctx, prefix, start, rv, opts.Limit, f)
		}
		need = rv
	}
	return r.listCache(ctx, prefix, start, need, opts.Limit, f)
}

func (r *Resource) listCache(ctx context.Context, prefix, start string, need, limit int64, f filter) (*ListResult, error) {
	if err := r.s.waitFor(ctx, need); err != nil {
		return nil, err
	}
	r.mu.RLock()
	items := r.sortedItems(prefix, f)
	rv := r.snapshotRV()
	r.mu.RUnlock()
	if start != prefix {
		i := 0
		for i < len(items) && items[i].Key < start {
			i++
		}
		items = items[i:]
	}
	res := &ListResult{Items: items, ResourceVersion: rv}
	if limit > 0 && int64(len(items)) > limit {
		res.Items = items[:limit]
		last := res.Items[limit-1].Key
		res.Continue = encodeContinue(rv, last[len(r.prefix):]+"\x00")
		if f.empty() {
			n := int64(len(items)) - limit
			res.RemainingItemCount = &n
		}
	}
	return res, nil
}

// listEtcd pages through etcd at one revision, for continue tokens whose
// revision the cache no longer represents and for exact-version lists.
func (r *Resource) listEtcd(ctx context.Context, prefix, start string, rv, limit int64, f filter) (*ListResult, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	res := &ListResult{}
	batch := limit
	if batch <= 0 || batch > 1000 {
		batch = 1000
	}
	key := start
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(batch)}
		if rv > 0 {
			opts = append(opts, clientv3.WithRev(rv))
		}
		resp, err := r.s.client.Get(ctx, key, opts...)
		if err != nil {
			if r.isCompacted(err) {
				return nil, continueExpired()
			}
			return nil, etcdError(err)
		}
		if rv == 0 {
			rv = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			it, err := r.itemFromKV(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				continue
			}
			if !f.match(it) {
				continue
			}
			res.Items = append(res.Items, it)
			if limit > 0 && int64(len(res.Items)) == limit {
				more := resp.More || i < len(resp.Kvs)-1
				if more {
					res.Continue = encodeContinue(rv, string(kv.Key)[len(r.prefix):]+"\x00")
					if f.empty() {
						n := resp.Count - int64(i) - 1
						res.RemainingItemCount = &n
					}
				}
				res.ResourceVersion = rv
				return res, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	res.ResourceVersion = rv
	return res, nil
}

func (r *Resource) isCompacted(err error) bool {
	return err != nil && strings.Contains(err.Error(), "required revision has been compacted")
}

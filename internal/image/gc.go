package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// GC removes images no container uses, least recently used first, when
// the filesystem of Root is more than highPercent full, until it is at
// most lowPercent full (the kubelet's imageGCHighThresholdPercent and
// imageGCLowThresholdPercent, 85 and 80 upstream). inUse is asked about
// each image by its ID ("sha256:...") and by each of its repo digests; an
// image is kept when any answer is true. Images younger than GCMinAge are
// kept too. Like the kubelet, GC reports an error when it could not free
// enough.
func (s *Store) GC(ctx context.Context, highPercent, lowPercent int, inUse func(imageID string) bool) error {
	s.pruneOrphans()
	used, total, err := s.diskUsage(s.root)
	if err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	if total == 0 || used*100 < uint64(highPercent)*total {
		return nil
	}
	target := total * uint64(lowPercent) / 100
	if used <= target {
		return nil
	}
	toFree := int64(used - target)
	ix, err := s.load()
	if err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	now := s.now()
	var candidates []Image
	for _, img := range ix.Images {
		if now.Sub(img.Pulled) < s.minAge || imageInUse(img, inUse) {
			continue
		}
		candidates = append(candidates, cloneImage(img))
	}
	lastUsed := func(img Image) time.Time {
		if img.LastUsed.IsZero() {
			return img.Pulled
		}
		return img.LastUsed
	}
	sort.SliceStable(candidates, func(i, j int) bool { return lastUsed(candidates[i]).Before(lastUsed(candidates[j])) })
	var freed int64
	for _, c := range candidates {
		if freed >= toFree || ctx.Err() != nil {
			break
		}
		var drop []string
		var bytes int64
		err := s.update(func(ix *index) error {
			for _, img := range ix.Images {
				// Re-check under the lock: the image may have been used or
				// re-pulled since the candidates were chosen.
				if img.ID != c.ID || !lastUsed(*img).Equal(lastUsed(c)) || imageInUse(img, inUse) || len(s.mountedLayers(ix, img)) > 0 {
					continue
				}
				others := otherLayers(ix, img)
				counted := map[string]bool{}
				for _, d := range img.DiffIDs {
					if !counted[d] && !slices.Contains(others, d) {
						bytes += s.layerSize(d)
					}
					counted[d] = true
				}
				drop = s.deleteLocked(ix, img)
				return nil
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("image gc: %w", err)
		}
		s.removeLayers(drop)
		if drop != nil || bytes > 0 {
			s.log.Info("image gc removed image", "id", c.ID, "tags", c.RepoTags, "bytes", bytes)
		}
		freed += bytes
	}
	if freed < toFree {
		return fmt.Errorf("image gc: wanted to free %d bytes, but freed %d bytes", toFree, freed)
	}
	return nil
}

func imageInUse(img *Image, inUse func(string) bool) bool {
	if inUse == nil {
		return false
	}
	if inUse(img.ID) {
		return true
	}
	for _, d := range img.RepoDigests {
		if inUse(d) {
			return true
		}
	}
	return false
}

// otherLayers are the layers of every image in ix except img.
func otherLayers(ix *index, img *Image) []string {
	var out []string
	for _, other := range ix.Images {
		if other != img {
			out = append(out, other.DiffIDs...)
		}
	}
	return out
}

// orphanAge is how old an unreferenced layer must be before GC deletes
// it: a pull in another process renames its layers into place a moment
// before it records the image.
const orphanAge = time.Hour

// pruneOrphans deletes layers no image references (left by a crash
// between unpacking and recording, or kept by Remove while mounted) once
// they are old and no longer mounted.
func (s *Store) pruneOrphans() {
	entries, err := os.ReadDir(s.path("layers"))
	if err != nil {
		return
	}
	var drop []string
	err = s.update(func(ix *index) error {
		used := map[string]bool{}
		for _, img := range ix.Images {
			for _, d := range img.DiffIDs {
				used[layerHex(d)] = true
			}
		}
		info, _ := os.ReadFile("/proc/self/mountinfo")
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil || used[e.Name()] || s.now().Sub(fi.ModTime()) < orphanAge ||
				bytes.Contains(info, []byte(s.path("layers", e.Name()))) {
				continue
			}
			tmp, err := s.tempDir("remove")
			if err != nil {
				return err
			}
			if err := os.Rename(s.path("layers", e.Name()), filepath.Join(tmp, "layer")); err != nil {
				return err
			}
			drop = append(drop, tmp)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("prune unreferenced layers", "err", err)
	}
	if len(drop) > 0 {
		s.log.Info("pruned unreferenced layers", "count", len(drop))
	}
	s.removeLayers(drop)
}

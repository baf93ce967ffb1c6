package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// DefaultRegistry is the registry of image names without a host, as Docker
// and Kubernetes resolve them ("busybox" is docker.io/library/busybox).
const DefaultRegistry = "docker.io"

// Ref is a normalised image reference. Exactly one of Tag and Digest is
// set: a reference without either gets the tag "latest", and a reference
// with both keeps only the digest, as the registry resolves it by digest.
type Ref struct {
	// Registry is the registry host, e.g. "docker.io" or "127.0.0.1:5000".
	Registry string
	// Repository is the path within the registry, e.g. "library/busybox".
	Repository string
	Tag        string
	// Digest is "sha256:<hex>" when the reference pins a manifest.
	Digest string
}

// ParseRef normalises an image reference the way Docker and the kubelet do:
// "busybox" is "docker.io/library/busybox:latest", "host:5000/x/y:tag" keeps
// its registry, and "name@sha256:..." pins a digest.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("empty image reference")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("parse image reference %q: %w", s, err)
	}
	r := Ref{Registry: reference.Domain(named), Repository: reference.Path(named)}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest().String()
		return r, nil
	}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
		return r, nil
	}
	r.Tag = "latest"
	return r, nil
}

// Name is the repository with its registry, e.g. "docker.io/library/busybox".
func (r Ref) Name() string { return r.Registry + "/" + r.Repository }

// String is the canonical form: "docker.io/library/busybox:latest" or
// "docker.io/library/busybox@sha256:...".
func (r Ref) String() string {
	if r.Digest != "" {
		return r.Name() + "@" + r.Digest
	}
	return r.Name() + ":" + r.Tag
}

// WithDigest is the reference pinned to digest d, the repo digest form
// reported as a container's imageID.
func (r Ref) WithDigest(d string) Ref {
	return Ref{Registry: r.Registry, Repository: r.Repository, Digest: d}
}

var idPattern = regexp.MustCompile(`^(sha256:)?[0-9a-f]{4,64}$`)

// idPrefix returns the hex digits of s when s can name an image by ID or
// ID prefix, as `docker images` accepts ("sha256:abcd...", "abcd12").
func idPrefix(s string) (string, bool) {
	if !idPattern.MatchString(s) {
		return "", false
	}
	return strings.TrimPrefix(s, "sha256:"), true
}

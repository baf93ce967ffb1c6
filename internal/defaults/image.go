package defaults

import (
	// go-digest only accepts digests whose hash is linked into the binary;
	// without these an image pinned by digest would fail to parse and be
	// treated differently from upstream.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
)

// pullPolicyFor returns the image pull policy upstream defaults for image:
// Always when the tag is "latest", spelled out or implied by a reference with
// neither tag nor digest; IfNotPresent otherwise, including references pinned
// by digest and references that do not parse (validation rejects those later).
func pullPolicyFor(image string) corev1.PullPolicy {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return corev1.PullIfNotPresent
	}
	tag := ""
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if _, digested := named.(reference.Digested); tag == "" && !digested {
		tag = "latest"
	}
	if tag == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

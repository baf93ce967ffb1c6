// Package version reports the versions of Skiff and of the Kubernetes API
// it implements.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	apiversion "k8s.io/apimachinery/pkg/version"
)

// skiffVersion is set at build time with
// -ldflags "-X github.com/skiff-sh/skiff/internal/version.skiffVersion=...".
var skiffVersion = "dev"

// Skiff returns Skiff's own version.
func Skiff() string { return skiffVersion }

// Kubernetes returns the Kubernetes version Skiff implements, derived from
// the k8s.io/api module it is built with (v0.37.2 is Kubernetes v1.37.2).
func Kubernetes() (major, minor, patch string) {
	major, minor, patch = "1", "0", "0"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, m := range bi.Deps {
		if m.Path != "k8s.io/api" {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(m.Version, "v"), ".", 3)
		if len(parts) == 3 {
			minor = parts[1]
			patch, _, _ = strings.Cut(parts[2], "-")
		}
	}
	return
}

// Info returns what the API server's /version answers: the Kubernetes
// version with Skiff's version as build metadata, as k3s does.
func Info() apiversion.Info {
	major, minor, patch := Kubernetes()
	return apiversion.Info{
		Major:        major,
		Minor:        minor,
		GitVersion:   fmt.Sprintf("v%s.%s.%s+skiff-%s", major, minor, patch, skiffVersion),
		GitTreeState: "clean",
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
}

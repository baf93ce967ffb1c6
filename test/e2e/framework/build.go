package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BinaryEnv names the environment variable that points the tests at an
// already built skiff binary (`make test-e2e` sets it).
const BinaryEnv = "SKIFF_BINARY"

// Build compiles the module's ./cmd/skiff into dir and returns the binary's
// path. The module is the one containing the working directory, which for
// `go test` is the test package's directory. Like `make build`, it stamps the
// Kubernetes version that matches the k8s.io libraries in go.mod, so that
// the embedded kubectl and the server report a real release.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := goOutput(ctx, "", "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return "", fmt.Errorf("build skiff: find module root: %w", err)
	}
	libVersion, err := goOutput(ctx, root, "list", "-m", "-f", "{{.Version}}", "k8s.io/component-base")
	if err != nil {
		return "", fmt.Errorf("build skiff: %w", err)
	}
	ldflags, err := versionLDFlags(libVersion)
	if err != nil {
		return "", fmt.Errorf("build skiff: %w", err)
	}
	out := filepath.Join(dir, "skiff")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "-ldflags", ldflags, "./cmd/skiff")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build skiff: go build ./cmd/skiff: %w\n%s", err, b)
	}
	return out, nil
}

// goOutput runs the go command in dir ("" for the working directory) and
// returns its trimmed standard output.
func goOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// versionLDFlags returns the -ldflags that stamp the Kubernetes release
// matching a k8s.io library version (v0.37.2 is Kubernetes v1.37.2) into
// both version packages, as the Makefile does: component-base's feeds
// `kubectl version` and /version, client-go's the User-Agent.
func versionLDFlags(libVersion string) (string, error) {
	rest, ok := strings.CutPrefix(libVersion, "v0.")
	if !ok {
		return "", fmt.Errorf("k8s.io/component-base version %q: want v0.<minor>.<patch>", libVersion)
	}
	minor, _, ok := strings.Cut(rest, ".")
	if !ok || minor == "" || strings.Trim(minor, "0123456789") != "" {
		return "", fmt.Errorf("k8s.io/component-base version %q: want v0.<minor>.<patch>", libVersion)
	}
	kube := "v1." + rest
	var flags []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+kube,
			"-X", pkg+".gitMajor=1",
			"-X", pkg+".gitMinor="+minor,
		)
	}
	return strings.Join(flags, " "), nil
}

// findBinary returns the binary named by $SKIFF_BINARY as an absolute path,
// or "" when the variable is unset.
func findBinary() (string, error) {
	p := os.Getenv(BinaryEnv)
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s=%s: not an executable file", BinaryEnv, p)
	}
	return abs, nil
}

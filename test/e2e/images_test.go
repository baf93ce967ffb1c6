//go:build e2e

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-sh/skiff/internal/image/imagetest"
)

// TestImagesCLI drives `skiff images` over a store of its own: import a
// docker-save archive and an OCI archive, list them as crictl does, and
// remove one.
func TestImagesCLI(t *testing.T) {
	bin := suite.Binary(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "images")
	docker := filepath.Join(dir, "busybox.tar")
	oci := filepath.Join(dir, "server.tar")
	imagetest.WriteDockerArchive(t, docker, "example.test/busybox:1", imagetest.Busybox(t))
	imagetest.WriteOCIArchive(t, oci, "example.test/testserver:2", imagetest.TestServerVersion(t, "v2"))

	run := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"images"}, append(args, "--images-dir", store)...)...).CombinedOutput()
		return string(out), err
	}
	for _, f := range []string{docker, oci} {
		if out, err := run("import", f); err != nil || !strings.Contains(out, "Imported example.test/") {
			t.Fatalf("images import %s: %v\n%s", f, err, out)
		}
	}
	out, err := run("ls")
	if err != nil {
		t.Fatalf("images ls: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "IMAGE") || !strings.Contains(lines[0], "IMAGE ID") {
		t.Fatalf("images ls: got\n%s\nwant a header and two images", out)
	}
	for _, want := range []string{"example.test/busybox", "example.test/testserver"} {
		if !strings.Contains(out, want) {
			t.Errorf("images ls: no %s in\n%s", want, out)
		}
	}
	if out, err := run("rm", "example.test/busybox:1"); err != nil {
		t.Fatalf("images rm: %v\n%s", err, out)
	}
	if out, _ := run("ls"); strings.Contains(out, "example.test/busybox") {
		t.Errorf("images ls after rm still lists busybox:\n%s", out)
	}
	if out, err := run("rm", "example.test/nope:1"); err == nil {
		t.Errorf("images rm of a missing image: got success, want an error\n%s", out)
	}
}

package framework

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// CI reports whether the tests run under CI (CI=true), where a missing
// prerequisite is a failure rather than a reason to skip.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// SkipOrFail skips the test with the message, or fails it under CI=true:
// CI must not pass by skipping.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (a missing prerequisite fails under CI=true)", msg)
	}
	t.Skip(msg)
}

// MissingPrerequisites lists what this machine lacks to run the e2e tests.
// needGo says whether the binary must be built here.
func MissingPrerequisites(needGo bool) []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (e2e clusters run as root, as on a real node)")
	}
	if needGo {
		if _, err := exec.LookPath("go"); err != nil {
			missing = append(missing, "a go command on PATH to build skiff (or set "+BinaryEnv+")")
		}
	}
	return missing
}

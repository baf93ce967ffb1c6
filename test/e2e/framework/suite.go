package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// failureLogLimit is how much server log a failed test gets attached.
const failureLogLimit = 64 << 10

// Suite is what one e2e test package shares between its tests: the skiff
// binary and one cluster, both set up on first use and torn down by Run.
// See the package doc for the TestMain pattern.
type Suite struct {
	opts Options

	binaryOnce sync.Once
	missing    []string // prerequisites this machine lacks
	binary     string
	buildDir   string // set when the binary was built here
	binaryErr  error
	binaryFull sync.Once // the first test to see binaryErr gets all of it

	clusterOnce sync.Once
	cluster     *Cluster
	clusterErr  error
	clusterFull sync.Once // the first test to see clusterErr gets all of it

	realOnce sync.Once // the real-node cluster, see RealCluster
	real     *Cluster
	realErr  error
	realFull sync.Once
}

// NewSuite returns a Suite whose shared cluster starts with opts (Binary is
// filled in by the Suite).
func NewSuite(opts Options) *Suite {
	return &Suite{opts: opts}
}

// Run is the body of TestMain: it removes what crashed earlier runs left
// behind, runs the tests, and tears down the shared cluster and the built
// binary. It returns the exit code for os.Exit; a shared cluster that does
// not stop cleanly makes an otherwise passing run fail.
func (s *Suite) Run(m *testing.M) int {
	if err := RemoveStale(logStderr); err != nil {
		logStderr("removing leftovers of earlier runs: %v", err)
	}
	code := m.Run()
	if err := s.teardown(); err != nil {
		logStderr("teardown: %v", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func logStderr(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e framework: "+format+"\n", args...)
}

func (s *Suite) teardown() error {
	var errs []error
	if s.cluster != nil {
		if err := s.cluster.Close(); err != nil {
			errs = append(errs, fmt.Errorf("shared cluster: %w", err))
		}
	}
	if s.real != nil {
		if err := s.real.Close(); err != nil {
			errs = append(errs, fmt.Errorf("real-node cluster: %w", err))
		}
	}
	if s.buildDir != "" {
		if err := removeWorkDir(s.buildDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Binary returns the skiff binary under test: $SKIFF_BINARY, or one built
// from this module on first call. It skips the test (fails it under
// CI=true) when a prerequisite is missing.
func (s *Suite) Binary(t testing.TB) string {
	t.Helper()
	s.binaryOnce.Do(s.findOrBuild)
	if len(s.missing) > 0 {
		SkipOrFail(t, "e2e prerequisites missing: %s", strings.Join(s.missing, "; "))
	}
	if s.binaryErr != nil {
		fatalOnce(t, &s.binaryFull, "skiff binary", s.binaryErr)
	}
	return s.binary
}

// fatalOnce fails t with err, in full for the first test that reports it
// and by reference for the rest, so a broken build or start is not repeated
// in every test's output.
func fatalOnce(t testing.TB, once *sync.Once, what string, err error) {
	t.Helper()
	full := false
	once.Do(func() { full = true })
	if full {
		t.Fatalf("%s: %v", what, err)
	}
	t.Fatalf("%s: failed; the first test that needed it has the details", what)
}

func (s *Suite) findOrBuild() {
	bin, err := findBinary()
	if err != nil {
		s.binaryErr = err
		return
	}
	if s.missing = MissingPrerequisites(bin == ""); len(s.missing) > 0 {
		return
	}
	if bin != "" {
		s.binary = bin
		return
	}
	dir, err := newWorkDir("build")
	if err != nil {
		s.binaryErr = err
		return
	}
	s.buildDir = dir
	s.binary, s.binaryErr = Build(context.Background(), dir)
}

// Cluster returns the shared cluster, starting it on first call. Tests
// using it must leave it running and usable; those that need to stop or
// break a server take their own with NewCluster. If the test fails, the
// server log written while it ran is attached.
func (s *Suite) Cluster(t testing.TB) *Cluster {
	t.Helper()
	bin := s.Binary(t)
	s.clusterOnce.Do(func() {
		opts := s.opts
		opts.Binary = bin
		s.cluster, s.clusterErr = Start(context.Background(), opts)
	})
	if s.clusterErr != nil {
		fatalOnce(t, &s.clusterFull, "start the shared cluster", s.clusterErr)
	}
	attachLogOnFailure(t, s.cluster)
	return s.cluster
}

// NewCluster starts a private cluster for one test with opts (Binary is
// filled in) and closes it when the test ends.
func (s *Suite) NewCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	opts.Binary = s.Binary(t)
	return StartForTest(t, opts)
}

// StartForTest starts a cluster for t (see Start), fails t if it cannot,
// closes it when t ends, and attaches the server log if t fails.
func StartForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	attachLogOnFailure(t, c)
	return c
}

// attachLogOnFailure logs, if t fails, what the server wrote while t ran.
// Parallel tests on one cluster see each other's lines too.
func attachLogOnFailure(t testing.TB, c *Cluster) {
	offset := c.logSize()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("skiff server log (%s) while %s ran:\n%s", c.LogPath(), t.Name(), c.logSince(offset, failureLogLimit))
		}
	})
}

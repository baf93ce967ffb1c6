//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// suite is this package's shared cluster and binary; TestMain owns it.
var suite *framework.Suite

func TestMain(m *testing.M) {
	suite = framework.NewSuite(framework.Options{})
	os.Exit(suite.Run(m))
}

// systemNamespaces are the namespaces a new cluster has, as upstream's.
var systemNamespaces = []string{"default", "kube-node-lease", "kube-public", "kube-system"}

// TestSmokeKubectl checks that the real kubectl, embedded in skiff, works
// against a fresh server.
func TestSmokeKubectl(t *testing.T) {
	c := suite.Cluster(t)

	tests := []struct {
		name string
		args []string
		// check returns "" when stdout is right, else what is wrong.
		check func(stdout string) string
	}{
		{
			name: "server version is the release the libraries are from",
			args: []string{"version"},
			check: func(out string) string {
				if !strings.Contains(out, "Server Version: v1.37") {
					return "no line \"Server Version: v1.37...\""
				}
				return ""
			},
		},
		{
			name: "readyz",
			args: []string{"get", "--raw", "/readyz"},
			check: func(out string) string {
				if out != "ok" {
					return `want exactly "ok"`
				}
				return ""
			},
		},
		{
			name: "system namespaces are listed as a table",
			args: []string{"get", "namespaces"},
			check: func(out string) string {
				rows := table(out)
				if len(rows) == 0 {
					return "no output"
				}
				if want := []string{"NAME", "STATUS", "AGE"}; !slices.Equal(rows[0], want) {
					return "header " + strings.Join(rows[0], " ") + ", want " + strings.Join(want, " ")
				}
				status := map[string]string{}
				for _, r := range rows[1:] {
					if len(r) >= 2 {
						status[r[0]] = r[1]
					}
				}
				for _, ns := range systemNamespaces {
					if status[ns] != "Active" {
						return "namespace " + ns + " has status " + quoteOrMissing(status[ns]) + ", want Active"
					}
				}
				return ""
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The namespaces appear shortly after the server is ready, as
			// upstream's are created by a controller; poll, don't sleep.
			var stdout string
			framework.WaitFor(t, 30*time.Second, func() (bool, string) {
				var stderr string
				var err error
				stdout, stderr, err = c.Kubectl(tc.args...)
				if err != nil {
					return false, err.Error()
				}
				if problem := tc.check(stdout); problem != "" {
					return false, "kubectl " + strings.Join(tc.args, " ") + ": " + problem + "; got stdout:\n" + stdout + "\nstderr:\n" + stderr
				}
				return true, ""
			})
		})
	}
}

// TestSmokeClientGo checks the clientset the framework hands out against
// the same namespaces.
func TestSmokeClientGo(t *testing.T) {
	c := suite.Cluster(t)
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		list, err := c.Client().CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, "list namespaces: " + err.Error()
		}
		var got []string
		for _, ns := range list.Items {
			got = append(got, ns.Name)
		}
		for _, want := range systemNamespaces {
			if !slices.Contains(got, want) {
				return false, "got namespaces " + strings.Join(got, ", ") + "; want them to include " + want
			}
		}
		return true, ""
	})
}

// TestSmokeAnonymousIsUnauthorized checks that a request without
// credentials is refused with upstream's 401 Status.
func TestSmokeAnonymousIsUnauthorized(t *testing.T) {
	c := suite.Cluster(t)
	// The cluster CA, but no client certificate or token.
	anon := rest.AnonymousClientConfig(c.RESTConfig())
	client, err := rest.HTTPClientFor(anon)
	if err != nil {
		t.Fatalf("anonymous client: %v", err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.Endpoint()+"/api", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /api without credentials: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api without credentials: got status %d, want %d; body: %s", resp.StatusCode, http.StatusUnauthorized, body)
	}
	var status metav1.Status
	if err := json.Unmarshal(body, &status); err != nil {
		t.Fatalf("401 body is not a Status: %v; body: %s", err, body)
	}
	if status.Kind != "Status" || status.Reason != metav1.StatusReasonUnauthorized || status.Code != http.StatusUnauthorized {
		t.Errorf("401 body: got kind %q reason %q code %d, want kind \"Status\" reason %q code 401",
			status.Kind, status.Reason, status.Code, metav1.StatusReasonUnauthorized)
	}
}

// table splits kubectl's column output into rows of fields.
func table(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

func quoteOrMissing(s string) string {
	if s == "" {
		return "(missing)"
	}
	return `"` + s + `"`
}

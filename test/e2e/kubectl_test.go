//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

// namespace creates a namespace for one test.
func namespace(t *testing.T, c *framework.Cluster, name string) {
	t.Helper()
	if _, stderr, err := c.Kubectl("create", "namespace", name); err != nil {
		t.Fatalf("create namespace %s: %v: %s", name, err, stderr)
	}
}

// run runs kubectl and fails the test on error.
func run(t *testing.T, c *framework.Cluster, args ...string) string {
	t.Helper()
	out, stderr, err := c.Kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// runIn is run with stdin.
func runIn(t *testing.T, c *framework.Cluster, stdin string, args ...string) string {
	t.Helper()
	out, stderr, err := c.KubectlStdin(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// fails runs kubectl expecting an error whose stderr contains want.
func fails(t *testing.T, c *framework.Cluster, want string, args ...string) {
	t.Helper()
	out, stderr, err := c.Kubectl(args...)
	if err == nil {
		t.Fatalf("kubectl %s succeeded, want an error containing %q\nstdout: %s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(stderr, want) {
		t.Fatalf("kubectl %s: stderr %q, want it to contain %q", strings.Join(args, " "), stderr, want)
	}
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`

func TestKubectlWorkflow(t *testing.T) {
	c := suite.Cluster(t)
	namespace(t, c, "workflow")
	ns := []string{"-n", "workflow"}
	k := func(args ...string) string { return run(t, c, append(args, ns...)...) }

	out := runIn(t, c, webManifest, append([]string{"apply", "-f", "-"}, ns...)...)
	for _, want := range []string{"deployment.apps/web created", "service/web created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply: %q lacks %q", out, want)
		}
	}
	if out := runIn(t, c, webManifest, append([]string{"apply", "-f", "-"}, ns...)...); !strings.Contains(out, "deployment.apps/web unchanged") {
		t.Errorf("second apply: %q, want unchanged", out)
	}

	rows := table(k("get", "deployment", "web", "-o", "wide"))
	if want := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"}; !slices.Equal(rows[0], want) {
		t.Errorf("deployment wide header %v, want %v", rows[0], want)
	}
	if got := rows[1]; got[0] != "web" || got[1] != "0/2" || got[5] != "nginx" || got[6] != "nginx:1.27" || got[7] != "app=web" {
		t.Errorf("deployment row %v", got)
	}
	rows = table(k("get", "svc", "web", "-o", "wide"))
	if want := []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"}; !slices.Equal(rows[0], want) {
		t.Errorf("service wide header %v, want %v", rows[0], want)
	}
	if got := rows[1]; got[1] != "ClusterIP" || !strings.HasPrefix(got[2], "10.") || got[3] != "<none>" || got[4] != "80/TCP" || got[6] != "app=web" {
		t.Errorf("service row %v", got)
	}

	// Scale goes through the scale subresource.
	if out := k("scale", "deployment", "web", "--replicas=4"); !strings.Contains(out, "deployment.apps/web scaled") {
		t.Errorf("scale: %q", out)
	}
	if got := k("get", "deployment", "web", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"); got != "4 2" {
		t.Errorf("after scale: replicas and generation %q, want \"4 2\"", got)
	}
	if got := k("get", "--raw", "/apis/apps/v1/namespaces/workflow/deployments/web/scale"); !strings.Contains(got, `"kind":"Scale"`) || !strings.Contains(got, `"selector":"app=web"`) {
		t.Errorf("scale subresource: %s", got)
	}

	k("label", "deployment", "web", "tier=front")
	k("annotate", "deployment", "web", "owner=team-a")
	rows = table(k("get", "deployment", "web", "--show-labels"))
	if got := rows[1][len(rows[1])-1]; got != "app=web,tier=front" {
		t.Errorf("--show-labels: %q, want app=web,tier=front", got)
	}
	desc := k("describe", "deployment", "web")
	for _, want := range []string{"Name:                   web", "Namespace:              workflow", "tier=front",
		"owner: team-a", "Replicas:               4 desired", "StrategyType:           RollingUpdate",
		"RollingUpdateStrategy:  25% max unavailable, 25% max surge", "Image:         nginx:1.27"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}

	// Edit by patch, then kubectl edit with an editor that rewrites the image.
	k("patch", "deployment", "web", "--type=merge", "-p", `{"spec":{"minReadySeconds":5}}`)
	k("patch", "deployment", "web", "--type=json", "-p", `[{"op":"replace","path":"/spec/revisionHistoryLimit","value":3}]`)
	k("patch", "deployment", "web", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}`)
	if got := k("get", "deployment", "web", "-o", "jsonpath={.spec.minReadySeconds} {.spec.revisionHistoryLimit} {.spec.template.spec.containers[0].image}"); got != "5 3 nginx:1.28" {
		t.Errorf("after patches: %q, want \"5 3 nginx:1.28\"", got)
	}
	editor := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/nginx:1.28/nginx:1.29/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(suite.Binary(t), append([]string{"kubectl", "edit", "deployment", "web"}, ns...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath(), "KUBE_EDITOR="+editor)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "deployment.apps/web edited") {
		t.Errorf("kubectl edit: %v: %s", err, out)
	}
	if got := k("get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != "nginx:1.29" {
		t.Errorf("after edit: image %q, want nginx:1.29", got)
	}

	out = k("delete", "deployment,service", "web")
	if !strings.Contains(out, `deployment.apps "web" deleted`) || !strings.Contains(out, `service "web" deleted`) {
		t.Errorf("delete: %q", out)
	}
}

func TestKubectlDelete(t *testing.T) {
	c := suite.Cluster(t)
	namespace(t, c, "deletion")
	runIn(t, c, webManifest, "apply", "-n", "deletion", "-f", "-")
	out := run(t, c, "delete", "deployment", "web", "-n", "deletion")
	if !strings.Contains(out, `deployment.apps "web" deleted`) {
		t.Errorf("delete: %q", out)
	}
	fails(t, c, `deployments.apps "web" not found`, "get", "deployment", "web", "-n", "deletion")
	run(t, c, "delete", "service", "web", "-n", "deletion")
	// A finalizer on an object inside holds the namespace Terminating: the
	// namespace controller deletes the object, which then waits for its
	// finalizer, and the namespace waits for the object.
	runIn(t, c, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [e2e.skiff.sh/hold]\n", "apply", "-n", "deletion", "-f", "-")
	run(t, c, "delete", "namespace", "deletion", "--wait=false")
	if got := run(t, c, "get", "namespace", "deletion", "-o", "jsonpath={.status.phase}"); got != "Terminating" {
		t.Errorf("deleted namespace phase %q, want Terminating", got)
	}
	fails(t, c, "because it is being terminated", "create", "configmap", "late", "-n", "deletion")
	fails(t, c, `namespaces "default" is forbidden: this namespace may not be deleted`, "delete", "namespace", "default")
	// Once the finalizer goes, the namespace controller finishes the job.
	run(t, c, "patch", "configmap", "held", "-n", "deletion", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		out, stderr, err := c.Kubectl("get", "namespace", "deletion", "-o", "yaml")
		return err != nil && strings.Contains(stderr, `namespaces "deletion" not found`), out + stderr
	})
}

func TestKubectlConfigMapsAndSecrets(t *testing.T) {
	c := suite.Cluster(t)
	namespace(t, c, "config")
	file := filepath.Join(t.TempDir(), "app.properties")
	if err := os.WriteFile(file, []byte("color=blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, c, "create", "configmap", "settings", "-n", "config", "--from-file="+file, "--from-literal=mode=fast")
	if got := run(t, c, "get", "configmap", "settings", "-n", "config", "-o", `jsonpath={.data.app\.properties}|{.data.mode}`); got != "color=blue\n|fast" {
		t.Errorf("configmap data %q", got)
	}
	run(t, c, "create", "secret", "generic", "creds", "-n", "config", "--from-literal=password=s3cret")
	rows := table(run(t, c, "get", "secret", "creds", "-n", "config"))
	if want := []string{"NAME", "TYPE", "DATA", "AGE"}; !slices.Equal(rows[0], want) || rows[1][1] != "Opaque" || rows[1][2] != "1" {
		t.Errorf("secret table %v", rows)
	}
	if got := run(t, c, "get", "secret", "creds", "-n", "config", "-o", "jsonpath={.data.password}"); got != "czNjcmV0" {
		t.Errorf("secret data %q, want base64 of s3cret", got)
	}
}

func TestKubectlServerSideApplyAndDiff(t *testing.T) {
	c := suite.Cluster(t)
	namespace(t, c, "ssa")
	out := runIn(t, c, webManifest, "apply", "--server-side", "-n", "ssa", "-f", "-")
	if !strings.Contains(out, "deployment.apps/web serverside-applied") {
		t.Errorf("apply --server-side: %q", out)
	}
	if got := run(t, c, "get", "deployment", "web", "-n", "ssa", "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation}"); got != "kubectl Apply" {
		t.Errorf("managed fields %q, want \"kubectl Apply\"", got)
	}
	changed := strings.Replace(webManifest, "replicas: 2", "replicas: 3", 1)
	// Another manager changing an owned field conflicts...
	_, stderr, err := c.KubectlStdin(changed, "apply", "--server-side", "--field-manager=other", "-n", "ssa", "-f", "-")
	if err == nil || !strings.Contains(stderr, `conflict with "kubectl"`) || !strings.Contains(stderr, ".spec.replicas") {
		t.Errorf("conflicting apply: err %v stderr %q, want a conflict on .spec.replicas with kubectl", err, stderr)
	}
	// ...unless it forces.
	runIn(t, c, changed, "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-n", "ssa", "-f", "-")
	if got := run(t, c, "get", "deployment", "web", "-n", "ssa", "-o", "jsonpath={.spec.replicas}"); got != "3" {
		t.Errorf("replicas after forced apply %q, want 3", got)
	}
	// diff exits 1 and shows the change; 0 when nothing differs.
	changed = strings.Replace(changed, "nginx:1.27", "nginx:1.30", 1)
	file := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = c.Kubectl("diff", "-n", "ssa", "-f", file)
	if exitCode(err) != 1 || !strings.Contains(out, "-      - image: nginx:1.27") || !strings.Contains(out, "+      - image: nginx:1.30") {
		t.Errorf("diff: exit %d (%v), output:\n%s\nstderr: %s", exitCode(err), err, out, stderr)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func TestKubectlExplainAndAPIResources(t *testing.T) {
	c := suite.Cluster(t)
	out := run(t, c, "explain", "deployment.spec.strategy")
	for _, want := range []string{"GROUP:      apps", "KIND:       Deployment", "VERSION:    v1",
		"FIELD: strategy <DeploymentStrategy>", "rollingUpdate\t<RollingUpdateDeployment>", "type\t<string>"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	rows := table(run(t, c, "api-resources"))
	if want := []string{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"}; !slices.Equal(rows[0], want) {
		t.Fatalf("api-resources header %v", rows[0])
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		got[r[0]+" "+r[len(r)-3]] = strings.Join(r, " ")
	}
	// Rows exactly as upstream prints them for these resources.
	for _, want := range []string{
		"pods po v1 true Pod",
		"services svc v1 true Service",
		"namespaces ns v1 false Namespace",
		"deployments deploy apps/v1 true Deployment",
		"horizontalpodautoscalers hpa autoscaling/v2 true HorizontalPodAutoscaler",
		"cronjobs cj batch/v1 true CronJob",
		"ingresses ing networking.k8s.io/v1 true Ingress",
		"endpointslices discovery.k8s.io/v1 true EndpointSlice",
		"leases coordination.k8s.io/v1 true Lease",
		"clusterroles rbac.authorization.k8s.io/v1 false ClusterRole",
		"poddisruptionbudgets pdb policy/v1 true PodDisruptionBudget",
		"priorityclasses pc scheduling.k8s.io/v1 false PriorityClass",
		"storageclasses sc storage.k8s.io/v1 false StorageClass",
		"events ev events.k8s.io/v1 true Event",
		"nodes metrics.k8s.io/v1beta1 false NodeMetrics",
		"pods metrics.k8s.io/v1beta1 true PodMetrics",
	} {
		f := strings.Fields(want)
		if got[f[0]+" "+f[len(f)-3]] != want {
			t.Errorf("api-resources row for %s: got %q, want %q", f[0], got[f[0]+" "+f[len(f)-3]], want)
		}
	}
	if n := len(rows) - 1; n != 40 {
		t.Errorf("api-resources lists %d resources, want 40", n)
	}
}

func TestKubectlGetWatch(t *testing.T) {
	c := suite.Cluster(t)
	namespace(t, c, "watching")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.Binary(t), "kubectl", "get", "configmaps", "-n", "watching", "-w", "--output-watch-events")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.KubeconfigPath())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// Every namespace has the cluster CA's ConfigMap, as
			// upstream's; this test follows its own.
			if strings.Contains(sc.Text(), "kube-root-ca.crt") {
				continue
			}
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The watch shows the header first; then each change, in order.
	expectLine := func(prefix string) {
		t.Helper()
		select {
		case l := <-lines:
			if !strings.HasPrefix(strings.Join(strings.Fields(l), " "), prefix) {
				t.Fatalf("watch line %q, want it to start with %q", l, prefix)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no watch line starting with %q within 20s", prefix)
		}
	}
	framework.WaitFor(t, 20*time.Second, func() (bool, string) {
		out, _, _ := c.Kubectl("create", "configmap", "first", "-n", "watching", "--from-literal=a=1")
		return out != "", out
	})
	expectLine("EVENT NAME DATA AGE")
	expectLine("ADDED first 1")
	run(t, c, "patch", "configmap", "first", "-n", "watching", "-p", `{"data":{"b":"2"}}`)
	expectLine("MODIFIED first 2")
	run(t, c, "delete", "configmap", "first", "-n", "watching")
	expectLine("DELETED first 2")
}

// rawClient returns an HTTP client with the admin credentials.
func rawClient(t *testing.T, c *framework.Cluster) (*http.Client, string) {
	cfg := c.RESTConfig()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return hc, cfg.Host
}

func do(t *testing.T, hc *http.Client, method, url, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadInput(t *testing.T) {
	c := suite.Cluster(t)
	hc, host := rawClient(t, c)
	cms := host + "/api/v1/namespaces/default/configmaps"
	huge := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"x":"` + strings.Repeat("a", 4<<20) + `"}}`)
	bomb := "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	for i, prev := 'b', 'a'; i <= 'i'; i, prev = i+1, i {
		bomb += fmt.Sprintf("%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	tests := []struct {
		name        string
		method, url string
		ct          string
		body        []byte
		wantCode    int
		wantMessage string
	}{
		{"body over 3 MiB", "POST", cms, "application/json", huge, 413, "Request entity too large"},
		{"malformed JSON", "POST", cms, "application/json", []byte(`{"apiVersion":"v1","kind":"ConfigMap",`), 400, "ConfigMap"},
		{"malformed YAML", "POST", cms, "application/yaml", []byte("kind: ConfigMap\n  bad: [\n"), 400, "YAML"},
		{"YAML alias bomb", "POST", cms, "application/yaml", []byte(bomb), 400, ""},
		{"unknown resource", "GET", host + "/api/v1/namespaces/default/frobnicators", "", nil, 404, ""},
		{"unknown group", "GET", host + "/apis/example.com/v1/widgets", "", nil, 404, ""},
		{"invalid object", "POST", cms, "application/json", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}`), 422, "metadata.name: Invalid value"},
		{"wrong kind", "POST", cms, "application/json", []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}`), 400, "kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, body := do(t, hc, tc.method, tc.url, tc.ct, tc.body)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tc.wantCode, body)
			}
			if !strings.Contains(body, `"kind":"Status"`) {
				t.Errorf("body is not a Status: %s", body)
			}
			if !strings.Contains(body, tc.wantMessage) {
				t.Errorf("body %s lacks %q", body, tc.wantMessage)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answer took %v; bad input must be refused quickly", d)
			}
		})
	}
	// The server still serves after all of that.
	if out := run(t, c, "get", "--raw", "/readyz"); out != "ok" {
		t.Fatalf("readyz after bad input: %q", out)
	}
	fails(t, c, `the server doesn't have a resource type "frobnicators"`, "get", "frobnicators")
}

func TestTooManyRequests(t *testing.T) {
	// A private server with room for one request at a time.
	c := suite.NewCluster(t, framework.Options{ServerArgs: []string{"--max-requests-inflight=1"}})
	hc, host := rawClient(t, c)
	// A GET at a future resourceVersion waits (up to 3 s) for the cache,
	// holding the only slot.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		do(t, hc, "GET", host+"/api/v1/namespaces/default/configmaps?resourceVersion=999999999", "", nil)
	}()
	time.Sleep(200 * time.Millisecond) // let the slow request take the slot
	got429 := false
	var seen []int
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !got429 {
		code, body := do(t, hc, "GET", host+"/api/v1/namespaces", "", nil)
		seen = append(seen, code)
		if code == http.StatusTooManyRequests {
			got429 = true
			if !strings.Contains(body, "Too many requests") {
				t.Errorf("429 body %s", body)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if !got429 {
		t.Fatalf("no 429 while the only in-flight slot was taken; saw %v", seen)
	}
}

func TestRestartKeepsObjects(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	run(t, c, "create", "configmap", "durable", "--from-literal=k=v")
	uid := run(t, c, "get", "configmap", "durable", "-o", "jsonpath={.metadata.uid}")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := run(t, c, "get", "configmap", "durable", "-o", "jsonpath={.metadata.uid} {.data.k}"); got != uid+" v" {
		t.Fatalf("after restart: %q, want %q", got, uid+" v")
	}
	// The kubernetes Service keeps its address.
	if got := run(t, c, "get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"); got != "10.96.0.1" {
		t.Fatalf("kubernetes service after restart: %q", got)
	}
}

//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

const saTokenPods = `apiVersion: v1
kind: Pod
metadata:
  name: api
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: noauto
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, "sleep 3600"]
`

// saMountPath is where upstream mounts a pod's API credentials.
const saMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// tokenKubeconfig writes a kubeconfig with only the cluster's address, its
// CA and a bearer token (no client certificate) and returns its path.
func tokenKubeconfig(t *testing.T, c *framework.Cluster, name, token string) string {
	t.Helper()
	ca := base64.StdEncoding.EncodeToString(c.RESTConfig().CAData)
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: skiff
  context: {cluster: skiff, user: %s}
current-context: skiff
`, c.Endpoint(), ca, name, token, name)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// whoami runs `kubectl auth whoami` with only the token and returns the
// user name, or kubectl's error.
func whoami(c *framework.Cluster, kubeconfig string) (string, error) {
	out, _, err := c.Kubectl("--kubeconfig", kubeconfig, "auth", "whoami", "-o", "json")
	if err != nil {
		return "", err
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string              `json:"username"`
				Groups   []string            `json:"groups"`
				Extra    map[string][]string `json:"extra"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &review); err != nil {
		return "", fmt.Errorf("decode whoami %q: %w", out, err)
	}
	u := review.Status.UserInfo
	return fmt.Sprintf("%s groups=%s pod=%s", u.Username, strings.Join(u.Groups, ","), strings.Join(u.Extra["authentication.kubernetes.io/pod-name"], ",")), nil
}

// TestRealServiceAccountToken: a pod gets the kube-api-access volume with
// a token bound to it, the cluster CA and its namespace; the token
// authenticates as the pod's service account until the pod is deleted;
// `kubectl create token` issues tokens; automountServiceAccountToken:
// false gives no volume.
func TestRealServiceAccountToken(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-satoken")
	// The pods are created right after the namespace: admission waits
	// for the default service account the controller creates.
	if out, stderr, err := c.KubectlStdin(fmt.Sprintf(saTokenPods, c.Image(framework.ImageBusybox)), "-n", ns, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v: %s%s", err, out, stderr)
	}
	pod := waitPod(t, c, ns, "api", podStartTimeout, phaseIs(corev1.PodRunning))
	noauto := waitPod(t, c, ns, "noauto", podStartTimeout, phaseIs(corev1.PodRunning))

	var volName string
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") && v.Projected != nil {
			volName = v.Name
		}
	}
	if volName == "" || len(pod.Spec.Containers[0].VolumeMounts) != 1 || pod.Spec.Containers[0].VolumeMounts[0].MountPath != saMountPath ||
		!pod.Spec.Containers[0].VolumeMounts[0].ReadOnly {
		t.Fatalf("pod api: got volumes %+v mounts %+v, want a kube-api-access-* projected volume mounted read-only at %s",
			pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts, saMountPath)
	}
	if len(noauto.Spec.Volumes) != 0 || len(noauto.Spec.Containers[0].VolumeMounts) != 0 {
		t.Errorf("pod noauto: got volumes %+v mounts %+v, want none (automountServiceAccountToken: false)", noauto.Spec.Volumes, noauto.Spec.Containers[0].VolumeMounts)
	}

	cat := func(podName, file string) (string, error) {
		out, _, err := c.Kubectl("-n", ns, "exec", podName, "--", "cat", saMountPath+"/"+file)
		return out, err
	}
	token, err := cat("api", "token")
	if err != nil || strings.Count(token, ".") != 2 {
		t.Fatalf("token file: got %q (%v), want a JWT", token, err)
	}
	if got, err := cat("api", "namespace"); err != nil || got != ns {
		t.Errorf("namespace file: got %q (%v), want %q", got, err, ns)
	}
	if got, err := cat("api", "ca.crt"); err != nil || got != string(c.RESTConfig().CAData) {
		t.Errorf("ca.crt file: got %q (%v), want the cluster CA", got, err)
	}
	if _, err := cat("noauto", "token"); err == nil {
		t.Errorf("pod noauto: got a token file, want none")
	}
	if out, _, err := c.Kubectl("-n", ns, "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}"); err != nil || out != string(c.RESTConfig().CAData) {
		t.Errorf("configmap kube-root-ca.crt: got %q (%v), want the cluster CA", out, err)
	}

	// The publisher restores the CA ConfigMap when it is changed or deleted.
	kubectlOK(t, c, "-n", ns, "patch", "configmap", "kube-root-ca.crt", "--type=merge", "-p", `{"data":{"ca.crt":"forged"}}`)
	framework.WaitFor(t, 20*time.Second, func() (bool, string) {
		out, _, err := c.Kubectl("-n", ns, "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}")
		return err == nil && out == string(c.RESTConfig().CAData), fmt.Sprintf("kube-root-ca.crt after a change: got %.40q (%v), want the cluster CA again", out, err)
	})
	kubectlOK(t, c, "-n", ns, "delete", "configmap", "kube-root-ca.crt")
	framework.WaitFor(t, 20*time.Second, func() (bool, string) {
		out, _, err := c.Kubectl("-n", ns, "get", "configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}")
		return err == nil && out == string(c.RESTConfig().CAData), fmt.Sprintf("kube-root-ca.crt after deletion: got %.40q (%v), want it recreated", out, err)
	})

	// A pod naming an account that does not exist is refused, as upstream.
	_, stderr, err := c.Kubectl("-n", ns, "run", "nosa", "--image="+c.Image(framework.ImageBusybox), "--restart=Never",
		`--overrides={"apiVersion":"v1","spec":{"serviceAccountName":"nope"}}`, "--", "sleep", "3600")
	if want := `pods "nosa" is forbidden: error looking up service account ` + ns + `/nope: serviceaccount "nope" not found`; err == nil || !strings.Contains(stderr, want) {
		t.Errorf("pod of a missing service account: got %v %q, want %q", err, stderr, want)
	}

	// The pod's token, alone, authenticates as the pod's service account.
	podKC := tokenKubeconfig(t, c, "pod-token", token)
	wantUser := "system:serviceaccount:" + ns + ":default"
	got, err := whoami(c, podKC)
	if err != nil || got != wantUser+" groups=system:serviceaccounts,system:serviceaccounts:"+ns+",system:authenticated pod=api" {
		t.Fatalf("whoami with the pod's token: got %q (%v), want %s in the service-account groups, bound to pod api", got, err, wantUser)
	}
	if out, _, err := c.Kubectl("--kubeconfig", podKC, "-n", ns, "get", "pods", "-o", "name"); err != nil || !strings.Contains(out, "pod/api") {
		t.Errorf("get pods with the pod's token: got %q (%v), want pod/api listed", out, err)
	}
	if _, _, err := c.Kubectl("--kubeconfig", tokenKubeconfig(t, c, "bad-token", token+"x"), "-n", ns, "get", "pods"); err == nil ||
		!strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("get pods with a tampered token: got %v, want Unauthorized", err)
	}

	// kubectl create token issues tokens of the account, and refuses
	// lifetimes under ten minutes as upstream.
	created := strings.TrimSpace(kubectlOK(t, c, "-n", ns, "create", "token", "default", "--duration", "15m"))
	createdKC := tokenKubeconfig(t, c, "created-token", created)
	if got, err := whoami(c, createdKC); err != nil || !strings.HasPrefix(got, wantUser+" ") {
		t.Errorf("whoami with a created token: got %q (%v), want %s", got, err, wantUser)
	}
	if _, stderr, err := c.Kubectl("-n", ns, "create", "token", "default", "--duration", "5m"); err == nil ||
		!strings.Contains(stderr, "may not specify a duration less than 10 minutes") {
		t.Errorf("create token --duration 5m: got %v %q, want the 10-minute minimum refused", err, stderr)
	}
	bound := strings.TrimSpace(kubectlOK(t, c, "-n", ns, "create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "noauto"))
	boundKC := tokenKubeconfig(t, c, "bound-token", bound)
	if got, err := whoami(c, boundKC); err != nil || !strings.HasSuffix(got, " pod=noauto") {
		t.Errorf("whoami with a token bound to pod noauto: got %q (%v), want it bound to noauto", got, err)
	}

	// Deleting a pod invalidates the tokens bound to it; others stay.
	kubectlOK(t, c, "-n", ns, "delete", "pod", "api", "noauto", "--timeout=60s")
	for _, kc := range []string{podKC, boundKC} {
		framework.WaitFor(t, 30*time.Second, func() (bool, string) {
			got, err := whoami(c, kc)
			if err != nil && strings.Contains(err.Error(), "Unauthorized") {
				return true, ""
			}
			return false, fmt.Sprintf("whoami with a token of a deleted pod: got %q (%v), want Unauthorized", got, err)
		})
	}
	if got, err := whoami(c, createdKC); err != nil || !strings.HasPrefix(got, wantUser+" ") {
		t.Errorf("whoami with an unbound token after the pods went: got %q (%v), want %s", got, err, wantUser)
	}
}

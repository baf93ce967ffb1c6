//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/test/e2e/framework"
)

func hostPathPV(name, size, policy, class string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: %s}
spec:
  capacity: {storage: %s}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: %s
  storageClassName: "%s"
  hostPath: {path: /tmp/skiff-e2e-%s}
`, name, size, policy, class, name)
}

// pvRow is the row of `kubectl get pv` for one volume.
func pvRow(t *testing.T, c *framework.Cluster, name string) []string {
	t.Helper()
	out, _, err := c.Kubectl("get", "pv", name)
	if err != nil {
		return nil
	}
	rows := table(out)
	if len(rows) != 2 {
		return nil
	}
	return rows[1]
}

// TestPersistentVolumeBinding: a claim binds to the smallest fitting
// volume and kubectl shows both sides; a claim that nothing fits stays
// Pending with FailedBinding; deleting a claim releases a Retain volume
// and deletes a Delete volume.
func TestPersistentVolumeBinding(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	namespace(t, c, "pvtest")
	applyYAML(t, c, hostPathPV("e2e-big", "5Gi", "Retain", "")+"---\n"+hostPathPV("e2e-fit", "2Gi", "Retain", "")+"---\n"+
		hostPathPV("e2e-del", "3Gi", "Delete", "manual"))
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := pvRow(t, c, "e2e-fit")
		return len(r) > 4 && r[4] == "Available", fmt.Sprint(r)
	})
	applyYAML(t, c, `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: pvtest}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: manual, namespace: pvtest}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: huge, namespace: pvtest}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  resources: {requests: {storage: 100Gi}}
`)
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, _, _ := c.Kubectl("-n", "pvtest", "get", "pvc", "data")
		rows := table(out)
		// NAME STATUS VOLUME CAPACITY ACCESS MODES ...
		return len(rows) == 2 && len(rows[1]) > 4 && rows[1][1] == "Bound" && rows[1][2] == "e2e-fit" && rows[1][3] == "2Gi",
			out
	})
	if r := pvRow(t, c, "e2e-fit"); len(r) < 6 || r[4] != "Bound" || r[5] != "pvtest/data" {
		t.Errorf("kubectl get pv e2e-fit: got %v, want STATUS Bound CLAIM pvtest/data", r)
	}
	if r := pvRow(t, c, "e2e-big"); len(r) < 5 || r[4] != "Available" {
		t.Errorf("kubectl get pv e2e-big: got %v, want Available", r)
	}
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := pvRow(t, c, "e2e-del")
		return len(r) > 5 && r[4] == "Bound" && r[5] == "pvtest/manual", fmt.Sprint(r)
	})
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, _, _ := c.Kubectl("-n", "pvtest", "get", "events", "--field-selector", "involvedObject.name=huge", "-o",
			"jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		return strings.Contains(out, "FailedBinding: no persistent volumes available for this claim and no storage class is set"), out
	})
	if got := jsonpath(t, c, "-n", "pvtest", "get", "pvc", "huge", "-o", "jsonpath={.status.phase}"); got != "Pending" {
		t.Errorf("claim huge: got phase %q, want Pending", got)
	}

	kubectlOK(t, c, "-n", "pvtest", "delete", "pvc", "data", "manual")
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := pvRow(t, c, "e2e-fit")
		return len(r) > 4 && r[4] == "Released", fmt.Sprint(r)
	})
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		_, errOut, err := c.Kubectl("get", "pv", "e2e-del")
		return err != nil && strings.Contains(errOut, "NotFound"), errOut
	})
	// A new claim does not get the Released volume.
	applyYAML(t, c, `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: again, namespace: pvtest}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  resources: {requests: {storage: 1Gi}}
`)
	framework.WaitFor(t, 30*time.Second, func() (bool, string) {
		got := jsonpath(t, c, "-n", "pvtest", "get", "pvc", "again", "-o", "jsonpath={.spec.volumeName}")
		return got == "e2e-big", "volumeName=" + got
	})
}

// TestStatefulSetClaimsBind: the claims a StatefulSet's volumeClaimTemplates
// create bind to the volumes there are, each to its own.
func TestStatefulSetClaimsBind(t *testing.T) {
	c := suite.NewCluster(t, framework.Options{})
	namespace(t, c, "pvsts")
	applyYAML(t, c, hostPathPV("e2e-sts-a", "1Gi", "Retain", "")+"---\n"+hostPathPV("e2e-sts-b", "1Gi", "Retain", "")+`---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: pvsts}
spec:
  serviceName: db
  replicas: 2
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - {name: db, image: busybox}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 500Mi}}
`)
	framework.WaitFor(t, 60*time.Second, func() (bool, string) {
		out, _, _ := c.Kubectl("-n", "pvsts", "get", "pvc", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.phase}:{.spec.volumeName} {end}`)
		f := strings.Fields(out)
		if len(f) != 2 {
			return false, out
		}
		vols := map[string]bool{}
		for _, x := range f {
			name, rest, _ := strings.Cut(x, "=")
			phase, vol, _ := strings.Cut(rest, ":")
			if !strings.HasPrefix(name, "data-db-") || phase != "Bound" || !strings.HasPrefix(vol, "e2e-sts-") {
				return false, out
			}
			vols[vol] = true
		}
		return len(vols) == 2, out
	})
}

//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestRealPodSpec runs real containers that read what the kubelet gives
// them (volumes, the environment, the downward API, service variables)
// and report it through their termination message, and checks probes
// against real processes.
func TestRealPodSpec(t *testing.T) {
	c := suite.RealCluster(t)
	ns := realNamespace(t, c, "real-pod-spec")
	busybox := c.Image("busybox:1")
	applyYAML(t, c, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: %[1]s}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: sec, namespace: %[1]s}
stringData: {pass: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: check, namespace: %[1]s, labels: {app: check}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: %[2]s
    command: ["sh", "-c"]
    args:
    - >-
      echo "$(cat /etc/cfg/greeting) $GREETING $PASS $(cat /etc/sec/pass) $POD_NAME $MEM
      $(cat /etc/podinfo/labels) $(touch /data/x && echo rw) $KUBERNETES_SERVICE_HOST $(hostname)
      $(grep -c nameserver /etc/resolv.conf) $(id -u)" > /dev/termination-log
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: sec, key: pass}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    resources: {limits: {memory: 64Mi}}
    securityContext: {runAsUser: 65534}
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
    - {name: podinfo, mountPath: /etc/podinfo}
    - {name: data, mountPath: /data}
  volumes:
  - {name: cfg, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
  - {name: podinfo, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}
  - {name: data, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: probes, namespace: %[1]s}
spec:
  terminationGracePeriodSeconds: 1 # sh as PID 1 ignores SIGTERM
  containers:
  - name: c
    image: %[2]s
    command: ["sh", "-c", "sleep 2; touch /tmp/ready /tmp/alive; sleep 4; rm /tmp/alive; sleep 3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
    livenessProbe:
      exec: {command: ["cat", "/tmp/alive"]}
      initialDelaySeconds: 4
      periodSeconds: 1
      failureThreshold: 2
`, ns, busybox))

	p := waitPod(t, c, ns, "check", podStartTimeout, phaseIs(corev1.PodSucceeded))
	msg := ""
	if cs := p.Status.ContainerStatuses; len(cs) == 1 && cs[0].State.Terminated != nil {
		msg = strings.Join(strings.Fields(cs[0].State.Terminated.Message), " ")
	}
	want := `hello hello s3cret s3cret check 64 app="check" rw 10.96.0.1 check 1 65534`
	if msg != want {
		t.Errorf("what the container saw (its termination message):\n got %q\nwant %q", msg, want)
	}

	// Not ready until the readiness file exists, then ready; the liveness
	// probe fails once the other file is gone and the container restarts.
	waitPod(t, c, ns, "probes", podStartTimeout, func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodRunning {
			return "not running: " + statusText(p)
		}
		return ""
	})
	sawNotReady := false
	waitPod(t, c, ns, "probes", 60*time.Second, func(p *corev1.Pod) string {
		if len(p.Status.ContainerStatuses) != 1 {
			return "no container status"
		}
		cs := p.Status.ContainerStatuses[0]
		if !cs.Ready && cs.RestartCount == 0 {
			sawNotReady = true
		}
		if cs.RestartCount < 1 {
			return fmt.Sprintf("restartCount %d, ready %v", cs.RestartCount, cs.Ready)
		}
		return ""
	})
	if !sawNotReady {
		t.Log("the container was ready at every look before its restart (the first look came after its readiness file appeared)")
	}
	if out := describe(c, ns, "pod", "probes"); !strings.Contains(out, "Liveness probe failed") {
		t.Errorf("no \"Liveness probe failed\" event:\n%s", out)
	}
}

package kubelet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Image pull back-off, as upstream's kubelet: 10 s doubling to 5 min.
const (
	imageBackoffInitial = 10 * time.Second
	imageBackoffMax     = 5 * time.Minute
)

// Waiting reasons of image pulls, as upstream.
const (
	waitingErrImagePull      = "ErrImagePull"
	waitingImagePullBackOff  = "ImagePullBackOff"
	waitingErrImageNeverPull = "ErrImageNeverPull"
	waitingInvalidImageName  = "InvalidImageName"
)

// pullState is a failed pull of one container's image.
type pullState struct {
	// Reason and Message are the container's waiting state.
	Reason, Message string
	// Err is the pull's error, for the back-off message.
	Err string
	// Delay is the current back-off; Until when the next pull may start.
	Delay time.Duration
	Until time.Time
}

// ensureImage makes a container's image present as its imagePullPolicy
// asks, with upstream's events and back-off. It reports whether the
// container can be created now; when not, the pod's status shows why and
// retry says when to look again.
func (k *Kubelet) ensureImage(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (ok bool, retry time.Duration) {
	if k.cfg.Images == nil {
		return true, 0
	}
	key := backoffKey(string(pod.UID), c.Name)
	now := k.clock.Now()
	k.mu.Lock()
	st, failed := k.pulls[key]
	k.mu.Unlock()
	setState := func(s pullState) {
		k.mu.Lock()
		k.pulls[key] = s
		k.mu.Unlock()
	}
	if failed && now.Before(st.Until) {
		if st.Reason == waitingErrImagePull {
			st.Reason = waitingImagePullBackOff
			st.Message = fmt.Sprintf("Back-off pulling image %q: %s: %s", c.Image, waitingErrImagePull, st.Err)
			setState(st)
			k.event(pod, c, corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", c.Image))
			k.event(pod, c, corev1.EventTypeWarning, "Failed", "Error: "+waitingImagePullBackOff)
		}
		return false, st.Until.Sub(now)
	}
	if c.Image == "" {
		setState(pullState{Reason: waitingInvalidImageName, Message: "image is empty", Until: now.Add(imageBackoffMax)})
		return false, 0
	}
	_, present, err := k.cfg.Images.ImageStatus(ctx, c.Image)
	if err != nil {
		setState(pullState{Reason: waitingInvalidImageName, Message: fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err),
			Until: now.Add(imageBackoffMax)})
		k.event(pod, c, corev1.EventTypeWarning, waitingInvalidImageName, fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err))
		return false, 0
	}
	switch c.ImagePullPolicy {
	case corev1.PullNever:
		if !present {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			setState(pullState{Reason: waitingErrImageNeverPull, Message: msg, Until: now.Add(imageBackoffInitial)})
			k.event(pod, c, corev1.EventTypeWarning, waitingErrImageNeverPull, msg)
			return false, imageBackoffInitial
		}
		k.clearPull(key)
		return true, 0
	case corev1.PullIfNotPresent:
		if present {
			k.clearPull(key)
			k.event(pod, c, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.Image))
			return true, 0
		}
	}
	k.event(pod, c, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
	start := time.Now()
	name := pod.Namespace + "/" + pod.Name
	last := time.Time{}
	progress := func(line string) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			k.log.Info("pulling image", "pod", name, "image", c.Image, "progress", line)
		}
	}
	if _, err := k.cfg.Images.PullImage(ctx, c.Image, k.pullAuth(ctx, pod), progress); err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		delay := imageBackoffInitial
		if failed && st.Delay > 0 {
			delay = min(2*st.Delay, imageBackoffMax)
		}
		setState(pullState{Reason: waitingErrImagePull, Message: err.Error(), Err: err.Error(), Delay: delay, Until: now.Add(delay)})
		k.log.Info("image pull failed", "pod", name, "image", c.Image, "err", err, "retryIn", delay)
		k.event(pod, c, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
		k.event(pod, c, corev1.EventTypeWarning, "Failed", "Error: "+waitingErrImagePull)
		return false, delay
	}
	took := time.Since(start).Round(time.Millisecond)
	k.clearPull(key)
	k.log.Info("pulled image", "pod", name, "image", c.Image, "took", took)
	k.event(pod, c, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Successfully pulled image %q in %s (%s including waiting)", c.Image, took, took))
	return true, 0
}

func (k *Kubelet) clearPull(key string) {
	k.mu.Lock()
	delete(k.pulls, key)
	k.mu.Unlock()
}

// pullWaiting returns the waiting states of a pod's containers whose
// image could not be pulled.
func (k *Kubelet) pullWaiting(pod *corev1.Pod) map[string]corev1.ContainerStateWaiting {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out map[string]corev1.ContainerStateWaiting
	for _, c := range allContainers(pod) {
		if st, ok := k.pulls[backoffKey(string(pod.UID), c.Name)]; ok {
			if out == nil {
				out = map[string]corev1.ContainerStateWaiting{}
			}
			out[c.Name] = corev1.ContainerStateWaiting{Reason: st.Reason, Message: st.Message}
		}
	}
	return out
}

// pullAuth reads the credentials of a pod's imagePullSecrets. A secret
// that is missing or malformed is skipped, as upstream does (the pull may
// still work without it).
func (k *Kubelet) pullAuth(ctx context.Context, pod *corev1.Pod) []RegistryAuth {
	var out []RegistryAuth
	for _, ref := range pod.Spec.ImagePullSecrets {
		if ref.Name == "" {
			continue
		}
		s, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				k.log.Info("reading an image pull secret failed", "pod", pod.Namespace+"/"+pod.Name, "secret", ref.Name, "err", err)
			}
			continue
		}
		out = append(out, dockerConfigAuths(s)...)
	}
	return out
}

// dockerConfigAuths parses a kubernetes.io/dockerconfigjson or
// kubernetes.io/dockercfg secret.
func dockerConfigAuths(s *corev1.Secret) []RegistryAuth {
	type entry struct {
		Username      string `json:"username"`
		Password      string `json:"password"`
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	}
	var auths map[string]entry
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]entry `json:"auths"`
		}
		if json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg) != nil {
			return nil
		}
		auths = cfg.Auths
	case corev1.SecretTypeDockercfg:
		if json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths) != nil {
			return nil
		}
	default:
		return nil
	}
	out := make([]RegistryAuth, 0, len(auths))
	for server, e := range auths {
		a := RegistryAuth{Server: registryHost(server), Username: e.Username, Password: e.Password, Auth: e.Auth,
			IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if a.Username == "" && a.Auth != "" {
			if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
				if u, p, ok := strings.Cut(string(raw), ":"); ok {
					a.Username, a.Password = u, p
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// registryHost reduces a docker config key ("https://index.docker.io/v1/",
// "registry.example:5000") to the registry's host.
func registryHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, _, _ := strings.Cut(key, "/")
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		return "docker.io"
	}
	return host
}

// event records an event about one container of a pod, with upstream's
// fieldPath, when the kubelet has a recorder.
func (k *Kubelet) event(pod *corev1.Pod, c *corev1.Container, typ, reason, msg string) {
	if k.cfg.Recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		APIVersion: "v1", ResourceVersion: pod.ResourceVersion}
	if c != nil {
		ref.FieldPath = containerFieldPath(pod, c.Name)
	}
	k.cfg.Recorder.Event(ref, typ, reason, msg)
}

// containerFieldPath is upstream's spec.containers{name} /
// spec.initContainers{name} reference of a container.
func containerFieldPath(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return "spec.initContainers{" + name + "}"
		}
	}
	return "spec.containers{" + name + "}"
}

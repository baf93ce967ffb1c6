package kubelet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Pod volumes live where upstream's kubelet puts them:
// <podsDir>/<uid>/volumes/<plugin>/<volume name>.
const (
	pluginEmptyDir    = "kubernetes.io~empty-dir"
	pluginConfigMap   = "kubernetes.io~configmap"
	pluginSecret      = "kubernetes.io~secret"
	pluginDownwardAPI = "kubernetes.io~downward-api"
	pluginProjected   = "kubernetes.io~projected"

	// volumeRefreshInterval bounds how often a pod's configMap, secret,
	// downward API and projected volumes are read again, so a sync every
	// second costs the API server nothing most of the time.
	volumeRefreshInterval = 10 * time.Second
	// volumeRetryInterval is how soon a volume that failed is tried again.
	volumeRetryInterval = 2 * time.Second

	// defaultVolumeMode is the API's default defaultMode.
	defaultVolumeMode int32 = 0o644
)

// volumeManager makes a pod's volumes ready on the node: directories for
// emptyDir (tmpfs for medium Memory), checked host paths, and configMap,
// secret, downward API and projected contents written with the atomic
// writer and refreshed while the pod runs. The kubelet calls Setup on
// every sync of a pod before creating its containers and Teardown once
// the pod is gone.
type volumeManager struct {
	client  kubernetes.Interface
	podsDir string
	log     *slog.Logger
	// clock decides when contents are due for a refresh.
	clock clock.PassiveClock
	// nodeAllocatable stands in for a container's unset limits in
	// downward API resourceFieldRefs, as upstream; nil means none.
	nodeAllocatable func() corev1.ResourceList
	// tokens caches the service-account tokens of projected volumes.
	tokens *tokenManager

	mu sync.Mutex
	// state holds, per pod and volume, when the contents were last
	// written and the error of that attempt.
	state map[types.UID]map[string]volumeState
}

// volumeState is the outcome of the last content refresh of one volume.
type volumeState struct {
	at  time.Time
	err error
}

// newVolumeManager returns a manager that keeps volumes under podsDir and
// reads configMaps and secrets with client.
func newVolumeManager(client kubernetes.Interface, podsDir string, logger *slog.Logger) *volumeManager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &volumeManager{
		client:  client,
		podsDir: podsDir,
		log:     logger,
		clock:   clock.RealClock{},
		tokens:  newTokenManager(client),
		state:   map[types.UID]map[string]volumeState{},
	}
}

// podDir is <podsDir>/<uid>, refusing UIDs that would escape podsDir.
func (m *volumeManager) podDir(uid types.UID) (string, error) {
	u := string(uid)
	if u == "" || u == "." || u == ".." || strings.ContainsAny(u, `/\`) {
		return "", fmt.Errorf("invalid pod uid %q", u)
	}
	return filepath.Join(m.podsDir, u), nil
}

// Setup makes every volume of the pod ready and returns, per volume name,
// the host path to bind-mount into containers: a directory, or for a
// hostPath of a file type, a file. It is idempotent and cheap when nothing
// changed: configMap, secret, downward API and projected contents are read
// at most every volumeRefreshInterval per volume and rewritten only when
// they changed, so updates reach running containers without a restart.
// Errors read as upstream's FailedMount events
// (`MountVolume.SetUp failed for volume "cfg" : configmap "x" not found`).
func (m *volumeManager) Setup(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	podDir, err := m.podDir(pod.UID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := m.setupVolume(ctx, pod, podDir, v)
		if err != nil {
			return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", v.Name, err)
		}
		out[v.Name] = p
	}
	return out, nil
}

// setupVolume makes one volume ready and returns its host path.
func (m *volumeManager) setupVolume(ctx context.Context, pod *corev1.Pod, podDir string, v *corev1.Volume) (string, error) {
	volDir := func(plugin string) string {
		return filepath.Join(podDir, "volumes", plugin, v.Name)
	}
	gid := podFSGroup(pod)
	switch {
	case v.EmptyDir != nil:
		dir := volDir(pluginEmptyDir)
		return dir, m.setupEmptyDir(dir, v.EmptyDir, gid)
	case v.HostPath != nil:
		return v.HostPath.Path, setupHostPath(v.HostPath)
	case v.ConfigMap != nil:
		dir := volDir(pluginConfigMap)
		return dir, m.refresh(pod.UID, v.Name, dir, false, gid, func() (map[string]fileProjection, error) {
			return m.configMapVolumePayload(ctx, pod.Namespace, v.ConfigMap)
		})
	case v.Secret != nil:
		dir := volDir(pluginSecret)
		return dir, m.refresh(pod.UID, v.Name, dir, true, gid, func() (map[string]fileProjection, error) {
			return m.secretVolumePayload(ctx, pod.Namespace, v.Secret)
		})
	case v.DownwardAPI != nil:
		dir := volDir(pluginDownwardAPI)
		return dir, m.refresh(pod.UID, v.Name, dir, false, gid, func() (map[string]fileProjection, error) {
			return downwardAPIPayload(v.DownwardAPI.Items, modeOrDefault(v.DownwardAPI.DefaultMode), pod, m.allocatable())
		})
	case v.Projected != nil:
		// Upstream keeps projected volumes on tmpfs: they may hold secrets.
		dir := volDir(pluginProjected)
		return dir, m.refresh(pod.UID, v.Name, dir, true, gid, func() (map[string]fileProjection, error) {
			return m.projectedPayload(ctx, pod, v.Projected)
		})
	case v.PersistentVolumeClaim != nil:
		return m.setupClaim(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
	default:
		return "", fmt.Errorf("volume type %s is not supported", volumeSourceType(&v.VolumeSource))
	}
}

// setupClaim resolves a persistentVolumeClaim to the node directory of the
// volume bound to it; hostPath and local volumes are supported.
func (m *volumeManager) setupClaim(ctx context.Context, ns, claim string) (string, error) {
	pvc, err := m.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("persistentvolumeclaim %q not found", claim)
		}
		return "", err
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound (phase %s)", claim, pvc.Status.Phase)
	}
	pv, err := m.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("persistentvolume %q not found", pvc.Spec.VolumeName)
		}
		return "", err
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, setupHostPath(pv.Spec.HostPath)
	case pv.Spec.Local != nil:
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			return "", fmt.Errorf("local volume %s: %w", pv.Name, err)
		}
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes are supported", pv.Name)
}

// podFSGroup is the pod's fsGroup, or -1.
func podFSGroup(pod *corev1.Pod) int {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		return int(*sc.FSGroup)
	}
	return -1
}

// volumeSourceType names the set field of src as the API spells it
// ("persistentVolumeClaim"), for the error about unsupported volumes.
func volumeSourceType(src *corev1.VolumeSource) string {
	rv := reflect.ValueOf(src).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "<none>"
}

// allocatable is the node's allocatable resources, or none.
func (m *volumeManager) allocatable() corev1.ResourceList {
	if m.nodeAllocatable == nil {
		return nil
	}
	return m.nodeAllocatable()
}

// refresh writes the volume's payload into dir when it is due: on the
// first call, volumeRefreshInterval after the last success, or
// volumeRetryInterval after a failure. Between those it returns the last
// outcome without any I/O. memory puts dir on a tmpfs first; gid is the
// pod's fsGroup or -1.
func (m *volumeManager) refresh(uid types.UID, name, dir string, memory bool, gid int, payload func() (map[string]fileProjection, error)) error {
	now := m.clock.Now()
	m.mu.Lock()
	st, seen := m.state[uid][name]
	m.mu.Unlock()
	if seen {
		wait := volumeRefreshInterval
		if st.err != nil {
			wait = volumeRetryInterval
		}
		if now.Sub(st.at) < wait {
			return st.err
		}
	}
	err := m.writeVolume(dir, memory, gid, payload, now)
	m.mu.Lock()
	if m.state[uid] == nil {
		m.state[uid] = map[string]volumeState{}
	}
	m.state[uid][name] = volumeState{at: now, err: err}
	m.mu.Unlock()
	return err
}

// writeVolume prepares dir (on a tmpfs when memory) and writes payload
// into it with the atomic writer. With an fsGroup (gid not -1) the volume
// belongs to that group and its files are group-readable, as upstream.
func (m *volumeManager) writeVolume(dir string, memory bool, gid int, payload func() (map[string]fileProjection, error), now time.Time) error {
	if err := ensureDir(dir, 0o777); err != nil {
		return err
	}
	if memory {
		if err := m.mountTmpfs(dir, ""); err != nil {
			return err
		}
	}
	if err := setRootGroup(dir, gid, 0o550); err != nil {
		return err
	}
	files, err := payload()
	if err != nil {
		return err
	}
	if gid >= 0 {
		for p, f := range files {
			f.Mode |= 0o440
			files[p] = f
		}
	}
	changed, err := writeAtomic(dir, files, now, gid)
	if err != nil {
		return fmt.Errorf("write volume %s: %w", dir, err)
	}
	if changed {
		m.log.Info("volume contents written", "dir", dir, "files", len(files))
	}
	return nil
}

// ensureDir creates dir and its parents and gives dir perm regardless of
// the umask, as upstream's emptyDir does. An existing dir keeps its mode
// (a tmpfs root is 1777).
func ensureDir(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// setupEmptyDir creates an emptyDir's directory, on a tmpfs of the
// volume's sizeLimit for medium Memory. With an fsGroup (gid not -1) the
// directory belongs to that group, with the setgid bit, as upstream.
func (m *volumeManager) setupEmptyDir(dir string, src *corev1.EmptyDirVolumeSource, gid int) error {
	if err := ensureDir(dir, 0o777); err != nil {
		return err
	}
	switch src.Medium {
	case corev1.StorageMediumDefault:
	case corev1.StorageMediumMemory:
		opts := ""
		if src.SizeLimit != nil && !src.SizeLimit.IsZero() {
			opts = "size=" + strconv.FormatInt(src.SizeLimit.Value(), 10)
		}
		if err := m.mountTmpfs(dir, opts); err != nil {
			return err
		}
	default:
		return fmt.Errorf("emptyDir medium %q is not supported", src.Medium)
	}
	return setRootGroup(dir, gid, 0o770)
}

// setRootGroup gives a volume's root directory the pod's fsGroup gid, the
// setgid bit and the group bits in mask, unless gid is -1 or it has them.
func setRootGroup(dir string, gid int, mask os.FileMode) error {
	if gid < 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	perm := os.FileMode(st.Mode & 0o777)
	if st.Mode&unix.S_ISVTX != 0 {
		perm |= os.ModeSticky
	}
	want := perm | mask | os.ModeSetgid
	if int(st.Gid) == gid && st.Mode&unix.S_ISGID != 0 && perm&mask == mask {
		return nil
	}
	if err := os.Lchown(dir, -1, gid); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	if err := os.Chmod(dir, want); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// mountTmpfs mounts a tmpfs on dir unless one is mounted there already.
func (m *volumeManager) mountTmpfs(dir, opts string) error {
	mounted, err := isMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	m.log.Info("mounted tmpfs", "dir", dir, "options", opts)
	return nil
}

// isMountPoint reports whether dir is the root of a mount: its device
// differs from its parent's. Only tmpfs is ever mounted on volume
// directories, so a bind mount of the same file system cannot fool it.
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return st.Dev != parent.Dev, nil
}

// setupHostPath checks (and for the *OrCreate types creates) a hostPath
// volume's path, with upstream's messages. An untyped path that does not
// exist is created as a directory, as container runtimes do.
func setupHostPath(src *corev1.HostPathVolumeSource) error {
	p := src.Path
	if !filepath.IsAbs(p) {
		return fmt.Errorf("hostPath %q must be an absolute path", p)
	}
	var typ corev1.HostPathType
	if src.Type != nil {
		typ = *src.Type
	}
	fi, statErr := os.Stat(p)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", p, statErr)
	}
	mode := fs.FileMode(0)
	if exists {
		mode = fi.Mode()
	}
	isDir := exists && mode.IsDir()
	switch typ {
	case corev1.HostPathUnset:
		if !exists {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", p, err)
			}
		}
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", p, err)
			}
			return nil
		}
		if !isDir {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", p)
		}
	case corev1.HostPathDirectory:
		if !isDir {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", p)
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			// The parent must exist: upstream does not create it.
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("create %s: %w", p, err)
			}
			return f.Close()
		}
		if isDir {
			return fmt.Errorf("hostPath type check failed: %s is not a file", p)
		}
	case corev1.HostPathFile:
		if !exists || isDir {
			return fmt.Errorf("hostPath type check failed: %s is not a file", p)
		}
	case corev1.HostPathSocket:
		if !exists || mode&fs.ModeSocket == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a socket file", p)
		}
	case corev1.HostPathCharDev:
		if !exists || mode&fs.ModeCharDevice == 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a character device", p)
		}
	case corev1.HostPathBlockDev:
		if !exists || mode&fs.ModeDevice == 0 || mode&fs.ModeCharDevice != 0 {
			return fmt.Errorf("hostPath type check failed: %s is not a block device", p)
		}
	default:
		return fmt.Errorf("%s is an invalid volume type", typ)
	}
	return nil
}

// modeOrDefault is a volume's defaultMode, or the API's default.
func modeOrDefault(mode *int32) int32 {
	if mode == nil {
		return defaultVolumeMode
	}
	return *mode
}

// getConfigMap reads a configMap, with the not-found error upstream's
// kubelet reports (`configmap "x" not found`).
func (m *volumeManager) getConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	cm, err := m.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("configmap"), name)
	}
	if err != nil {
		return nil, fmt.Errorf("get configmap %q: %w", name, err)
	}
	return cm, nil
}

// getSecret reads a secret, with upstream's not-found error
// (`secret "x" not found`).
func (m *volumeManager) getSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s, err := m.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("secret"), name)
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %q: %w", name, err)
	}
	return s, nil
}

// configMapVolumePayload reads a configMap volume's files; a missing
// optional configMap is an empty volume.
func (m *volumeManager) configMapVolumePayload(ctx context.Context, ns string, src *corev1.ConfigMapVolumeSource) (map[string]fileProjection, error) {
	optional := src.Optional != nil && *src.Optional
	cm, err := m.getConfigMap(ctx, ns, src.Name)
	if apierrors.IsNotFound(err) && optional {
		cm = &corev1.ConfigMap{}
	} else if err != nil {
		return nil, err
	}
	return configMapPayload(src.Items, cm, modeOrDefault(src.DefaultMode), optional)
}

// secretVolumePayload reads a secret volume's files; a missing optional
// secret is an empty volume.
func (m *volumeManager) secretVolumePayload(ctx context.Context, ns string, src *corev1.SecretVolumeSource) (map[string]fileProjection, error) {
	optional := src.Optional != nil && *src.Optional
	s, err := m.getSecret(ctx, ns, src.SecretName)
	if apierrors.IsNotFound(err) && optional {
		s = &corev1.Secret{}
	} else if err != nil {
		return nil, err
	}
	return secretPayload(src.Items, s, modeOrDefault(src.DefaultMode), optional)
}

// configMapPayload computes a configMap's files: every key of data and
// binaryData, or only items (key -> path, with a per-item mode). A missing
// key is an error unless the source is optional.
func configMapPayload(items []corev1.KeyToPath, cm *corev1.ConfigMap, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	lookup := func(key string) ([]byte, bool) {
		if s, ok := cm.Data[key]; ok {
			return []byte(s), true
		}
		b, ok := cm.BinaryData[key]
		return b, ok
	}
	if len(items) == 0 {
		out := make(map[string]fileProjection, len(cm.Data)+len(cm.BinaryData))
		for k, v := range cm.Data {
			out[k] = fileProjection{Data: []byte(v), Mode: defaultMode}
		}
		for k, v := range cm.BinaryData {
			out[k] = fileProjection{Data: v, Mode: defaultMode}
		}
		return out, nil
	}
	return itemsPayload(items, lookup, defaultMode, optional, "configmap references non-existent config key: %s")
}

// secretPayload computes a secret's files as configMapPayload does.
func secretPayload(items []corev1.KeyToPath, s *corev1.Secret, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	if len(items) == 0 {
		out := make(map[string]fileProjection, len(s.Data))
		for k, v := range s.Data {
			out[k] = fileProjection{Data: v, Mode: defaultMode}
		}
		return out, nil
	}
	lookup := func(key string) ([]byte, bool) {
		b, ok := s.Data[key]
		return b, ok
	}
	return itemsPayload(items, lookup, defaultMode, optional, "references non-existent secret key: %s")
}

// itemsPayload maps items through lookup; missingFmt is the error for a
// key that is missing from a source that is not optional.
func itemsPayload(items []corev1.KeyToPath, lookup func(string) ([]byte, bool), defaultMode int32, optional bool, missingFmt string) (map[string]fileProjection, error) {
	out := make(map[string]fileProjection, len(items))
	for _, it := range items {
		data, ok := lookup(it.Key)
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf(missingFmt, it.Key)
		}
		if _, dup := out[it.Path]; dup {
			return nil, fmt.Errorf("invalid path: duplicate path %q", it.Path)
		}
		mode := defaultMode
		if it.Mode != nil {
			mode = *it.Mode
		}
		out[it.Path] = fileProjection{Data: data, Mode: mode}
	}
	return out, nil
}

// downwardAPIPayload computes a downward API volume's files from the pod.
// allocatable replaces limits a container does not set.
func downwardAPIPayload(items []corev1.DownwardAPIVolumeFile, defaultMode int32, pod *corev1.Pod, allocatable corev1.ResourceList) (map[string]fileProjection, error) {
	out := make(map[string]fileProjection, len(items))
	for _, it := range items {
		var (
			val string
			err error
		)
		switch {
		case it.FieldRef != nil:
			val, err = podFieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = containerResourceValue(pod, it.ResourceFieldRef, allocatable)
		default:
			err = fmt.Errorf("downward API item %q has neither fieldRef nor resourceFieldRef", it.Path)
		}
		if err != nil {
			return nil, err
		}
		if _, dup := out[it.Path]; dup {
			return nil, fmt.Errorf("invalid path: duplicate path %q", it.Path)
		}
		mode := defaultMode
		if it.Mode != nil {
			mode = *it.Mode
		}
		out[it.Path] = fileProjection{Data: []byte(val), Mode: mode}
	}
	return out, nil
}

// podFieldValue is a pod metadata field as a downward API volume shows it;
// whole label and annotation maps are formatted by formatMap.
func podFieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	for _, f := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if rest, ok := strings.CutPrefix(fieldPath, f.prefix); ok {
			if rest == "" {
				return formatMap(f.m), nil
			}
			if key, ok := subscript(rest); ok {
				return f.m[key], nil
			}
		}
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", fieldPath)
}

// subscript parses "['key']" into key.
func subscript(s string) (string, bool) {
	if strings.HasPrefix(s, "['") && strings.HasSuffix(s, "']") && len(s) >= 4 {
		return s[2 : len(s)-2], true
	}
	return "", false
}

// formatMap renders labels or annotations as upstream's downward API does:
// one `key="value"` line per key, sorted, values quoted as strconv.Quote
// does, without a final newline.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(lines, "\n")
}

// containerResourceValue is a container's request or limit divided by the
// divisor and rounded up, as upstream; an unset limit is the node's
// allocatable amount.
func containerResourceValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	c := volumeContainer(pod, ref.ContainerName)
	if c == nil {
		return "", fmt.Errorf("container %s not found", ref.ContainerName)
	}
	kind, res, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
	}
	name := corev1.ResourceName(res)
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, set := list[name]
	if !set && kind == "limits" {
		q = allocatable[name]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	switch name {
	case corev1.ResourceCPU:
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", ref.Resource)
}

// volumeContainer finds a container or init container of the pod by name.
func volumeContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

// projectedPayload computes a projected volume's files from its
// configMap, secret and downward API sources.
func (m *volumeManager) projectedPayload(ctx context.Context, pod *corev1.Pod, src *corev1.ProjectedVolumeSource) (map[string]fileProjection, error) {
	defaultMode := modeOrDefault(src.DefaultMode)
	out := map[string]fileProjection{}
	for _, s := range src.Sources {
		var (
			files map[string]fileProjection
			err   error
		)
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			cm, gerr := m.getConfigMap(ctx, pod.Namespace, s.ConfigMap.Name)
			if apierrors.IsNotFound(gerr) && optional {
				continue
			} else if gerr != nil {
				return nil, gerr
			}
			files, err = configMapPayload(s.ConfigMap.Items, cm, defaultMode, optional)
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			sec, gerr := m.getSecret(ctx, pod.Namespace, s.Secret.Name)
			if apierrors.IsNotFound(gerr) && optional {
				continue
			} else if gerr != nil {
				return nil, gerr
			}
			files, err = secretPayload(s.Secret.Items, sec, defaultMode, optional)
		case s.DownwardAPI != nil:
			files, err = downwardAPIPayload(s.DownwardAPI.Items, defaultMode, pod, m.allocatable())
		case s.ServiceAccountToken != nil:
			files, err = m.serviceAccountTokenPayload(ctx, pod, s.ServiceAccountToken, defaultMode)
		default:
			err = errors.New("projected volume source is not supported yet")
		}
		if err != nil {
			return nil, err
		}
		for p, f := range files {
			if _, dup := out[p]; dup {
				return nil, fmt.Errorf("invalid path: duplicate path %q", p)
			}
			out[p] = f
		}
	}
	return out, nil
}

// Teardown unmounts every mount under the pod's directory (the tmpfs of
// memory emptyDirs, secrets and projected volumes) and removes the
// directory. It removes nothing while something is still mounted there,
// so a failed unmount never deletes a file system's contents. Tearing
// down a pod that has nothing is not an error.
func (m *volumeManager) Teardown(uid types.UID) error {
	m.mu.Lock()
	delete(m.state, uid)
	m.mu.Unlock()
	dir, err := m.podDir(uid)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	mounts, err := mountsUnder(real)
	if err != nil {
		return err
	}
	for _, mp := range mounts {
		if err := unix.Unmount(mp, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
		m.log.Info("unmounted pod volume", "pod", uid, "dir", mp)
	}
	if left, err := mountsUnder(real); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("pod %s: %s is still mounted", uid, left[0])
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountinfo undoes the octal escapes ("\040" for a space) of a
// mountinfo path.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isReadOnlyVolume reports whether a host path from Setup is a configMap,
// secret, downward API or projected volume, from the layout Setup uses:
// upstream always mounts those read-only, their contents are the
// kubelet's to write.
func isReadOnlyVolume(hostPath string) bool {
	parent := filepath.Dir(hostPath)
	if filepath.Base(filepath.Dir(parent)) != "volumes" {
		return false
	}
	switch filepath.Base(parent) {
	case pluginConfigMap, pluginSecret, pluginDownwardAPI, pluginProjected:
		return true
	}
	return false
}

// containerMounts turns a container's volumeMounts into the runtime's bind
// mounts, given Setup's host paths. A subPath is created in the volume
// when missing (with the volume's mode, as upstream) and must resolve, symlinks followed,
// to a path inside the volume. configMap, secret, downward API and
// projected volumes are always read-only, as upstream.
func containerMounts(c *corev1.Container, hostPaths map[string]string) ([]Mount, error) {
	out := make([]Mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		hp, ok := hostPaths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		prop, err := mountPropagation(vm.MountPropagation)
		if err != nil {
			return nil, fmt.Errorf("container %q volumeMount %q: %w", c.Name, vm.Name, err)
		}
		ro := vm.ReadOnly || isReadOnlyVolume(hp)
		if vm.SubPath != "" {
			if hp, err = subPathHostPath(hp, vm.SubPath); err != nil {
				return nil, fmt.Errorf("container %q volumeMount %q: %w", c.Name, vm.Name, err)
			}
		}
		out = append(out, Mount{ContainerPath: vm.MountPath, HostPath: hp, ReadOnly: ro, Propagation: prop})
	}
	return out, nil
}

// mountPropagation maps the API's mountPropagation to the runtime's.
func mountPropagation(p *corev1.MountPropagationMode) (string, error) {
	if p == nil {
		return "private", nil
	}
	switch *p {
	case corev1.MountPropagationNone:
		return "private", nil
	case corev1.MountPropagationHostToContainer:
		return "rslave", nil
	case corev1.MountPropagationBidirectional:
		return "rshared", nil
	}
	return "", fmt.Errorf("invalid mount propagation mode %q", *p)
}

// subPathHostPath resolves subPath inside the volume at volPath, creating
// it as a directory when it does not exist.
func subPathHostPath(volPath, subPath string) (string, error) {
	if path.IsAbs(subPath) || filepath.IsAbs(subPath) {
		return "", fmt.Errorf("error SubPath `%s` must not be an absolute path", subPath)
	}
	for _, el := range strings.Split(filepath.ToSlash(subPath), "/") {
		if el == ".." {
			return "", fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", subPath)
		}
	}
	full := filepath.Join(volPath, subPath)
	if _, err := os.Lstat(full); errors.Is(err, fs.ErrNotExist) {
		fi, err := os.Stat(volPath)
		if err != nil {
			return "", fmt.Errorf("stat volume %s: %w", volPath, err)
		}
		if err := mkdirAllMode(volPath, subPath, fi.Mode().Perm()); err != nil {
			return "", fmt.Errorf("failed to create subPath directory %s: %w", full, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("stat %s: %w", full, err)
	}
	root, err := filepath.EvalSymlinks(volPath)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", volPath, err)
	}
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", full, err)
	}
	if resolved != root && !strings.HasPrefix(resolved, strings.TrimSuffix(root, "/")+"/") {
		return "", fmt.Errorf("subpath %q not within volume path %q", resolved, root)
	}
	return resolved, nil
}

// mkdirAllMode creates the missing directories of rel under root with
// perm exactly, whatever the umask, as upstream does for subPaths.
func mkdirAllMode(root, rel string, perm os.FileMode) error {
	cur := root
	for _, el := range strings.Split(filepath.ToSlash(filepath.Clean(rel)), "/") {
		cur = filepath.Join(cur, el)
		if err := os.Mkdir(cur, perm); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return err
		}
		if err := os.Chmod(cur, perm); err != nil {
			return err
		}
	}
	return nil
}

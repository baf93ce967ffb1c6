package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/defaults"
)

// Static pods, as upstream: every manifest file in StaticPodPath is a pod
// this node runs on its own authority, from the file, whether or not the
// API server can be reached (a node can run its own control plane so);
// only a pod on the pod network waits for the Node, which holds the
// node's pod range, unless its sandbox exists already. The
// pod is named "<name>-<node>" and defaulted as the API server would, and
// its UID is a hash of the node and the manifest, so the same file is the
// same pod across restarts of the agent, which adopts its containers.
//
// The API shows the pod as a mirror pod: the same pod with the annotation
// kubernetes.io/config.mirror (the static pod's UID), owned by the Node.
// The kubelet creates it once it can, writes the static pod's status to
// it, and creates it again when someone deletes it; the containers keep
// running meanwhile. A changed manifest replaces the pod, the old one
// stopped within its grace period first; a removed one stops the pod and
// deletes its mirror pod.
const (
	// DefaultFileCheckFrequency is how often the static pod directory is
	// read, upstream's fileCheckFrequency.
	DefaultFileCheckFrequency = 20 * time.Second
	annotationMirror          = "kubernetes.io/config.mirror"
	annotationHash            = "kubernetes.io/config.hash"
	annotationSource          = "kubernetes.io/config.source"
	annotationSeen            = "kubernetes.io/config.seen"
	staticSourceFile          = "file"
	// mirrorRetry is how soon a static pod is looked at again while its
	// mirror pod cannot be created (no Node yet, or no API server).
	mirrorRetry = 5 * time.Second
)

// staticPod is one manifest read from the static pod directory.
type staticPod struct {
	File string
	Pod  *corev1.Pod
}

// readStaticPods reads every *.yaml, *.yml and *.json file of dir as a pod
// for node, as upstream names and annotates them. Unreadable files, and a
// second file for a pod name already read, are reported in errs and
// skipped.
func readStaticPods(dir, node string) ([]staticPod, []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []staticPod
	var errs []error
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		switch filepath.Ext(name) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := staticPodFrom(data, node)
		if err != nil {
			errs = append(errs, fmt.Errorf("static pod %s: %w", path, err))
			continue
		}
		key := p.Namespace + "/" + p.Name
		if first, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("static pod %s: pod %s is already defined in %s", path, key, first))
			continue
		}
		seen[key] = path
		out = append(out, staticPod{File: path, Pod: p})
	}
	return out, errs
}

// staticPodFrom decodes a manifest into the static pod of node, as
// upstream's file source: defaulted, named after the node, with a UID
// that hashes the node and the manifest, tolerating every NoExecute taint.
func staticPodFrom(data []byte, node string) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := yaml.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	if p.Kind != "" && p.Kind != "Pod" {
		return nil, fmt.Errorf("kind %q: want Pod", p.Kind)
	}
	if p.Name == "" {
		return nil, fmt.Errorf("no metadata.name")
	}
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write(data)
	hash := hex.EncodeToString(h.Sum(nil)[:16])
	p.Name = p.Name + "-" + node
	if p.Namespace == "" {
		p.Namespace = metav1.NamespaceDefault
	}
	p.UID = types.UID(hash)
	p.ResourceVersion = ""
	p.Spec.NodeName = node
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[annotationHash] = hash
	p.Annotations[annotationSource] = staticSourceFile
	p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})
	defaults.Default(&p)
	p.Status = corev1.PodStatus{Phase: corev1.PodPending}
	p.Status.QOSClass = qosClass(&p)
	return &p, nil
}

// staticPods is the node's static pods by "namespace/name", with the
// earlier versions of each still to be stopped.
type staticPods struct {
	mu    sync.Mutex
	byKey map[string]*staticEntry
	uids  map[types.UID]string // every UID above -> its key
}

type staticEntry struct {
	// pod is the manifest's pod with the status last computed for it;
	// nil once the file is gone.
	pod *corev1.Pod
	// old are earlier versions of the pod, to be stopped first.
	old []*corev1.Pod
}

func newStaticPods() *staticPods {
	return &staticPods{byKey: map[string]*staticEntry{}, uids: map[types.UID]string{}}
}

// update makes the set hold pods, and returns the keys whose pod changed.
func (s *staticPods) update(pods []staticPod) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]*corev1.Pod{}
	for _, sp := range pods {
		want[sp.Pod.Namespace+"/"+sp.Pod.Name] = sp.Pod
	}
	var changed []string
	for key, p := range want {
		e := s.byKey[key]
		if e == nil {
			e = &staticEntry{}
			s.byKey[key] = e
		}
		if e.pod != nil && e.pod.UID == p.UID {
			continue
		}
		if e.pod != nil {
			e.old = append(e.old, e.pod)
		}
		e.pod = p.DeepCopy()
		s.uids[p.UID] = key
		changed = append(changed, key)
	}
	for key, e := range s.byKey {
		if want[key] == nil && e.pod != nil {
			e.old = append(e.old, e.pod)
			e.pod = nil
			changed = append(changed, key)
		}
	}
	slices.Sort(changed)
	return changed
}

// has reports whether key is a static pod, current or still stopping.
func (s *staticPods) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[key] != nil
}

// keys returns the static pods' keys.
func (s *staticPods) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.byKey))
}

// get returns copies of key's current pod (nil once its file is gone) and
// of its versions still to stop.
func (s *staticPods) get(key string) (*corev1.Pod, []*corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byKey[key]
	if e == nil {
		return nil, nil
	}
	old := make([]*corev1.Pod, len(e.old))
	for i, p := range e.old {
		old[i] = p.DeepCopy()
	}
	if e.pod == nil {
		return nil, old
	}
	return e.pod.DeepCopy(), old
}

// keyOf returns the key of a static pod's UID.
func (s *staticPods) keyOf(uid types.UID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := s.uids[uid]
	return key, ok
}

// setStatus keeps the status computed for the static pod uid, which its
// next sync starts from.
func (s *staticPods) setStatus(uid types.UID, status corev1.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byKey[s.uids[uid]]; e != nil && e.pod != nil && e.pod.UID == uid {
		e.pod.Status = *status.DeepCopy()
	}
}

// stopped forgets an old version of key once it is stopped, and key
// itself once nothing is left of it.
func (s *staticPods) stopped(key string, uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byKey[key]
	if e == nil {
		return
	}
	e.old = slices.DeleteFunc(e.old, func(p *corev1.Pod) bool { return p.UID == uid })
	delete(s.uids, uid)
	if e.pod == nil && len(e.old) == 0 {
		delete(s.byKey, key)
	}
}

// loadStaticPods reads the static pod directory once and queues the pods
// that changed. reported holds the manifest errors already logged.
func (k *Kubelet) loadStaticPods(reported map[string]bool) {
	pods, errs := readStaticPods(k.cfg.StaticPodPath, k.name)
	for _, err := range errs {
		if !reported[err.Error()] {
			reported[err.Error()] = true
			k.log.Warn("static pod manifest ignored", "err", err)
		}
	}
	for _, key := range k.static.update(pods) {
		k.log.Info("static pod changed", "pod", key)
		if k.enqueue != nil {
			k.enqueue(key)
		}
	}
}

// runStaticPods reads the static pod directory every FileCheckFrequency
// until ctx ends; Run has read it once already.
func (k *Kubelet) runStaticPods(ctx context.Context, reported map[string]bool) {
	period := k.cfg.FileCheckFrequency
	if period <= 0 {
		period = DefaultFileCheckFrequency
	}
	t := k.clock.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		k.loadStaticPods(reported)
	}
}

// syncStatic runs the static pod key: it stops the pod's earlier versions,
// keeps its mirror pod (mirror, from the cache, may be nil) matching it,
// and syncs the pod itself.
func (k *Kubelet) syncStatic(ctx context.Context, key string, mirror *corev1.Pod) (time.Duration, error) {
	pod, old := k.static.get(key)
	for _, o := range old {
		rt, err := k.podRuntimeFor(ctx, o.UID)
		if err != nil {
			return 0, err
		}
		grace := time.Duration(ptr.Deref(o.Spec.TerminationGracePeriodSeconds, corev1.DefaultTerminationGracePeriodSeconds)) * time.Second
		if err := k.killPod(ctx, o, rt, grace); err != nil {
			return 0, err
		}
		if err := k.cleanup(ctx, string(o.UID)); err != nil {
			return 0, err
		}
		k.static.stopped(key, o.UID)
		k.log.Info("static pod stopped", "pod", key, "uid", o.UID)
	}
	if mirror != nil && (pod == nil || !k.isMirrorOf(mirror, pod)) {
		if err := k.deleteMirrorPod(ctx, mirror); err != nil {
			return 0, err
		}
		mirror = nil
	}
	if pod == nil {
		return 0, nil
	}
	if !pod.Spec.HostNetwork && k.getNode() == nil {
		// The pod network needs the node's pod range, which the Node in
		// the API holds: wait for it, unless the pod already has its
		// sandbox (a restarted agent).
		rt, err := k.podRuntimeFor(ctx, pod.UID)
		if err != nil {
			return 0, err
		}
		if len(rt.Sandboxes) == 0 {
			return mirrorRetry, nil // setNode queues it sooner
		}
	}
	retry := time.Duration(0)
	if mirror == nil {
		if created, err := k.createMirrorPod(ctx, pod); err != nil || !created {
			if err != nil {
				k.log.Debug("mirror pod not created", "pod", key, "err", err)
			}
			retry = mirrorRetry
		}
	}
	after, err := k.syncPod(ctx, pod)
	if err != nil {
		return 0, err
	}
	if retry > 0 && (after == 0 || retry < after) {
		after = retry
	}
	return after, nil
}

// isMirrorOf reports whether mirror is the live mirror pod of the static
// pod on this node.
func (k *Kubelet) isMirrorOf(mirror, pod *corev1.Pod) bool {
	return mirror.Annotations[annotationMirror] == string(pod.UID) && mirror.DeletionTimestamp == nil && mirror.Spec.NodeName == k.name
}

// mirrorPod returns the live mirror pod of a static pod from the cache, or
// nil.
func (k *Kubelet) mirrorPod(pod *corev1.Pod) *corev1.Pod {
	if k.pods == nil {
		return nil
	}
	m, err := k.pods.Pods(pod.Namespace).Get(pod.Name)
	if err != nil || !k.isMirrorOf(m, pod) {
		return nil
	}
	return m
}

// createMirrorPod creates the mirror pod of a static pod, owned by the
// Node; it reports false while there is no Node yet.
func (k *Kubelet) createMirrorPod(ctx context.Context, pod *corev1.Pod) (bool, error) {
	node := k.getNode()
	if node == nil {
		return false, nil
	}
	m := pod.DeepCopy()
	m.UID, m.ResourceVersion = "", ""
	m.Status = corev1.PodStatus{}
	m.Annotations[annotationMirror] = string(pod.UID)
	m.Annotations[annotationSeen] = k.clock.Now().UTC().Format(time.RFC3339Nano)
	m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}
	_, err := k.client.CoreV1().Pods(m.Namespace).Create(ctx, m, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return true, nil // the cache lags, or a pod that is no mirror pod has the name
	case err != nil:
		return false, err
	}
	k.log.Info("mirror pod created", "pod", m.Namespace+"/"+m.Name)
	return true, nil
}

// deleteMirrorPod deletes a mirror pod for good: one of an earlier
// version, one whose static pod is gone, or one a user deleted, which is
// then created again. A pod of the same name that is no mirror pod is
// left alone.
func (k *Kubelet) deleteMirrorPod(ctx context.Context, mirror *corev1.Pod) error {
	if _, ok := mirror.Annotations[annotationMirror]; !ok || mirror.Spec.NodeName != k.name {
		return nil
	}
	err := k.client.CoreV1().Pods(mirror.Namespace).Delete(ctx, mirror.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: ptr.To(mirror.UID)},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("mirror pod %s/%s: delete: %w", mirror.Namespace, mirror.Name, err)
	}
	k.mu.Lock()
	delete(k.written, string(mirror.UID))
	k.mu.Unlock()
	k.log.Info("mirror pod deleted", "pod", mirror.Namespace+"/"+mirror.Name)
	return nil
}

// runtimeUID is the UID a pod's containers run under: a mirror pod's is
// its static pod's.
func runtimeUID(pod *corev1.Pod) types.UID {
	if uid := pod.Annotations[annotationMirror]; uid != "" {
		return types.UID(uid)
	}
	return pod.UID
}

package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
)

// Static pods, as upstream: every manifest file in StaticPodPath is a pod
// this node runs, named "<name>-<node>", which the API shows as a mirror
// pod (annotation kubernetes.io/config.mirror, owned by the Node). Skiff's
// node runs the mirror pod like any pod bound to it, so static pods need
// the API server; the kubelet keeps the mirror pods matching the files:
// created when a file appears or the mirror pod was deleted, replaced when
// the file changes, deleted when the file goes.
const (
	// DefaultFileCheckFrequency is how often the static pod directory is
	// read, upstream's fileCheckFrequency.
	DefaultFileCheckFrequency = 20 * time.Second
	annotationMirror          = "kubernetes.io/config.mirror"
	annotationHash            = "kubernetes.io/config.hash"
	annotationSource          = "kubernetes.io/config.source"
	annotationSeen            = "kubernetes.io/config.seen"
	staticSourceFile          = "file"
)

// staticPod is one manifest read from the static pod directory.
type staticPod struct {
	File string
	Pod  *corev1.Pod
	Hash string
}

// readStaticPods reads every *.yaml, *.yml and *.json file of dir as a pod
// for node, as upstream names and annotates them. Unreadable files are
// reported in errs and skipped.
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
		out = append(out, staticPod{File: path, Pod: p, Hash: p.Annotations[annotationHash]})
	}
	return out, errs
}

// staticPodFrom decodes a manifest into the mirror pod of node.
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
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:16])
	p.Name = p.Name + "-" + node
	if p.Namespace == "" {
		p.Namespace = metav1.NamespaceDefault
	}
	p.Spec.NodeName = node
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[annotationHash] = hash
	p.Annotations[annotationMirror] = hash
	p.Annotations[annotationSource] = staticSourceFile
	p.ResourceVersion, p.UID = "", ""
	return &p, nil
}

// runStaticPods keeps the node's mirror pods matching its manifest files
// until ctx ends.
func (k *Kubelet) runStaticPods(ctx context.Context) {
	period := k.cfg.FileCheckFrequency
	if period <= 0 {
		period = DefaultFileCheckFrequency
	}
	t := k.clock.NewTicker(period)
	defer t.Stop()
	reported := map[string]bool{}
	for {
		pods, errs := readStaticPods(k.cfg.StaticPodPath, k.name)
		for _, err := range errs {
			if !reported[err.Error()] {
				reported[err.Error()] = true
				k.log.Warn("static pod manifest ignored", "err", err)
			}
		}
		if err := k.syncMirrorPods(ctx, pods); err != nil && ctx.Err() == nil {
			k.log.Info("syncing static pods failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// syncMirrorPods creates, replaces and deletes mirror pods so that they
// match the manifests.
func (k *Kubelet) syncMirrorPods(ctx context.Context, want []staticPod) error {
	node := k.getNode()
	if node == nil {
		return nil // mirror pods are owned by the Node; wait for it
	}
	list, err := k.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + k.name})
	if err != nil {
		return err
	}
	have := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		if _, ok := p.Annotations[annotationMirror]; ok {
			have[p.Namespace+"/"+p.Name] = p
		}
	}
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}
	var errs []error
	seen := map[string]bool{}
	for _, s := range want {
		key := s.Pod.Namespace + "/" + s.Pod.Name
		seen[key] = true
		cur := have[key]
		if cur != nil && cur.Annotations[annotationHash] == s.Hash && cur.DeletionTimestamp == nil {
			continue
		}
		if cur != nil {
			if cur.DeletionTimestamp == nil {
				// The manifest changed: the old pod goes first.
				if err := k.client.CoreV1().Pods(cur.Namespace).Delete(ctx, cur.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
			}
			continue // created again once the old one is gone
		}
		p := s.Pod.DeepCopy()
		p.OwnerReferences = []metav1.OwnerReference{owner}
		p.Annotations[annotationSeen] = k.clock.Now().UTC().Format(time.RFC3339Nano)
		if _, err := k.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("mirror pod %s from %s: %w", key, s.File, err))
			continue
		}
		k.log.Info("static pod created", "pod", key, "file", s.File)
	}
	keys := make([]string, 0, len(have))
	for key := range have {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		p := have[key]
		if seen[key] || p.DeletionTimestamp != nil {
			continue
		}
		if err := k.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID(p.UID))}}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		k.log.Info("static pod removed", "pod", key)
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

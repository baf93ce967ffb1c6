// Package image is the node's image store: it pulls images from OCI and
// Docker registries (mirrors, credentials and plain-HTTP endpoints from a
// k3s-style registries.yaml), imports docker-save and OCI archives,
// unpacks layers for overlayfs, and collects unused images.
//
// # On disk
//
// Under Config.Root:
//
//	index.json               the images (ID, tags, repo digests, config, times)
//	lock                     flock serialising index writers across processes
//	blobs/sha256/<hex>       manifests and configs
//	layers/<diffID hex>/fs   one unpacked layer, shared by every image that has it
//	layers/<diffID hex>/size bytes of file content in the layer
//	tmp/<kind>-<pid>-*       work directories of the process <pid>
//
// Compressed layer blobs are not kept: a layer is streamed from the
// registry (or archive) straight into a work directory, its diffID is
// checked, and the directory is renamed into layers/, so a crash never
// leaves a partial layer and a layer is unpacked once however many images
// use it. OCI whiteouts become overlayfs ones: ".wh.NAME" a 0:0 character
// device NAME, ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its
// directory. Unpacking needs root (ownership, device nodes, trusted
// xattrs).
//
// # Lifecycle and rules
//
// New opens or creates the store; there is nothing to run or close. The
// daemon and `skiff images` may open the same Root at once: index writes
// happen under the file lock and replace index.json atomically, readers
// re-read it when it changed. Pulls of the same reference share one
// download; a layer already on disk is neither fetched nor unpacked again.
//
// A runtime calls Rootfs for a container: it gets the layer directories
// (lowest first) and the image config, and the image is marked used for
// GC. Layer directories are read-only by contract; a runtime stacks them
// as overlay lowerdirs with its own upper directory. Remove and GC delete
// layers no remaining image references. GC skips images the caller says
// are in use; both refuse to delete a layer that appears in a mount of
// the process's mount namespace (/proc/self/mountinfo), so an image whose
// container's root is mounted is kept (Remove returns ErrInUse). GC also
// deletes layers no image references once they are an hour old (left by
// a crash between unpacking and recording).
//
// Image IDs are config digests ("sha256:..."); the ID reported to the
// kubelet (PullImage, ImageStatus, Rootfs.ImageID) is the repo digest
// ("docker.io/library/busybox@sha256:<manifest or index digest>"), as
// containerd reports it in container status.
package image

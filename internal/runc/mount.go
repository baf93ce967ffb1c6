package runc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Namespace kinds a sandbox pins.
const (
	nsNet = "net"
	nsIPC = "ipc"
	nsUTS = "uts"
)

// pinNamespaces creates new namespaces of the given kinds and keeps them
// alive by bind mounting them onto files in dir, as CRI-O's pinns does. The
// work happens on a locked OS thread that is never returned to the Go
// scheduler: the goroutine exits without unlocking, so the thread, whose
// namespaces differ from the process's, dies with it.
func pinNamespaces(dir string, kinds []string, hostname string) (map[string]string, error) {
	var paths map[string]string
	err := onThrowawayThread(func() error {
		var err error
		paths, err = pinOnThisThread(dir, kinds, hostname)
		return err
	})
	return paths, err
}

// onThrowawayThread runs fn on a locked OS thread that exits afterwards,
// so fn may change the thread's namespaces or working directory. It never
// uses the main thread: Go cannot end that one, it would only be parked,
// and /proc/self (the main thread) would show the changed namespaces.
func onThrowawayThread(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Hold the main thread so the retry lands on another one.
			ch <- onThrowawayThread(fn)
			runtime.UnlockOSThread()
			return
		}
		ch <- fn()
		// Ends still locked: the runtime terminates the thread.
	}()
	return <-ch
}

func pinOnThisThread(dir string, kinds []string, hostname string) (map[string]string, error) {
	flags := 0
	for _, k := range kinds {
		switch k {
		case nsNet:
			flags |= unix.CLONE_NEWNET
		case nsIPC:
			flags |= unix.CLONE_NEWIPC
		case nsUTS:
			flags |= unix.CLONE_NEWUTS
		}
	}
	if err := unix.Unshare(flags); err != nil {
		return nil, fmt.Errorf("unshare namespaces: %w", err)
	}
	if flags&unix.CLONE_NEWUTS != 0 && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return nil, fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if flags&unix.CLONE_NEWNET != 0 {
		if err := loopbackUp(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	self := fmt.Sprintf("/proc/%d/task/%d/ns", os.Getpid(), unix.Gettid())
	for _, k := range kinds {
		target := filepath.Join(dir, k)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o400)
		if err != nil {
			unpinNamespaces(paths)
			return nil, fmt.Errorf("pin %s namespace: %w", k, err)
		}
		f.Close()
		if err := unix.Mount(filepath.Join(self, k), target, "", unix.MS_BIND, ""); err != nil {
			unpinNamespaces(paths)
			return nil, fmt.Errorf("pin %s namespace: bind mount: %w", k, err)
		}
		paths[k] = target
	}
	return paths, nil
}

// loopbackUp brings "lo" up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: set flags: %w", err)
	}
	return nil
}

// unpinNamespaces unmounts and removes pinned namespace files. Missing
// files are not an error.
func unpinNamespaces(paths map[string]string) error {
	var errs []error
	for _, p := range paths {
		if err := unmountAndRemove(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// unmountAndRemove detaches every mount stacked on p and removes it.
func unmountAndRemove(p string) error {
	for range 8 {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if err != nil {
			break
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// mountOverlay mounts an overlay of lowers (lowest first) with upper and
// work onto target. The kernel takes mount options up to a page; when
// absolute paths do not fit, the mount is made with paths relative to the
// layers' common parent, from a thread whose working directory is
// unshared from the process's.
func mountOverlay(target string, lowers []string, upper, work string) error {
	if len(lowers) == 0 {
		return errors.New("mount overlay: image has no layers")
	}
	data := overlayOptions(lowers, upper, work, "")
	if len(data) < unix.Getpagesize()-1 {
		if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", target, err)
		}
		return nil
	}
	base := commonDir(lowers)
	data = overlayOptions(lowers, upper, work, base)
	if len(data) >= unix.Getpagesize()-1 {
		return fmt.Errorf("mount overlay on %s: %d layers do not fit in the mount options", target, len(lowers))
	}
	err := onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare fs: %w", err)
		}
		if err := unix.Chdir(base); err != nil {
			return err
		}
		return unix.Mount("overlay", target, "overlay", 0, data)
	})
	if err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// overlayOptions renders overlayfs mount data; lower directories go
// topmost first. With base set, lower paths are made relative to it.
func overlayOptions(lowers []string, upper, work, base string) string {
	ls := make([]string, 0, len(lowers))
	for i := len(lowers) - 1; i >= 0; i-- {
		l := lowers[i]
		if base != "" {
			if rel, err := filepath.Rel(base, l); err == nil {
				l = rel
			}
		}
		ls = append(ls, l)
	}
	return "lowerdir=" + strings.Join(ls, ":") + ",upperdir=" + upper + ",workdir=" + work
}

// commonDir is the longest directory all paths are under.
func commonDir(paths []string) string {
	dir := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for dir != "/" && !strings.HasPrefix(p, dir+"/") {
			dir = filepath.Dir(dir)
		}
	}
	return dir
}

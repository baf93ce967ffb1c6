package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Termination messages, as upstream: at most 4096 bytes from the file; with
// FallbackToLogsOnError, an empty message of a failed container is the
// log's last 80 lines, at most 2048 bytes.
const (
	maxTerminationMessage = 4096
	fallbackLogLines      = 80
	fallbackLogBytes      = 2048
)

// terminationFile is the node file behind a container's
// terminationMessagePath, one per attempt.
func (k *Kubelet) terminationFile(uid types.UID, name string, attempt uint32) string {
	return filepath.Join(k.cfg.PodsDir, string(uid), "containers", name, strconv.FormatUint(uint64(attempt), 10))
}

// terminationMount creates the file a container writes its termination
// message to and returns its mount; none for a runtime without volumes.
func (k *Kubelet) terminationMount(pod *corev1.Pod, c *corev1.Container, attempt uint32) ([]Mount, error) {
	if k.cfg.PodsDir == "" || c.TerminationMessagePath == "" {
		return nil, nil
	}
	path := k.terminationFile(pod.UID, c.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("termination message file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return nil, fmt.Errorf("termination message file: %w", err)
	}
	_ = f.Close()
	_ = os.Chmod(path, 0o666) // any user the container runs as may write it
	return []Mount{{ContainerPath: c.TerminationMessagePath, HostPath: path}}, nil
}

// terminationMessage reads the message of an exited container.
func (k *Kubelet) terminationMessage(pod *corev1.Pod, c *Container) string {
	if k.cfg.PodsDir == "" {
		return c.Message
	}
	spec := findContainer(pod, c.Name, false)
	if spec == nil {
		spec = findContainer(pod, c.Name, true)
	}
	if spec == nil {
		return c.Message
	}
	msg := readLimited(k.terminationFile(pod.UID, c.Name, c.Attempt), maxTerminationMessage)
	if msg == "" && c.ExitCode != 0 && spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && c.LogPath != "" {
		msg = logTail(c.LogPath, fallbackLogLines, fallbackLogBytes)
	}
	if msg == "" {
		return c.Message
	}
	return msg
}

func readLimited(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// logTail returns the message text of the last lines of a CRI log file,
// keeping at most maxBytes of the end.
func logTail(path string, lines int, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// The last lines fit in a bounded window of the file's end: a CRI line
	// carries about 40 bytes of prefix.
	window := int64(lines*(40+maxBytes/lines) + 64*1024)
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-window)
	if _, err := f.Seek(off, io.SeekStart); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	raw, _ := io.ReadAll(f)
	all := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
	if off > 0 && len(all) > 0 {
		all = all[1:] // the window may start mid-line
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	var out bytes.Buffer
	for _, l := range all {
		// "<time> <stream> <P|F> <text>"
		parts := bytes.SplitN(l, []byte(" "), 4)
		if len(parts) < 4 {
			continue
		}
		out.Write(parts[3])
		if string(parts[2]) == "F" {
			out.WriteByte('\n')
		}
	}
	b := out.Bytes()
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	return string(b)
}

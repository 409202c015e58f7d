package containerd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fedlet/fedlet/plugins/sdk"
)

// A container's termination message is a file of its own attempt, mounted
// where the pod spec says (terminationMessagePath), that it may write before
// it exits. When it exits the plugin reads the file into the exit's message,
// so that the message outlives the file, as every other part of the exit
// does, on the container's labels.

// maxTerminationMessage is how much of the file is kept: its end, up to the
// kubelet's 4 KiB, less what containerd's limit on a label (key and value
// together) leaves of it.
const maxTerminationMessage = 4096 - len(labelMessage)

// terminationFile is the host file of one attempt's termination message.
func (s *session) terminationFile(podUID, id string) string {
	return filepath.Join(s.podDir(podUID), "termination", id)
}

// withTerminationMount adds the attempt's termination message file, made
// empty and writable by any user the container runs as, mounted at path in
// the container. An empty path asks for none.
func (s *session) withTerminationMount(mounts []specs.Mount, podUID, id, path string) ([]specs.Mount, error) {
	if path == "" {
		return mounts, nil
	}
	if !filepath.IsAbs(path) {
		return nil, sdk.InvalidArgument("container.termination_message_path", fmt.Sprintf("%q is not an absolute path", path))
	}
	file := s.terminationFile(podUID, id)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("create termination message directory: %w", err)
	}
	if err := os.WriteFile(file, nil, 0o666); err != nil {
		return nil, fmt.Errorf("create termination message file: %w", err)
	}
	// WriteFile's mode is filtered by the umask; the container's user may
	// be anyone.
	if err := os.Chmod(file, 0o666); err != nil {
		return nil, fmt.Errorf("create termination message file: %w", err)
	}
	return append(mounts, specs.Mount{
		Destination: filepath.Clean(path),
		Type:        "bind",
		Source:      file,
		Options:     []string{"rbind", "rprivate", "rw"},
	}), nil
}

// terminationMessage reads the end of what the attempt wrote to its
// termination message file; empty when it wrote nothing or has no file.
func (s *session) terminationMessage(rec containers.Container) string {
	f, err := os.Open(s.terminationFile(rec.Labels[LabelPodUID], rec.ID))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.logger.Warn("read termination message", "container", rec.Labels[LabelContainer], "id", rec.ID, "err", err)
		}
		return ""
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ""
	}
	const limit = int64(maxTerminationMessage)
	if size := info.Size(); size > limit {
		if _, err := f.Seek(size-limit, io.SeekStart); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		s.logger.Warn("read termination message", "container", rec.Labels[LabelContainer], "id", rec.ID, "err", err)
		return ""
	}
	return string(data)
}

// removeTerminationFile removes the file of an attempt being removed.
func (s *session) removeTerminationFile(podUID, id string) {
	if err := os.Remove(s.terminationFile(podUID, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logger.Warn("remove termination message file", "id", id, "err", err)
	}
}

// Package volume makes a pod's node-local volumes on the node: the files of
// Secrets, ConfigMaps, the downward API and service-account tokens, and
// empty directories. A volume's files are replaced all at once, as the
// kubelet does: they live in a directory of their own, and a symlink
// "..data" is switched from the old one to the new one, so a container
// never reads a mix of two versions.
package volume

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File is one file of a volume.
type File struct {
	Data []byte
	Mode os.FileMode
}

// Payload is a volume's files by their path in the volume.
type Payload map[string]File

// dataLink is the symlink to the directory of the current version.
const dataLink = "..data"

// Write makes dir hold exactly payload, replacing what it held at once; it
// writes nothing when dir holds payload already. With a pod's fsGroup, the
// files belong to that group and the group may read them, as the kubelet
// makes them: a container running as another user reads them through the
// group.
func Write(dir string, payload Payload, fsGroup *int64) error {
	if fsGroup != nil {
		payload = groupReadable(payload)
	}
	for path := range payload {
		if err := checkPath(path); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make volume directory %s: %w", dir, err)
	}
	current, _ := os.Readlink(filepath.Join(dir, dataLink))
	if current != "" && holds(filepath.Join(dir, current), payload) {
		return nil
	}
	version := fmt.Sprintf("..%d", time.Now().UnixNano())
	versionDir := filepath.Join(dir, version)
	for path, f := range payload {
		full := filepath.Join(versionDir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("write volume %s: %w", dir, err)
		}
		if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
			return fmt.Errorf("write volume %s: %w", dir, err)
		}
		if err := os.Chmod(full, f.Mode); err != nil { // WriteFile's mode is filtered by the umask
			return fmt.Errorf("write volume %s: %w", dir, err)
		}
		if fsGroup != nil {
			if err := os.Chown(full, -1, int(*fsGroup)); err != nil {
				return fmt.Errorf("write volume %s: give %s to fsGroup %d: %w", dir, path, *fsGroup, err)
			}
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(version, tmpLink); err != nil {
		return fmt.Errorf("write volume %s: %w", dir, err)
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataLink)); err != nil {
		return fmt.Errorf("write volume %s: switch to the new version: %w", dir, err)
	}
	if err := linkTopLevel(dir, payload); err != nil {
		return err
	}
	if current != "" {
		_ = os.RemoveAll(filepath.Join(dir, current))
	}
	return nil
}

// groupReadable adds the group's read bit to every file of payload.
func groupReadable(payload Payload) Payload {
	out := make(Payload, len(payload))
	for path, f := range payload {
		f.Mode |= 0o040
		out[path] = f
	}
	return out
}

// MakeEmptyDir makes an emptyDir volume (or a subPath of one): writable by
// every user, as the kubelet makes it; with a pod's fsGroup it belongs to
// that group, and what is made in it too (setgid).
func MakeEmptyDir(dir string, fsGroup *int64) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("make emptyDir %s: %w", dir, err)
	}
	mode := os.FileMode(0o777)
	if fsGroup != nil {
		if err := os.Chown(dir, -1, int(*fsGroup)); err != nil {
			return fmt.Errorf("give emptyDir %s to fsGroup %d: %w", dir, *fsGroup, err)
		}
		mode |= os.ModeSetgid
	}
	// MkdirAll's mode is filtered by the umask.
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("make emptyDir %s writable: %w", dir, err)
	}
	return nil
}

// linkTopLevel makes each top-level name of the payload a symlink into
// ..data, and removes those of names no longer there.
func linkTopLevel(dir string, payload Payload) error {
	want := map[string]bool{}
	for path := range payload {
		want[strings.SplitN(path, "/", 2)[0]] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("write volume %s: %w", dir, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !want[e.Name()] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	for name := range want {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, name) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join(dataLink, name), link); err != nil {
			return fmt.Errorf("write volume %s: %w", dir, err)
		}
	}
	return nil
}

// holds says whether versionDir holds exactly payload.
func holds(versionDir string, payload Payload) bool {
	count := 0
	err := filepath.WalkDir(versionDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(versionDir, path)
		f, ok := payload[filepath.ToSlash(rel)]
		info, ierr := d.Info()
		data, rerr := os.ReadFile(path)
		if !ok || ierr != nil || rerr != nil || info.Mode().Perm() != f.Mode.Perm() || !bytes.Equal(data, f.Data) {
			return errDiffers
		}
		count++
		return nil
	})
	return err == nil && count == len(payload)
}

var errDiffers = errors.New("differs")

// checkPath refuses a path that is absolute or leaves the volume.
func checkPath(path string) error {
	if path == "" || filepath.IsAbs(path) || strings.HasPrefix(path, "..") {
		return fmt.Errorf("volume file path %q: must be relative and must not start with '..'", path)
	}
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return fmt.Errorf("volume file path %q: must not contain '..'", path)
		}
	}
	return nil
}

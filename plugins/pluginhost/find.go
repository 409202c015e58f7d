package pluginhost

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NotFoundError says that no configured directory holds a plugin binary.
type NotFoundError struct {
	Plugin string
	Dirs   []string
}

// Error says which plugin was looked for, and where.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("plugin %q not found in %v", e.Plugin, e.Dirs)
}

// ChecksumError says that a pinned plugin binary is not the one pinned.
type ChecksumError struct {
	Plugin   string
	Path     string
	Expected string // "sha256:<hex>"
	Actual   string // "sha256:<hex>"
}

// Error names the plugin, its path, and both checksums.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("plugin %q (%s): checksum mismatch: expected %s, actual %s",
		e.Plugin, e.Path, e.Expected, e.Actual)
}

// find returns the path of the plugin binary called name in the first
// directory that has one.
func (h *Host) find(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, filepath.Separator) {
		return "", fmt.Errorf("plugin name %q: want a file name without directories", name)
	}
	for _, dir := range h.dirs {
		path, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("find plugin %q: %w", name, err)
		}
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("find plugin %q: %w", name, err)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("plugin %q: %s is not a regular file", name, path)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("plugin %q: %s is not executable", name, path)
		}
		return path, nil
	}
	return "", &NotFoundError{Plugin: name, Dirs: append([]string(nil), h.dirs...)}
}

// fileChecksum returns the SHA-256 of the file at path as "sha256:<hex>".
func fileChecksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return formatChecksum(sum.Sum(nil)), nil
}

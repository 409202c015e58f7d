// Package statefile keeps a plugin's records on disk as small JSON files,
// written atomically, so that a plugin restarted after a crash reads back
// what it had recorded (a sandbox, a container it was asked to start) and
// never a half-written file.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Write writes v, encoded as JSON, to path: a reader sees the old file or
// the new one, whole.
func Write(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Read decodes the JSON file at path into v, and says whether it exists.
func Read(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", path, err)
	}
	return true, nil
}

package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// A volume on disk is two files in the store's directory: <id>.json, its
// record, which says the volume exists, and <id>.img, its sparse backing
// file, whose size is the volume's capacity. The record is written last
// on creation and removed first on deletion, so a crash in between leaves
// at worst a backing file without a record, which the next CreateVolume of
// that name reuses or DeleteVolume removes.

// volumeRecord is what a volume's JSON file holds.
type volumeRecord struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// volume is a volume as the store finds it.
type volume struct {
	volumeRecord
	// Image is the backing file's path.
	Image string
	// Capacity is the backing file's size in bytes.
	Capacity int64
}

// volumeIDPattern is what every volume ID matches; ListVolumes' tokens are
// volume IDs too.
var volumeIDPattern = regexp.MustCompile(`^v[0-9a-f]{32}$`)

// volumeID is the ID of the volume named name: derived from the name, so
// that a repeated CreateVolume finds the volume it made, even after a
// restart, without an index.
func volumeID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "v" + hex.EncodeToString(sum[:16])
}

// volumeStore is the directory of the volumes.
type volumeStore struct {
	dir string
}

func openVolumeStore(dir string) (*volumeStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open the volume store %s: %w", dir, err)
	}
	return &volumeStore{dir: dir}, nil
}

func (s *volumeStore) recordPath(id string) string { return filepath.Join(s.dir, id+".json") }
func (s *volumeStore) imagePath(id string) string  { return filepath.Join(s.dir, id+".img") }

// get returns the volume id, or os.ErrNotExist.
func (s *volumeStore) get(id string) (*volume, error) {
	if !volumeIDPattern.MatchString(id) {
		return nil, fmt.Errorf("volume %q: %w", id, os.ErrNotExist)
	}
	data, err := os.ReadFile(s.recordPath(id))
	if err != nil {
		return nil, fmt.Errorf("read the record of volume %s: %w", id, err)
	}
	var rec volumeRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("read the record of volume %s: %w", id, err)
	}
	st, err := os.Stat(s.imagePath(id))
	if err != nil {
		return nil, fmt.Errorf("volume %s: its backing file: %w", id, err)
	}
	return &volume{volumeRecord: rec, Image: s.imagePath(id), Capacity: st.Size()}, nil
}

// create makes the volume name with capacity bytes, and returns it.
func (s *volumeStore) create(name string, capacity int64) (*volume, error) {
	id := volumeID(name)
	img := s.imagePath(id)
	f, err := os.OpenFile(img, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the backing file of volume %s: %w", name, err)
	}
	err = f.Truncate(capacity)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("size the backing file of volume %s: %w", name, err)
	}
	if err := writeFileAtomic(s.recordPath(id), volumeRecord{ID: id, Name: name}); err != nil {
		return nil, fmt.Errorf("record volume %s: %w", name, err)
	}
	return s.get(id)
}

// expand grows the volume's backing file to capacity bytes; it never
// shrinks it.
func (s *volumeStore) expand(v *volume, capacity int64) error {
	if capacity <= v.Capacity {
		return nil
	}
	if err := os.Truncate(v.Image, capacity); err != nil {
		return fmt.Errorf("grow the backing file of volume %s: %w", v.ID, err)
	}
	v.Capacity = capacity
	return nil
}

// remove deletes the volume id's record and backing file; a volume that
// is already gone is no error.
func (s *volumeStore) remove(id string) error {
	for _, p := range []string{s.recordPath(id), s.imagePath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete volume %s: %w", id, err)
		}
	}
	return nil
}

// list returns the IDs of the volumes, sorted.
func (s *volumeStore) list() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && volumeIDPattern.MatchString(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// available is the space new volumes may still take: the free space of
// the store's filesystem less what the existing sparse backing files have
// been promised but not yet written. Volumes never overcommit the disk, so
// a volume's capacity is really there when it is written.
func (s *volumeStore) available() (int64, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &fs); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", s.dir, err)
	}
	free := int64(fs.Bavail) * fs.Bsize
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("list volumes: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".img") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			free -= max(0, info.Size()-st.Blocks*512)
		}
	}
	return max(0, free), nil
}

// writeFileAtomic writes v as JSON to path through a temporary file and a
// rename, so that a crash leaves the old record or the new, never half.
func writeFileAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

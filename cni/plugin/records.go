package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// record is what the plugin knows of one attachment, written before its CNI
// ADD and removed after its DEL succeeded: enough to DEL it again whatever
// became of the agent, the cache or the conflist since.
type record struct {
	ContainerID    string         `json:"containerID"`
	IfName         string         `json:"ifName"`
	NetNS          string         `json:"netns"`
	Args           [][2]string    `json:"cniArgs,omitempty"`
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
	// Conflist is the network configuration list the attachment was set
	// up with.
	Conflist json.RawMessage `json:"conflist"`
}

func (r *record) key() attachmentKey { return attachmentKey{r.ContainerID, r.IfName} }

// runtimeConf is the libcni invocation of the record.
func (r *record) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    r.ContainerID,
		NetNS:          r.NetNS,
		IfName:         r.IfName,
		Args:           r.Args,
		CapabilityArgs: r.CapabilityArgs,
	}
}

// attachmentKey identifies an attachment, as CNI does.
type attachmentKey struct{ containerID, ifname string }

func (k attachmentKey) String() string { return k.containerID + "/" + k.ifname }

// records is one node's directory of attachment records.
type records struct{ dir string }

// path names a record by its attachment. Container IDs never hold '@'
// (libcni's validation), so the name is unique.
func (rs records) path(k attachmentKey) string {
	return filepath.Join(rs.dir, k.containerID+"@"+k.ifname+".json")
}

// get returns the attachment's record, or nil when there is none.
func (rs records) get(k attachmentKey) (*record, error) {
	data, err := os.ReadFile(rs.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read attachment record: %w", err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("attachment record %s: %w", rs.path(k), err)
	}
	return &r, nil
}

// put writes r whole or not at all (a crash leaves the old record or the
// new one, never half of one).
func (rs records) put(r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode attachment record: %w", err)
	}
	if err := os.MkdirAll(rs.dir, 0o700); err != nil {
		return fmt.Errorf("attachment records: %w", err)
	}
	path := rs.path(r.key())
	tmp, err := os.CreateTemp(rs.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write attachment record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write attachment record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write attachment record: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write attachment record: %w", err)
	}
	return nil
}

// remove deletes the attachment's record; an absent one is no error.
func (rs records) remove(k attachmentKey) error {
	if err := os.Remove(rs.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove attachment record: %w", err)
	}
	return nil
}

// list returns every record of the node. A record that cannot be read is
// reported, not skipped: GC must not forget an attachment.
func (rs records) list() ([]*record, error) {
	entries, err := os.ReadDir(rs.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list attachment records: %w", err)
	}
	var out []*record
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(rs.dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r record
		if err := json.Unmarshal(data, &r); err != nil || r.ContainerID == "" || r.IfName == "" {
			errs = append(errs, fmt.Errorf("attachment record %s is corrupt: %v", filepath.Join(rs.dir, name), err))
			continue
		}
		out = append(out, &r)
	}
	return out, errors.Join(errs...)
}

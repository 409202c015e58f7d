package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
)

// DriverName is the CSI name the driver answers in GetPluginInfo, and the
// prefix of its topology key.
const DriverName = "local.csi.fedlet.io"

// TopologyKey is the topology segment that names the node a volume lives
// on: a volume is reachable from its node only.
const TopologyKey = "topology." + DriverName + "/node"

// DefaultMaxVolumes is Config.MaxVolumes's default: how many volumes the
// node can stage, which NodeGetInfo reports to the scheduler.
const DefaultMaxVolumes = 64

// Config is the driver's configuration: its command-line flags standalone,
// the plugin configuration under the agent (JSON names).
type Config struct {
	// NodeID names the node; volumes are created on it and reachable from it
	// only. Under the agent it is the node the plugin serves.
	NodeID string `json:"nodeID,omitempty"`
	// StateDir holds the volumes' backing files and records.
	StateDir string `json:"stateDir"`
	// MaxVolumes is the most volumes the node stages; DefaultMaxVolumes if 0.
	MaxVolumes int64 `json:"maxVolumes,omitempty"`
}

// ParseConfig reads the plugin configuration (JSON) and checks it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if len(data) > 0 {
		if err := json.Unmarshal(data, &c); err != nil {
			return Config{}, fmt.Errorf("local CSI configuration: %w", err)
		}
	}
	return c, c.Validate()
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("stateDir: must be set"))
	} else if !filepath.IsAbs(c.StateDir) {
		errs = append(errs, fmt.Errorf("stateDir: %q is not an absolute path", c.StateDir))
	}
	if c.MaxVolumes < 0 {
		errs = append(errs, fmt.Errorf("maxVolumes: %d is negative", c.MaxVolumes))
	}
	return errors.Join(errs...)
}

// Driver is the local CSI driver. Its calls are serialised: they are few,
// and each one's effect on the node (loop devices, mounts) must not
// interleave with another's on the same volume.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	version string
	// onlineResize says whether the driver can grow a mounted ext4
	// (resize.go).
	onlineResize bool

	mu      sync.Mutex
	cfg     Config
	volumes *volumeStore // nil until configured
	mounter *mount.SafeFormatAndMount
	exec    utilexec.Interface
}

// New returns a driver of version version (what GetPluginInfo answers). It
// serves Identity at once, and the other services once configured (New's
// cfg if it has a state directory, else Configure).
func New(version string, cfg *Config) (*Driver, error) {
	ex := utilexec.New()
	d := &Driver{
		version:      version,
		onlineResize: canResizeOnline(),
		exec:         ex,
		mounter:      &mount.SafeFormatAndMount{Interface: mount.New(""), Exec: ex},
	}
	if cfg != nil {
		if err := d.Configure(*cfg); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Configure sets the node and state directory, creating the directory.
// Volumes already in it are the driver's from then on.
func (d *Driver) Configure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.NodeID == "" {
		return errors.New("nodeID: must be set")
	}
	if cfg.MaxVolumes == 0 {
		cfg.MaxVolumes = DefaultMaxVolumes
	}
	store, err := openVolumeStore(filepath.Join(cfg.StateDir, "volumes"))
	if err != nil {
		return err
	}
	// The kernel names a loop device's backing file by its resolved path,
	// and loop.go matches devices to volumes by it.
	if store.dir, err = filepath.EvalSymlinks(store.dir); err != nil {
		return fmt.Errorf("open the volume store: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg = cfg
	d.volumes = store
	return nil
}

// configured returns the volume store, or FailedPrecondition before
// Configure; the caller holds d.mu.
func (d *Driver) configured() (*volumeStore, error) {
	if d.volumes == nil {
		return nil, errNotConfigured
	}
	return d.volumes, nil
}

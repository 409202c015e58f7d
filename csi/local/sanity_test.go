package local_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
)

// The driver passes csi-sanity, the CSI specification's conformance
// suite, run against its standalone endpoint with real loop devices,
// ext4 and mounts. Only one sanity.Test may run per package.
func TestSanity(t *testing.T) {
	needNode(t)
	dir, stateDir := nodeDir(t)
	d := startDriver(t, dir, stateDir)

	cfg := sanity.NewTestConfig()
	cfg.Address = d.endpoint
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeSize = 64 << 20
	cfg.TestVolumeExpandSize = 128 << 20
	cfg.TestNodeVolumeAttachLimit = true

	start := time.Now()
	sanity.Test(t, cfg)
	t.Logf("csi-sanity took %v", time.Since(start).Round(time.Millisecond))

	d.stop(t, 15)
	checkNothingLeft(t, dir, stateDir)
}

package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
)

// Growing ext4 while it is mounted takes CAP_SYS_RESOURCE (the kernel's
// EXT4_IOC_RESIZE_FS checks it), which containers often lack; the
// machines fedlet is tested on do. Without it the driver grows a
// filesystem offline: when the volume is staged next, or when
// NodeExpandVolume finds it staged but published nowhere.

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// canResizeOnline says whether this process may grow a mounted ext4.
func canResizeOnline() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if hex, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && caps&(1<<capSysResource) != 0
		}
	}
	return false
}

// needsGrowing says whether the ext4 filesystem on dev is smaller than dev.
func needsGrowing(ctx context.Context, ex utilexec.Interface, dev string) (bool, error) {
	out, err := ex.CommandContext(ctx, "blockdev", "--getsize64", dev).Output()
	if err != nil {
		return false, fmt.Errorf("size of %s: %w", dev, err)
	}
	devSize, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return false, fmt.Errorf("size of %s: %w", dev, err)
	}
	out, err = ex.CommandContext(ctx, "dumpe2fs", "-h", dev).Output()
	if err != nil {
		return false, fmt.Errorf("read the ext4 superblock of %s: %w", dev, err)
	}
	var blocks, blockSize int64
	for line := range strings.Lines(string(out)) {
		key, value, _ := strings.Cut(line, ":")
		switch key {
		case "Block count":
			blocks, _ = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		case "Block size":
			blockSize, _ = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		}
	}
	if blocks == 0 || blockSize == 0 {
		return false, fmt.Errorf("read the ext4 superblock of %s: no block count or size", dev)
	}
	return blocks*blockSize < devSize, nil
}

// growOffline checks the unmounted ext4 on dev (resize2fs requires it)
// and grows it to the device's size.
func growOffline(ctx context.Context, ex utilexec.Interface, dev string) error {
	// e2fsck exits 1 when it corrected errors, which is fine here.
	out, err := ex.CommandContext(ctx, "e2fsck", "-f", "-p", dev).CombinedOutput()
	var exitErr utilexec.ExitError
	if err != nil && !(errors.As(err, &exitErr) && exitErr.ExitStatus() == 1) {
		return fmt.Errorf("check the filesystem on %s: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	if out, err := ex.CommandContext(ctx, "resize2fs", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("grow the filesystem on %s: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// growOnline grows the mounted ext4 on dev.
func growOnline(ex utilexec.Interface, dev, mountPath string) error {
	if _, err := mount.NewResizeFs(ex).Resize(dev, mountPath); err != nil {
		return fmt.Errorf("grow the mounted filesystem on %s: %w", dev, err)
	}
	return nil
}

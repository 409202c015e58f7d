package local

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	utilexec "k8s.io/utils/exec"
)

// Loop devices are found from the kernel's list (losetup), never from a
// record of the driver's: after a crash of the driver, or of the agent
// that ran it, the devices attached before are found again and reused, so
// none is attached twice and none is leaked.

// loopDevices returns the loop devices attached to the backing file image.
func loopDevices(ctx context.Context, ex utilexec.Interface, image string) ([]string, error) {
	out, err := ex.CommandContext(ctx, "losetup", "--list", "--json", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		return nil, fmt.Errorf("list loop devices: %w", err)
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, nil // losetup prints nothing when no device is attached
	}
	var list struct {
		Devices []struct {
			Name     string `json:"name"`
			BackFile string `json:"back-file"`
		} `json:"loopdevices"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("list loop devices: %w", err)
	}
	var devices []string
	for _, d := range list.Devices {
		if d.BackFile == image {
			devices = append(devices, d.Name)
		}
	}
	return devices, nil
}

// attachLoop returns the loop device of image, attaching one if none is.
func attachLoop(ctx context.Context, ex utilexec.Interface, image string) (string, error) {
	devices, err := loopDevices(ctx, ex, image)
	if err != nil {
		return "", err
	}
	if len(devices) > 0 {
		return devices[0], nil
	}
	out, err := ex.CommandContext(ctx, "losetup", "--find", "--show", image).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("attach a loop device to %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// detachLoops detaches every loop device of image. The kernel frees a
// device still open (mounted elsewhere) once it is closed.
func detachLoops(ctx context.Context, ex utilexec.Interface, image string) error {
	devices, err := loopDevices(ctx, ex, image)
	if err != nil {
		return err
	}
	for _, dev := range devices {
		if out, err := ex.CommandContext(ctx, "losetup", "--detach", dev).CombinedOutput(); err != nil {
			return fmt.Errorf("detach loop device %s of %s: %w: %s", dev, image, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// refreshLoop makes the loop device see its backing file's new size.
func refreshLoop(ctx context.Context, ex utilexec.Interface, dev string) error {
	if out, err := ex.CommandContext(ctx, "losetup", "--set-capacity", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("refresh the size of loop device %s: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// csiConform is how `fedlet plugin conform --csi` checks a CSI driver: the
// CSI project's own suite, csi-sanity, against the driver's endpoint.
type csiConform struct {
	// driver is the driver binary, started with --endpoint and args.
	driver string
	args   []string
	// sanity is the csi-sanity binary; found beside fedlet or on PATH when
	// empty.
	sanity     string
	volumeSize int64
	timeout    time.Duration
}

// run starts the driver on a unix socket of its own, runs csi-sanity
// against it (its report goes to out, the driver's log to errOut), and
// stops the driver. It fails when csi-sanity finds a failure.
func (c csiConform) run(ctx context.Context, out, errOut io.Writer) error {
	sanity, err := c.findSanity()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fedlet-csi-conform-")
	if err != nil {
		return err
	}
	// Not RemoveAll: a driver that failed to unmount would lose the data
	// behind a mount left under dir.
	defer os.Remove(dir)
	socket := filepath.Join(dir, "csi.sock")
	defer os.Remove(socket)
	endpoint := "unix://" + socket

	driver := exec.Command(c.driver, append([]string{"--endpoint", endpoint}, c.args...)...)
	driver.Stdout, driver.Stderr = errOut, errOut
	// Killed, the command takes the driver with it.
	driver.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := driver.Start(); err != nil {
		return fmt.Errorf("start the CSI driver %s: %w", c.driver, err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	go func() { waitErr = driver.Wait(); close(exited) }()
	defer stopDriver(driver, exited)
	if err := waitForSocket(ctx, socket, exited, &waitErr, c.timeout); err != nil {
		return fmt.Errorf("the CSI driver %s: %w", c.driver, err)
	}

	cmd := exec.CommandContext(ctx, sanity,
		"--csi.endpoint", endpoint,
		"--csi.mountdir", filepath.Join(dir, "target"),
		"--csi.stagingdir", filepath.Join(dir, "staging"),
		"--csi.testvolumesize", strconv.FormatInt(c.volumeSize, 10),
		"--ginkgo.no-color")
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("csi-sanity against %s: %w", c.driver, err)
	}
	return nil
}

// findSanity is the csi-sanity binary: the one named, else the one beside
// fedlet (make build puts it there), else on PATH.
func (c csiConform) findSanity() (string, error) {
	if c.sanity != "" {
		return c.sanity, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "csi-sanity")
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	if p, err := exec.LookPath("csi-sanity"); err == nil {
		return p, nil
	}
	return "", errors.New("csi-sanity not found beside fedlet or on PATH: `make build` puts it in bin/ (or go build github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity); or name it with --csi-sanity")
}

// waitForSocket waits until the driver has made its socket, or has
// exited, or timeout has passed.
func waitForSocket(ctx context.Context, socket string, exited <-chan struct{}, waitErr *error, timeout time.Duration) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		if _, err := os.Stat(socket); err == nil {
			return nil
		}
		select {
		case <-exited:
			if *waitErr == nil {
				return errors.New("exited before serving its endpoint (status 0)")
			}
			return fmt.Errorf("exited before serving its endpoint: %w", *waitErr)
		case <-deadline:
			return fmt.Errorf("no socket at %s after %v", socket, timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stopDriver ends the driver with SIGTERM, and SIGKILL if it lingers.
func stopDriver(driver *exec.Cmd, exited <-chan struct{}) {
	_ = driver.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = driver.Process.Kill()
		<-exited
	}
}

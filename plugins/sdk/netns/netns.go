// Package netns makes and uses the network namespaces of pods: a runtime
// plugin creates one per sandbox, with its loopback up, hands its path to
// the runtime of its containers, and dials into it for PortForward.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Create makes a network namespace and pins it at path (a bind mount of
// it, as `ip netns add` does), with its loopback interface up. A path that
// already holds a namespace is left as it is.
func Create(path string) error {
	if pinned(path) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace file %s: %w", path, err)
	}
	_ = f.Close()
	return inNewThread(func() error {
		ns, err := netns.New() // this thread enters it
		if err != nil {
			return fmt.Errorf("unshare a network namespace: %w", err)
		}
		defer ns.Close()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin network namespace at %s: %w", path, err)
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("bring up the loopback of %s: %w", path, err)
		}
		return nil
	})
}

// Remove unpins the namespace at path and removes the file; the namespace
// goes away with its last process. Removing one that is gone succeeds.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network namespace file %s: %w", path, err)
	}
	return nil
}

// Dial connects to address inside the namespace at path: the connection's
// socket lives in the namespace, and carries data in and out of it. An
// empty path is the host's namespace (a host-network pod).
func Dial(ctx context.Context, path, network, address string) (net.Conn, error) {
	var d net.Dialer
	if path == "" {
		return d.DialContext(ctx, network, address)
	}
	var conn net.Conn
	err := inNewThread(func() error {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", path, err)
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", path, err)
		}
		conn, err = d.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// pinned says whether path is a namespace file (a bind mount of one).
func pinned(path string) bool {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return false
	}
	defer ns.Close()
	var st unix.Statfs_t
	return unix.Fstatfs(int(ns), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// inNewThread runs f on an OS thread of its own, which it may move to
// another namespace: the thread is thrown away afterwards (a goroutine
// that ends locked ends its thread), so no other goroutine ever runs in it.
func inNewThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		errc <- f()
	}()
	return <-errc
}

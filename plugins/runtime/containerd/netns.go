package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces live (as with `ip netns`).
const netnsDir = "/run/netns"

// ensureNetns returns the path of the named network namespace, creating it
// with its loopback up if it does not exist yet.
func ensureNetns(name string) (string, error) {
	path := filepath.Join(netnsDir, name)
	ok, err := isNetns(path)
	if err != nil {
		return "", fmt.Errorf("inspect network namespace %s: %w", path, err)
	}
	if ok {
		return path, nil
	}
	// A plain file here is left over from a crash between creating it and
	// mounting the namespace on it.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("remove stale %s: %w", path, err)
	}
	if err := shareNetnsDir(); err != nil {
		return "", fmt.Errorf("prepare %s: %w", netnsDir, err)
	}
	if err := createNetns(name); err != nil {
		return "", fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return path, nil
}

var netnsDirMu sync.Mutex

// shareNetnsDir makes netnsDir a shared mount of its own, as `ip netns`
// does. Otherwise the first `ip netns` run on the host bind-mounts the
// directory over itself, hiding the namespaces mounted before under copies:
// unmounting a copy then leaves the original, and the file cannot be
// removed. Shared, the directory's mounts and unmounts also reach the mount
// namespaces made from the host's (containers being created).
func shareNetnsDir() error {
	netnsDirMu.Lock()
	defer netnsDirMu.Unlock()
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil || !errors.Is(err, unix.EINVAL) {
		return err
	}
	// EINVAL: not a mount point yet.
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount: %w", err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make shared: %w", err)
	}
	return nil
}

// isNetns says whether path is a mounted network namespace.
func isNetns(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// createNetns makes the namespace on a thread of its own: entering a
// namespace changes the calling thread, so the thread is locked, and if it
// cannot be brought back it stays locked and dies with its goroutine instead
// of running other goroutines in the pod's namespace.
func createNetns(name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()

		// NewNamed moves this thread into the new namespace, even when it
		// fails after unsharing.
		ns, err := netns.NewNamed(name)
		if err == nil {
			err = loopbackUp()
			ns.Close()
			if err != nil {
				err = errors.Join(err, removeNetns(name))
			}
		} else {
			_ = os.Remove(filepath.Join(netnsDir, name))
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, fmt.Errorf("return to the host network namespace: %w", serr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// loopbackUp brings up lo in the calling thread's network namespace.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// errNetnsPinned says a namespace's file stays because a mount of it
// remains out of reach (see shareNetnsDir).
var errNetnsPinned = errors.New("still mounted where it cannot be unmounted; the file stays")

// removeNetns unmounts and removes the named namespace; a missing one is
// not an error.
func removeNetns(name string) error {
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("network namespace %s: %w", path, errNetnsPinned)
		}
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

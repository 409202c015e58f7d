// Package podstore keeps a runtime plugin's sandboxes and container
// attempts on disk, so that the plugin answers the runtime protocol's
// bookkeeping calls from there, and a plugin restarted after a crash
// adopts what runs: a directory per pod (its record and network namespace)
// holds a directory per container attempt (its record, and the files of
// the keeper that runs it, plugins/sdk/keeper).
//
// The plugin starts an attempt: it records it (Record) and has a keeper
// run it in the attempt's directory. The store answers the rest: the
// attempt's state from the keeper's files, RunSandbox, RemoveSandbox,
// ListSandboxes, StopContainer (with the plugin's signal function),
// RemoveContainer, WatchContainers and ContainerLogs, and finds the attempt
// an Exec or Attach is for.
package podstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
	"github.com/fedlet/fedlet/plugins/sdk/netns"
	"github.com/fedlet/fedlet/plugins/sdk/statefile"
)

// Hooks are what the plugin's backend adds to the store.
type Hooks struct {
	// ExitReason, when set, gives the reason of an attempt that exited
	// with a code other than 0 (OOMKilled, say); empty leaves "Error".
	ExitReason func(a Attempt) string
	// Release, when set, releases what the backend holds for an attempt
	// (its container in the OCI runtime, its mounts) before the store
	// removes its directory; an attempt that still runs must be killed.
	Release func(ctx context.Context, a Attempt) error
}

// Store is the pods and attempts under one directory.
type Store struct {
	dir   string
	hooks Hooks
}

// New returns the store kept in dir, made if needed.
func New(dir string, hooks Hooks) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "pods"), 0o700); err != nil {
		return nil, fmt.Errorf("make pod store %s: %w", dir, err)
	}
	return &Store{dir: dir, hooks: hooks}, nil
}

// sandbox is the record of a pod's sandbox.
type sandbox struct {
	Pod       *runtimev1.PodRef
	CreatedAt int64
	Netns     string // empty for the host's network
}

func (sb sandbox) proto() *runtimev1.Sandbox {
	return &runtimev1.Sandbox{Pod: sb.Pod, Id: sb.Pod.GetUid(), NetnsPath: sb.Netns, HostNetwork: sb.Netns == "", CreatedAtUnixNano: sb.CreatedAt}
}

// short names a directory by a hash of its key: paths stay short enough
// for the unix sockets in them.
func short(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

func (s *Store) podDir(uid string) string { return filepath.Join(s.dir, "pods", short(uid)) }

// Sandbox returns the pod's sandbox; NotFound when it has none.
func (s *Store) Sandbox(uid string) (*runtimev1.Sandbox, error) {
	var sb sandbox
	ok, err := statefile.Read(filepath.Join(s.podDir(uid), "sandbox.json"), &sb)
	if err == nil && !ok {
		err = status.Errorf(codes.NotFound, "pod %s has no sandbox", uid)
	}
	return sb.proto(), err
}

// RunSandbox serves RunSandbox: it records the pod's sandbox, with a
// network namespace of its own unless the pod uses the host's, or returns
// the one it has.
func (s *Store) RunSandbox(req *runtimev1.RunSandboxRequest) (*runtimev1.Sandbox, error) {
	if sb, err := s.Sandbox(req.GetPod().GetUid()); status.Code(err) != codes.NotFound {
		return sb, err
	}
	dir := s.podDir(req.GetPod().GetUid())
	sb := sandbox{Pod: req.GetPod(), CreatedAt: time.Now().UnixNano()}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make sandbox of pod %s: %w", req.GetPod().GetUid(), err)
	}
	if !req.GetHostNetwork() {
		sb.Netns = filepath.Join(dir, "netns")
		if err := netns.Create(sb.Netns); err != nil {
			return nil, err
		}
	}
	return sb.proto(), statefile.Write(filepath.Join(dir, "sandbox.json"), sb)
}

// RemoveSandbox serves RemoveSandbox: it releases and removes every
// attempt of the pod, then its network namespace and directory.
func (s *Store) RemoveSandbox(ctx context.Context, uid string) error {
	dir := s.podDir(uid)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			if err := s.remove(ctx, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := netns.Remove(filepath.Join(dir, "netns")); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove sandbox of pod %s: %w", uid, err)
	}
	return nil
}

// ListSandboxes serves ListSandboxes: every sandbox, with every attempt
// its directory holds.
func (s *Store) ListSandboxes() (*runtimev1.ListSandboxesResponse, error) {
	files, err := filepath.Glob(filepath.Join(s.dir, "pods", "*", "sandbox.json"))
	resp := &runtimev1.ListSandboxesResponse{}
	for _, f := range files {
		var sb sandbox
		if ok, err := statefile.Read(f, &sb); !ok || err != nil {
			continue // removed meanwhile
		}
		var ctrs []*runtimev1.ContainerStatus
		for _, a := range s.attempts(filepath.Dir(f), "") {
			ctrs = append(ctrs, a.Status)
		}
		resp.Sandboxes = append(resp.Sandboxes, &runtimev1.SandboxStatus{Sandbox: sb.proto(), Containers: ctrs})
	}
	return resp, err
}

// AttemptDir is the directory of an attempt of a container of the pod.
func (s *Store) AttemptDir(uid, name string, attempt uint32) string {
	return filepath.Join(s.podDir(uid), short(name+"/"+strconv.FormatUint(uint64(attempt), 10)))
}

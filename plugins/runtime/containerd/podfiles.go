package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// The files a pod's containers see as /etc/hosts and /etc/resolv.conf, as
// the kubelet gives them. They are derived from the sandbox's labels and the
// host, so they are rewritten whenever missing.

func (s *session) podDir(podUID string) string {
	return filepath.Join(s.cfg.StateDir, "pods", podUID)
}

// ensurePodFiles writes the pod's hosts and resolv.conf if they are missing
// and returns the mounts that put them in a container. Host-network pods see
// the host's own files.
func (s *session) ensurePodFiles(podUID string, hostNetwork bool) ([]specs.Mount, error) {
	if hostNetwork {
		var mounts []specs.Mount
		for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
			if _, err := os.Stat(f); err == nil {
				mounts = append(mounts, bindMount(f, f))
			}
		}
		return mounts, nil
	}
	dir := s.podDir(podUID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create pod directory: %w", err)
	}
	hosts := filepath.Join(dir, "hosts")
	if err := writeIfMissing(hosts, func() ([]byte, error) {
		return []byte("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), nil
	}); err != nil {
		return nil, err
	}
	resolv := filepath.Join(dir, "resolv.conf")
	if err := writeIfMissing(resolv, func() ([]byte, error) {
		data, err := os.ReadFile("/etc/resolv.conf")
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}); err != nil {
		return nil, err
	}
	return []specs.Mount{bindMount(hosts, "/etc/hosts"), bindMount(resolv, "/etc/resolv.conf")}, nil
}

func bindMount(source, dest string) specs.Mount {
	return specs.Mount{Destination: dest, Type: "bind", Source: source, Options: []string{"rbind", "rprivate", "ro"}}
}

func writeIfMissing(path string, content func() ([]byte, error)) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	data, err := content()
	if err != nil {
		return fmt.Errorf("prepare %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

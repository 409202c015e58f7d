package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runtimev1 "github.com/fedlet/fedlet/plugins/proto/runtime/v1"
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
// the host's own hosts file, and its resolv.conf unless the agent computed
// one (resolv, as with dnsPolicy ClusterFirstWithHostNet).
func (s *session) ensurePodFiles(podUID string, hostNetwork bool, resolv string) ([]specs.Mount, error) {
	var mounts []specs.Mount
	hostFile := func(f string) {
		if _, err := os.Stat(f); err == nil {
			mounts = append(mounts, bindMount(f, f))
		}
	}
	if hostNetwork && resolv == "" {
		hostFile("/etc/hosts")
		hostFile("/etc/resolv.conf")
		return mounts, nil
	}
	dir := s.podDir(podUID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create pod directory: %w", err)
	}
	if hostNetwork {
		hostFile("/etc/hosts")
	} else {
		hosts := filepath.Join(dir, "hosts")
		if err := writeIfMissing(hosts, func() ([]byte, error) {
			return []byte("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), nil
		}); err != nil {
			return nil, err
		}
		mounts = append(mounts, bindMount(hosts, "/etc/hosts"))
	}
	resolvPath := filepath.Join(dir, "resolv.conf")
	if err := writeIfMissing(resolvPath, func() ([]byte, error) {
		if resolv != "" {
			return []byte(resolv), nil
		}
		data, err := os.ReadFile("/etc/resolv.conf")
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}); err != nil {
		return nil, err
	}
	return append(mounts, bindMount(resolvPath, "/etc/resolv.conf")), nil
}

// resolvConf renders the agent's DNS config as a resolv.conf.
func resolvConf(dns *runtimev1.DNSConfig) string {
	var b strings.Builder
	for _, ns := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return b.String()
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

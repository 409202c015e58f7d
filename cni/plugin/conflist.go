package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/utils"
)

// Reasons Status gives for a network that is not ready, CamelCase as in
// Kubernetes conditions.
const (
	// ReasonConfigMissing: the conflist file does not exist.
	ReasonConfigMissing = "NetworkConfigMissing"
	// ReasonConfigInvalid: the conflist cannot be read or parsed.
	ReasonConfigInvalid = "NetworkConfigInvalid"
	// ReasonPluginMissing: a CNI plugin binary the conflist names is in
	// none of the binary directories.
	ReasonPluginMissing = "CNIPluginMissing"
	// ReasonPluginNotReady: a CNI plugin answered VERSION or STATUS with an
	// error (it does not support the conflist's cniVersion, or its backend
	// is not ready).
	ReasonPluginNotReady = "CNIPluginNotReady"
)

// problem says why the network cannot attach pods now: a reason (one of the
// Reason constants) and a message that names the file or binary and the fix.
type problem struct {
	reason, message string
}

func (p *problem) Error() string { return p.message }

// loadConflist reads the network configuration list the config names, now.
// Only the plugins inlined in the list count: libcni's loading of further
// plugin files from a directory beside the file is not used, so that the
// list's bytes, which libcni caches with each attachment, are the whole
// configuration.
func loadConflist(cfg Config) (*libcni.NetworkConfigList, *problem) {
	raw, source := []byte(cfg.Conflist), "the inline conflist of the network plugin's config"
	if cfg.ConflistFile != "" {
		source = cfg.ConflistFile
		var err error
		raw, err = os.ReadFile(cfg.ConflistFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &problem{ReasonConfigMissing, fmt.Sprintf(
				"CNI network configuration %s does not exist: write a conflist there (`fedlet up` writes a default one) or point conflistFile in the network plugin's config at one",
				cfg.ConflistFile)}
		}
		if err != nil {
			return nil, &problem{ReasonConfigInvalid, fmt.Sprintf("read CNI network configuration %s: %v", cfg.ConflistFile, err)}
		}
	}
	list, err := parseConflist(raw)
	if err != nil {
		return nil, &problem{ReasonConfigInvalid, fmt.Sprintf("CNI network configuration %s: %v: fix it", source, err)}
	}
	return list, nil
}

// parseConflist parses and checks a conflist's bytes.
func parseConflist(raw []byte) (*libcni.NetworkConfigList, error) {
	list, err := libcni.NetworkConfFromBytes(raw)
	if err != nil {
		return nil, err
	}
	if err := utils.ValidateNetworkName(list.Name); err != nil {
		return nil, fmt.Errorf("network name %q: %v", list.Name, err)
	}
	if list.CNIVersion == "" {
		return nil, errors.New(`no "cniVersion"`)
	}
	if len(list.Plugins) == 0 {
		return nil, errors.New(`no "plugins": the list must name at least one CNI plugin`)
	}
	for i, p := range list.Plugins {
		if p.Network.Type == "" {
			return nil, fmt.Errorf("plugin %d has no \"type\"", i)
		}
	}
	return list, nil
}

// binaries returns the CNI plugin binaries list needs: each plugin's type
// and its IPAM plugin's, in order, once each.
func binaries(list *libcni.NetworkConfigList) []string {
	var names []string
	seen := map[string]bool{}
	for _, p := range list.Plugins {
		for _, name := range []string{p.Network.Type, p.Network.IPAM.Type} {
			if name != "" && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names
}

// findBinaries checks that every binary list needs is an executable file in
// one of dirs, as libcni will look for it.
func findBinaries(list *libcni.NetworkConfigList, dirs []string) *problem {
	for _, name := range binaries(list) {
		if !executableIn(name, dirs) {
			return &problem{ReasonPluginMissing, fmt.Sprintf(
				"CNI plugin %q of network %q is not an executable file in %v: run `make cni-plugins` (it builds bridge, host-local, loopback and portmap into bin/cni), install the containernetworking plugins there, or set binDirs in the network plugin's config",
				name, list.Name, dirs)}
		}
	}
	return nil
}

func executableIn(name string, dirs []string) bool {
	for _, dir := range dirs {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return true
		}
	}
	return false
}

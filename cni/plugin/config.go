package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

// Config is the plugin's configuration: the JSON the agent's config file
// gives the network plugin, handed over by Configure.
//
//	{
//	  "conflistFile": "/var/lib/fedlet/cni/fedlet.conflist",
//	  "binDirs": ["/opt/fedlet/bin/cni"],
//	  "cacheDir": "/var/lib/fedlet/cni/cache"
//	}
type Config struct {
	// ConflistFile is the path of the CNI network configuration list
	// (a .conflist file). It is read at every call, so it may be written or
	// fixed after the plugin started. Exactly one of ConflistFile and
	// Conflist is set.
	ConflistFile string `json:"conflistFile,omitempty"`
	// Conflist is the network configuration list inline, as a JSON object.
	Conflist json.RawMessage `json:"conflist,omitempty"`
	// BinDirs are searched in order for the CNI plugin binaries the
	// conflist names. Default: the "cni" directory beside this plugin's
	// executable (bin/cni beside bin/fedlet-network-cni, where `make
	// cni-plugins` puts them).
	BinDirs []string `json:"binDirs,omitempty"`
	// CacheDir holds, for each node, libcni's result cache and the plugin's
	// attachment records (CacheDir/<node>/). Required, absolute, and a
	// directory of fedlet's own: libcni's default /var/lib/cni is refused,
	// since GC there would delete other runtimes' attachments.
	CacheDir string `json:"cacheDir"`
	// SharedSubnet, when set, puts the pods of every node that shares the
	// machine's bridge in this one IPv4 subnet (the cluster CIDR, say): a
	// node's pod CIDR becomes the range its addresses come from and the
	// subnet's first address the one gateway, so pods of the machine's
	// nodes reach each other directly, without routing or NAT. Without it
	// each node's pod CIDR is its own subnet, which needs a bridge per node.
	SharedSubnet string `json:"sharedSubnet,omitempty"`
}

// parseConfig reads raw strictly: an unknown field is an error, so that a
// misspelt key does not silently fall back to a default.
func parseConfig(raw []byte) (Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, fmt.Errorf("the network plugin's config is empty: it needs at least cacheDir and conflistFile or conflist")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("parse the network plugin's config: %w", err)
	}
	if (cfg.ConflistFile == "") == (len(cfg.Conflist) == 0) {
		return cfg, fmt.Errorf("the network plugin's config needs exactly one of conflistFile (a path) and conflist (the conflist inline)")
	}
	if cfg.ConflistFile != "" && !filepath.IsAbs(cfg.ConflistFile) {
		return cfg, fmt.Errorf("conflistFile %q: want an absolute path", cfg.ConflistFile)
	}
	if cfg.CacheDir == "" || !filepath.IsAbs(cfg.CacheDir) {
		return cfg, fmt.Errorf("cacheDir %q: want the absolute path of a directory of fedlet's own", cfg.CacheDir)
	}
	if filepath.Clean(cfg.CacheDir) == filepath.Clean(libcni.CacheDir) {
		return cfg, fmt.Errorf("cacheDir %q is libcni's shared default: want a directory of fedlet's own, since GC removes every attachment there that fedlet does not know", cfg.CacheDir)
	}
	if cfg.SharedSubnet != "" {
		if ip, _, err := net.ParseCIDR(cfg.SharedSubnet); err != nil || ip.To4() == nil {
			return cfg, fmt.Errorf("sharedSubnet %q: want an IPv4 CIDR such as 10.244.0.0/16", cfg.SharedSubnet)
		}
	}
	if len(cfg.BinDirs) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("binDirs is not set and this executable's directory is unknown: %w", err)
		}
		cfg.BinDirs = []string{filepath.Join(filepath.Dir(exe), "cni")}
	}
	for _, dir := range cfg.BinDirs {
		if !filepath.IsAbs(dir) {
			return cfg, fmt.Errorf("binDirs: %q is not an absolute path", dir)
		}
	}
	return cfg, nil
}

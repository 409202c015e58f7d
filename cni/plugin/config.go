package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"

	"github.com/fedlet/fedlet/plugins/sdk"
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
// misspelt key does not silently fall back to a default. Errors are
// *sdk.ConfigError, each naming the field and its fix; once raw is decoded,
// every wrong field is reported (errors.Join).
func parseConfig(raw []byte) (Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, &sdk.ConfigError{Message: "the network plugin's config is empty: it needs at least cacheDir and conflistFile or conflist",
			Fix: `give {"cacheDir": "/var/lib/fedlet/cni", "conflistFile": "/path/to/net.conflist"}`}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, &sdk.ConfigError{Message: "parse the network plugin's config: " + err.Error(),
			Fix: "give a JSON object of the fields conflistFile, conflist, binDirs, cacheDir and sharedSubnet"}
	}
	var errs []error
	fail := func(field, fix, format string, args ...any) {
		errs = append(errs, &sdk.ConfigError{Field: field, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	if (cfg.ConflistFile == "") == (len(cfg.Conflist) == 0) {
		fail("conflistFile", "set conflistFile to the path of a .conflist file, or conflist to the list inline, not both",
			"the network plugin's config needs exactly one of conflistFile (a path) and conflist (the conflist inline)")
	}
	if cfg.ConflistFile != "" && !filepath.IsAbs(cfg.ConflistFile) {
		fail("conflistFile", "give the conflist's absolute path", "%q: want an absolute path", cfg.ConflistFile)
	}
	switch {
	case cfg.CacheDir == "" || !filepath.IsAbs(cfg.CacheDir):
		fail("cacheDir", `give the absolute path of a directory of fedlet's own ("/var/lib/fedlet/cni")`, "%q: want the absolute path of a directory of fedlet's own", cfg.CacheDir)
	case filepath.Clean(cfg.CacheDir) == filepath.Clean(libcni.CacheDir):
		fail("cacheDir", `give a directory of fedlet's own ("/var/lib/fedlet/cni")`, "%q is libcni's shared default: want a directory of fedlet's own, since GC removes every attachment there that fedlet does not know", cfg.CacheDir)
	}
	if cfg.SharedSubnet != "" {
		if ip, _, err := net.ParseCIDR(cfg.SharedSubnet); err != nil || ip.To4() == nil {
			fail("sharedSubnet", "give the cluster's IPv4 CIDR, such as 10.244.0.0/16, or leave it out", "%q: want an IPv4 CIDR such as 10.244.0.0/16", cfg.SharedSubnet)
		}
	}
	if len(cfg.BinDirs) == 0 {
		exe, err := os.Executable()
		if err != nil {
			fail("binDirs", "list the directories of the CNI plugin binaries", "binDirs is not set and this executable's directory is unknown: %v", err)
		} else {
			cfg.BinDirs = []string{filepath.Join(filepath.Dir(exe), "cni")}
		}
	}
	for i, dir := range cfg.BinDirs {
		if !filepath.IsAbs(dir) {
			fail(fmt.Sprintf("binDirs[%d]", i), "give absolute paths", "%q is not an absolute path", dir)
		}
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}

// Description is what the plugin says of its configuration through the
// base protocol (sdk.WithDescription): its fields, and the config parser as
// the check that names each wrong field and its fix, so that the agent
// refuses a wrong config before it starts anything. A conflist file that is
// missing or malformed is no config error: it may be written later, and
// Status reports it.
func Description() sdk.Description {
	return sdk.Description{
		Config: []sdk.ConfigField{
			{Name: "conflistFile", Type: sdk.TypeString, Description: "the absolute path of the CNI network configuration list; read at every call"},
			{Name: "conflist", Type: sdk.TypeObject, Description: "the network configuration list inline, instead of conflistFile"},
			{Name: "binDirs", Type: sdk.TypeArray, Description: `where the CNI plugin binaries are; the "cni" directory beside this plugin if unset`},
			{Name: "cacheDir", Type: sdk.TypeString, Required: true, Description: "a directory of fedlet's own for libcni's cache and the attachment records"},
			{Name: "sharedSubnet", Type: sdk.TypeString, Description: "an IPv4 CIDR that the pods of every node sharing the bridge are in"},
		},
		StrictConfig: true,
		Validate: func(config []byte, _ []string) error {
			_, err := parseConfig(config)
			return err
		},
	}
}

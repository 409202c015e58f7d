package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"

	cniplugin "github.com/fedlet/fedlet/cni/plugin"
	"github.com/fedlet/fedlet/integration/cluster"
	"github.com/fedlet/fedlet/plugins/pluginhost"
	networkv1 "github.com/fedlet/fedlet/plugins/proto/network/v1"
)

// CNI ADD of one pod, through the network plugin (the agent's path: gRPC
// to the plugin process, its record, libcni, the CNI plugins) and through
// libcni called directly with the same conflist and binaries (the floor).
// Each side attaches to the cluster's bridge from its own address range,
// and deletes what it added before the next.

// cniBench is what both sides share.
type cniBench struct {
	conflist string
	binDirs  []string
	dir      string // a scratch directory of the run
}

func (b *bench) cniBench() (*cniBench, error) {
	dir, err := os.MkdirTemp("", "fedlet-bench-cni-")
	if err != nil {
		return nil, err
	}
	paths := b.cluster.Paths()
	return &cniBench{
		conflist: filepath.Join(paths.DataDir, "fedlet", "cni", "fedlet.conflist"),
		binDirs:  []string{filepath.Join(b.binDir, "cni")},
		dir:      dir,
	}, nil
}

// netns makes a fresh network namespace; the function removes it.
func (cb *cniBench) netns(name string) (string, func(), error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, out)
	}
	return "/run/netns/" + name, func() { _ = exec.Command("ip", "netns", "delete", name).Run() }, nil
}

// direct is the floor: libcni's AddNetworkList, then DelNetworkList.
func (cb *cniBench) direct(ctx context.Context, n int) ([]time.Duration, error) {
	list, err := libcni.ConfListFromFile(cb.conflist)
	if err != nil {
		return nil, err
	}
	cni := libcni.NewCNIConfigWithCacheDir(cb.binDirs, filepath.Join(cb.dir, "direct-cache"), nil)
	ranges := [][]map[string]string{{{
		"subnet": cluster.ClusterCIDR, "rangeStart": "10.244.250.1", "rangeEnd": "10.244.250.254", "gateway": "10.244.0.1",
	}}}
	var took []time.Duration
	for i := range n {
		id := fmt.Sprintf("bench-direct-%d", i)
		path, remove, err := cb.netns(id)
		if err != nil {
			return nil, err
		}
		rt := &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "eth0", CapabilityArgs: map[string]any{"ipRanges": ranges}}
		start := time.Now()
		_, err = cni.AddNetworkList(ctx, list, rt)
		took = append(took, time.Since(start))
		if err == nil {
			err = cni.DelNetworkList(ctx, list, rt)
		}
		remove()
		if err != nil {
			return nil, fmt.Errorf("libcni: %w", err)
		}
	}
	return took, nil
}

// throughPlugin launches the network plugin as the agent does and times
// its Add.
func (cb *cniBench) throughPlugin(ctx context.Context, binDir string, n int) ([]time.Duration, error) {
	host, err := pluginhost.New(pluginhost.Config{Dirs: []string{binDir}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(cniplugin.Config{
		ConflistFile: cb.conflist, BinDirs: cb.binDirs, CacheDir: filepath.Join(cb.dir, "plugin-cache"), SharedSubnet: cluster.ClusterCIDR,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const node = "bench-cni"
	plugin, err := host.StartNetwork(ctx, pluginhost.NetworkSpec{Name: "bench-cni", Plugin: cniplugin.Name, Config: cfg, Nodes: []string{node}})
	if err != nil {
		return nil, err
	}
	defer func() { cancel(); <-plugin.Done() }()
	client := plugin.Client()
	var took []time.Duration
	for i := range n {
		id := fmt.Sprintf("bench-plugin-%d", i)
		path, remove, err := cb.netns(id)
		if err != nil {
			return nil, err
		}
		att := &networkv1.Attachment{ContainerId: id, Ifname: "eth0"}
		pod := &networkv1.PodRef{Uid: id, Namespace: "bench", Name: id}
		start := time.Now()
		_, err = client.Add(ctx, &networkv1.AddRequest{
			Node: node, Attachment: att, NetnsPath: path, Pod: pod,
			IpRanges: []*networkv1.IPRangeSet{{Ranges: []*networkv1.IPRange{{Subnet: "10.244.251.0/24"}}}},
		})
		took = append(took, time.Since(start))
		if err == nil {
			_, err = client.Del(ctx, &networkv1.DelRequest{Node: node, Attachment: att, NetnsPath: path, Pod: pod})
		}
		remove()
		if err != nil {
			return nil, fmt.Errorf("network plugin: %w", err)
		}
	}
	return took, nil
}

// cniAdd measures both sides, the floor first.
func (b *bench) cniAdd(ctx context.Context) (floor, plugin []time.Duration, err error) {
	cb, err := b.cniBench()
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(cb.dir)
	if floor, err = cb.direct(ctx, b.n); err != nil {
		return nil, nil, err
	}
	plugin, err = cb.throughPlugin(ctx, b.binDir, b.n)
	return floor, plugin, err
}

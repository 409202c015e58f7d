package agent

import (
	"context"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fedlet/fedlet/core/config"
	"github.com/fedlet/fedlet/core/members"
	"github.com/fedlet/fedlet/plugins/pluginhost"
)

// setMembers makes the served members the set given: the virtual nodes of
// members gone are stopped and their Node objects deleted, the plugin is
// configured with the nodes that remain and the new ones, and the new ones
// are registered and served. A member whose name is a configured node's is
// refused.
func (r *runtimeNodes) setMembers(ctx context.Context, plugin *pluginhost.Runtime, set map[string]members.Member) {
	configured := map[string]bool{}
	for _, n := range r.nodes {
		configured[n.Name] = true
	}
	for name := range set {
		if configured[name] {
			r.log.Error("member refused: a configured node has its name", "member", name)
			delete(set, name)
		}
	}

	for _, sn := range r.servedNodes() {
		if _, keep := set[sn.cfg.Name]; !sn.member || keep {
			continue
		}
		r.stop(sn)
		err := r.client.CoreV1().Nodes().Delete(ctx, sn.cfg.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			r.log.Error("delete the node of a removed member", "node", sn.cfg.Name, "err", err)
		}
		r.log.Info("member removed", "node", sn.cfg.Name)
	}

	nodes := make([]string, 0, len(r.nodes)+len(set))
	for _, n := range r.nodes {
		nodes = append(nodes, n.Name)
	}
	settings := map[string]map[string][]byte{}
	for name, m := range set {
		nodes = append(nodes, name)
		settings[name] = m.Settings()
	}
	slices.Sort(nodes[len(r.nodes):])
	if err := plugin.Reconfigure(ctx, nodes, settings); err != nil {
		// The nodes are served all the same: their status says what the
		// plugin makes of them.
		r.log.Error("configure the runtime plugin with the members", "err", err)
	}

	r.mu.Lock()
	served := r.served
	var added []string
	for _, name := range nodes[len(r.nodes):] {
		if _, ok := served[name]; !ok {
			added = append(added, name)
		}
	}
	r.mu.Unlock()
	for _, name := range added {
		sn := r.serve(ctx, memberNode(name, r.spec.Name), true)
		if !r.runPods(sn, plugin) {
			return // ctx ended
		}
		r.log.Info("member added", "node", name)
	}
}

// memberNode is the virtual node of the member name, served by runtime.
func memberNode(name, runtime string) config.Node {
	n := config.Node{Name: name, Runtime: runtime, Labels: members.NodeLabels(name)}
	for _, t := range members.NodeTaints() {
		n.Taints = append(n.Taints, config.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)})
	}
	return n
}

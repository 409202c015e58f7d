package sdk

import "sync"

// Nodes is the set of nodes a plugin process serves, as its last successful
// Configure named them. RequestRules keeps one, filled from the Configure
// calls it sees pass; a plugin that serves without the rules, or a test
// double, may keep its own. The zero value is a set not configured yet.
// It is safe for concurrent use.
type Nodes struct {
	mu         sync.RWMutex
	configured bool
	names      map[string]bool // empty: every node (see Configure)
}

// Configure records the nodes a successful Configure named, replacing
// those of any earlier one. It is the one place the SDK learns them: call
// it from whichever Configure path hands a plugin its nodes.
//
// A Configure that names no nodes leaves the choice to the plugin (the
// kubernetes runtime then serves every member of its own config): every
// node passes Check, and the plugin answers NodeNotServed for those it does
// not know.
func (n *Nodes) Configure(names []string) {
	set := make(map[string]bool, len(names))
	for _, name := range names {
		set[name] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.configured, n.names = true, set
}

// Check says whether a call for node may reach the plugin: nil when the
// plugin serves it, else the protocol's answer (InvalidArgument when node
// is empty, NotConfigured before the first Configure, NodeNotServed for a
// node not configured).
func (n *Nodes) Check(node string) error {
	if node == "" {
		return InvalidArgument("node", "must be set")
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.configured {
		return NotConfigured()
	}
	if len(n.names) > 0 && !n.names[node] {
		return NodeNotServed(node)
	}
	return nil
}

// Package plugin is fedlet's CNI network plugin: it serves the network
// protocol (networkv1) by driving standard CNI plugins (bridge, host-local,
// portmap, ...) through libcni, the CNI project's own library.
//
// Each node the plugin serves has a directory of its own under the
// configured cache directory, holding libcni's result cache and the plugin's
// attachment records. A record is written before a CNI ADD and removed after
// a successful DEL, so that an ADD cut short by a crash is still known, and
// GC (or a repeated Add) removes what it left on the node. Nothing else is
// kept: what an attachment holds lives on the node (interfaces, host-local's
// address files, NAT rules) and in those two files.
//
// The network configuration is a CNI conflist, read at every call so that an
// operator's fix takes effect without a restart. A missing or malformed
// conflist, or a missing CNI plugin binary, makes Status not ready with a
// reason that names the file or binary, and Add fail with
// FailedPrecondition saying the same.
//
// DefaultConflist is the network the local cluster uses: a bridge with
// host-local addresses from the node's pod CIDR, masquerading to the
// outside, and host ports through portmap.
package plugin

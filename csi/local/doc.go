// Package local is fedlet's shipped CSI driver: node-local volumes whose
// capacity is real and enforced. A volume is a sparse file under the
// driver's state directory; staged for a filesystem it is attached to a
// loop device, formatted ext4 on first use and mounted, and published by
// bind mounts; staged for a raw block device it is the loop device itself.
//
// Everything the driver knows survives its restart because it is on disk:
// the backing files with a small JSON record each (volumes.go), the loop
// devices the kernel lists (loop.go), and the node's mount table. Every
// call is idempotent, as the CSI specification requires.
//
// The driver serves the CSI Identity, Controller and Node services
// (identity.go, controller.go, node.go); cmd/fedlet-csi-local serves them as
// a fedlet storage plugin (sdk.ServeCSI) or on a kubelet's unix socket.
package local

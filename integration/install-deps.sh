#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the tests need, when
# they are missing. Everything else is built from the Go module proxy by
# the Makefile.
set -euo pipefail

need=()
command -v runc >/dev/null || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v ip >/dev/null || need+=(iproute2)
command -v mount >/dev/null || need+=(mount)
# kube-proxy's rules, and its clearing of stale UDP conntrack entries.
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v nft >/dev/null || need+=(nftables)
# The shipped CSI driver's volumes: ext4 on loop devices (csi/local).
PATH=$PATH:/usr/sbin:/sbin command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
PATH=$PATH:/usr/sbin:/sbin command -v blkid >/dev/null || need+=(util-linux)

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: need root to install: ${need[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

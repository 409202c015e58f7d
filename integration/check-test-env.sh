#!/usr/bin/env bash
# Checks, before `make test` builds anything, that this machine can run
# every test, and says what is missing and how to get it. Without this, a
# test that needs root or runc would fail minutes later, one at a time.
#
# FEDLET_TEST_SKIP_MISSING=1 (ignored when CI is set) turns the failure
# into a warning: the tests that need what is missing then skip, saying so.
# With --before-deps (make test), Debian packages missing while running as
# root are only listed: `make deps` installs them next.
set -euo pipefail

before_deps=false
[ "${1:-}" = --before-deps ] && before_deps=true

root=true
[ "$(id -u)" = 0 ] || root=false

missing=()   # what no make target can provide
packages=()  # Debian packages integration/install-deps.sh installs as root

if ! $root; then
	missing+=("root: containerd, runc, network namespaces, bridges and iptables need it (you are $(id -un 2>/dev/null || id -u))")
fi
# A user who is not root often has no sbin on PATH; root, who runs the tests, has.
search=$PATH
$root || search=$PATH:/usr/sbin:/sbin
need_command() { # command package
	PATH=$search command -v "$1" >/dev/null 2>&1 || packages+=("$1 (Debian package $2)")
}
need_command runc runc
need_command ip iproute2
need_command mount mount
need_command iptables iptables
need_command conntrack conntrack
need_command nft nftables
# The shipped CSI driver (csi/local): sparse files formatted ext4 on loop devices.
need_command mkfs.ext4 e2fsprogs
need_command resize2fs e2fsprogs
need_command losetup mount
need_command blkid util-linux
[ -x /bin/busybox ] || packages+=("/bin/busybox (Debian package busybox-static)")

command -v "${GO:-go}" >/dev/null 2>&1 || missing+=("the Go toolchain (${GO:-go}): Go 1.26 or newer on PATH")
grep -qw overlay /proc/filesystems 2>/dev/null || missing+=("the overlay filesystem, for containerd's overlayfs snapshotter (modprobe overlay)")
[ -e /dev/loop-control ] || missing+=("loop devices (/dev/loop-control), for the CSI driver's volumes (modprobe loop)")
grep -qE '^[^ ]+ /sys/fs/cgroup[^ ]* cgroup2? ' /proc/mounts 2>/dev/null || missing+=("cgroups mounted under /sys/fs/cgroup, for runc")

if $root && $before_deps && [ ${#packages[@]} -gt 0 ]; then
	echo "check-test-env: make deps installs next: ${packages[*]}"
	packages=()
fi
all=("${missing[@]}" "${packages[@]}")
if [ ${#all[@]} -eq 0 ]; then
	exit 0
fi

{
	echo "make test: this machine cannot run every test; missing:"
	for m in "${all[@]}"; do
		echo "  - $m"
	done
} >&2
if [ "${FEDLET_TEST_SKIP_MISSING:-}" = 1 ] && [ -z "${CI:-}" ]; then
	echo "FEDLET_TEST_SKIP_MISSING=1: the tests that need these skip, each saying what it lacks." >&2
	exit 0
fi
{
	echo "Run the tests as root on Debian 12 (sudo make test; make deps installs the packages),"
	echo "or set FEDLET_TEST_SKIP_MISSING=1 to run only the tests this machine can run (ignored under CI)."
} >&2
exit 1

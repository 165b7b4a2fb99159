#!/bin/sh
# debian-base.sh OUT.tar [MIRROR] - a Debian 12 (bookworm) minbase root file system as a
# tarball for `podman import`: what the debian:12-slim image holds, made from Debian's
# own mirror with debootstrap, no registry involved. Needs root; takes minutes (dpkg
# does most of the work). make test-container keeps its output under build/container/,
# keyed by this file, the mirror and the debootstrap version.
set -eu
out=${1:?usage: $0 OUT.tar [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
work=$(mktemp -d "$out.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

# Stage one downloads and unpacks. Stage two configures the packages inside the new
# root, with dpkg's fsyncs off (on a busy disk they take most of the time, and a broken
# base is simply made again), in a mount namespace of its own so that the /proc and
# /sys it mounts there go away with it.
debootstrap --variant=minbase --foreign bookworm "$root" "$mirror"
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
unshare --mount chroot "$root" /debootstrap/debootstrap --second-stage
rm "$root/etc/dpkg/dpkg.cfg.d/unsafe-io"

# The sources of the official image: the release, its updates, and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# No package lists, caches or downloaded packages, as in the slim image.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"

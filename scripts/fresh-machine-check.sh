#!/usr/bin/env bash
# The fresh-machine check: does a clean Debian 12 root run the README's two commands?
#
#   bash scripts/fresh-machine-check.sh [REF]      (as root; REF defaults to main)
#
# Builds a minimal Debian 12 (bookworm) root with debootstrap (cached as a tarball between runs in
# $TROUPE_FRESH_CACHE, default /var/cache/troupe-fresh), puts a clean clone of REF at /root/troupe
# and a copy of ../shared at /root/shared inside it, then runs the README's two commands there
# (chroot, as root, a bare environment) and prints the time of each and the last lines of its output.
# The root has no /usr/local/cuda, so this also proves the build without CUDA. Exits non-zero when
# either command fails. The apt mirror is the one this machine's own apt sources name.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: run as root (debootstrap, chroot, mount)" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
shared="$repo/../shared"
ref="${1:-main}"
cache="${TROUPE_FRESH_CACHE:-/var/cache/troupe-fresh}"
base="$cache/bookworm-minbase.tar"
export DEBIAN_FRONTEND=noninteractive

mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || { echo "fresh-machine-check: no Debian mirror in this machine's apt sources" >&2; exit 1; }

if ! command -v debootstrap >/dev/null; then
  echo "fresh-machine-check: installing debootstrap"
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends debootstrap >/dev/null
fi

mkdir -p "$cache"
if [ ! -f "$base" ]; then
  echo "fresh-machine-check: building the base root (debootstrap --variant=minbase bookworm, cached in $base)"
  tmp_root=$(mktemp -d /var/tmp/troupe-debootstrap.XXXXXX)
  debootstrap --variant=minbase bookworm "$tmp_root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log"; exit 1; }
  tar -C "$tmp_root" -cf "$base.partial" . && mv "$base.partial" "$base"
  rm -rf "$tmp_root"
fi

root=$(mktemp -d /var/tmp/troupe-fresh.XXXXXX)
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
mount_in() {  # mount_in TYPE SOURCE TARGET [OPTIONS]
  mkdir -p "$root/$3"
  if [ "$1" = bind ]; then mount --bind "$2" "$root/$3"; else mount -t "$1" ${4:+-o "$4"} "$2" "$root/$3"; fi
  mounted+=("$root/$3")
}
mount_in proc proc /proc
mount_in sysfs sysfs /sys
mount_in bind /dev /dev
mount_in devpts devpts /dev/pts "newinstance,ptmxmode=0666"
mount_in tmpfs tmpfs /dev/shm "mode=1777"
cp /etc/resolv.conf "$root/etc/resolv.conf"

git clone --quiet --no-local --branch "$ref" "$repo" "$root/root/troupe"
echo "fresh-machine-check: clean clone of $ref at $(git -C "$root/root/troupe" rev-parse --short HEAD)"
if [ -d "$shared" ]; then cp -a "$shared" "$root/root/shared"; else echo "fresh-machine-check: no ../shared to copy"; fi

# The README's two commands, exactly as its first code block gives them.
mapfile -t commands < <(bash "$repo/scripts/readme-commands.sh")
[ "${#commands[@]}" -eq 2 ] || { echo "fresh-machine-check: the README's first block must hold two commands" >&2; exit 1; }

status=0
for cmd in "${commands[@]}"; do
  log="$root/root/$(echo "$cmd" | tr -c 'a-z0-9' '_').log"
  t0=$(date +%s)
  rc=0
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/troupe && $cmd" >"$log" 2>&1 || rc=$?
  echo "=== fresh-machine-check: '$cmd' exit $rc after $(( $(date +%s) - t0 )) s; its last lines:"
  tail -n 25 "$log"
  [ $rc -eq 0 ] || status=1
done
echo "=== fresh-machine-check: $([ $status -eq 0 ] && echo PASSED || echo FAILED)"
exit $status

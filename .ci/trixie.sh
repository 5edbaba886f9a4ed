#!/usr/bin/env bash
# Debian 13 (trixie) chroots for CI: the same sources against libtorch 2.6 and
# python3-torch 2.6, on a Debian 12 host whose own apt sources are left alone.
#
#   .ci/trixie.sh bare REPO   a system with only Node, npm, a C++ compiler and CMake;
#                             runs the README's `npm install && npm test` as written
#                             (the installer's own apt fallback brings libtorch)
#   .ci/trixie.sh full REPO   the same plus libtorch-dev, libgloo-dev, python3-torch
#                             and chromium; runs `npm ci && npm test`
#   .ci/trixie.sh shell       a root shell in the full chroot (for debugging)
#   .ci/trixie.sh run CMD     CMD in the full chroot, in a fresh copy of the repo (.)
#
# Layout under $TORCHNODE_CI_CACHE (default /var/cache/torchnode-ci):
#   trixie-base/     debootstrap --variant=minbase + nodejs npm g++ make cmake git
#   trixie-full/     overlay upper dir over the base: the extra packages (kept)
#   apt-archives/    .deb cache shared by every chroot (downloads happen once)
#   npm-cache/       npm's cache, shared
# Each part carries a marker naming what it was built with; a part whose marker
# is missing or different, or whose check fails (a broken chroot), is rebuilt.
# The bare run gets a throw-away overlay over the base, so it starts bare each time.
# Every mount is undone on every exit path (trap), including Ctrl-C.
set -euo pipefail

CACHE=${TORCHNODE_CI_CACHE:-/var/cache/torchnode-ci}
SUITE=trixie
BASE_PKGS="nodejs npm g++ make cmake git ca-certificates"
FULL_PKGS="libtorch-dev libgloo-dev python3-torch chromium"
BASE_MARK="v1 $SUITE minbase $BASE_PKGS"
FULL_MARK="v1 $FULL_PKGS"
export DEBIAN_FRONTEND=noninteractive

say() { echo "ci[trixie]: $*"; }
die() { echo "ci[trixie]: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"

# The host's Debian mirror (deb822 or one-line sources), else Debian's default.
mirror() {
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

MOUNTS=()   # mount points, unmounted in reverse order by cleanup
cleanup() {
  local i
  for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do
    umount -l "${MOUNTS[$i]}" 2>/dev/null || true
  done
  MOUNTS=()
  [ -n "${BARE_DIR:-}" ] && rm -rf "$BARE_DIR"
  return 0
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

mnt() { mount "$@"; MOUNTS+=("${@: -1}"); }

# /proc, /sys, /dev and the shared caches into a root.
mount_system() {
  local root=$1
  mkdir -p "$CACHE/apt-archives/partial" "$CACHE/npm-cache" "$root/var/cache/apt/archives" "$root/root/.npm"
  mnt -t proc proc "$root/proc"
  mnt --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"
  mnt --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"
  mnt --bind "$CACHE/apt-archives" "$root/var/cache/apt/archives"
  mnt --bind "$CACHE/npm-cache" "$root/root/.npm"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}
umount_all() { cleanup; }

in_root() {  # in_root ROOT CMD...: a clean environment, like a fresh login
  local root=$1; shift
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$@"
}

apt_in() {  # apt_in ROOT PKGS...
  local root=$1; shift
  in_root "$root" apt-get update -qq
  in_root "$root" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

base_ok() {
  [ "$(cat "$CACHE/trixie-base/.torchnode-ci" 2>/dev/null)" = "$BASE_MARK" ] &&
    chroot "$CACHE/trixie-base" /usr/bin/node -e 0 2>/dev/null &&
    chroot "$CACHE/trixie-base" /usr/bin/npm --version >/dev/null 2>&1 &&
    chroot "$CACHE/trixie-base" /usr/bin/g++ --version >/dev/null 2>&1 &&
    chroot "$CACHE/trixie-base" /usr/bin/cmake --version >/dev/null 2>&1
}

ensure_base() {
  base_ok && return 0
  local t0=$SECONDS tmp="$CACHE/trixie-base.tmp"
  say "building the base chroot ($SUITE minbase + $BASE_PKGS)"
  command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  rm -rf "$tmp" "$CACHE/trixie-base" "$CACHE/trixie-full"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$SUITE" "$tmp" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  # The host's extra CAs (a TLS-inspecting egress), for npm and apt inside.
  mkdir -p "$tmp/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$tmp/usr/local/share/ca-certificates/" 2>/dev/null || true
  # apt settings the host needs to reach its archive (no hosts named here: copied as they are).
  cp /etc/apt/apt.conf.d/99* "$tmp/etc/apt/apt.conf.d/" 2>/dev/null || true
  mount_system "$tmp"
  apt_in "$tmp" $BASE_PKGS
  in_root "$tmp" update-ca-certificates >/dev/null
  umount_all
  echo "$BASE_MARK" >"$tmp/.torchnode-ci"
  mv "$tmp" "$CACHE/trixie-base"
  say "base chroot ready in $(( SECONDS - t0 )) s"
}

# An overlay root over the base; upper dir UPPER, mounted at MNT.
overlay_root() {
  local upper=$1 work=$2 at=$3
  mkdir -p "$upper" "$work" "$at"
  mnt -t overlay overlay -o "lowerdir=$CACHE/trixie-base,upperdir=$upper,workdir=$work" "$at"
}

full_ok() {
  [ "$(cat "$CACHE/trixie-full/upper/.torchnode-ci-full" 2>/dev/null)" = "$FULL_MARK" ] &&
    [ "$(cat "$CACHE/trixie-full/base-mark" 2>/dev/null)" = "$BASE_MARK" ]
}

# Mounts the full chroot at $CACHE/trixie-full/root (building it if needed); echoes nothing.
mount_full() {
  local f="$CACHE/trixie-full" t0=$SECONDS
  if ! full_ok; then
    say "adding $FULL_PKGS to the full chroot"
    rm -rf "$f"; mkdir -p "$f"
  fi
  overlay_root "$f/upper" "$f/work" "$f/root"
  mount_system "$f/root"
  if ! full_ok || ! in_root "$f/root" /usr/bin/python3 -c 'import torch' 2>/dev/null ||
       ! ls "$f/root"/usr/lib/*/cmake/Torch/TorchConfig.cmake >/dev/null 2>&1; then
    apt_in "$f/root" $FULL_PKGS
    in_root "$f/root" /usr/bin/python3 -c 'import torch' || die "python3-torch does not import in the full chroot"
    echo "$FULL_MARK" >"$f/upper/.torchnode-ci-full"
    echo "$BASE_MARK" >"$f/base-mark"
    say "full chroot ready in $(( SECONDS - t0 )) s"
  fi
}

# A fresh copy of the repository's files (tracked and untracked, not ignored:
# no node_modules, build or libtorch.json) at ROOT/root/torchnode, and shared/ beside it.
copy_repo() {
  local repo=$1 root=$2
  rm -rf "$root/root/torchnode" "$root/root/shared"
  mkdir -p "$root/root/torchnode"
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - 2>/dev/null) |
    tar -xf - -C "$root/root/torchnode"
  [ -d "$repo/../shared" ] && cp -a "$repo/../shared" "$root/root/shared" || true
}

# One run at a time: two runs would share the full chroot's mounts and repo copy.
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -w 3600 9 || die "another .ci/trixie.sh holds $CACHE/lock"

cmd=${1:-}
case "$cmd" in
  bare)
    repo=$(cd "${2:?usage: trixie.sh bare REPO}" && pwd)
    ensure_base
    BARE_DIR=$(mktemp -d "$CACHE/bare.XXXXXX")
    overlay_root "$BARE_DIR/upper" "$BARE_DIR/work" "$BARE_DIR/root"
    mount_system "$BARE_DIR/root"
    copy_repo "$repo" "$BARE_DIR/root"
    say "bare system: $(in_root "$BARE_DIR/root" node --version), npm $(in_root "$BARE_DIR/root" npm --version), no libtorch, no python3-torch, no chromium"
    # The README's test command, exactly as written, as a new user would type it.
    in_root "$BARE_DIR/root" bash -c 'cd /root/torchnode && npm install && npm test'
    ;;
  full)
    repo=$(cd "${2:?usage: trixie.sh full REPO}" && pwd)
    ensure_base
    mount_full
    copy_repo "$repo" "$CACHE/trixie-full/root"
    say "full system: $(in_root "$CACHE/trixie-full/root" node --version), python3-torch $(in_root "$CACHE/trixie-full/root" python3 -c 'import torch; print(torch.__version__)')"
    in_root "$CACHE/trixie-full/root" bash -c 'cd /root/torchnode && npm ci --no-audit --no-fund && npm test'
    ;;
  run)
    shift
    ensure_base
    mount_full
    copy_repo "$(pwd)" "$CACHE/trixie-full/root"
    in_root "$CACHE/trixie-full/root" bash -c "cd /root/torchnode && $*"
    ;;
  shell)
    ensure_base
    mount_full
    in_root "$CACHE/trixie-full/root" bash -i
    ;;
  *) die "usage: trixie.sh bare|full REPO | run CMD | shell" ;;
esac

#!/usr/bin/env bash
# The test suite under Node 18, the lowest Node that package.json's "engines" claims:
# Debian 12 (bookworm)'s own nodejs 18.x, fetched with `apt-get download` and unpacked
# with `dpkg -x` into a cache, never installed (the host's own node stays as it is).
#
#   .ci/node18.sh                    build dist/ with Node 18, check it loads, run all of jest
#   .ci/node18.sh test/x.test.ts ... the same, jest limited to those tests (jest's arguments)
#   .ci/node18.sh --check            only fetch Node 18 and the load checks, no jest
#   NODE18_NO_BUILD=1 .ci/node18.sh  use dist/ as it is (no tsc run)
#
# Run it after `npm ci` (which builds the native addon with the host's Node): the addon
# speaks N-API, so the same build/Release/torchnode.node must load in Node 18.
#
# Cache ($TORCHNODE_CI_CACHE/node18, default /var/cache/torchnode-ci/node18):
#   debs/   the .deb files    root/   them unpacked    bin/node   a wrapper for PATH
# with a marker naming the packages and version; it is reused while the marker matches
# and the binary's libraries resolve, else rebuilt.
#
# Debian builds Node with undici (fetch), acorn and cjs-module-lexer taken at run time
# from /usr/share/nodejs/..., a path fixed in libnode. So jest runs in a private mount
# namespace (unshare) in which the cached /usr/share is overlaid on the host's; nothing
# outside that namespace sees it, and it ends with the run. Needs root, or unprivileged
# user namespaces with overlayfs (Linux >= 5.11).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${TORCHNODE_CI_CACHE:-/var/cache/torchnode-ci}/node18
ROOT=$CACHE/root
# nodejs + libnode108 are the binary; node-* are the builtins Debian keeps outside it.
PKGS_PINNED="nodejs libnode108"
PKGS_JS="node-undici node-acorn node-cjs-module-lexer"
MARK_VERSION=v1
export DEBIAN_FRONTEND=noninteractive

say() { echo "ci[node18]: $*"; }
die() { echo "ci[node18]: error: $*" >&2; exit 1; }

multiarch() { gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu"; }
LIBDIR=$ROOT/usr/lib/$(multiarch)
NODE18=$ROOT/usr/bin/nodejs

# Libraries the binary needs that the host lacks, as "soname" lines.
missing_libs() {
  LD_LIBRARY_PATH=$LIBDIR ldd "$NODE18" 2>/dev/null | awk '/not found/ {print $1}' | sort -u
}
# libnode108's library dependencies: soname -> Debian 12 package.
lib_package() {
  case "$1" in
    libcares.so.*) echo libc-ares2 ;;
    libuv.so.*) echo libuv1 ;;
    libnghttp2.so.*) echo libnghttp2-14 ;;
    libbrotli*.so.*) echo libbrotli1 ;;
    libicu*.so.*) echo libicu72 ;;
    libssl.so.*|libcrypto.so.*) echo libssl3 ;;
    libz.so.*) echo zlib1g ;;
    *) return 1 ;;
  esac
}

download() { # packages... into $CACHE/debs, then unpacked into $ROOT
  (cd "$CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$@" >/dev/null) ||
    die "apt-get download $* failed"
  local p f
  for p in "$@"; do
    p=${p%%=*}
    f=$(ls -t "$CACHE/debs/${p}_"*.deb 2>/dev/null | head -n1)
    [ -n "$f" ] || die "no .deb for $p after apt-get download"
    dpkg -x "$f" "$ROOT"
  done
}

# Debian 12's Node 18 version, from the apt lists (updated once if they have none).
node18_version() {
  apt-cache madison nodejs 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2)} $2 ~ /^18\./ {print $2; exit}'
}

setup() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  local v
  v=$(node18_version)
  if [ -z "$v" ] && [ "$(id -u)" = 0 ]; then
    say "no nodejs 18.x in the apt lists; apt-get update"
    apt-get update -qq || true
    v=$(node18_version)
  fi
  local mark
  if [ -f "$CACHE/.marker" ] && [ -x "$NODE18" ] && [ -z "$(missing_libs)" ] &&
     { [ -z "$v" ] || [ "$(cat "$CACHE/.marker")" = "$MARK_VERSION $v $PKGS_PINNED $PKGS_JS" ]; }; then
    say "reusing $ROOT ($(cat "$CACHE/.marker"))"
  else
    [ -n "$v" ] || die "no nodejs 18.x in the apt sources (Debian 12 bookworm's main has it)"
    mark="$MARK_VERSION $v $PKGS_PINNED $PKGS_JS"
    say "fetching Debian's nodejs $v into $ROOT"
    rm -rf "$ROOT" "$CACHE/debs" "$CACHE/.marker"
    mkdir -p "$ROOT" "$CACHE/debs"
    local pinned=() p
    for p in $PKGS_PINNED; do pinned+=("$p=$v"); done
    # shellcheck disable=SC2086
    download "${pinned[@]}" $PKGS_JS
    # Whatever libraries the host lacks (libc-ares2 on a host with another Node), by ldd.
    local round libs pkgs
    for round in 1 2 3; do
      libs=$(missing_libs)
      [ -n "$libs" ] || break
      pkgs=()
      for p in $libs; do pkgs+=("$(lib_package "$p")") || die "no package known for missing library $p"; done
      say "libraries missing on this host: $(echo $libs) -> ${pkgs[*]}"
      download $(printf '%s\n' "${pkgs[@]}" | sort -u)
    done
    libs=$(missing_libs)
    [ -z "$libs" ] || die "still missing after fetching: $libs"
    echo "$mark" > "$CACHE/.marker"
  fi
  # `node` on PATH for tests that spawn "node" by name (process.execPath is the real binary).
  mkdir -p "$CACHE/bin"
  cat > "$CACHE/bin/node" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$LIBDIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$NODE18" "\$@"
EOF
  chmod +x "$CACHE/bin/node"
  flock -u 9
}

inside() {
  # Here, in our own mount namespace: Debian's /usr/share/nodejs over the host's /usr/share.
  mount -t overlay torchnode-node18 -o "lowerdir=$ROOT/usr/share:/usr/share" /usr/share ||
    die "cannot overlay /usr/share (overlayfs)"
  [ -f /usr/share/nodejs/undici/undici-fetch.js ] || die "overlay has no /usr/share/nodejs/undici"
  export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$CACHE/bin:$PATH"
  local ver
  ver=$("$NODE18" -p 'process.version + " (N-API " + process.versions.napi + ", modules " + process.versions.modules + ")"') ||
    die "Node 18 does not start"
  say "using $NODE18: Node $ver"
  case "$ver" in v18.*) ;; *) die "expected Node 18, got $ver" ;; esac
  [ "$(node -p process.version)" = "${ver%% *}" ] || die "'node' on PATH is not the Node 18 wrapper"

  [ -f build/Release/torchnode.node ] || die "no build/Release/torchnode.node: run npm ci (or npm run build:native) first"
  if [ -z "${NODE18_NO_BUILD:-}" ]; then
    say "npm run build:ts, with Node 18"
    "$NODE18" node_modules/typescript/bin/tsc -p tsconfig.json
    "$NODE18" scripts/write-esm-entry.js
  fi
  say "load checks"
  "$NODE18" -e "
    const t = require('./dist');
    const x = t.tensor([1, 2, 3]);
    if (x.sum().item() !== 6) throw new Error('addon computes wrong sums');
    console.log('ci[node18]: require(\"./dist\") ok: libtorch ' + t.version + ', addon ' + require.resolve('./build/Release/torchnode.node'));
  "
  "$NODE18" --input-type=module -e "
    import t, { tensor } from './dist/index.mjs';
    if (typeof tensor !== 'function' || t.tensor !== tensor) throw new Error('ESM entry lacks named exports');
    console.log('ci[node18]: import(\"./dist/index.mjs\") ok');
  "
  "$NODE18" -e "
    const { crc32, nativeCrc32 } = require('./dist/serialize/crc32');
    if (crc32('123456789') !== 0xcbf43926) throw new Error('crc32 wrong');
    console.log('ci[node18]: crc32 ok (' + (nativeCrc32 ? 'zlib.crc32' : 'JS fallback, no zlib.crc32 in this Node') + ')');
  "
  [ "${1:-}" = --check ] && { say "checks passed (no jest: --check)"; return 0; }

  say "jest $*"
  "$NODE18" node_modules/jest/bin/jest.js "$@"
}

if [ "${TORCHNODE_NODE18_INSIDE:-}" = 1 ]; then
  inside "$@"
  exit
fi

command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs apt-get and dpkg (Debian)"
[ -d node_modules/jest ] || die "no node_modules/jest: run npm ci first"
setup
start=$(date +%s)
if [ "$(id -u)" = 0 ]; then ns=(unshare --mount --propagation private)
else ns=(unshare --user --map-root-user --mount --propagation private)
fi
rc=0
TORCHNODE_NODE18_INSIDE=1 "${ns[@]}" bash "$REPO/.ci/node18.sh" "$@" || rc=$?
if [ $rc = 0 ]; then say "passed in $(( $(date +%s) - start )) s"; else say "FAILED (exit $rc) after $(( $(date +%s) - start )) s"; fi
exit $rc

#!/usr/bin/env bash
# The Blender tests (-m blender) on Blender 5.1. Its bpy wheel needs CPython 3.13 and this Debian 12
# machine has 3.11, so they run in a minimal Debian 13 root (debootstrap: python3, python3-venv and
# the few libraries bpy links), in a venv made there from requirements-bpy51.txt. The root has no
# package index: the wheels are downloaded here for CPython 3.13 and installed inside with --no-index.
# Run as root:   bash scripts/test_bpy51.sh [pytest args]
#                bash scripts/test_bpy51.sh --prepare   (root, wheels and venv only; test.sh runs
#                this in the background while the other lines' tests run)
#
# The root is built once per machine in $NNVIZ_PY313_CACHE (default /var/cache/nnviz-py313) from the
# Debian mirror of this machine's apt sources ($NNVIZ_DEBIAN_MIRROR overrides), the venv again when
# the requirements change. Anything that fails says so and exits non-zero: never a silent skip.
#
# Mounts (the checkout read-only at /project, the wheels, /proc, a fresh /tmp) are made inside a
# private mount namespace (unshare), so they vanish when the run ends, however it ends. No device
# or host directory stays bound in the root, and deleting the cache directory is always safe.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=run
if [ "${1:-}" = --prepare ]; then
    MODE=prepare
    shift
fi
CACHE=${NNVIZ_PY313_CACHE:-/var/cache/nnviz-py313}
ROOT=$CACHE/root
REQ=requirements-bpy51.txt
STAMP=$(sha256sum "$REQ" | cut -c1-16)
WHEELS=$CACHE/wheels-$STAMP
VENV=/opt/bpy51
# Shared libraries bpy links that a minimal Debian lacks (ldd on the wheel's .so files; the rest
# come in the wheel's bpy/lib; EGL with Mesa's software driver lets Workbench render headless).
LIBS=libx11-6,libxrender1,libxfixes3,libxi6,libxkbcommon0,libxext6,libsm6,libice6,libgl1,libegl1,libegl-mesa0

fail() {
    echo "test_bpy51: $*" >&2
    exit 1
}

# rm -rf that refuses to run while anything is mounted at or below the directory.
remove_tree() {
    if awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
        /proc/self/mountinfo; then
        fail "something is mounted inside $1; not deleting it (see findmnt)"
    fi
    rm -rf --one-file-system "$1"
}

debian_mirror() {
    local url
    url=${NNVIZ_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }')}
    [ -n "$url" ] || url=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' \
        /etc/apt/sources.list 2>/dev/null)
    echo "${url:-http://deb.debian.org/debian}"
}

build_root() {
    local made="trixie python3,python3-venv,$LIBS"
    [ "$(cat "$ROOT/.complete" 2>/dev/null)" = "$made" ] && return
    command -v debootstrap >/dev/null ||
        { apt-get update -q && apt-get install -y -q debootstrap; } >&2 ||
        fail "cannot install debootstrap"
    local mirror start=$SECONDS
    mirror=$(debian_mirror)
    echo ">> building a Debian 13 root with Python 3.13 in $ROOT (from $mirror; once per machine)" >&2
    remove_tree "$ROOT.partial"
    # debootstrap mounts /proc and /sys in the target while it works: in a private namespace those
    # mounts go away with it even when it is killed.
    unshare --mount --propagation private debootstrap --variant=minbase \
        --include="python3,python3-venv,$LIBS" trixie "$ROOT.partial" "$mirror" \
        >"$CACHE/debootstrap.log" 2>&1 ||
        fail "debootstrap of Debian 13 failed; the end of $CACHE/debootstrap.log:
$(tail -n 15 "$CACHE/debootstrap.log")"
    echo "$made" >"$ROOT.partial/.complete"
    remove_tree "$ROOT"
    mv "$ROOT.partial" "$ROOT"
    echo ">> root built in $((SECONDS - start)) s" >&2
}

fetch_wheels() {
    [ -e "$WHEELS/.complete" ] && return
    local old start=$SECONDS
    echo ">> downloading the CPython 3.13 wheels of $REQ" >&2
    remove_tree "$WHEELS.partial"
    mkdir -p "$WHEELS.partial"
    python3 -m pip download -q --only-binary=:all: --python-version 3.13 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -r "$REQ" -d "$WHEELS.partial" >"$CACHE/pip-download.log" 2>&1 ||
        fail "downloading the wheels of $REQ failed; the end of $CACHE/pip-download.log:
$(tail -n 15 "$CACHE/pip-download.log")"
    touch "$WHEELS.partial/.complete"
    mv "$WHEELS.partial" "$WHEELS"
    for old in "$CACHE"/wheels-*; do
        [ "$old" = "$WHEELS" ] || remove_tree "$old"
    done
    echo ">> wheels downloaded in $((SECONDS - start)) s" >&2
}

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, mounts, chroot)"
mkdir -p "$CACHE"
# One run at a time per machine (checkouts share the root); the lock goes with the last process.
exec 9>"$CACHE/.lock"
flock -n 9 || { echo ">> waiting for another Blender 5.1 run on this machine" >&2 && flock 9; }
build_root
fetch_wheels
# The extension tests build zips from the wheel cache in the checkout, which is read-only inside.
[ "$MODE" = prepare ] || .venv/bin/python -c 'import sys; sys.path.insert(0, "scripts")
import build_extension as b
for python in b.TARGETS: b.wheels_for(python)' || fail "cannot fill the extension's wheel cache"

mkdir -p "$ROOT/project" "$ROOT/wheels"
unshare --mount --propagation private /bin/bash -s -- "$ROOT" "$PWD" "$WHEELS" "$VENV" "$STAMP" \
    "$REQ" "$MODE" "$@" <<'NAMESPACE'
set -euo pipefail
root=$1 project=$2 wheels=$3 venv=$4 stamp=$5 req=$6 mode=$7
shift 7
mount --bind "$project" "$root/project"
mount -o remount,bind,ro "$root/project"
mount --bind "$wheels" "$root/wheels"
mount -o remount,bind,ro "$root/wheels"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
    /bin/bash -s -- "$venv" "$stamp" "$req" "$mode" "$@" <<'ROOT'
set -euo pipefail
venv=$1 stamp=$2 req=$3 mode=$4
shift 4
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo ">> setting up $venv from $req (no index: the downloaded wheels)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --no-index --find-links /wheels -r "/project/$req" >&2
    echo "$stamp" >"$venv/.stamp"
fi
[ "$mode" = run ] || exit 0
cd /project
"$venv/bin/python" -c 'import sys, bpy, numpy
print(">> pytest (Blender", bpy.app.version_string + ", Python", sys.version.split()[0] + ", NumPy",
      numpy.__version__ + "), -m blender")'
exec "$venv/bin/python" -m pytest -m blender -p no:cacheprovider "$@"
ROOT
NAMESPACE

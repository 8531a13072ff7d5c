#!/usr/bin/env bash
# The project's `-m blender` tests on bpy 5.1.2 (Python 3.13), inside the Debian 13 root that
# ../shared/tools/blender-gui/setup.sh builds (this machine's Python is 3.11; the 5.1 wheel needs
# 3.13). Run as root:  bash scripts/test_bpy51.sh [pytest args]
# The wheel is fetched once on this machine (the root's pip cannot reach the registry) and installed
# inside without an index into /opt/bpy51 (with Debian's numpy 2.2 and pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
G=${BLENDER_GUI_DIR:-/tmp/blender-gui}; R=$G/root
TOOLS=${GUI_TOOLS:-$PWD/../shared/tools/blender-gui}
VERSION=${BPY_VERSION:-5.1.2}
[ -x "$R/usr/bin/apt-get" ] || { echo "no Debian 13 root at $R: run bash $TOOLS/setup.sh $PWD" >&2; exit 2; }
[ -e "$R/project/scripts/test_bpy51.sh" ] && [ "$R/project/scripts/test_bpy51.sh" -ef scripts/test_bpy51.sh ] || {
  echo "$R/project is not this checkout: bash $TOOLS/stop.sh && bash $TOOLS/mount.sh $PWD" >&2; exit 2; }
mkdir -p "$G/out/wheels"
ls "$G"/out/wheels/bpy-"$VERSION"-cp313-*.whl >/dev/null 2>&1 ||
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.13 \
    --platform manylinux_2_28_x86_64 "bpy==$VERSION" -d "$G/out/wheels"
chroot "$R" /usr/bin/env VERSION="$VERSION" /bin/bash -s -- "$@" <<'INSIDE'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive HOME=/tmp
dpkg -s python3-venv python3-pytest >/dev/null 2>&1 ||
  apt-get install -y -q python3-venv python3-pytest >/dev/null
V=/opt/bpy${VERSION//./}
[ -x $V/bin/python ] || python3 -m venv --system-site-packages $V
$V/bin/python -c "import bpy, sys; sys.exit(bpy.app.version_string.split()[0] != '$VERSION')" 2>/dev/null ||
  $V/bin/pip install -q --no-deps --no-index --force-reinstall /out/wheels/bpy-"$VERSION"-cp313-*.whl
cd /project
$V/bin/python -c "import bpy, numpy, sys; print('bpy', bpy.app.version_string, 'python', sys.version.split()[0], 'numpy', numpy.__version__)"
$V/bin/python -m pytest -m blender -p no:cacheprovider -q "$@"
INSIDE

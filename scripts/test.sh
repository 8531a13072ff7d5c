#!/usr/bin/env bash
# The whole test suite on a fresh machine: sets up its environments, then lint, type check, pytest
# on Blender 5.0.1, and the Blender tests on 4.2 LTS and 4.5 LTS (NNVIZ_SKIP_LTS=1 skips those) and
# on 5.1 in a Debian 13 root (NNVIZ_SKIP_BPY51=1 skips it; run as root: scripts/test_bpy51.sh).
# Extra arguments go to pytest (e.g. -k graph, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
# Blender 5.1's root (built once per machine, a few minutes) gets ready in the background meanwhile.
if [ -z "${NNVIZ_SKIP_BPY51:-}" ]; then
    bpy51_log=$(mktemp)
    bash scripts/test_bpy51.sh --prepare >"$bpy51_log" 2>&1 &
    bpy51_prepare=$!
fi
ensure_venv .venv requirements-test.txt
ensure_venv .venv-typecheck requirements-typecheck.txt

echo ">> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo ">> mypy (against fake-bpy-module)"
.venv-typecheck/bin/mypy nnviz_blender
echo ">> pytest (Blender 5.0.1, everything)"
.venv/bin/python -m pytest "$@"

# The Blender tests again on the two LTS lines the manifest promises (blender_version_min 4.2).
if [ -z "${NNVIZ_SKIP_LTS:-}" ]; then
    for v in 42 45; do
        ensure_venv ".venv-bpy$v" "requirements-bpy$v.txt"
        echo ">> pytest (Blender $(".venv-bpy$v/bin/python" -c 'import bpy; print(bpy.app.version_string)'), -m blender)"
        timeout 900 ".venv-bpy$v/bin/python" -m pytest -m "blender" -p no:cacheprovider "$@"
    done
fi

# And on Blender 5.1, the newest line (Python 3.13). Building its root fails the run: no silent skip.
if [ -z "${NNVIZ_SKIP_BPY51:-}" ]; then
    status=0
    wait "$bpy51_prepare" || status=$?
    cat "$bpy51_log" && rm -f "$bpy51_log"
    [ "$status" = 0 ] || { echo "the Blender 5.1 environment could not be made" >&2 && exit 1; }
    timeout 900 bash scripts/test_bpy51.sh "$@"
fi

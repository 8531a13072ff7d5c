#!/usr/bin/env bash
# The whole test suite on a fresh machine: sets up its environments, then lint, type check, pytest.
# Extra arguments go to pytest (e.g. -k graph, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv .venv requirements-test.txt
ensure_venv .venv-typecheck requirements-typecheck.txt

echo ">> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo ">> mypy (against fake-bpy-module)"
.venv-typecheck/bin/mypy nnviz_blender
echo ">> pytest"
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The main job on a fresh machine: set up the environment, then render a figure of the CNN
# recognising a real MNIST test digit, headless, with the bpy wheel. Extra arguments go to the
# render command (e.g. --layout flat --theme light --resolution 1920x1080 --samples 64).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv .venv requirements-test.txt
mkdir -p out
.venv/bin/python -m nnviz_blender predict --model cnn --input sample:7
.venv/bin/python -m nnviz_blender render --model cnn --input sample:7 --layout 3d \
    --out out/figure.png --save-blend out/figure.blend "$@"
echo "figure: out/figure.png   scene: out/figure.blend"

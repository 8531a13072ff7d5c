#!/usr/bin/env bash
# The GUI check: a real Blender window under Xvfb, driven through the main user story with real
# clicks and mouse strokes; screenshots after every step; a summary; exit 1 if an assertion fails.
# Slow (10-20 min with software OpenGL) and not part of CI. Run as root:
#
#   bash ../shared/tools/blender-gui/setup.sh "$PWD"   # once: the Debian 13 root with Blender 4.3
#   bash scripts/gui_check.sh [--out DIR] [--iterations N] [--skip-mlp] [--skip-cnn] [--resnet18] [--keep]
#   BLENDER=/path/to/blender bash scripts/gui_check.sh  # a Blender on this machine instead
#                                                       # (needs Xvfb, xdotool, ImageMagick here)
#
# Screenshots, summary.json and log.txt go to DIR (default out/gui-check/). Environment:
# BLENDER_GUI_DIR (default /tmp/blender-gui), GUI_TOOLS (default ../shared/tools/blender-gui),
# DISPLAY_NUM (default 99). See scripts/gui/README.md for how positions are found.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m scripts.gui.check "$@"

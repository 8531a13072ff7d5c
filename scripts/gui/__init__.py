"""Driving a real Blender window for scripts/gui_check.sh (not part of the package, not in CI)."""

"""Build the extension zip with Blender's own extension tool (it ships inside the bpy wheel).

    python scripts/build_extension.py [--output-dir dist] [--validate]

Stages the package, the manifest and the shipped models into a temporary folder, runs
`blender_ext.py build` on it, and prints the path of the zip.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("mlp.npz", "cnn.npz", "samples.npz", "README.md")


def blender_ext_tool() -> str:
    """Path of blender_ext.py inside the installed bpy wheel."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the bpy wheel is not installed in this Python")
    base = list(spec.submodule_search_locations)[0]
    found = glob.glob(
        os.path.join(base, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")
    )
    if not found:
        raise SystemExit(f"blender_ext.py not found under {base}")
    return found[0]


def stage(dest: str) -> None:
    """Copy what the extension needs into `dest` (the package contents at its top level)."""
    shutil.copytree(
        os.path.join(ROOT, "nnviz_blender"),
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    shutil.copy2(os.path.join(ROOT, "blender_manifest.toml"), dest)
    os.makedirs(os.path.join(dest, "models"), exist_ok=True)
    for name in SHIPPED:
        shutil.copy2(os.path.join(ROOT, "models", name), os.path.join(dest, "models", name))


def build(output_dir: str, validate: bool = True) -> str:
    tool = blender_ext_tool()
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = os.path.join(tmp, "nnviz_blender")
        stage(staged)
        result = subprocess.run(
            [sys.executable, tool, "build", "--source-dir", staged, "--output-dir", output_dir],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"extension build failed:\n{result.stdout}{result.stderr}")
    zips = sorted(glob.glob(os.path.join(output_dir, "nnviz_blender-*.zip")), key=os.path.getmtime)
    if not zips:
        raise SystemExit("the extension tool made no zip")
    if validate:
        subprocess.run([sys.executable, tool, "validate", zips[-1]], check=True)
    return zips[-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--output-dir", default=os.path.join(ROOT, "dist"))
    ap.add_argument("--no-validate", action="store_true")
    args = ap.parse_args(argv)
    print(build(os.path.abspath(args.output_dir), validate=not args.no_validate))
    return 0


if __name__ == "__main__":
    sys.exit(main())

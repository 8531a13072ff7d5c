"""Build the extension zips with Blender's own extension tool (it ships inside the bpy wheel).

    python scripts/build_extension.py [--python 3.11|3.13|all] [--output-dir dist]
                                      [--offline | --refresh] [--no-validate]

The extension bundles `onnx` and what it imports (protobuf, ml_dtypes, typing_extensions) as
unmodified wheels from PyPI, listed in the manifest's `wheels`, so it works in Blender with no pip.
NumPy is Blender's own and is never bundled. Wheels are compiled per platform and per Python, so
there is one zip per platform and per Python line:

    nnviz_blender-<version>-py311-<platform>.zip   Blender 4.2 - 5.0 (Python 3.11)
    nnviz_blender-<version>-py313-<platform>.zip   Blender 5.1 (Python 3.13)

Blender's installer takes from a zip only the wheels whose platform and Python tags match the
running Blender, and refuses an extension none of whose wheels names its Python, so a user who
picks the wrong line is told so instead of getting an add-on that cannot read ONNX files.

The wheels are downloaded with `pip download` into the gitignored `wheels/py3XX/` folder; a folder
made from the same pins and platforms is reused without asking the network (`--offline` insists on
that, `--refresh` downloads again). The Python 3.11 list is written into `blender_manifest.toml` so
the shipped set is reviewable in git. The package, the manifest and the shipped models are staged
in a temporary folder, built with `blender_ext.py build --split-platforms` and every zip is checked
with `blender_ext.py validate`.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "blender_manifest.toml")
SHIPPED = ("mlp.npz", "cnn.npz", "resnet.npz", "samples.npz", "README.md")
WHEEL_CACHE = os.path.join(ROOT, "wheels")

# onnx and everything it imports at `import onnx` (checked in a clean venv with --no-deps).
# ml_dtypes 0.6 and later need NumPy 2; Blender 4.2-5.0 bundle NumPy 1.26, 0.5.4 works with both.
DEPENDENCIES = ("onnx==1.23.2", "protobuf==7.36.2", "ml_dtypes==0.5.4", "typing_extensions==4.16.0")

# pip tags per Blender platform. pip widens a macOS tag to older versions and universal2 by itself
# but takes a manylinux tag literally, so the glibc range Blender runs on (2.17-2.28) is spelled
# out. onnx's macOS wheels need macOS 13.
PIP_PLATFORMS = {
    "linux-x64": (
        *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)),
        "manylinux2014_x86_64",
    ),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_13_0_arm64",),
    "macos-x64": ("macosx_13_0_x86_64",),
}

# The Python of each Blender line, and its platforms (Blender 5.0 dropped Intel Macs).
TARGETS = {
    "3.11": ("Blender 4.2 - 5.0", ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")),
    "3.13": ("Blender 5.1", ("linux-x64", "windows-x64", "macos-arm64")),
}
DEFAULT_PYTHON = "3.11"  # the wheel list kept in blender_manifest.toml


def blender_ext_tool() -> str:
    """Path of blender_ext.py inside the installed bpy wheel."""
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


def tool_module() -> ModuleType:
    """blender_ext.py as a module, to ask it which wheels it puts into which platform's zip."""
    spec = importlib.util.spec_from_file_location("blender_ext", blender_ext_tool())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def py_tag(python: str) -> str:
    return "py" + python.replace(".", "")


def distribution(wheel: str) -> str:
    return wheel.split("-")[0].lower()


def wheel_spec(python: str) -> str:
    """What a cache folder was downloaded from; a folder with another spec is downloaded again."""
    platforms = {name: PIP_PLATFORMS[name] for name in TARGETS[python][1]}
    return json.dumps({"dependencies": DEPENDENCIES, "platforms": platforms}, indent=1) + "\n"


def check_wheel_set(wheels: list[str], python: str) -> None:
    """Every platform's zip must get exactly one wheel of each dependency (as Blender splits)."""
    tool = tool_module()
    wanted = sorted(dep.split("==")[0].lower() for dep in DEPENDENCIES)
    for platform in TARGETS[python][1]:
        picked = sorted(
            distribution(w)
            for w in wheels
            if tool.blender_platform_compatible_with_wheel_platform_from_filepath(platform, w)
        )
        if picked != wanted:
            raise SystemExit(
                f"wheels for {platform} / Python {python}: got {picked}, want one each of {wanted}"
            )


def download(python: str, folder: str) -> None:
    """`pip download` every dependency for every platform of `python` into `folder` (replaced)."""
    partial = folder + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    for platform in TARGETS[python][1]:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--only-binary=:all:", "--python-version", python, "--dest", partial]
        cmd += [f"--platform={tag}" for tag in PIP_PLATFORMS[platform]]
        result = subprocess.run([*cmd, *DEPENDENCIES], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(
                f"downloading wheels for {platform} / Python {python} failed:\n"
                + result.stderr[-3000:]
            )
    check_wheel_set(sorted(os.listdir(partial)), python)
    with open(os.path.join(partial, "spec.json"), "w") as fh:
        fh.write(wheel_spec(python))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)


def wheels_for(python: str, fetch: bool | None = None) -> tuple[str, list[str]]:
    """The cache folder and wheel file names for `python`.

    fetch=None downloads only when the cache is missing or was made from other pins/platforms,
    False never downloads (error when the cache is not ready), True always downloads."""
    folder = os.path.join(WHEEL_CACHE, py_tag(python))
    marker = os.path.join(folder, "spec.json")
    ready = False
    if os.path.exists(marker):
        with open(marker) as fh:
            ready = fh.read() == wheel_spec(python)
    if fetch is False and not ready:
        raise SystemExit(f"no wheel cache for Python {python} in {folder}: build once online")
    if fetch or not ready:
        download(python, folder)
    return folder, sorted(f for f in os.listdir(folder) if f.endswith(".whl"))


def toml_list(key: str, values: list[str]) -> str:
    if len(values) <= 4 and sum(len(v) for v in values) < 70:
        return f"{key} = [{', '.join(json.dumps(v) for v in values)}]\n"
    return f"{key} = [\n" + "".join(f"  {json.dumps(v)},\n" for v in values) + "]\n"


def with_list(text: str, key: str, values: list[str]) -> str:
    """Manifest text with the top-level `key = [...]` set to `values` (added before the tables)."""
    line = toml_list(key, values)
    pattern = re.compile(rf"^{key} = \[[^\]]*\]\n", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda _: line, text, count=1)
    first_table = re.search(r"^\[", text, re.MULTILINE)
    at = first_table.start() if first_table else len(text)
    return text[:at] + line + "\n" + text[at:]


def manifest_for(python: str, wheels: list[str]) -> str:
    """The manifest text for the zips of one Python line."""
    with open(MANIFEST) as fh:
        text = fh.read()
    text = with_list(text, "platforms", list(TARGETS[python][1]))
    text = with_list(text, "wheels", [f"./wheels/{w}" for w in wheels])
    tomllib.loads(text)  # still valid TOML
    return text


def stage(dest: str, manifest: str, wheel_dir: str, wheels: list[str]) -> None:
    """Copy what the extension needs into `dest` (the package contents at its top level)."""
    shutil.copytree(
        os.path.join(ROOT, "nnviz_blender"),
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    with open(os.path.join(dest, "blender_manifest.toml"), "w") as fh:
        fh.write(manifest)
    os.makedirs(os.path.join(dest, "models"), exist_ok=True)
    for name in SHIPPED:
        shutil.copy2(os.path.join(ROOT, "models", name), os.path.join(dest, "models", name))
    os.makedirs(os.path.join(dest, "wheels"), exist_ok=True)
    for name in wheels:
        shutil.copy2(os.path.join(wheel_dir, name), os.path.join(dest, "wheels", name))


def build(
    output_dir: str,
    python: str = DEFAULT_PYTHON,
    validate: bool = True,
    fetch: bool | None = None,
) -> dict[str, str]:
    """Build one zip per platform for one Python line; returns {blender platform: zip path}."""
    if python not in TARGETS:
        raise SystemExit(f"--python must be one of {', '.join(TARGETS)}, not {python}")
    tool = blender_ext_tool()
    wheel_dir, wheels = wheels_for(python, fetch)
    manifest = manifest_for(python, wheels)
    if python == DEFAULT_PYTHON:
        with open(MANIFEST) as fh:
            if fh.read() != manifest:
                with open(MANIFEST, "w") as out:
                    out.write(manifest)
                print(f"updated {MANIFEST} (wheels and platforms)", file=sys.stderr)
    version = tomllib.loads(manifest)["version"]
    stem = os.path.join(os.path.abspath(output_dir), f"nnviz_blender-{version}-{py_tag(python)}")
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = os.path.join(tmp, "nnviz_blender")
        stage(staged, manifest, wheel_dir, wheels)
        cmd = [sys.executable, tool, "build", "--source-dir", staged, "--split-platforms"]
        result = subprocess.run(
            [*cmd, "--output-filepath", stem + ".zip"], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"extension build failed:\n{result.stdout}{result.stderr}")
    zips = {p: f"{stem}-{p.replace('-', '_')}.zip" for p in TARGETS[python][1]}
    missing = [path for path in zips.values() if not os.path.exists(path)]
    if missing:
        raise SystemExit(f"the extension tool did not make {missing}:\n{result.stdout}")
    if validate:
        for path in zips.values():
            check = subprocess.run([sys.executable, tool, "validate", path], capture_output=True)
            if check.returncode != 0:
                raise SystemExit(f"{path} is not a valid extension:\n{check.stdout.decode()}")
    return zips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--python", default="all", choices=[*TARGETS, "all"])
    ap.add_argument("--output-dir", default=os.path.join(ROOT, "dist"))
    net = ap.add_mutually_exclusive_group()
    net.add_argument("--offline", action="store_true", help="use the wheel cache, never download")
    net.add_argument("--refresh", action="store_true", help="download the wheels again")
    ap.add_argument("--no-validate", action="store_true")
    args = ap.parse_args(argv)
    fetch = False if args.offline else True if args.refresh else None
    for python in TARGETS if args.python == "all" else (args.python,):
        zips = build(args.output_dir, python, validate=not args.no_validate, fetch=fetch)
        for path in zips.values():
            mib = os.path.getsize(path) / 2**20
            print(f"{path}  {mib:.1f} MiB  ({TARGETS[python][0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

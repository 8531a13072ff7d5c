"""Build the extension zips with Blender's own tool, install the Linux one like a user, use it.

The zips carry onnx and its imports as wheels; inside the installed Blender `import onnx` must work
from the wheels Blender unpacked, never from the test venv (install_cycle.py hides that)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.slow]

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import build_extension  # noqa: E402

# Wheel platform tags Blender picks on each platform (the filter in bl_pkg, simplified).
PLATFORM_TAG = {
    "linux-x64": ("manylinux", "_x86_64"),
    "windows-x64": ("win", "_amd64"),
    "macos-arm64": ("macosx", "_universal2"),
    "macos-x64": ("macosx", "_universal2"),
}
DEPENDENCIES = {"onnx", "protobuf", "ml_dtypes", "typing_extensions"}
# Each Python line has its own zips (3.11: Blender 4.2 - 5.0; 3.13: Blender 5.1, which dropped
# Intel Macs). These tests install the running Blender's line, and check it refuses the other one.
PLATFORMS = {
    "3.11": {"linux-x64", "windows-x64", "macos-arm64", "macos-x64"},
    "3.13": {"linux-x64", "windows-x64", "macos-arm64"},
}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER = "3.13" if PYTHON == "3.11" else "3.11"


def cp(python: str) -> str:
    return "cp" + python.replace(".", "")


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    """The zips of the running Blender's Python line, from the wheel cache when it is ready."""
    return build_extension.build(str(tmp_path_factory.mktemp("dist")), PYTHON, validate=True)


def zip_manifest(path):
    import tomllib
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return zf.namelist(), tomllib.loads(zf.read("blender_manifest.toml").decode())


def test_one_zip_per_platform_with_its_own_wheels(zips):
    assert set(zips) == PLATFORMS[PYTHON]
    for platform, path in zips.items():
        names, manifest = zip_manifest(path)
        assert "__init__.py" in names and "core/forward.py" in names
        shipped = {"models/mlp.npz", "models/cnn.npz", "models/resnet.npz", "models/samples.npz"}
        assert shipped <= set(names)
        assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
        # the tool keeps this platform's wheels and records them in [build.generated]
        generated = manifest["build"]["generated"]
        assert generated["platforms"] == [platform]
        wheels = sorted(n for n in names if n.endswith(".whl"))
        assert wheels == sorted(w.removeprefix("./") for w in generated["wheels"])
        # one wheel of each dependency, for this platform and this CPython (abi3 and pure wheels
        # included); never numpy, which Blender ships
        tags = [os.path.basename(w)[:-4].split("-") for w in wheels]
        assert sorted(t[0] for t in tags) == sorted(DEPENDENCIES)
        head, tail = PLATFORM_TAG[platform]
        for _dist, _ver, python, abi, plat in tags:
            assert plat == "any" or (plat.startswith(head) and plat.endswith(tail)), plat
            assert python in (cp(PYTHON), "py3") or abi == "abi3", (python, abi)


def user_env(home):
    """The environment of a user whose Blender settings live in `home` (a fresh one)."""
    env = dict(os.environ, HOME=str(home))
    env.pop("BLENDER_USER_CONFIG", None)
    env.pop("BLENDER_USER_SCRIPTS", None)
    return env


def test_install_enable_use_disable(zips, tmp_path):
    env = user_env(tmp_path)
    script = os.path.join(ROOT, "tests", "blender_scripts", "install_cycle.py")
    r = subprocess.run(
        [sys.executable, script, zips["linux-x64"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout[-2000:] + r.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    nothing = {"scene_prop": False, "classes": [], "handlers": []}
    assert out["before"] == nothing
    assert out["enabled"]
    # onnx and its imports come from the wheels Blender unpacked out of the zip
    bundled = out["onnx"]
    site = out["site_packages"]
    assert site.startswith(str(tmp_path)) and set(bundled["files"]) >= {"onnx", "google"}
    for name, path in bundled["files"].items():
        assert path.startswith(site + os.sep), (name, path)
    assert bundled["version"] == "1.23.2" and bundled["protobuf"] == "upb"  # compiled protobuf
    assert bundled["ops"] == ["MatMul", "Relu"]
    assert bundled["weight"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    enabled = out["after_enable"]
    assert enabled["scene_prop"] and "NNVIZ_OT_build" in enabled["classes"]
    assert enabled["handlers"] == ["load_pre:_on_load_pre", "save_pre:_on_save_pre"]
    assert out["build"] == ["FINISHED"] and out["live"] == ["FINISHED"]
    assert out["prediction"] == "1"
    assert out["after_disable"] == nothing
    assert not out["live_after_disable"]
    assert out["after_reenable"] == enabled  # no duplicated handlers or classes
    assert out["after_second_reenable"] == enabled


REFUSE = """
import sys, bpy
try:
    bpy.ops.extensions.package_install_files(
        filepath=sys.argv[1], repo="user_default", enable_on_install=True
    )
except RuntimeError as exc:
    print("ERROR", str(exc).strip())
enabled = any(m.module.endswith(".nnviz_blender") for m in bpy.context.preferences.addons)
print("ENABLED", enabled)
"""


def test_zips_of_the_other_python_line_are_refused(tmp_path):
    """A zip carries one Python line's compiled wheels; a Blender of the other line says so and
    enables nothing (the user picked the wrong zip), rather than running without onnx."""
    zips = build_extension.build(str(tmp_path / "dist"), OTHER, validate=True)
    assert set(zips) == PLATFORMS[OTHER]
    names, manifest = zip_manifest(zips["linux-x64"])
    tags = [os.path.basename(n)[:-4].split("-")[2:4] for n in names if n.endswith(".whl")]
    assert [cp(PYTHON), cp(PYTHON)] not in tags and [cp(OTHER), cp(OTHER)] in tags
    r = subprocess.run(
        [sys.executable, "-c", REFUSE, zips["linux-x64"]],
        env=user_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "ENABLED False" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    refusal = f"This Python version ({PYTHON}) isn't compatible with ({OTHER})"
    assert refusal in r.stdout, r.stdout[-2000:]

"""Build the extension zip with Blender's own tool, install it like a user, enable/disable it."""

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


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    return build_extension.build(str(tmp_path_factory.mktemp("dist")), validate=True)


def test_zip_contents(zip_path):
    import zipfile

    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names
    assert "__init__.py" in names and "core/forward.py" in names
    assert {"models/mlp.npz", "models/cnn.npz", "models/samples.npz"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_install_enable_use_disable(zip_path, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("BLENDER_USER_CONFIG", None)
    env.pop("BLENDER_USER_SCRIPTS", None)
    script = os.path.join(ROOT, "tests", "blender_scripts", "install_cycle.py")
    r = subprocess.run(
        [sys.executable, script, zip_path], env=env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout[-2000:] + r.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    nothing = {"scene_prop": False, "classes": [], "handlers": []}
    assert out["before"] == nothing
    assert out["enabled"]
    enabled = out["after_enable"]
    assert enabled["scene_prop"] and "NNVIZ_OT_build" in enabled["classes"]
    assert enabled["handlers"] == ["load_pre:_on_load_pre", "save_pre:_on_save_pre"]
    assert out["build"] == ["FINISHED"] and out["live"] == ["FINISHED"]
    assert out["prediction"] == "1"
    assert out["after_disable"] == nothing
    assert not out["live_after_disable"]
    assert out["after_reenable"] == enabled  # no duplicated handlers or classes
    assert out["after_second_reenable"] == enabled

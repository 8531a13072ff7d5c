"""Run in a fresh Python with HOME pointing at a temp dir: install the built zip like a user.

    python install_cycle.py <zip>

Prints one JSON line of findings; the test asserts on it.

The modules of the zip's bundled wheels are hidden from this Python's own site-packages (the test
venv may have onnx installed for other tests): inside this process they can only come from what
Blender unpacked out of the zip, as in a real Blender that has no onnx of its own.
"""

import importlib
import importlib.machinery
import io
import json
import site
import sys
import zipfile

from bpy_exit import release_bpy_at_exit

release_bpy_at_exit()  # before importing bpy (see there)


def bundled_modules(zip_path: str) -> set[str]:
    """Top-level import names inside the wheels the extension zip carries."""
    names = set()
    with zipfile.ZipFile(zip_path) as outer:
        for wheel in (n for n in outer.namelist() if n.endswith(".whl")):
            with zipfile.ZipFile(io.BytesIO(outer.read(wheel))) as inner:
                for entry in inner.namelist():
                    top = entry.split("/")[0]
                    if not top.endswith((".dist-info", ".data")):
                        names.add(top.removesuffix(".py"))
    return names


class HideFromSitePackages:
    """Finds `names` on sys.path minus this Python's site-packages (so only in Blender's dirs)."""

    def __init__(self, names: set[str]):
        self.names = names
        self.hidden = set(site.getsitepackages()) | {site.getusersitepackages()}

    def find_spec(self, fullname, path=None, target=None):
        if path is not None or fullname not in self.names:
            return None  # submodules follow their package's __path__
        allowed = [p for p in sys.path if p not in self.hidden]
        spec = importlib.machinery.PathFinder.find_spec(fullname, allowed)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {fullname!r} outside site-packages")
        return spec


BUNDLED = bundled_modules(sys.argv[1])
sys.meta_path.insert(0, HideFromSitePackages(BUNDLED))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

ZIP = sys.argv[1]
MODULE = "bl_ext.user_default.nnviz_blender"
out = {}


def handler_names():
    return sorted(
        f"{kind}:{fn.__name__}"
        for kind in (
            "load_pre",
            "load_post",
            "save_pre",
            "depsgraph_update_post",
            "frame_change_post",
        )
        for fn in getattr(bpy.app.handlers, kind)
        if "nnviz" in getattr(fn, "__module__", "")
    )


def leftovers():
    return {
        "scene_prop": hasattr(bpy.types.Scene, "nnviz"),
        "classes": sorted(n for n in dir(bpy.types) if n.startswith("NNVIZ_")),
        "handlers": handler_names(),
    }


out["before"] = leftovers()
bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
import addon_utils  # noqa: E402

out["enabled"] = MODULE in {m.module for m in bpy.context.preferences.addons}
out["after_enable"] = leftovers()


def where(name: str) -> str:
    module = importlib.import_module(name)
    return module.__file__ or list(module.__path__)[0]  # google is a namespace package


def onnx_inside_blender():
    """Import the bundled onnx and parse a tiny model made with onnx.helper."""
    import onnx
    from google.protobuf.internal import api_implementation
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    model = onnx.load_from_string(helper.make_model(graph).SerializeToString())
    onnx.checker.check_model(model)
    return {
        "files": {name: where(name) for name in sorted(BUNDLED)},
        "version": onnx.__version__,
        "protobuf": api_implementation.Type(),
        "ops": [node.op_type for node in model.graph.node],
        "weight": numpy_helper.to_array(model.graph.initializer[0]).tolist(),
    }


out["onnx"] = onnx_inside_blender()
out["site_packages"] = bpy.utils.user_resource("EXTENSIONS", path=".local")

bpy.ops.wm.read_homefile(use_empty=True)
s = bpy.context.scene.nnviz
s.model, s.edges, s.edges_k = "cnn", "topk", 2
out["build"] = list(bpy.ops.nnviz.build())
out["live"] = list(bpy.ops.nnviz.live_start())
live = sys.modules[MODULE + ".live"]
image = live.canvas_image(s.network)
w, h = image.size
px = np.zeros((h, w, 4), np.float32)
px[..., 3] = 1.0
px[40:216, 118:138, :3] = 1.0  # a vertical stroke
image.pixels.foreach_set(px.ravel())
live.tick()
out["prediction"] = live.prediction(s.network)[0][0]

bpy.ops.preferences.addon_disable(module=MODULE)
out["after_disable"] = leftovers()
out["live_after_disable"] = bool(live._sessions)

bpy.ops.preferences.addon_enable(module=MODULE)
out["after_reenable"] = leftovers()
bpy.ops.preferences.addon_disable(module=MODULE)
bpy.ops.preferences.addon_enable(module=MODULE)
out["after_second_reenable"] = leftovers()
addon_utils.disable(MODULE)
print("RESULT " + json.dumps(out))

"""Run in a fresh Python with HOME pointing at a temp dir: install the built zip like a user.

    python install_cycle.py <zip>

Prints one JSON line of findings; the test asserts on it.
"""

import json
import sys

from bpy_exit import release_bpy_at_exit

release_bpy_at_exit()  # before importing bpy (see there)

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

"""Loaded with `blender --python` when gui_check.sh runs a host Blender (BLENDER=): every 0.25 s,
run the scripts dropped in $NNVIZ_GUI_OUT/cmd and write what they printed to $NNVIZ_GUI_OUT/res.
The same file protocol as the blender-gui tool's hook; it reads state and clicks nothing."""

import contextlib
import io
import os
import traceback

import bpy

OUT = os.environ["NNVIZ_GUI_OUT"]
CMD, RES = os.path.join(OUT, "cmd"), os.path.join(OUT, "res")


def _poll():
    for f in sorted(os.listdir(CMD)):
        if not f.endswith(".py"):
            continue
        path = os.path.join(CMD, f)
        with open(path) as fh:
            src = fh.read()
        os.remove(path)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                exec(compile(src, path, "exec"), {"bpy": bpy, "__name__": "gui_check"})
            except Exception:
                traceback.print_exc(file=buf)
        with open(os.path.join(RES, f[:-3] + ".txt"), "w") as fh:
            fh.write(buf.getvalue())
    return 0.25


os.makedirs(CMD, exist_ok=True)
os.makedirs(RES, exist_ok=True)
bpy.app.timers.register(_poll, first_interval=1.0, persistent=True)
print("hook ready", flush=True)

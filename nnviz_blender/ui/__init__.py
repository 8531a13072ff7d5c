"""The Blender UI: settings, operators, the sidebar panel, and the file-load/save handlers."""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from .. import live
from ..animation import record
from . import anim_ops, anim_panel, canvas_area, ops, panel, props, state

MODULES = (props, ops, panel, anim_ops, anim_panel)


@persistent
def _on_load_pre(*_args) -> None:
    """A file is about to replace this one: every session and cached state ends here."""
    live.stop_all("a file was loaded")
    live.forget_all()
    record.forget_all()
    state.forget()
    canvas_area.forget()
    from ..scene import network as scene_network

    scene_network.forget_cache()


@persistent
def _on_save_pre(*_args) -> None:
    """Pack painted canvases so the drawing is saved inside the .blend."""
    for image in bpy.data.images:
        if image.get("nnviz_role") == "canvas_image" and (image.is_dirty or not image.packed_file):
            image.pack()


HANDLERS = ((bpy.app.handlers.load_pre, _on_load_pre), (bpy.app.handlers.save_pre, _on_save_pre))


def register() -> None:
    for module in MODULES:
        module.register()
    for handlers, fn in HANDLERS:
        if fn not in handlers:
            handlers.append(fn)


def unregister() -> None:
    live.stop_all()
    if bpy.app.timers.is_registered(ops.live_timer):
        bpy.app.timers.unregister(ops.live_timer)
    for handlers, fn in HANDLERS:
        while fn in handlers:
            handlers.remove(fn)
    state.release()
    for module in reversed(MODULES):
        module.unregister()

"""The "Animation" panel of the NNViz sidebar tab: Record, Bake, Figure, Render."""

from __future__ import annotations

import bpy

from .. import live
from ..animation import bake as anim_bake
from ..animation import record
from .panel import _network, _Panel, viewport_shows, wrapped


class NNVIZ_PT_animation(_Panel, bpy.types.Panel):
    bl_label = "Animation"
    bl_idname = "NNVIZ_PT_animation"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.nnviz_anim
        name = _network(layout, context)
        if name is None:
            return

        box = layout.box()
        box.label(text="Record Drawing", icon="REC")
        row = box.row(align=True)
        row.scale_y = 1.2
        if record.is_recording(name):
            row.operator("nnviz.record_stop", icon="SNAP_FACE")
            rec = record.recording(name)
            box.label(text=f"{rec.count} states captured", icon="TIME")
        else:
            row.operator("nnviz.record_start", icon="REC")
            row.prop(s, "rate", text="")
            rec = record.recording(name)
            if rec is not None and rec.count:
                box.label(text=f"Recording: {rec.count} states, {rec.duration:.1f}s")
        if live.is_live(name) and not record.is_recording(name):
            box.label(text="Live: Record captures what you draw next")

        box = layout.box()
        box.label(text="Bake", icon="KEYINGSET")
        col = box.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(s, "source")
        if s.source == "INPUTS":
            col.prop(s, "inputs")
            col.prop(s, "hold")
            col.prop(s, "transition")
            col.prop(s, "draw")
        else:
            col.prop(s, "speed")
            col.prop(s, "max_pause")
            col.prop(s, "end_hold")
            wrapped(
                box,
                context,
                f"Idle time before the first stroke and after the last is trimmed; "
                f"pauses longer than {s.max_pause:.1f} s are cut to {s.max_pause:.1f} s",
            )
        col.prop(s, "wave")
        col.prop(s, "camera")
        row = box.row(align=True)
        row.scale_y = 1.2
        row.operator("nnviz.bake_sequence", icon="RENDER_ANIMATION")
        baked = anim_bake.info(name)
        if baked is not None:
            row.operator("nnviz.remove_bake", text="", icon="TRASH")
            if baked:
                box.label(
                    text=f"Baked: {baked['keys']} states, frames "
                    f"{baked['frame_start']}-{baked['frame_end']}",
                    icon="CHECKMARK",
                )
            holder = anim_bake.baked_object(name)
            mod = holder.modifiers.get(anim_bake.MODIFIER) if holder is not None else None
            if mod is not None:
                # off: the viewport shows live drawing again; renders keep the bake if on
                box.prop(mod, "show_viewport", text="Play Bake in Viewport")
                box.prop(mod, "show_render", text="Render the Bake")
                wrapped(box, context, viewport_shows(name), icon="HIDE_OFF")

        box = layout.box()
        box.label(text="Figure", icon="FONT_DATA")
        row = box.row(align=True)
        row.prop(s, "legend", toggle=True)
        row.prop(s, "bars", toggle=True)
        row = box.row(align=True)
        row.operator("nnviz.figure", text="Add", icon="ADD").remove = False
        row.operator("nnviz.figure", text="Remove", icon="REMOVE").remove = True

        box = layout.box()
        box.label(text="Render", icon="RENDER_ANIMATION")
        box.prop(s, "output", text="")
        row = box.row()
        row.scale_y = 1.2
        row.enabled = baked is not None
        row.operator("nnviz.render_animation", icon="RENDER_ANIMATION")


classes = (NNVIZ_PT_animation,)

register, unregister = bpy.utils.register_classes_factory(classes)

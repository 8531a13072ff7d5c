"""The "NNViz" tab of the 3D viewport's sidebar (N panel): Network, Live Drawing, Inspect."""

from __future__ import annotations

from typing import Literal

import bpy

from .. import live
from ..animation import bake as anim_bake
from ..core.inspect import place
from ..scene import network as scene_network
from ..scene import visibility
from ..scene.handle import Network, NetworkError
from . import state
from .ops import NO_BRUSH, paint_brush, target_network


def _network(layout, context) -> str | None:
    """The network the panels act on (as the operators choose it), or None with a hint drawn."""
    try:
        return target_network(context)
    except NetworkError:
        several = len(scene_network.list_networks()) > 1
        hint = "Choose a network in the Network panel" if several else "Build a network first"
        layout.label(text=hint, icon="INFO")
        return None


def _empty_hint(name: str) -> str:
    """What to do on an empty canvas: a digit model wants a digit, an image model an image."""
    stages = Network(name).stages
    shape = list(stages[0]["shape"]) if stages else []
    if len(shape) == 3 and shape[0] == 3:
        return "Paint on the canvas in any colour, or Load Image..."
    return "Paint a digit on the canvas, or Load a sample"


class _Panel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "NNViz"


class NNVIZ_PT_network(_Panel, bpy.types.Panel):
    bl_label = "Network"
    bl_idname = "NNVIZ_PT_network"

    def draw(self, context):
        s = context.scene.nnviz
        col = self.layout.column(align=False)
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(s, "model")
        if s.model == "FILE":
            row = col.row(align=True)
            row.prop(s, "model_path", text="File")
            row.operator("nnviz.choose_model", text="", icon="FILEBROWSER")
        col.prop(s, "layout")
        col.prop(s, "node_shape")
        col.prop(s, "edges")
        if s.edges == "topk":
            col.prop(s, "edges_k")
        elif s.edges == "contrib":
            col.prop(s, "edges_threshold")
        col.prop(s, "theme")
        col.prop(s, "spacing")
        row = self.layout.row(align=True)
        row.scale_y = 1.3
        row.operator("nnviz.build", icon="OUTLINER_OB_POINTCLOUD")
        row.operator("nnviz.remove", icon="TRASH", text="")
        names = scene_network.list_networks()
        if len(names) > 1:
            self.layout.prop(s, "network")


class NNVIZ_PT_live(_Panel, bpy.types.Panel):
    bl_label = "Live Drawing"
    bl_idname = "NNVIZ_PT_live"

    def draw(self, context):
        s = context.scene.nnviz
        layout = self.layout
        name = _network(layout, context)
        if name is None:
            return
        row = layout.row(align=True)
        row.scale_y = 1.3
        if live.is_live(name):
            row.operator("nnviz.live_stop", icon="PAUSE")
        else:
            row.operator("nnviz.live_start", icon="BRUSH_DATA")
        row.operator("nnviz.clear_canvas", icon="X", text="")
        row = layout.row(align=True)
        row.prop(s, "sample")
        row.prop(s, "sample_variant", text="#")
        row.operator("nnviz.load_sample", text="Load", icon="IMAGE_DATA")
        layout.operator("nnviz.load_image", icon="FILE_IMAGE")
        if live.is_live(name):
            box = layout.box()
            if paint_brush(context) is None:
                wrapped(box, context, NO_BRUSH, icon="ERROR", alert=True)
            wrapped(box, context, "Paint in the Image Editor (or on the canvas in 3D)", "INFO")
            if live.is_colour_canvas(name):
                wrapped(box, context, "any brush colour; F sets radius")
            else:
                wrapped(box, context, "white ink; X swaps to black (eraser); F sets radius")
        if live.is_live(name) and anim_bake.shows_in_viewport(name):
            wrapped(layout.box(), context, viewport_shows(name), icon="HIDE_OFF")
        top = live.prediction(name)
        box = layout.box()
        if not top:
            box.label(text="Nothing drawn: no prediction", icon="INFO")
            wrapped(box, context, _empty_hint(name))
        else:
            label, p = top[0]
            box.label(text=f"Prediction: {label}  ({p:.1%})", icon="CHECKMARK")
            for label, p in top[1:]:
                box.label(text=f"{label}: {p:.1%}")


class NNVIZ_PT_inspect(_Panel, bpy.types.Panel):
    bl_label = "Inspect"
    bl_idname = "NNVIZ_PT_inspect"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        s = context.scene.nnviz
        layout = self.layout
        name = _network(layout, context)
        if name is None:
            return
        row = layout.row(align=True)
        row.prop(s, "inspect_stage")
        row.prop(s, "inspect_index")
        row = layout.row(align=True)
        row.operator("nnviz.inspect", icon="VIEWZOOM").source = "INDEX"
        row.operator("nnviz.inspect", text="At Cursor", icon="PIVOT_CURSOR").source = "CURSOR"
        row = layout.row(align=True)
        row.prop(s, "trace_k")
        row.operator("nnviz.trace", icon="TRACKING")
        layout.operator("nnviz.clear_highlight", icon="X")
        info = state.info(name)
        if info is None:
            return
        box = layout.box()
        where = place(info, Network(name).labels)
        head = f"{info.stage} [{info.index}]" + (f"  {where}" if where else "")
        wrapped(box, context, head + ("  (the prediction)" if info.is_winner else ""))
        box.label(text=f"weighted input {info.weighted_input:.4f}   output {info.activation:.4f}")
        if s.show_formula:
            wrapped(box, context, info.formula)
        for term in info.terms[:6]:
            box.label(
                text=f"{term.stage}[{term.index}]: w {term.weight:+.3f} × x {term.value:.3f}"
                f" = {term.product:+.3f}"
            )
        if info.patch is not None:
            row = box.row()
            row.label(text="input patch")
            row.template_icon(icon_value=state.icon_id(f"{name}/patch"), scale=4.0)
            row = box.row()
            row.label(text="filter")
            row.template_icon(icon_value=state.icon_id(f"{name}/kernel"), scale=4.0)


class NNVIZ_PT_layers(_Panel, bpy.types.Panel):
    bl_label = "Layers"
    bl_idname = "NNVIZ_PT_layers"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        name = _network(self.layout, context)
        if name is None:
            return
        net = Network(name)
        stages, lods = net.stages, net.stage_lods()
        hidden = set(visibility.hidden_stages(name))
        col = self.layout.column(align=True)
        for k, stage in enumerate(stages):
            shape = "x".join(str(v) for v in stage["shape"])
            row = col.row(align=True)
            op = row.operator(
                "nnviz.toggle_layer",
                text=f"{k}  {stage['name']}  ({shape})",
                icon="HIDE_ON" if k in hidden else "HIDE_OFF",
                depress=k not in hidden,
            )
            op.stage = k
            for lod, icon in LOD_ICONS.items():  # how it is drawn: the pressed one
                op = row.operator("nnviz.set_lod", text="", icon=icon, depress=lods[k] == lod)
                op.stage, op.lod = k, lod


LodIcon = Literal["MESH_CUBE", "IMAGE_DATA", "MESH_PLANE"]
LOD_ICONS: dict[str, LodIcon] = {"neurons": "MESH_CUBE", "maps": "IMAGE_DATA", "slab": "MESH_PLANE"}


def viewport_shows(name: str) -> str:
    """Which of the two the 3D viewport shows: the baked animation or the live values."""
    if anim_bake.shows_in_viewport(name):
        tail = ": your next stroke switches to live drawing" if live.is_live(name) else ""
        return f"The viewport plays the bake{tail}"
    return "The viewport shows live drawing (the last canvas shown), not the bake"


CHAR_WIDTH = 7.0  # pixels of an average character of the UI font at scale 1


def line_width(context, default: int = 48) -> int:
    """How many characters fit on a line of the sidebar as wide as it is now."""
    region = getattr(context, "region", None)
    if region is None or region.width <= 1:
        return default
    prefs = context.preferences
    scale = (prefs.system.ui_scale or prefs.view.ui_scale or 1.0) if prefs else 1.0
    return max(16, int((region.width - 30) / (CHAR_WIDTH * scale)))


def wrap(text: str, width: int) -> list[str]:
    """Words on lines of at most `width` characters (a longer word gets a line of its own)."""
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*out, line] if line else out


def wrapped(layout, context, text: str, icon: str = "NONE", alert: bool = False) -> None:
    """`text` as labels wrapped to the region's width (the first line carries the icon)."""
    col = layout.column(align=True)
    col.alert = alert
    for k, chunk in enumerate(wrap(text, line_width(context))):
        col.label(text=chunk, icon=icon if k == 0 else "NONE")


classes = (NNVIZ_PT_network, NNVIZ_PT_live, NNVIZ_PT_inspect, NNVIZ_PT_layers)

register, unregister = bpy.utils.register_classes_factory(classes)

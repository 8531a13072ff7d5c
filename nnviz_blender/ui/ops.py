"""Operators: thin wrappers that call plain functions and turn their errors into reports.

Stable idnames (documented in the README): nnviz.build, nnviz.remove, nnviz.live_start,
nnviz.live_stop, nnviz.clear_canvas, nnviz.load_sample, nnviz.load_image, nnviz.choose_model,
nnviz.inspect, nnviz.trace, nnviz.clear_highlight, nnviz.toggle_layer, nnviz.set_lod.
"""

from __future__ import annotations

import contextlib
import traceback

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .. import live
from ..animation import bake
from ..core import layout as core_layout
from ..core import lod as core_lod
from ..core.errors import NNVizError
from ..core.forward import forward
from ..core.graph import edges_at, incoming, node_values, trace
from ..core.inspect import describe, nearest_node
from ..core.modelfile import load_model
from ..inputs import read_image, sample_digit
from ..scene import highlight, maps, util, viewport, visibility
from ..scene import network as scene_network
from ..scene.handle import Network, NetworkError
from . import canvas_area, state

HIGHLIGHT_WIDTH = 8 / 3  # a highlighted connection's radius over a plain one's (0.004 as shipped)
TRACE_NODES = 1000  # nodes a trace follows per layer, at most (a big network's cone fans out)
NOTHING_DRAWN = "Nothing is drawn: paint a digit on the canvas (or load a sample) first"


def target_network(context) -> str:
    """The network the buttons act on: the chosen one, else the only one in the file."""
    name = context.scene.nnviz.network
    names = scene_network.list_networks()
    if name in names:
        return name
    if len(names) == 1:
        return names[0]
    if not names:
        raise NetworkError("no network in this file: build one first")
    raise NetworkError("several networks in this file: choose one in the NNViz panel")


class _Base(bpy.types.Operator):
    """Runs `run(context)`; a user-facing error becomes an ERROR report and CANCELLED."""

    def run(self, context) -> str | None:
        raise NotImplementedError

    def execute(self, context):
        try:
            message = self.run(context)
        except NNVizError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except Exception as exc:  # a bug of ours: still a report, the traceback in the console
            traceback.print_exc()
            self.report({"ERROR"}, f"NNViz internal error ({type(exc).__name__}: {exc})")
            return {"CANCELLED"}
        if message:
            self.report({"INFO"}, message)
        return {"FINISHED"}


class NNVIZ_OT_build(_Base):
    """Build the chosen model as geometry and frame it in the 3D viewports: a network of the
    same name is replaced in its place, others stay and the new one goes to their right"""

    bl_idname = "nnviz.build"
    bl_label = "Build Network"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        s = context.scene.nnviz
        wm = context.window_manager
        wm.progress_begin(0, 3)
        try:
            model = load_model(s.model_file())
            others = [n for n in scene_network.list_networks() if n != model.name]
            wm.progress_update(1)
            name = scene_network.build_network(
                model,
                model.name,
                layout=s.layout,
                node_shape=None if s.node_shape == "THEME" else s.node_shape,
                edges=s.edge_spec(),
                theme=s.theme,
                spacing=s.spacing,
                scene=context.scene,
            )
            wm.progress_update(2)
            live.stop(name)
            canvas_area.close(name)  # the rebuilt network has a new canvas: Start opens it
            s.network = name
            state.forget(name)
            frame_views(context, name)
        finally:
            wm.progress_end()
        beside = f", to the right of {', '.join(others)}" if others else ""
        return f"Built {name}: {model.parameter_count:,} weights{beside}"


def frame_views(context, name: str) -> int:
    """Frame the network in every 3D viewport of the open windows (the user's objects stay
    where they are); how many were framed."""
    wm = context.window_manager
    screens = [w.screen for w in wm.windows if w.screen is not None] if wm is not None else []
    return sum(viewport.frame(a, name) for s in screens for a in s.areas if a.type == "VIEW_3D")


class NNVIZ_OT_remove(_Base):
    """Remove the network and everything it created"""

    bl_idname = "nnviz.remove"
    bl_label = "Remove Network"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        name = target_network(context)
        live.stop(name)
        canvas_area.close(name)
        state.forget(name)
        scene_network.remove_network(name)
        return f"Removed {name}"


class NNVIZ_OT_live_start(_Base):
    """Open the drawing canvas in an Image Editor beside the 3D viewport and update the network
    whenever it changes"""

    bl_idname = "nnviz.live_start"
    bl_label = "Start Live Drawing"

    def run(self, context):
        name = target_network(context)
        bake.set_enabled(name, False)  # a baked animation would hide the live values
        live.start(name)
        image = live.canvas_image(name).name
        opened = ""
        if not bpy.app.background:
            if not bpy.app.timers.is_registered(live_timer):
                bpy.app.timers.register(live_timer, first_interval=live.TICK_SECONDS)
            opened = canvas_area.open_beside(context, name, image)
            _enter_paint_mode(context, name)
        if not _brush_setup(context, name):
            self.report({"WARNING"}, NO_BRUSH)
        where = "in the Image Editor on the left" if opened else "(Texture Paint mode)"
        return f"Live: paint on the canvas of {name} {where}"


class NNVIZ_OT_live_stop(_Base):
    """Stop updating the network from the canvas and close the Image Editor Start opened"""

    bl_idname = "nnviz.live_stop"
    bl_label = "Stop Live Drawing"

    def run(self, context):
        name = target_network(context)
        live.stop(name)
        canvas_area.close(name)
        return None


class NNVIZ_OT_clear_canvas(_Base):
    """Paint the canvas black (the empty state)"""

    bl_idname = "nnviz.clear_canvas"
    bl_label = "Clear Canvas"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        name = target_network(context)
        live.ensure_canvas(name)
        live.clear_canvas(name)
        live.refresh(name)
        return None


def _show_on_canvas(context, image, what: str) -> str | None:
    """Put an image on the target network's canvas, run the network; the report line."""
    name = target_network(context)
    live.ensure_canvas(name)
    live.paint_image(name, image)
    live.refresh(name)
    top = live.prediction(name)
    return f"{what}: predicted {top[0][0]} ({top[0][1]:.1%})" if top else None


class NNVIZ_OT_load_sample(_Base):
    """Put a real MNIST test digit on the canvas and show the network's response"""

    bl_idname = "nnviz.load_sample"
    bl_label = "Load Sample Digit"
    bl_options = {"REGISTER", "UNDO"}

    digit: IntProperty(name="Digit", default=-1, min=-1, max=9)  # type: ignore[valid-type]

    def run(self, context):
        s = context.scene.nnviz
        digit = s.sample if self.digit < 0 else self.digit
        return _show_on_canvas(context, sample_digit(digit, s.sample_variant), f"Sample {digit}")


class NNVIZ_OT_load_image(ImportHelper, _Base):
    """Put an image file (PNG, JPEG) onto the canvas and show the network's response"""

    bl_idname = "nnviz.load_image"
    bl_label = "Load Image..."
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(  # type: ignore[valid-type]
        default="*.png;*.jpg;*.jpeg", options={"HIDDEN"}
    )

    def run(self, context):
        path = bpy.path.abspath(self.filepath)  # type: ignore[attr-defined]
        return _show_on_canvas(context, read_image(path), "Image")


class NNVIZ_OT_choose_model(ImportHelper, _Base):
    """Choose a model file to build: an ONNX file or an nnviz .npz model"""

    bl_idname = "nnviz.choose_model"
    bl_label = "Choose Model File..."
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(  # type: ignore[valid-type]
        default="*.onnx;*.npz", options={"HIDDEN"}
    )

    def run(self, context):
        s = context.scene.nnviz
        s.model_path = self.filepath  # type: ignore[attr-defined]
        s.model = "FILE"
        return None


def _activations(name: str):
    """(model, graph, activations) of the input currently shown on `name`."""
    model = live.network_model(name)
    x = live.current_input(name)
    if x is None:  # nothing shown yet in this session: take what the canvas holds
        live.ensure_canvas(name)
        acts = live.refresh(name)
        if not acts:
            raise live.LiveError(NOTHING_DRAWN)
    else:
        acts = forward(model, x)
    return model, state.graph(name, model), acts


class NNVIZ_OT_inspect(_Base):
    """Show a node's layer, weighted input, formula and incoming connections"""

    bl_idname = "nnviz.inspect"
    bl_label = "Inspect Node"
    bl_options = {"REGISTER", "UNDO"}

    source: EnumProperty(  # type: ignore[valid-type]
        name="Node",
        items=[
            ("INDEX", "By Layer and Index", "The node chosen in the panel"),
            ("CURSOR", "Nearest to 3D Cursor", "The node closest to the 3D cursor"),
        ],
        default="INDEX",
    )
    highlight: BoolProperty(name="Highlight Inputs", default=True)  # type: ignore[valid-type]

    def run(self, context):
        name = target_network(context)
        s = context.scene.nnviz
        model, graph, acts = _activations(name)
        if self.source == "CURSOR":
            net = Network(name)
            local = net.nodes.matrix_world.inverted() @ context.scene.cursor.location
            node = nearest_node(net.positions(), tuple(local))
            stage_index = int(graph.node_stage[node])
            s.inspect_stage = stage_index
            s.inspect_index = node - graph.stages[stage_index].start
        node = _chosen_node(graph, s)
        info = describe(model, graph, acts, node)
        state.set_info(name, info)
        if self.highlight:
            edges = incoming(graph, node)
            values = node_values(graph, acts)
            _highlight(name, graph, edges, values)
        return f"{info.stage}[{info.index}]: {info.formula}"


class NNVIZ_OT_trace(_Base):
    """Highlight the strongest paths from the chosen node down to the input pixels"""

    bl_idname = "nnviz.trace"
    bl_label = "Trace to Input"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        name = target_network(context)
        s = context.scene.nnviz
        model, graph, acts = _activations(name)
        node = _chosen_node(graph, s)
        values = node_values(graph, acts)
        nodes, edges = trace(graph, values, node, s.trace_k, max_per_stage=TRACE_NODES)
        _highlight(name, graph, edges, values)
        return f"Traced {len(edges)} connections through {len(nodes)} nodes"


class NNVIZ_OT_clear_highlight(_Base):
    """Remove highlighted connections"""

    bl_idname = "nnviz.clear_highlight"
    bl_label = "Clear Highlight"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        highlight.clear(target_network(context))
        return None


class NNVIZ_OT_toggle_layer(_Base):
    """Show or hide one layer: its nodes, the connections into and out of it, its label"""

    bl_idname = "nnviz.toggle_layer"
    bl_label = "Toggle Layer"
    bl_options = {"REGISTER", "UNDO"}

    stage: IntProperty(name="Layer", default=0, min=0)  # type: ignore[valid-type]

    def run(self, context):
        name = target_network(context)
        hidden = set(visibility.hidden_stages(name)) ^ {self.stage}
        visibility.set_hidden_stages(name, hidden)
        return None


LOD_HINTS = {
    "neurons": "Draw this layer as one cube (sphere, tile) per neuron",
    "maps": "Draw this layer as pictures: one grid surface per feature map, a texel per neuron",
    "slab": "Draw this layer as one block per channel showing the channel's mean",
}
LOD_ITEMS = [(k, k.capitalize(), LOD_HINTS[k]) for k in core_lod.LODS]


class NNVIZ_OT_set_lod(_Base):
    """Change how one layer is drawn (its level of detail)"""

    bl_idname = "nnviz.set_lod"
    bl_label = "Layer Level of Detail"
    bl_options = {"REGISTER", "UNDO"}

    stage: IntProperty(name="Layer", default=0, min=0)  # type: ignore[valid-type]
    lod: EnumProperty(  # type: ignore[valid-type]
        name="Level of Detail",
        items=LOD_ITEMS,
    )

    @classmethod
    def description(cls, context, properties):
        return LOD_HINTS.get(properties.lod, cls.__doc__)

    def run(self, context):
        name = target_network(context)
        lods = Network(name).stage_lods()
        if self.stage >= len(lods):
            raise NetworkError(f"layer {self.stage} does not exist (0-{len(lods) - 1})")
        lods[self.stage] = self.lod
        maps.set_lods(name, lods)
        return None


def _chosen_node(graph, s) -> int:
    if s.inspect_stage >= len(graph.stages):
        raise NetworkError(f"layer {s.inspect_stage} does not exist (0-{len(graph.stages) - 1})")
    stage = graph.stages[s.inspect_stage]
    if s.inspect_index >= stage.size:
        raise NetworkError(f"{stage.name} has {stage.size} nodes (index 0-{stage.size - 1})")
    return stage.start + s.inspect_index


def _highlight(name: str, graph, edges: np.ndarray, values: np.ndarray) -> None:
    """Draw `edges` (indices) at full detail, glowing with their contributions; a large
    network's are computed here (edges_at), never stored."""
    e = edges_at(graph, edges)
    contribution = e.weight * values[e.src]
    top = float(np.abs(contribution).max()) if len(e) else 1.0
    radius = HIGHLIGHT_WIDTH * core_layout.edge_radius(Network(name).positions())
    highlight.show(name, e.src, e.dst, contribution / (top or 1.0), radius=radius)


def _enter_paint_mode(context, name: str) -> None:
    """Make the canvas the active object and switch to Texture Paint: ready to draw.

    The 3D viewports show the network as renders do (scene.viewport).
    """
    window = getattr(context, "window", None)
    screen = window.screen if window is not None else None  # the split may have changed it
    viewport.show_like_render(name, context.scene, screen)
    canvas = util.find("objects", name, "canvas")
    if canvas is None or context.view_layer is None:
        return
    view = canvas_area.pick_view3d(screen.areas) if screen is not None else None
    override = (
        context.temp_override(window=window, screen=screen, area=view)
        if view is not None
        else contextlib.nullcontext()
    )
    with override:
        active = context.view_layer.objects.active
        if active is not None and active.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        for obj in context.view_layer.objects.selected:
            obj.select_set(False)
        canvas.select_set(True)
        context.view_layer.objects.active = canvas
        with contextlib.suppress(RuntimeError):  # no 3D viewport: the user switches by hand
            bpy.ops.object.mode_set(mode="TEXTURE_PAINT")


NO_BRUSH = (
    "No paint brush: this Blender has no brush assets (some Linux distribution builds lack "
    "them), so strokes paint nothing. Use a Blender from blender.org, or Load a sample digit"
)
ESSENTIAL_BRUSH = "brushes/essentials_brushes-mesh_texture.blend/Brush/Paint Hard"


def paint_brush(context):
    """The brush Texture Paint and the Image Editor paint with, or None (nothing would paint)."""
    return context.scene.tool_settings.image_paint.brush


def _brush_setup(context, name: str) -> bool:
    """White ink, black eraser colour (X swaps), a radius that suits the canvas; False when
    there is no brush to paint with (Blender 4.3+ takes brushes from its essentials asset
    library, which some builds do not ship; one activation is tried first)."""
    if paint_brush(context) is None and not bpy.app.background:
        activate = getattr(bpy.ops.brush, "asset_activate", None)
        area = canvas_area.showing(context.screen.areas, live.canvas_image(name).name)
        if activate is not None and area is not None:
            with (
                contextlib.suppress(RuntimeError),
                context.temp_override(area=area, region=canvas_area.window_region(area)),
            ):
                activate(asset_library_type="ESSENTIALS", relative_asset_identifier=ESSENTIAL_BRUSH)
    paint = context.scene.tool_settings.image_paint
    settings = getattr(paint, "unified_paint_settings", None) or getattr(
        context.scene.tool_settings, "unified_paint_settings", None
    )
    if settings is not None:
        settings.use_unified_color = True
        settings.color = (1.0, 1.0, 1.0)
        settings.secondary_color = (0.0, 0.0, 0.0)
        settings.use_unified_size = True
        settings.size = live.BRUSH_RADIUS
    return paint_brush(context) is not None


def live_takes_over(names: list[str]) -> list[str]:
    """A stroke on a network whose bake plays in the viewport: live drawing takes the viewport
    over (Play Bake in Viewport off; renders keep the bake). Messages for the user."""
    return [
        f"Live drawing took over the viewport of {name!r} (Play Bake in Viewport is off)"
        for name in names
        if bake.stop_playing_in_viewport(name)
    ]


def live_timer() -> float | None:
    """The registered timer (only outside background mode): live.tick plus its reports."""
    interval = live.tick()
    for message in [*live_takes_over(live.take_updated()), *live.take_messages()]:
        bpy.ops.nnviz.report("INVOKE_DEFAULT", message=message)  # type: ignore[attr-defined]
    return interval


class NNVIZ_OT_report(bpy.types.Operator):
    """Show a message in the report area (used by the live timer, which cannot report itself)"""

    bl_idname = "nnviz.report"
    bl_label = "NNViz Message"
    bl_options = {"INTERNAL"}

    message: bpy.props.StringProperty()  # type: ignore[valid-type]

    def execute(self, context):
        self.report({"WARNING"}, self.message)
        return {"FINISHED"}


classes = (
    NNVIZ_OT_build,
    NNVIZ_OT_remove,
    NNVIZ_OT_live_start,
    NNVIZ_OT_live_stop,
    NNVIZ_OT_clear_canvas,
    NNVIZ_OT_load_sample,
    NNVIZ_OT_load_image,
    NNVIZ_OT_choose_model,
    NNVIZ_OT_inspect,
    NNVIZ_OT_trace,
    NNVIZ_OT_clear_highlight,
    NNVIZ_OT_toggle_layer,
    NNVIZ_OT_set_lod,
    NNVIZ_OT_report,
)

register, unregister = bpy.utils.register_classes_factory(classes)

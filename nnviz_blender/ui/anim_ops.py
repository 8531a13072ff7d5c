"""Animation operators: record the canvas, bake sequences, figure elements, render animations.

Stable idnames: nnviz.record_start, nnviz.record_stop, nnviz.bake_sequence, nnviz.remove_bake,
nnviz.figure, nnviz.render_animation. Settings live in `scene.nnviz_anim`.
Like ui/ops.py, operators are thin: the work is in nnviz_blender.animation.
"""

from __future__ import annotations

import os

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    PointerProperty,
    StringProperty,
)

from .. import live
from ..animation import bake as anim_bake
from ..animation import camera as anim_camera
from ..animation import output, record, sequence
from ..animation import schedule as anim_schedule
from ..scene import legend, network, studio, util
from ..scene.handle import Network
from . import ops, state
from .ops import _Base, target_network

SOURCES = [
    ("RECORDING", "Recording", "The drawing recorded from the canvas, at the speed it was drawn"),
    ("INPUTS", "Inputs", "A list of inputs (sample:<digit>, .npy, .png), each held for a while"),
]
MOVES = [
    ("fixed", "Fixed", "The camera does not move"),
    ("orbit", "Orbit", "A full turn around the network (a swing for flat layouts)"),
    ("dolly", "Dolly", "A slow move towards the network"),
]


class NNVizAnimSettings(bpy.types.PropertyGroup):
    source: EnumProperty(name="Source", items=SOURCES, default="RECORDING")  # type: ignore[valid-type]
    inputs: StringProperty(  # type: ignore[valid-type]
        name="Inputs",
        default="sample:0,sample:1,sample:2,sample:3",
        description="Comma-separated inputs: sample:<digit>[:<n>], .npy images or stacks, .png",
    )
    hold: FloatProperty(  # type: ignore[valid-type]
        name="Hold",
        default=1.5,
        min=0.0,
        soft_max=10.0,
        unit="TIME_ABSOLUTE",
        description="Seconds each input is shown",
    )
    transition: FloatProperty(  # type: ignore[valid-type]
        name="Transition",
        default=0.75,
        min=0.0,
        soft_max=5.0,
        unit="TIME_ABSOLUTE",
        description="Seconds of smooth change between consecutive inputs",
    )
    draw: FloatProperty(  # type: ignore[valid-type]
        name="Draw",
        default=0.0,
        min=0.0,
        soft_max=10.0,
        unit="TIME_ABSOLUTE",
        description="Draw each digit stroke by stroke in this many seconds first (0: off)",
    )
    wave: BoolProperty(  # type: ignore[valid-type]
        name="Propagation Wave",
        default=False,
        description="Changes travel from the input to the output, layer after layer",
    )
    camera: EnumProperty(name="Camera", items=MOVES, default="fixed")  # type: ignore[valid-type]
    rate: FloatProperty(  # type: ignore[valid-type]
        name="Captures/s",
        default=record.DEFAULT_RATE,
        min=1.0,
        max=60.0,
        description="How often the canvas is captured while recording",
    )
    speed: FloatProperty(  # type: ignore[valid-type]
        name="Speed",
        default=1.0,
        min=0.05,
        soft_max=8.0,
        description="Playback speed of a recording (2 = twice as fast as it was drawn)",
    )
    max_pause: FloatProperty(  # type: ignore[valid-type]
        name="Max Pause",
        default=anim_schedule.MAX_PAUSE,
        min=0.05,
        soft_max=10.0,
        unit="TIME_ABSOLUTE",
        description="Pauses in a recording longer than this are cut to it (the idle time before "
        "the first stroke and after the last is trimmed)",
    )
    end_hold: FloatProperty(  # type: ignore[valid-type]
        name="End Hold",
        default=1.5,
        min=0.0,
        soft_max=10.0,
        unit="TIME_ABSOLUTE",
        description="Seconds the finished drawing stays at the end",
    )
    output: StringProperty(  # type: ignore[valid-type]
        name="Output",
        subtype="FILE_PATH",
        default="//nnviz_frames/",
        description="A folder (PNG frames) or a .mp4/.mkv/.webm/.mov file",
    )
    legend: BoolProperty(name="Legend and Sizes", default=True)  # type: ignore[valid-type]
    bars: BoolProperty(name="Probability Bars", default=True)  # type: ignore[valid-type]


def _settings(context) -> NNVizAnimSettings:
    return context.scene.nnviz_anim


def record_timer() -> float | None:
    """The registered timer while recording (never in background mode)."""
    interval = record.tick()
    for message in record.take_messages():
        bpy.ops.nnviz.report("INVOKE_DEFAULT", message=message)  # type: ignore[attr-defined]
    return interval


class NNVIZ_OT_record_start(_Base):
    """Record the canvas while you draw (starts live drawing if needed)"""

    bl_idname = "nnviz.record_start"
    bl_label = "Record"

    def run(self, context):
        name = target_network(context)
        if not live.is_live(name):
            live.start(name)
            if not bpy.app.background and not bpy.app.timers.is_registered(ops.live_timer):
                bpy.app.timers.register(ops.live_timer, first_interval=live.TICK_SECONDS)
        rec = record.start(name, _settings(context).rate)
        if not bpy.app.background and not bpy.app.timers.is_registered(record_timer):
            bpy.app.timers.register(record_timer, first_interval=1.0 / rec.rate)
        return f"Recording {name}: draw on the canvas, then Stop"


class NNVIZ_OT_record_stop(_Base):
    """Stop recording; the recording is kept in the file, ready to bake"""

    bl_idname = "nnviz.record_stop"
    bl_label = "Stop Recording"

    def run(self, context):
        name = target_network(context)
        rec = record.stop(name)
        if rec is None:
            raise record.RecordError(f"{name} is not recording")
        return f"Recorded {rec.count} drawing states over {rec.duration:.1f}s"


def _ensure_camera(name: str, scene) -> None:
    if util.find("objects", name, "camera") is not None:
        return
    net = Network(name)
    coll, layout = net.collection, net.layout
    aspect = scene.render.resolution_x / scene.render.resolution_y
    cam = studio.camera(name, coll, anim_camera.framing_points(name), "front", layout, aspect)
    scene.camera = bpy.data.objects[cam]


def bake_inputs(name: str, spec: str, s: NNVizAnimSettings, scene) -> anim_bake.BakeInfo:
    """Bake a list of inputs (the panel's Inputs field) on the network `name`."""
    model = live.network_model(name)
    fps = scene.render.fps / scene.render.fps_base
    xs, sched = sequence.key_states(
        model, sequence.parse_inputs(spec), s.draw, fps, s.hold, s.transition
    )
    graph = state.graph(name, model)
    values, glow = network.key_values_and_glow(name, model, graph, xs)
    wave = 0.7 if s.wave else 0.0
    info = anim_bake.bake(name, graph, values, sched, wave=wave, scene=scene, bundle_glow=glow)
    anim_bake.set_enabled(name, True)
    return info


class NNVIZ_OT_bake_sequence(_Base):
    """Bake the recording or the list of inputs into the file as an animation (renders anywhere,
    even without this add-on)"""

    bl_idname = "nnviz.bake_sequence"
    bl_label = "Bake Animation"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        name = target_network(context)
        s = _settings(context)
        scene = context.scene
        wm = context.window_manager
        wm.progress_begin(0, 3)
        try:
            if record.is_recording(name):
                record.stop(name)
            if s.source == "RECORDING":
                info = record.bake_recording(
                    name,
                    speed=s.speed,
                    end_hold=s.end_hold,
                    max_pause=s.max_pause,
                    wave=0.7 if s.wave else 0.0,
                    scene=scene,
                )
            else:
                info = bake_inputs(name, s.inputs, s, scene)
            wm.progress_update(2)
            if s.camera != "fixed":
                _ensure_camera(name, scene)
            if util.find("objects", name, "camera") is not None:
                anim_camera.animate(name, s.camera, info.frame_start, info.frame_end, scene=scene)
            scene.frame_set(info.frame_start)
        finally:
            wm.progress_end()
        size = f"({info.table_bytes / 1e6:.1f} MB)"
        if s.source == "RECORDING":
            rec = record.recording(name)
            drawn = rec.duration if rec is not None else 0.0
            baked = (
                (info.frame_end - info.frame_start + 1) * scene.render.fps_base / scene.render.fps
            )
            size = (
                f"{size}: {drawn:.1f} s drawn -> {baked:.1f} s, idle time trimmed, pauses cut to "
                f"{s.max_pause:.1f} s"
            )
        return f"Baked {info.keys} states on frames {info.frame_start}-{info.frame_end} {size}"


class NNVIZ_OT_remove_bake(_Base):
    """Remove the baked animation (the nodes show live values again)"""

    bl_idname = "nnviz.remove_bake"
    bl_label = "Remove Bake"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        name = target_network(context)
        anim_bake.remove(name)
        anim_camera.clear(name)
        return None


class NNVIZ_OT_figure(_Base):
    """Add (or remove) the colour legend, layer sizes and probability bars"""

    bl_idname = "nnviz.figure"
    bl_label = "Figure Elements"
    bl_options = {"REGISTER", "UNDO"}

    remove: BoolProperty(name="Remove", default=False)  # type: ignore[valid-type]

    def run(self, context):
        name = target_network(context)
        if self.remove:
            legend.remove(name)
            return None
        s = _settings(context)
        made = legend.add(name, sizes=s.legend, bars=s.bars, legend=s.legend)
        return f"Added {len(made)} figure objects"


def configure_output(scene, path: str) -> str:
    """Point the scene's output at a folder (PNG frames) or a video file; returns the path."""
    out = bpy.path.abspath(path or "//nnviz_frames/")
    if out.endswith(("/", "\\")):
        out = out.rstrip("/\\")
    kind = output.output_kind(out, passes=False)
    output.configure(scene, out, kind, scene.render.film_transparent)
    return out


class NNVIZ_OT_render_animation(_Base):
    """Render the baked animation to the output folder or video file"""

    bl_idname = "nnviz.render_animation"
    bl_label = "Render Animation"

    def run(self, context):
        name = target_network(context)
        scene = context.scene
        if anim_bake.info(name) is None:
            raise anim_bake.BakeError(f"{name} has no baked animation: bake one first")
        if scene.camera is None:
            _ensure_camera(name, scene)
        out = configure_output(scene, _settings(context).output)
        if not bpy.app.background:
            # Blender's own render job: progress bar, cancel with Esc, image editor preview
            bpy.ops.render.render("INVOKE_DEFAULT", animation=True)
            return f"Rendering frames {scene.frame_start}-{scene.frame_end} to {out}"
        wm = context.window_manager
        total = scene.frame_end - scene.frame_start + 1
        done = [0]

        def on_write(*_):
            done[0] += 1
            wm.progress_update(done[0])

        wm.progress_begin(0, total)
        bpy.app.handlers.render_write.append(on_write)
        try:
            bpy.ops.render.render(animation=True)
        finally:
            bpy.app.handlers.render_write.remove(on_write)
            wm.progress_end()
        if not (os.path.isdir(out) or os.path.isfile(out)):
            raise output.OutputError(f"the render wrote nothing to {out}")
        return f"Rendered {done[0]} frames to {out}"


classes = (
    NNVizAnimSettings,
    NNVIZ_OT_record_start,
    NNVIZ_OT_record_stop,
    NNVIZ_OT_bake_sequence,
    NNVIZ_OT_remove_bake,
    NNVIZ_OT_figure,
    NNVIZ_OT_render_animation,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.nnviz_anim = PointerProperty(type=NNVizAnimSettings)  # type: ignore[attr-defined]


def unregister() -> None:
    record.stop_all()
    if bpy.app.timers.is_registered(record_timer):
        bpy.app.timers.unregister(record_timer)
    del bpy.types.Scene.nnviz_anim  # type: ignore[attr-defined]
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)

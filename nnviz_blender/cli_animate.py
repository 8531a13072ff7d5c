"""`python -m nnviz_blender animate`: a network at work as an animation, baked, rendered headless.

    python -m nnviz_blender animate --model cnn --inputs sample:0,sample:1,sample:2 \\
        --out frames/ --hold 1 --wave --camera orbit

Every input (comma-separated: sample:<digit>[:<n>], .npy images or stacks, .png) becomes a key
state, held for --hold seconds with smooth --transition seconds between; --draw SECONDS first
draws each digit stroke by stroke. The node values of every state are baked into the scene
(see animation/bake.py), so the .blend saved with --save-blend renders the same frames in
Blender (this version or newer) without the add-on (`blender -b file.blend -a`, a render farm).
--frames A-B renders a part, so several machines can share one animation.
--out DIR writes PNG frames DIR/frame_0001.png ...; --out FILE.mp4 (.mkv, .webm, .mov) a video
through Blender's own FFmpeg.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .cli_render import _positive_int, add_scene_options

VIDEO = {".mp4": "MPEG4", ".mkv": "MKV", ".webm": "WEBM", ".mov": "QUICKTIME"}
CODECS = {"MPEG4": "H264", "MKV": "H264", "QUICKTIME": "H264", "WEBM": "WEBM"}


class AnimateError(ValueError):
    """A bad request; the message is one line for the user."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.0 <= value <= 3600.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds: {value}")
    return value


def _fps(text: str) -> int:
    value = _positive_int(text)
    if value > 240:
        raise argparse.ArgumentTypeError(f"fps must be at most 240: {value}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "animate",
        help="bake and render an animation of the network (needs bpy)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--inputs", required=True, help="comma-separated inputs: sample:<d>, .npy, .png")
    p.add_argument(
        "--out", required=True, help="a directory (PNG frames) or a .mp4/.mkv/.webm/.mov"
    )
    p.add_argument("--fps", type=_fps, default=24)
    p.add_argument("--hold", type=_seconds, default=1.5, help="seconds each input is shown")
    p.add_argument("--transition", type=_seconds, default=0.75, help="seconds between inputs")
    p.add_argument(
        "--draw",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="draw each digit stroke by stroke in this many seconds before holding it",
    )
    p.add_argument("--wave", action="store_true", help="transitions travel from input to output")
    p.add_argument("--camera", choices=("fixed", "orbit", "dolly"), default="fixed")
    p.add_argument("--view", choices=("front", "iso", "top"), default="front")
    add_scene_options(p, samples=16, resolution=(1280, 720))
    p.add_argument("--frames", default=None, metavar="A-B", help="render only frames A to B")
    p.add_argument("--no-render", action="store_true", help="bake (and save) only")
    p.add_argument("--legend", action="store_true", help="colour legend, layer sizes")
    p.add_argument("--bars", action="store_true", help="probability bars beside the output")
    p.add_argument(
        "--passes",
        action="store_true",
        help="nodes, edges and labels as separate view layers in multilayer EXR frames",
    )
    p.set_defaults(run=run)
    return p


class _Progress:
    def __init__(self, quiet: bool):
        self.quiet, self.t0 = quiet, time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {message}", flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class FrameClock:
    """Progress of an animation render: frames done, seconds per frame, estimate of time left."""

    def __init__(self, first: int, last: int, say):
        self.first, self.last, self.say = first, last, say
        self.total = last - first + 1
        self.done = 0
        self.t0 = self.t_last = time.perf_counter()

    def frame_done(self, frame: int) -> str:
        now = time.perf_counter()
        self.done += 1
        took = now - self.t_last
        self.t_last = now
        per = (now - self.t0) / self.done
        left = per * (self.total - self.done)
        text = (
            f"frame {frame} done ({self.done}/{self.total}, {took:.1f}s; "
            f"about {_duration(left)} left)"
        )
        self.say(text)
        return text


def run(args: argparse.Namespace) -> int:
    try:
        import bpy  # noqa: F401
    except ImportError:
        print(
            "error: animating needs Blender's Python module: pip install bpy "
            "(or run inside Blender)",
            file=sys.stderr,
        )
        return 2
    from .animation.bake import BakeError
    from .animation.camera import CameraError
    from .animation.schedule import ScheduleError
    from .core.modelfile import ModelError
    from .core.preprocess import InputError
    from .scene.network import NetworkError

    errors = (
        AnimateError,
        ModelError,
        InputError,
        NetworkError,
        ScheduleError,
        BakeError,
        CameraError,
    )
    try:
        return _run(args)
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parse_inputs(spec: str) -> list:
    """'sample:0,sample:1,x.npy' -> [(name, canvas image)] (a stack gives several)."""
    from .inputs import load_inputs

    parts = [p.strip() for p in str(spec).split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise AnimateError(
            f"bad --inputs {spec!r}: give comma-separated inputs, e.g. sample:3,x.npy"
        )
    out: list = []
    for part in parts:
        out += load_inputs(part)
    return out


def output_kind(out: str, passes: bool) -> str:
    """'video' (a movie file), 'frames' (a directory) or AnimateError."""
    ext = os.path.splitext(out)[1].lower()
    if ext in VIDEO:
        if passes:
            raise AnimateError("--passes writes EXR frames: give a directory as --out")
        return "video"
    if ext and not os.path.isdir(out):
        raise AnimateError(
            f"--out {out!r}: give a directory for frames or a {', '.join(VIDEO)} file"
        )
    if os.path.isfile(out):
        raise AnimateError(f"--out {out!r} is a file, not a directory")
    return "frames"


def key_states(model, images, draw_seconds: float, fps: int, hold: float, transition: float):
    """Network inputs of every key state and the schedule that shows them."""
    import numpy as np

    from .animation import schedule, strokes
    from .core.preprocess import prepare

    xs, holds, gaps = [], [], []
    for i, (_name, image) in enumerate(images):
        if draw_seconds > 0:
            n = max(2, int(round(draw_seconds * fps / 2)))  # a new stroke every other frame
            step = draw_seconds / n
            for j, canvas in enumerate(strokes.reveal(image, n)):
                xs.append(prepare(model, canvas))
                last = j == n - 1
                holds.append(hold if last else step / 2)
                gaps.append(transition if last else step / 2)
        else:
            xs.append(prepare(model, image))
            holds.append(hold)
            gaps.append(transition)
        if i == len(images) - 1:
            gaps.pop()
    sched = schedule.steps(holds, gaps, fps=fps, start=1)
    return np.stack(xs).astype(np.float32), sched


def _run(args) -> int:
    import bpy

    from .animation import bake, camera, passes, schedule
    from .core.graph import build_graph
    from .core.modelfile import load_model
    from .core.values import key_values
    from .paths import shipped_model
    from .scene import legend, materials, network, stage, util

    say = _Progress(args.quiet)
    out = os.path.abspath(args.out)
    kind = output_kind(out, args.passes)
    if args.frames is not None:
        schedule.parse_frames(args.frames)  # syntax now, range once the schedule is known
    mode = network.parse_edges(args.edges)

    say(f"loading model {args.model} and inputs {args.inputs}")
    model = load_model(shipped_model(args.model))
    images = parse_inputs(args.inputs)
    xs, sched = key_states(model, images, args.draw, args.fps, args.hold, args.transition)
    first, last = sched.frame_start, sched.frame_end
    if args.frames is not None:
        first, last = schedule.parse_frames(args.frames, (sched.frame_start, sched.frame_end))
    graph = build_graph(model)
    t = time.perf_counter()
    values = key_values(model, graph, xs)
    probs = values[:, graph.stages[-1].start :]
    seen = ", ".join(
        f"{name}: {model.labels[int(probs[k].argmax())]}"
        for k, (name, _img) in zip(_last_of_each(len(images), len(xs)), images, strict=True)
    )
    say(
        f"{len(xs)} key states, {sched.frame_count} frames at {args.fps} fps "
        f"({sched.frame_count / args.fps:.1f}s); predictions {seen}"
    )

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    name = network.build_network(
        model, model.name, layout=args.layout, edges=mode, theme=args.theme, scene=scene
    )
    network.apply_values(name, values[-1])
    edges_obj = util.find("objects", name, "edges")
    if edges_obj is not None:
        fade = max(args.edge_fade, mode.threshold)
        util.set_modifier_input(edges_obj.modifiers[0], "Threshold", fade)
        materials.set_edge_look(util.find("materials", name, "edges_material"), fade=fade)
    if args.legend or args.bars:
        legend.add(name, sizes=args.legend, bars=args.bars, legend=args.legend)
    say(
        f"built {name}: {graph.node_count:,} nodes, "
        f"{len(edges_obj.data.curves) if edges_obj else 0:,} edges ({time.perf_counter() - t:.1f}s)"
    )

    info = bake.bake(name, graph, values, sched, wave=0.7 if args.wave else 0.0, scene=scene)
    say(f"baked {info.keys} key states ({info.table_bytes / 1e6:.1f} MB) in {info.seconds:.2f}s")
    stage.setup(
        name,
        scene,
        camera_preset=args.view,
        layout=args.layout,
        theme=args.theme,
        engine=args.engine,
        samples=args.samples,
        resolution=args.resolution,
        transparent=args.transparent,
        layered=not args.passes,
    )
    camera.animate(
        name, args.camera, sched.frame_start, sched.frame_end, view=args.view, scene=scene
    )
    scene.render.fps = args.fps
    if args.passes:
        passes.split_layers(name, scene)
    _output(scene, out, kind, args.transparent)

    if args.save_blend:
        blend = os.path.abspath(args.save_blend)
        os.makedirs(os.path.dirname(blend) or ".", exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=blend, check_existing=False)
        say(
            f"saved {blend} (frames {sched.frame_start}-{sched.frame_end}; renders without "
            "the add-on: blender -b FILE -a)"
        )
    if args.no_render:
        return 0

    scene.frame_start, scene.frame_end = first, last
    w, h = args.resolution
    say(
        f"rendering frames {first}-{last} at {w}x{h}, {args.engine} {args.samples} samples -> {out}"
    )
    clock = FrameClock(first, last, say)

    def on_write(sc, *_):
        clock.frame_done(sc.frame_current)

    bpy.app.handlers.render_write.append(on_write)
    try:
        bpy.ops.render.render(animation=True)
    finally:
        bpy.app.handlers.render_write.remove(on_write)
    missing = _missing_output(out, kind, first, last, scene)
    if missing:
        print(f"error: the render did not write {missing}", file=sys.stderr)
        return 1
    say(f"done: {clock.done} frames in {_duration(time.perf_counter() - clock.t0)}")
    return 0


def _last_of_each(n_images: int, n_states: int) -> list[int]:
    """Index of the finished state of each input (with --draw an input has several states)."""
    per = n_states // n_images
    return [(i + 1) * per - 1 for i in range(n_images)]


def _output(scene, out: str, kind: str, transparent: bool) -> None:
    settings = scene.render.image_settings
    if kind == "video":
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        if hasattr(settings, "media_type"):  # 5.0
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        fmt = VIDEO[os.path.splitext(out)[1].lower()]
        scene.render.ffmpeg.format = fmt
        scene.render.ffmpeg.codec = CODECS[fmt]
        scene.render.ffmpeg.constant_rate_factor = "MEDIUM"
        scene.render.ffmpeg.gopsize = max(1, scene.render.fps)
        scene.render.filepath = out
        scene.render.use_file_extension = False
        return
    os.makedirs(out, exist_ok=True)
    if settings.file_format != "OPEN_EXR_MULTILAYER":
        if hasattr(settings, "media_type"):
            settings.media_type = "IMAGE"
        settings.file_format = "PNG"
        settings.color_mode = "RGBA" if transparent else "RGB"
    scene.render.filepath = os.path.join(out, "frame_")
    scene.render.use_file_extension = True


def _missing_output(out: str, kind: str, first: int, last: int, scene) -> str | None:
    if kind == "video":
        return None if os.path.isfile(out) and os.path.getsize(out) > 0 else out
    for f in (first, last):
        path = scene.render.frame_path(frame=f)
        if not os.path.isfile(path):
            return path
    return None

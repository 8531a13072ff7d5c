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

import numpy as np

from .options import (
    add_scene_options,
    build_scene,
    need_bpy,
    positive_int,
    save_blend,
    setup_studio,
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.0 <= value <= 3600.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds: {value}")
    return value


def _fps(text: str) -> int:
    value = positive_int(text)
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
    need_bpy("animating")
    import bpy

    from ..animation import bake, camera, output, passes, schedule, sequence
    from ..core.graph import build_graph
    from ..core.modelfile import load_model
    from ..paths import shipped_model
    from ..scene import legend, network
    from ..scene.handle import Network

    say = _Progress(args.quiet)
    out = os.path.abspath(args.out)
    kind = output.output_kind(out, args.passes)
    if args.frames is not None:
        schedule.parse_frames(args.frames)  # syntax now, range once the schedule is known
    network.parse_edges(args.edges)  # a bad edge mode fails before any work

    say(f"loading model {args.model} and inputs {args.inputs}")
    model = load_model(shipped_model(args.model))
    images = sequence.parse_inputs(args.inputs)
    xs, sched = sequence.key_states(model, images, args.draw, args.fps, args.hold, args.transition)
    first, last = sched.frame_start, sched.frame_end
    if args.frames is not None:
        first, last = schedule.parse_frames(args.frames, (sched.frame_start, sched.frame_end))
    graph = build_graph(model)
    t = time.perf_counter()
    name = build_scene(model, args, np.zeros(graph.node_count, np.float32))
    values, glow = network.key_values_and_glow(name, model, graph, xs)  # one forward pass per key
    network.apply_values(name, values[-1], None if glow is None else glow[-1])
    probs = values[:, graph.stages[-1].start :]
    finished = sequence.last_of_each(len(images), len(xs))
    seen = ", ".join(
        f"{name}: {model.labels[int(probs[k].argmax())]}"
        for k, (name, _img) in zip(finished, images, strict=True)
    )
    say(
        f"{len(xs)} key states, {sched.frame_count} frames at {args.fps} fps "
        f"({sched.frame_count / args.fps:.1f}s); predictions {seen}"
    )

    scene = bpy.context.scene
    edges_obj = Network(name).edges
    if args.legend or args.bars:
        legend.add(name, sizes=args.legend, bars=args.bars, legend=args.legend)
    say(
        f"built {name}: {graph.node_count:,} nodes, "
        f"{len(edges_obj.data.curves) if edges_obj else 0:,} edges ({time.perf_counter() - t:.1f}s)"
    )

    wave = 0.7 if args.wave else 0.0
    info = bake.bake(name, graph, values, sched, wave=wave, scene=scene, bundle_glow=glow)
    say(f"baked {info.keys} key states ({info.table_bytes / 1e6:.1f} MB) in {info.seconds:.2f}s")
    setup_studio(name, args, args.view, layered=not args.passes)
    camera.animate(
        name, args.camera, sched.frame_start, sched.frame_end, view=args.view, scene=scene
    )
    scene.render.fps = args.fps
    if args.passes:
        passes.split_layers(name, scene)
    output.configure(scene, out, kind, args.transparent)

    if args.save_blend:
        blend = save_blend(args.save_blend)
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
    missing = output.missing(out, kind, first, last, scene)
    if missing:
        print(f"error: the render did not write {missing}", file=sys.stderr)
        return 1
    say(f"done: {clock.done} frames in {_duration(time.perf_counter() - clock.t0)}")
    return 0

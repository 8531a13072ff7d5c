"""`python -m nnviz_blender render`: a figure of a network thinking about one input, headless.

    python -m nnviz_blender render --model cnn --input sample:7 --layout 3d --out fig.png

loads the model, runs it on the input, builds the network as geometry, sets up the stage and
renders with the bpy wheel; `--save-blend` also leaves a .blend that opens in Blender with the
scene intact (no add-on needed to render it again).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .options import (
    UsageError,
    add_input_options,
    add_scene_options,
    build_scene,
    need_bpy,
    network_inputs,
    save_blend,
    setup_studio,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "render",
        help="render a figure of the network (needs bpy)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_options(p, "sample:<digit>, a .npy image, a .png or .jpg")
    p.add_argument("--out", required=True, help="image to write (.png)")
    p.add_argument("--camera", choices=("front", "iso", "top"), default="front")
    add_scene_options(p, samples=64, resolution=(1920, 1080))
    p.add_argument("--node-shape", choices=("theme", "cube", "sphere", "tile"), default="theme")
    p.add_argument(
        "--colormap",
        choices=("original", "viridis", "magma", "diverging"),
        default=None,
        help="node colours (default: the theme's)",
    )
    p.add_argument("--spacing", type=float, default=1.0, help="scale the gaps between layers")
    p.add_argument("--edge-strength", type=float, default=None, help="edge brightness factor")
    p.set_defaults(run=run)
    return p


class _Progress:
    def __init__(self, quiet: bool, steps: int):
        self.quiet, self.steps, self.step, self.t0 = quiet, steps, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.step += 1
        if not self.quiet:
            elapsed = time.perf_counter() - self.t0
            print(f"[{self.step}/{self.steps} {elapsed:6.1f}s] {message}", flush=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(f"          {message}", flush=True)


def _render_stats_printer(progress: _Progress, layers: list[str]):
    """A render_stats handler: which view layer, which sample, time so far (about 1 line/s)."""
    layer = -1  # index of the view layer being rendered
    shown = 0.0  # when the last line was printed
    t0 = time.perf_counter()

    def handler(stats, *_):
        nonlocal layer, shown
        text = str(stats).split("|")[-1].strip()
        now = time.perf_counter()
        if text.startswith("Sample 0/"):
            layer += 1
        elif not (text.startswith("Sample") or text == "Finished" or text == "Compositing"):
            return
        if text.startswith("Sample") and now - shown < 1.0 and not text.startswith("Sample 0/"):
            return
        shown = now
        k = max(layer, 0)
        where = f"view layer {k + 1}/{len(layers)} ({layers[min(k, len(layers) - 1)]})"
        if text == "Compositing":
            where = "compositor"
        progress.note(f"{now - t0:6.1f}s  {where}: {text.lower()}")

    return handler


def run(args: argparse.Namespace) -> int:
    need_bpy("rendering")
    import bpy

    from ..core.forward import forward, probabilities
    from ..core.modelfile import load_model
    from ..paths import shipped_model
    from ..scene import network
    from ..scene.handle import Network

    out = os.path.abspath(args.out)
    if not out.lower().endswith(".png"):
        raise UsageError(f"--out must be a .png file, not {args.out!r}")
    if os.path.isdir(out):
        raise UsageError(f"--out is a directory: {args.out}")
    network.parse_edges(args.edges)  # a bad edge mode fails before any work
    progress = _Progress(args.quiet, 5 + bool(args.save_blend))

    progress(f"loading model {args.model}")
    model = load_model(shipped_model(args.model))
    inputs = network_inputs(model, args)
    if len(inputs) > 1:
        progress.note(f"{len(inputs)} inputs given; rendering the first ({inputs[0][0]})")
    label, x = inputs[0]

    progress(f"running {model.name} on {label}")
    acts = forward(model, x)
    probs = probabilities(model, acts[-1]).reshape(-1)
    best = int(probs.argmax())
    progress.note(f"prediction: {model.labels[best]} ({probs[best]:.1%})")

    progress(f"building the {args.layout} network ({args.edges} edges)")
    t = time.perf_counter()
    name = build_scene(
        model,
        args,
        acts,
        edge_strength=args.edge_strength,
        node_shape=None if args.node_shape == "theme" else args.node_shape,
        spacing=args.spacing,
        colormap=args.colormap,
    )
    edges_obj = Network(name).edges
    if edges_obj is not None:
        # Invisible edges are not traced: the threshold deletes them in Geometry Nodes and the
        # material fades the rest in from the same level.
        drawn = _drawn_edges(bpy, edges_obj)
        progress.note(f"{len(edges_obj.data.curves):,} edges built, {drawn:,} above the fade level")
    progress.note(f"built in {time.perf_counter() - t:.2f}s")

    progress(f"stage: {args.camera} camera, {args.theme} theme, {args.engine}")
    setup_studio(name, args, args.camera)
    scene = bpy.context.scene
    scene.render.filepath = out
    os.makedirs(os.path.dirname(out), exist_ok=True)

    w, h = args.resolution
    progress(f"rendering {w}x{h}, {args.samples} samples -> {out}")
    t = time.perf_counter()
    layers = [layer.name for layer in scene.view_layers if layer.use]
    handler = _render_stats_printer(progress, layers)
    bpy.app.handlers.render_stats.append(handler)
    try:
        bpy.ops.render.render(write_still=True)
    finally:
        bpy.app.handlers.render_stats.remove(handler)
    if not os.path.isfile(out):
        print(f"error: the render did not write {out}", file=sys.stderr)
        return 1
    progress.note(f"rendered in {time.perf_counter() - t:.1f}s")

    if args.save_blend:
        progress(f"saving {os.path.abspath(args.save_blend)}")
        save_blend(args.save_blend)
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def _drawn_edges(bpy, edges_obj) -> int:
    """Edges left after the threshold, counted on the evaluated object (any view layer)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return len(edges_obj.evaluated_get(depsgraph).data.curves)

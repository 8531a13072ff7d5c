"""The classic PyTorch MNIST example network built and updated with levels of detail.

    python scripts/bench_lod.py [--json] [--repeat N] [--render OUT.png]

The model: conv 32 and conv 64 at 3x3 (relu), 2x2 max pool, dense 9216-128 (relu), 128-10 on a
1x28x28 input - 68k neurons, 12M connections - written with torch by scripts/big_models.py,
random weights. Built as a user gets it: automatic levels of detail (input and conv stages as
maps) and edges (core.edgeplan: the biggest stages bundled, 100k connections drawn one by one).

Keys: build_ptex_s (build_network), first_update_ptex_s (the first input shown and the
depsgraph evaluated), tick_ptex_ms (a live tick: canvas read, preprocess, forward, node write,
depsgraph evaluation, edges' glow read back), forward_ptex_ms (the forward pass alone, same
run), tick_over_forward_ptex_ms (their difference: what the scene costs per tick) and
tick_no_edges_ptex_ms (the same tick with the edges object hidden: nodes, maps, bundles,
labels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def ptex_onnx() -> str:
    """The classic PyTorch MNIST example (random weights, seeded) as ONNX (scripts/big_models)."""
    import big_models

    return big_models.ensure("ptex")


def collect(repeat: int = 20, render: str | None = None) -> dict[str, float]:
    import bpy
    from bench import stroke_frames

    from nnviz_blender import live
    from nnviz_blender.core.forward import forward
    from nnviz_blender.core.modelfile import load_model
    from nnviz_blender.core.preprocess import prepare
    from nnviz_blender.inputs import sample_digit
    from nnviz_blender.scene import network

    model = load_model(ptex_onnx())  # kept in out/big: live drawing reloads it
    bpy.ops.wm.read_homefile(use_empty=True)
    out: dict[str, float] = {}
    start = time.perf_counter()
    name = network.build_network(model, "ptex")
    out["build_ptex_s"] = time.perf_counter() - start

    x = prepare(model, sample_digit(7))
    start = time.perf_counter()
    network.show_input(name, model, x)
    network.read_glow(name)  # evaluates the depsgraph
    out["first_update_ptex_s"] = time.perf_counter() - start

    live.start(name)
    image = live.canvas_image(name)
    frames = stroke_frames(*image.size)

    def tick(i: int) -> float:
        image.pixels.foreach_set(frames[i % len(frames)])
        begin = time.perf_counter()
        live.tick()
        network.read_glow(name)
        return time.perf_counter() - begin

    ticks = [tick(i) for i in range(max(repeat, 5))]
    edges = network.Network(name).edges
    edges.hide_viewport = True  # what the rest of the scene costs
    depsgraph = bpy.context.evaluated_depsgraph_get()

    def bare_tick(i: int) -> float:
        image.pixels.foreach_set(frames[i % len(frames)])
        begin = time.perf_counter()
        live.tick()
        depsgraph.update()
        return time.perf_counter() - begin

    bare = [bare_tick(i) for i in range(max(repeat, 5))]
    edges.hide_viewport = False
    live.stop_all()
    forwards = []
    for _ in range(max(repeat, 5)):
        begin = time.perf_counter()
        forward(model, x)
        forwards.append(time.perf_counter() - begin)
    out["tick_ptex_ms"] = float(np.median(ticks) * 1000)
    out["forward_ptex_ms"] = float(np.median(forwards) * 1000)
    out["tick_over_forward_ptex_ms"] = out["tick_ptex_ms"] - out["forward_ptex_ms"]
    out["tick_no_edges_ptex_ms"] = float(np.median(bare) * 1000)
    if render:
        from nnviz_blender.scene import studio

        network.show_input(name, model, x)
        studio.setup(name, bpy.context.scene, samples=16, resolution=(1280, 720))
        bpy.context.scene.render.filepath = os.path.abspath(render)
        start = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        out["render_ptex_720p_s"] = time.perf_counter() - start
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--render", metavar="OUT.png")
    args = ap.parse_args(argv)
    results = collect(args.repeat, args.render)
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in results.items()}))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

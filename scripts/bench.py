"""All benchmarks, each against a baseline measured in the same run.

    python scripts/bench.py [--json] [--repeat N] [--skip-render] [--variants] [--core-only]
                            [--skip-big | --big-only]

Core: NumPy forward latency against PyTorch CPU on the same weights.
Keys (--json): <net>_forward_ms, <net>_prepare_forward_ms (preprocessing of a 280x280 drawing
included), <net>_torch_ms, <net>_speedup_vs_torch (torch / ours, forward only), for net in mlp, cnn.
The graph model (models/resnet.onnx when shipped, else the ResNet of scripts/train_mnist.py with
random weights, exported to ONNX here; the table says which): import_onnx_s (load_model of the
.onnx file), graph_forward_ms, graph_onnxruntime_ms and forward_vs_onnxruntime (our forward time /
onnxruntime's, both single-threaded, one input; below 1 means we are faster).
The issue-9 networks (scripts/big_models.py; --big-only for just these, --skip-big without),
NumPy and onnxruntime both on one thread: numpy_1t_ptex_ms, onnxruntime_ptex_ms,
forward_vs_onnxruntime_ptex, numpy_1t_r18_64_ms,
onnxruntime_r18_64_ms, forward_vs_onnxruntime_r18_64 (ours / theirs, run turn about),
bundle_glow_r18_64_ms (one block per feature map), bundle_glow_r18_64_16_ms (at most 16 blocks
per stage), graph_r18_64_s / graph_r18_224_s (build_graph + bundles, lazy).
With bpy installed also the live tick on the CNN with all ~425k edges: live_tick_cnn_ms (the canvas
changed: read pixels, preprocess, forward, write node values, evaluate the depsgraph and read the
edges' glow back) and live_idle_tick_ms (nothing changed), and the scene keys of
scripts/bench_scene.py: build_cnn_all_s, update_cnn_ms, naive_update_cnn_ms, update_speedup,
render_1080p_s (a 1920x1080, 64-sample Cycles render of the CNN with all edges).
Edge points of the CNN (all edges, sample 7, the render's edge fade), read from the evaluated
depsgraphs: edges_points_built (the data), render_points (what a render evaluates: the render
depsgraph), viewport_points_idle / viewport_points_painting (the viewport depsgraph, not painting /
painting), points_ratio_render_painting (render / painting), and painting_update_ms /
idle_update_ms (node write + viewport depsgraph evaluation, painting / not).
ResNet-18 at 64x64 and 224x224 in Blender (scripts/bench_big.py, each in a fresh process): build,
first update, tick, 1080p render and peak memory (build_r18_64_s, tick_r18_64_ms,
render_r18_64_s, peak_rss_r18_64_gb, build_r18_224_s, peak_rss_r18_224_gb, ...).
The classic PyTorch MNIST example with levels of detail (scripts/bench_lod.py): build_ptex_s,
first_update_ptex_s, tick_ptex_ms, forward_ptex_ms, tick_over_forward_ptex_ms.
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

from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402
from nnviz_blender.core.preprocess import prepare  # noqa: E402
from nnviz_blender.inputs import sample_digit  # noqa: E402


def best_ms(fn, repeat: int) -> float:
    """Median of `repeat` timed calls after a warm-up, in milliseconds."""
    for _ in range(max(3, repeat // 10)):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def torch_forward(model):
    """A torch.nn.Sequential with the same weights (via the exporter's inverse), or None."""
    try:
        import torch
    except ImportError:
        return None
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from test_forward import to_torch

    torch.set_num_threads(1)
    net = to_torch(model)

    def run(x):
        with torch.inference_mode():
            return net(torch.from_numpy(x)[None])

    return run


def graph_model_onnx(directory: str) -> tuple[str, str] | None:
    """(path of the graph model's ONNX file, where it comes from), or None without torch."""
    shipped = os.path.join(ROOT, "models", "resnet.onnx")
    if os.path.isfile(shipped):
        return shipped, "shipped models/resnet.onnx"
    try:
        import torch
    except ImportError:
        return None
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import train_mnist

    torch.manual_seed(0)
    path = os.path.join(directory, "resnet.onnx")
    train_mnist.export_onnx(train_mnist.ResNet().eval(), "resnet", path)
    return path, "ResNet of scripts/train_mnist.py, random weights (no shipped model yet)"


def bench_graph_model(repeat: int) -> tuple[dict[str, float], str]:
    """ONNX import time and forward time against onnxruntime (one thread) on the graph model."""
    import tempfile

    try:
        import onnxruntime as ort
    except ImportError:
        return {}, "graph model: onnxruntime not installed"
    with tempfile.TemporaryDirectory() as tmp:
        found = graph_model_onnx(tmp)
        if found is None:
            return {}, "graph model: no models/resnet.onnx and no torch to export one"
        path, source = found
        imports = []
        for _ in range(5):
            start = time.perf_counter()
            model = load_model(path)
            imports.append(time.perf_counter() - start)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = prepare(model, np.kron(sample_digit(7) / np.float32(255), np.ones((10, 10), np.float32)))
    name = session.get_inputs()[0].name
    ours = best_ms(lambda: forward(model, x), repeat)
    theirs = best_ms(lambda: session.run(None, {name: x[None]}), repeat)
    results = {
        "import_onnx_s": float(np.median(imports)),
        "graph_forward_ms": ours,
        "graph_onnxruntime_ms": theirs,
        "forward_vs_onnxruntime": ours / theirs,
    }
    return results, f"graph model: {source}"


SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def bench_big_models(repeat: int) -> tuple[dict[str, float], str]:
    """The issue-9 networks of scripts/big_models.py (random weights), NumPy single-threaded
    against onnxruntime single-threaded, in a child process (BLAS reads its thread count at
    import, so the other keys keep the default)."""
    import subprocess

    env = {**os.environ, **SINGLE_THREAD}
    cmd = [sys.executable, os.path.abspath(__file__), "--big-child", "--repeat", str(repeat)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {}, f"big models: failed ({done.stderr.strip().splitlines()[-1:]})"
    results, note = json.loads(done.stdout.strip().splitlines()[-1])
    return results, note


def big_models_child(repeat: int) -> tuple[dict[str, float], str]:
    """(keys, note) of bench_big_models, measured in this (single-threaded) process.

    numpy_1t_ptex_ms / onnxruntime_ptex_ms / forward_vs_onnxruntime_ptex: the PyTorch example
    network, ours and onnxruntime's run alternately; the same for r18_64 (forward_<net>_ms is
    the forward pass in Blender's process beside its tick: bench_lod, bench_big);
    bundle_glow_r18_64_ms: every bundle's glow (core.bundles) for one input, one block per
    feature map (1.4M bundles), bundle_glow_r18_64_16_ms with 16 blocks per stage; graph_r18_64_s,
    graph_r18_224_s: build_graph (lazy: stages and counts only) and bundles()."""
    try:
        import onnxruntime as ort

        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import big_models
    except ImportError as exc:
        return {}, f"big models: {exc}"
    from nnviz_blender.core.bundles import bundle_glow, bundles
    from nnviz_blender.core.graph import build_graph

    out: dict[str, float] = {}
    few = max(10, repeat // 10)
    for name in ("ptex", "r18_64", "r18_224"):
        path = big_models.ensure(name)
        model = load_model(path)
        x = np.random.default_rng(0).random(model.input_shape, dtype=np.float32)
        start = time.perf_counter()
        graph = build_graph(model)
        blocks = bundles(model, graph)
        built = time.perf_counter() - start
        if name == "ptex":
            ours, theirs = versus_onnxruntime(ort, path, model, x, repeat)
            out["numpy_1t_ptex_ms"], out["onnxruntime_ptex_ms"] = ours, theirs
            out["forward_vs_onnxruntime_ptex"] = ours / theirs
            continue
        out[f"graph_{name}_s"] = built
        if name != "r18_64":
            continue
        ours, theirs = versus_onnxruntime(ort, path, model, x, repeat)
        out["numpy_1t_r18_64_ms"], out["onnxruntime_r18_64_ms"] = ours, theirs
        out["forward_vs_onnxruntime_r18_64"] = ours / theirs
        acts = forward(model, x)
        out["bundle_glow_r18_64_ms"] = best_ms(lambda b=blocks, a=acts: bundle_glow(b, a), few)
        coarse = bundles(model, graph, map_blocks=16)
        out["bundle_glow_r18_64_16_ms"] = best_ms(lambda b=coarse, a=acts: bundle_glow(b, a), few)
    return out, "big models: scripts/big_models.py, random weights, one thread each"


def versus_onnxruntime(ort, path: str, model, x: np.ndarray, repeat: int) -> tuple[float, float]:
    """Our forward and onnxruntime's (one thread) on one input, run turn about: ms each."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x[None]}
    return alternate(lambda: forward(model, x), lambda: session.run(None, feed), repeat)


def alternate(ours, theirs, repeat: int) -> tuple[float, float]:
    """Medians in ms of two functions called turn about (both see the same machine load)."""
    for _ in range(3):
        ours(), theirs()
    a, b = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        ours()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        b.append(time.perf_counter() - start)
    return float(np.median(a) * 1000), float(np.median(b) * 1000)


def has_bpy() -> bool:
    try:
        import bpy  # noqa: F401
    except ImportError:
        return False
    return True


def stroke_frames(w: int, h: int, n: int = 8) -> list[np.ndarray]:
    """`n` distinct canvases (RGBA, flat) of one vertical stroke moving right: every live tick
    that shows the next one sees a change."""
    frames = []
    for i in range(n):
        px = np.zeros((h, w, 4), np.float32)
        px[..., 3] = 1.0
        x = w * 25 // 64 + 4 * i  # on the 256 x 256 canvas: rows 40-215, 20 columns from 100
        px[h * 5 // 32 : h * 27 // 32, x : x + w * 5 // 64, :3] = 1.0
        frames.append(px.ravel())
    return frames


def bench_live(repeat: int) -> dict[str, float]:
    """The live tick on the CNN with every edge, as Blender runs it (needs the bpy wheel)."""
    import bpy

    from nnviz_blender import live
    from nnviz_blender.scene import network

    bpy.ops.wm.read_homefile(use_empty=True)
    model = load_model(os.path.join(ROOT, "models", "cnn.npz"))
    name = network.build_network(model, "cnn", edges="all")
    live.start(name)
    image = live.canvas_image(name)
    frames = stroke_frames(*image.size)
    state = {"i": 0}

    def changed_tick():
        state["i"] += 1
        image.pixels.foreach_set(frames[state["i"] % len(frames)])
        start = time.perf_counter()
        live.tick()
        network.read_glow(name)  # evaluates the depsgraph: the edges really follow
        return time.perf_counter() - start

    def idle_tick():
        start = time.perf_counter()
        live.tick()
        return time.perf_counter() - start

    changed = [changed_tick() for _ in range(max(repeat, 10))]
    idle = [idle_tick() for _ in range(max(repeat, 10) * 5)]
    live.stop_all()
    return {
        "live_tick_cnn_ms": float(np.median(changed) * 1000),
        "live_idle_tick_ms": float(np.median(idle) * 1000),
    }


def bench_points(repeat: int) -> dict[str, float]:
    """How many edge points the viewport evaluates while painting, against a render."""
    import bpy

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from blender_scripts.render_probe import render_sizes

    from nnviz_blender.core.values import DEFAULT_FADE
    from nnviz_blender.scene import network, util

    bpy.ops.wm.read_homefile(use_empty=True)
    model = load_model(os.path.join(ROOT, "models", "cnn.npz"))
    name = network.build_network(model, "cnn", edges="all")
    network.set_edge_fade(name, DEFAULT_FADE)
    inputs = [prepare(model, sample_digit(d)) for d in range(10)]
    network.show_input(name, model, inputs[7])
    obj = util.find("objects", name, "edges")

    def viewport_points() -> int:
        return len(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.points)

    state = {"i": 0}

    def update():
        state["i"] += 1
        network.show_input(name, model, inputs[state["i"] % 10])
        viewport_points()

    out = {"edges_points_built": float(len(obj.data.points))}
    out["render_points"] = float(render_sizes(bpy.context.scene, [obj.name])[obj.name][1])
    out["viewport_points_idle"] = float(viewport_points())
    out["idle_update_ms"] = best_ms(update, repeat)
    network.set_painting(name, True)
    network.show_input(name, model, inputs[7])
    out["viewport_points_painting"] = float(viewport_points())
    out["painting_update_ms"] = best_ms(update, repeat)
    network.set_painting(name, False)
    out["points_ratio_render_painting"] = out["render_points"] / out["viewport_points_painting"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--skip-render", action="store_true", help="no 1080p render")
    ap.add_argument("--variants", action="store_true", help="re-measure the render alternatives")
    ap.add_argument("--core-only", action="store_true", help="NumPy and PyTorch only")
    ap.add_argument("--skip-big", action="store_true", help="not the issue-9 networks")
    ap.add_argument("--big-only", action="store_true", help="only the issue-9 networks")
    ap.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.big_child:  # bench_big_models' single-threaded child process
        print(json.dumps(big_models_child(args.repeat)))
        return 0

    drawing = np.kron(sample_digit(7).astype(np.float32) / 255.0, np.ones((10, 10), np.float32))
    results: dict[str, float] = {}
    notes: list[str] = []
    if not args.skip_big:
        big_results, big_note = bench_big_models(args.repeat // 3)
        results.update(big_results)
        notes.append(big_note)
    for name in () if args.big_only else ("mlp", "cnn"):
        model = load_model(os.path.join(ROOT, "models", f"{name}.npz"))
        x = prepare(model, drawing)
        results[f"{name}_forward_ms"] = best_ms(lambda m=model, x=x: forward(m, x), args.repeat)
        results[f"{name}_prepare_forward_ms"] = best_ms(
            lambda m=model: forward(m, prepare(m, drawing)), args.repeat
        )
        run_torch = torch_forward(model)
        if run_torch is not None:
            t = best_ms(lambda r=run_torch, x=x: r(x), args.repeat)
            results[f"{name}_torch_ms"] = t
            results[f"{name}_speedup_vs_torch"] = t / results[f"{name}_forward_ms"]

    if not args.big_only:
        graph_results, graph_note = bench_graph_model(args.repeat)
        results.update(graph_results)
        notes.append(graph_note)

    if not args.core_only and not args.big_only and has_bpy():
        results.update(bench_live(args.repeat // 10))
        results.update(bench_points(max(3, args.repeat // 30)))
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import bench_scene

        results.update(bench_scene.collect(30, not args.skip_render, args.variants))
        import bench_lod

        results.update(bench_lod.collect(20))
    if not args.core_only and not args.skip_big and has_bpy():
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import bench_big

        results.update(bench_big.collect(render=not args.skip_render))
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in results.items()}))
    else:
        print(f"{'measure':32s} {'value':>10s}")
        for key, value in results.items():
            unit = (
                "x"
                if "speedup" in key or "_vs_" in key or "ratio" in key
                else "s"
                if key.endswith("_s")
                else "ms"
                if key.endswith("_ms")
                else ""
            )
            print(f"{key:32s} {value:10.3f} {unit}")
        if args.variants:
            import bench_scene

            print(bench_scene.describe_variants(results))
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())

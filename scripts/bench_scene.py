"""Benchmarks of the Blender scene layer (needs the bpy wheel); run through scripts/bench.py.

Keys:
- build_cnn_all_s: build the CNN with every one of its ~425k connections (geometry, Geometry
  Nodes, materials, labels) and evaluate it once.
- update_cnn_ms: one update after a new input: forward pass + write the node values + depsgraph
  evaluation + read the evaluated edge glow back (a few edges, checked against NumPy) - median.
- naive_update_cnn_ms: the same update done the way most scripts do it: one object per node, each
  with its own material, colours set per object in a Python loop (measured on a subset of the
  nodes and scaled to all 9,134); update_speedup = naive / ours.
- render_1080p_s: `render` of the CNN, 3d layout, dark theme, all edges, 1920x1080, 64 samples,
  Cycles on the CPU (time of the render itself; render_1080p_total_s adds loading and building).
With bench.py --variants, the render settings that were weighed against each other are measured
again (CNN, 960x540, 64 samples; the edges view layer alone unless noted) and printed as a table
(keys render_variant_<name>_s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core import values as core_values  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import build_model, load_model  # noqa: E402

NAIVE_SUBSET = 600


def cnn_model(path: str | None = None):
    path = path or os.path.join(ROOT, "models", "cnn.npz")
    if os.path.isfile(path):
        return load_model(path), path
    from conftest import CNN_SPEC, random_arrays  # random weights until the model is shipped

    return build_model(CNN_SPEC, random_arrays(CNN_SPEC)), None


def inputs(model, n=8, seed=0):
    rng = np.random.default_rng(seed)
    shape = model.input_shape
    return [(rng.random(shape) * (rng.random(shape) > 0.7)).astype(np.float32) for _ in range(n)]


def bench_build(model) -> tuple[float, str]:
    import bpy

    from nnviz_blender.scene import network

    bpy.ops.wm.read_homefile(use_empty=True)
    t = time.perf_counter()
    name = network.build_network(model, "cnn", edges="all")
    bpy.context.evaluated_depsgraph_get().update()
    return time.perf_counter() - t, name


def bench_update(model, name: str, repeat: int) -> float:
    import bpy

    from nnviz_blender.scene import network, util

    graph = core_graph.build_graph(model)
    xs = inputs(model)
    edges_obj = util.find("objects", name, "edges")
    curves = edges_obj.data
    probe = np.arange(len(curves.curves) - 8, len(curves.curves))  # edges into the output
    src = np.array([curves.attributes["src"].data[int(i)].value for i in probe])
    w = np.array([curves.attributes["weight"].data[int(i)].value for i in probe])
    gain = np.array([curves.attributes["gain"].data[int(i)].value for i in probe])

    def update(x):
        acts = forward(model, x)
        network.apply_activations(name, model, acts)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        depsgraph.update()
        glow = edges_obj.evaluated_get(depsgraph).data.attributes["glow"].data
        return acts, [glow[int(i)].value for i in probe]

    for x in xs[:3]:
        update(x)
    times = []
    for k in range(repeat):
        x = xs[k % len(xs)]
        t = time.perf_counter()
        acts, got = update(x)
        times.append(time.perf_counter() - t)
        values = core_graph.node_values(graph, acts)
        expected = w * values[src] * gain
        if not np.allclose(got, expected, rtol=1e-4, atol=1e-6):
            raise RuntimeError(f"evaluated glow {got} != expected {expected}")
    return float(np.median(times) * 1000)


def bench_naive(model, repeat: int) -> float:
    """One object per node, own material each, colours set in a Python loop; scaled to N nodes."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    graph = core_graph.build_graph(model)
    n = min(NAIVE_SUBSET, graph.node_count)
    mesh = bpy.data.meshes.new("cube")
    s = 0.045
    verts = [(x * s, y * s, z * s) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    objs = []
    for i in range(n):
        mat = bpy.data.materials.new(f"node {i}")
        if mat.node_tree is None:
            mat.use_nodes = True
        nt = mat.node_tree
        nt.nodes.clear()
        emit = nt.nodes.new("ShaderNodeEmission")
        out = nt.nodes.new("ShaderNodeOutputMaterial")
        nt.links.new(emit.outputs[0], out.inputs[0])
        obj = bpy.data.objects.new(f"node {i}", mesh.copy())
        obj.data.materials.append(mat)
        obj.location = (i % 100 * 0.1, 0.0, i // 100 * 0.1)
        bpy.context.scene.collection.objects.link(obj)
        objs.append(obj.name)
    xs = inputs(model)
    scale = graph.node_count / n

    def update(x):
        acts = forward(model, x)
        values = core_values.show(graph, acts, "map").level
        for name, v in zip(objs, values[:n], strict=False):
            obj = bpy.data.objects[name]
            emit = obj.active_material.node_tree.nodes["Emission"]
            emit.inputs["Color"].default_value = (0.0, float(v), float(v) * 0.9, 1.0)
        bpy.context.evaluated_depsgraph_get().update()

    update(xs[0])
    times = []
    for k in range(repeat):
        t_forward = time.perf_counter()
        forward(model, xs[k % len(xs)])
        forward_s = time.perf_counter() - t_forward
        t = time.perf_counter()
        update(xs[k % len(xs)])
        total = time.perf_counter() - t
        times.append(forward_s + (total - forward_s) * scale)  # the per-node part scales
    return float(np.median(times) * 1000)


def bench_render(model_path: str | None, out_dir: str) -> tuple[float, float]:
    """Run the real `render` command in a fresh process; returns (render s, total s)."""
    out = os.path.join(out_dir, "bench_cnn_1080p.png")
    x = os.path.join(out_dir, "digit.npy")
    from nnviz_blender.core import mnist

    mnist_dir = os.path.join(ROOT, "..", "shared", "data", "mnist")
    try:
        images, labels = mnist.load(mnist_dir, "test")
        np.save(x, images[int(np.flatnonzero(labels == 7)[0])])
    except Exception:  # no MNIST here: a synthetic stroke
        img = np.zeros((28, 28), np.uint8)
        img[6:9, 7:21] = 255
        for r in range(9, 24):
            img[r, 19 - (r - 9) // 2 : 22 - (r - 9) // 2] = 255
        np.save(x, img)
    cmd = [
        sys.executable,
        "-m",
        "nnviz_blender",
        "render",
        "--model",
        model_path,
        "--input",
        x,
        "--layout",
        "3d",
        "--out",
        out,
        "--resolution",
        "1920x1080",
        "--samples",
        "64",
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    total = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"render failed:\n{proc.stderr[-2000:]}")
    rendered = [ln for ln in proc.stdout.splitlines() if "rendered in" in ln]
    render_s = (
        float(rendered[-1].split("rendered in")[1].strip().rstrip("s")) if rendered else total
    )
    return render_s, total


VARIANTS = {
    # name: (description, code run on the built scene before rendering the edges layer)
    "final": ("final settings (layered, segments <= 1.0, adaptive 0.05 / floor 8)", ""),
    "no_segments": ("one straight segment per edge", "SEGMENTS_NONE"),
    "auto_floor": ("Cycles' automatic adaptive floor", "scene.cycles.adaptive_min_samples = 0"),
    "adaptive_0.02": ("adaptive threshold 0.02", "scene.cycles.adaptive_threshold = 0.02"),
    "thick": ("THICK curve shape instead of RIBBONS", "scene.cycles_curves.shape = 'THICK'"),
    "no_cull": ("no threshold: all 425k edges traced", "CULL_NONE"),
    "full_layered": ("whole frame: nodes layer + edges layer + compositor", "FULL"),
    "full_single_transparent": (
        "whole frame, one layer, edges transparent + emission in the material",
        "FULL_SINGLE",
    ),
}


def bench_variants(model) -> dict[str, float]:
    import bpy

    from nnviz_blender.scene import edges, network, studio

    results = {}
    x = inputs(model, 1)[0]
    for key, (_, code) in VARIANTS.items():
        bpy.ops.wm.read_homefile(use_empty=True)
        segments = None if code == "SEGMENTS_NONE" else 1.0
        original = edges.build

        def build(*args, _seg=segments, _build=original, **kw):
            kw["max_segment"] = _seg
            return _build(*args, **kw)

        network.scene_edges.build = build
        try:
            name = network.build_network(model, "cnn", edges="all")
        finally:
            network.scene_edges.build = original
        network.show_input(name, model, x)
        scene = bpy.context.scene
        layered = code != "FULL_SINGLE"
        studio.setup(name, scene, samples=64, resolution=(960, 540), layered=layered)
        fade = 0.0 if code == "CULL_NONE" else 0.12
        network.set_edge_fade(name, fade)
        if code and code.split()[0] not in ("SEGMENTS_NONE", "CULL_NONE", "FULL", "FULL_SINGLE"):
            exec(code, {"scene": scene})
        if not code.startswith("FULL"):
            scene.view_layers[0].use = False  # the edges layer alone
        scene.render.filepath = os.path.join(tempfile.gettempdir(), f"nnviz_variant_{key}.png")
        t = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        results[key] = time.perf_counter() - t
    return results


def collect(repeat: int = 30, render: bool = True, variants: bool = False, model_path=None):
    """Every scene measurement as {key: value} (see the module docstring); needs bpy."""
    model, path = cnn_model(model_path)
    out: dict[str, float] = {}
    out["build_cnn_all_s"], name = bench_build(model)
    out["update_cnn_ms"] = bench_update(model, name, repeat)
    out["naive_update_cnn_ms"] = bench_naive(model, max(3, repeat // 10))
    out["update_speedup"] = out["naive_update_cnn_ms"] / out["update_cnn_ms"]
    if render:
        with tempfile.TemporaryDirectory() as tmp:
            if path is None:  # random weights: hand the render command a file
                from conftest import CNN_SPEC, random_arrays

                from nnviz_blender.core.modelfile import save_model

                path = os.path.join(tmp, "cnn_random.npz")
                save_model(path, CNN_SPEC, random_arrays(CNN_SPEC))
            out["render_1080p_s"], out["render_1080p_total_s"] = bench_render(path, tmp)
    if variants:
        for key, seconds in bench_variants(model).items():
            out[f"render_variant_{key}_s"] = seconds
    return out


def describe_variants(out: dict[str, float]) -> str:
    lines = ["CNN, 960x540, 64 samples (edges view layer only unless 'whole frame'):"]
    for key, (desc, _) in VARIANTS.items():
        if f"render_variant_{key}_s" in out:
            lines.append(f"  {out[f'render_variant_{key}_s']:7.1f}s  {desc}")
    return "\n".join(lines)

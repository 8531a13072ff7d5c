"""Large networks (issue 9): build, update, render and peak memory, each in a fresh process.

    python scripts/bench_big.py [--json] [--models r18_64,r18_224] [--skip-render]

Every measurement runs in a child process of its own, so its peak resident memory is the
network's own and not what an earlier one left behind.
The models are the ONNX files of scripts/big_models.py (random weights).

Keys, for net in r18_64 and r18_224 (the PyTorch example's are scripts/bench_lod.py's):
- build_<net>_s: load the .onnx file and build the network in Blender (automatic levels of
  detail and edges), until the first depsgraph evaluation is done;
- first_update_<net>_s: the first update after the build (forward, node values, bundle glow,
  depsgraph);
- forward_<net>_ms: the NumPy forward pass of one input, and tick_<net>_ms: one live update
  (forward + writes + depsgraph evaluation), median of a few;
- peak_rss_<net>_gb: that process's peak resident memory (wait4's ru_maxrss);
- render_<net>_s and peak_rss_render_<net>_gb: `python -m nnviz_blender render` of a 1920x1080,
  64-sample Cycles figure as a user runs it (load, build, render, write), in its own process.
Baseline of the same run: build_cnn_s, the shipped CNN with every edge built the same way, so
`build_<net>_vs_cnn` reads the same on a fast and on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

NETS = ("r18_64", "r18_224")  # ptex: scripts/bench_lod.py (its live tick)


def model_path(net: str) -> str:
    if net == "cnn":
        return os.path.join(ROOT, "models", "cnn.npz")
    import big_models

    return big_models.ensure(net)


def child(net: str, ticks: int) -> dict[str, float]:
    """Build and update one network in this process."""
    import bpy

    from nnviz_blender.core.forward import forward
    from nnviz_blender.core.modelfile import load_model
    from nnviz_blender.scene import network

    out: dict[str, float] = {}
    bpy.ops.wm.read_homefile(use_empty=True)
    start = time.perf_counter()
    model = load_model(model_path(net))
    name = network.build_network(model, net)
    bpy.context.evaluated_depsgraph_get()
    out[f"build_{net}_s"] = time.perf_counter() - start

    rng = np.random.default_rng(0)
    inputs = [rng.random(model.input_shape, dtype=np.float32) for _ in range(ticks + 1)]
    start = time.perf_counter()
    network.show_input(name, model, inputs[0])
    bpy.context.evaluated_depsgraph_get()
    out[f"first_update_{net}_s"] = time.perf_counter() - start

    fwd, tick = [], []
    for x in inputs[1:]:
        t0 = time.perf_counter()
        forward(model, x)
        fwd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        network.show_input(name, model, x)
        bpy.context.evaluated_depsgraph_get()
        tick.append(time.perf_counter() - t0)
    out[f"forward_{net}_ms"] = float(np.median(fwd) * 1000)
    out[f"tick_{net}_ms"] = float(np.median(tick) * 1000)

    return out


def run_child(cmd: list[str]) -> tuple[str, float, float]:
    """Run `cmd`; its stdout, wall time (s) and peak resident memory (GB, from wait4)."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        stdout.seek(0)
        stderr.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.stderr.write(stderr.read()[-4000:])
            raise SystemExit(f"bench_big: {' '.join(cmd[1:4])} failed")
        return stdout.read(), seconds, usage.ru_maxrss / 1024**2


def measure(net: str, render: bool, ticks: int) -> dict[str, float]:
    """Build and tick in a fresh process, then render in another (the render command as a user
    runs it, build included); the peak memory of each."""
    me = [sys.executable, os.path.abspath(__file__)]
    text, _, peak = run_child([*me, "--child", net, "--ticks", str(ticks)])
    result = json.loads(text.strip().splitlines()[-1])
    result[f"peak_rss_{net}_gb"] = peak
    if render:
        with tempfile.TemporaryDirectory() as tmp:
            x = np.random.default_rng(0).random(_input_shape(net), dtype=np.float32)
            np.save(os.path.join(tmp, "x.npy"), x)
            cmd = [sys.executable, "-m", "nnviz_blender", "render", "--model", model_path(net)]
            cmd += ["--raw", os.path.join(tmp, "x.npy"), "--out", os.path.join(tmp, "f.png")]
            cmd += ["--resolution", "1920x1080", "--samples", "64", "--camera", "iso"]
            _, seconds, peak = run_child(cmd)
        result[f"render_{net}_s"] = seconds
        result[f"peak_rss_render_{net}_gb"] = peak
    return result


def _input_shape(net: str) -> tuple[int, ...]:
    from nnviz_blender.core.modelfile import load_model

    return tuple(load_model(model_path(net)).input_shape)


def collect(nets=NETS, render: bool = True, ticks: int = 5) -> dict[str, float]:
    results = measure("cnn", False, ticks)
    results = {"build_cnn_s": results["build_cnn_s"]}
    for net in nets:
        results.update(measure(net, render, ticks))
        results[f"build_{net}_vs_cnn"] = results[f"build_{net}_s"] / results["build_cnn_s"]
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--models", default=",".join(NETS))
    ap.add_argument("--skip-render", action="store_true")
    ap.add_argument("--ticks", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.ticks)))
        return 0
    nets = [n for n in args.models.split(",") if n]
    unknown = sorted(set(nets) - set(NETS))
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {', '.join(NETS)}")
    results = collect(nets, not args.skip_render, args.ticks)
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in results.items()}))
    else:
        for key, value in results.items():
            print(f"{key:28s} {value:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

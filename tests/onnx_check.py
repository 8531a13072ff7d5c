"""Shared checks for imported models: every intermediate against onnxruntime, every edge against
the forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from nnviz_blender.core.forward import forward
from nnviz_blender.core.graph import MAX_EDGES, build_graph, node_bias, node_values
from nnviz_blender.core.modelfile import ELEMENTWISE, SOFTMAXES

RTOL = 1e-5


def onnxruntime_outputs(path, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the ONNX file in onnxruntime (one thread) with `names` exposed as extra outputs."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    have = {o.name for o in proto.graph.output}
    for name in names:
        if name not in have:
            proto.graph.output.append(onnx.ValueInfoProto(name=name))
            have.add(name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options)
    feed = {session.get_inputs()[0].name: x}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))


def assert_matches_onnxruntime(model, path, x: np.ndarray) -> None:
    """Every layer's output equals the ONNX tensor it reproduces, to 1e-5 of that tensor's range."""
    sources = [layer.params["source"] for layer in model.layers]
    ref = onnxruntime_outputs(path, sources, x)
    acts = forward(model, x)
    for layer, ours in zip(model.layers, acts[1:], strict=True):
        want = ref[layer.params["source"]]
        if want.ndim == 4 and want.shape[2:] == (1, 1) and ours.ndim == 2:
            want = want.reshape(len(want), -1)  # a mean over H, W without keepdims
        scale = max(float(np.abs(want).max()), 1e-6)
        np.testing.assert_allclose(
            ours, want.reshape(ours.shape), rtol=RTOL, atol=RTOL * scale, err_msg=layer.name
        )


def assert_edges_reproduce_forward(model, x: np.ndarray) -> None:
    """For every node: sum of incoming weight * source value + bias == its pre-activation."""
    graph = build_graph(model, materialise=MAX_EDGES)  # every connection, stored
    acts = forward(model, x)
    values = node_values(graph, acts).astype(np.float64)
    for stage in graph.stages[1:]:
        cut = stage.edge_slice
        dst = graph.dst[cut] - stage.start
        terms = graph.weight[cut].astype(np.float64) * values[graph.src[cut]]
        layer = model.layers[stage.layer]
        if stage.op == "maxpool2d":
            pre = np.full(stage.size, -np.inf)
            np.maximum.at(pre, dst, values[graph.src[cut]])
        else:
            pre = np.bincount(dst, terms, minlength=stage.size)
            some = range(stage.start, stage.stop, max(1, stage.size // 50))
            bias = np.zeros(stage.size)
            if layer.bias is not None and stage.op in ("dense", "conv2d", "affine"):
                per = graph.node_map[stage.start : stage.stop] if stage.is_map else slice(None)
                bias = layer.bias[per].astype(np.float64)
                assert [node_bias(graph, model, n) for n in some] == [
                    pytest.approx(float(bias[n - stage.start])) for n in some
                ]
            pre += bias
        elementwise = stage.op in (*ELEMENTWISE, *SOFTMAXES)
        raw = acts[layer.inputs[0]] if elementwise else acts[stage.layer + 1]
        want = np.asarray(raw, np.float64).ravel()
        np.testing.assert_allclose(pre, want, rtol=1e-4, atol=1e-4, err_msg=stage.name)

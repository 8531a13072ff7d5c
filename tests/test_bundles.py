"""Bundle glow equals the brute-force sum over the materialised connections of each bundle."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_arrays
from test_graph import ALL_MODELS, conv, dense

from nnviz_blender.core.bundles import BLOCKS_PER_VECTOR, bundle_glow, bundles
from nnviz_blender.core.forward import forward
from nnviz_blender.core.graph import build_graph, node_values
from nnviz_blender.core.modelfile import build_model


def brute_force(graph, b, acts):
    """{(source block, destination block): (glow, members)} from every materialised edge."""
    values = node_values(graph, acts).astype(np.float64)
    block = b.node_blocks(graph)
    out = {}
    for stage in graph.stages[1:]:
        cut = stage.edge_slice
        src, dst = graph.src[cut], graph.dst[cut]
        terms = graph.weight[cut] * values[src]
        pair = block[src].astype(np.int64) * b.block_count + block[dst]
        keys, inverse, members = np.unique(pair, return_inverse=True, return_counts=True)
        if stage.op == "maxpool2d":  # only each window's winner flows on
            best = np.full(stage.size, -np.inf)
            np.maximum.at(best, dst - stage.start, terms)
            glow = np.bincount(
                block[stage.start : stage.stop] - b.block_start[graph.stages.index(stage)],
                weights=best,
            )
            sums = glow[keys % b.block_count - b.block_start[graph.stages.index(stage)]]
        else:
            sums = np.bincount(inverse, weights=terms)
        for k, g, m in zip(keys, sums, members, strict=True):
            out[(int(k // b.block_count), int(k % b.block_count))] = (float(g), int(m))
    return out


def check(model, seed=1, map_blocks=None):
    graph = build_graph(model)
    b = bundles(model, graph, map_blocks)
    x = np.random.default_rng(seed).normal(0, 1, model.input_shape).astype(np.float32)
    acts = forward(model, x)
    glow = bundle_glow(b, acts)
    want = brute_force(graph, b, acts)
    got = {
        (int(s), int(d)): (float(g), int(m))
        for s, d, g, m in zip(b.src, b.dst, glow, b.members, strict=True)
    }
    assert sorted(got) == sorted(want)
    assert b.members.sum() == graph.edge_count
    for key, (g, m) in want.items():
        assert got[key][1] == m, key
        assert got[key][0] == pytest.approx(g, rel=1e-4, abs=1e-4), key
    stage = b.stage
    assert np.all(np.diff(stage) >= 0) and stage.size == b.count
    return b


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
@pytest.mark.parametrize("map_blocks", [None, 2, 5])
def test_glow_equals_brute_force_on_test_models(name, map_blocks):
    """map_blocks: stages of more feature maps have blocks of several consecutive maps."""
    model = ALL_MODELS[name]()
    b = check(model, map_blocks=map_blocks)
    stages = build_graph(model).stages
    for stage, n in zip(stages, np.diff(b.block_start), strict=True):
        c = stage.shape[0]
        if stage.is_map and map_blocks and c > map_blocks:  # ceil(c / maps per block) blocks
            assert n == -(-c // -(-c // map_blocks)) <= map_blocks, stage.name
        elif stage.is_map:
            assert n == c


KINDS = {
    "conv_stride_pad_dilation": [
        conv(3, 4, 3, stride=2, padding=[1, 2, 0, 1], dilation=2),
        {"type": "relu"},
        conv(4, 2, [2, 3], stride=[1, 2], padding=1, bias=False),
    ],
    "grouped_and_depthwise": [
        conv(3, 6, 3, groups=3, padding=1),
        {"type": "tanh"},
        conv(6, 4, 2, groups=2),
        conv(4, 4, 3, groups=4, stride=2, padding=1),
    ],
    "pools": [
        {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "avgpool2d", "kernel_size": 2, "stride": 1, "padding": 1},
        {
            "type": "avgpool2d",
            "kernel_size": 3,
            "stride": 2,
            "count_include_pad": False,
            "padding": 1,
        },
        {"type": "global_avgpool"},
        {"type": "flatten"},
        dense(3, 40),
        {"type": "relu"},
        dense(40, 37),
        {"type": "sigmoid"},
    ],
    "dense_from_maps": [conv(3, 5, 3), {"type": "flatten"}, dense(5 * 7 * 7, 50)],
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_glow_equals_brute_force_by_kind(name):
    spec = {"input_shape": [3, 9, 9], "layers": KINDS[name]}
    model = build_model(spec, random_arrays(spec, seed=7))
    check(model, map_blocks=2)
    b = check(model)
    if name == "pools":  # flat stages: at most BLOCKS_PER_VECTOR chunks
        assert b.block_size[-1] == 3  # 37 nodes: 13 blocks of 3, the last of one
        assert b.block_start[-1] - b.block_start[-2] == 13 <= BLOCKS_PER_VECTOR


@pytest.mark.parametrize("seed", range(0, 30, 2))
def test_glow_equals_brute_force_on_random_onnx_graphs(tmp_path, seed):
    """Adds, concats, affine and scalar scalings, activations with their own stage, heads."""
    onnx = pytest.importorskip("onnx")
    from test_onnx_graphs import random_graph

    from nnviz_blender.core.modelfile import load_model

    path = tmp_path / "r.onnx"
    onnx.save(random_graph(seed), str(path))
    check(load_model(path), seed)
    check(load_model(path), seed, map_blocks=2)


def test_bundle_signed_peaks_at_one_per_destination_stage():
    from nnviz_blender.core.values import bundle_signed

    model = ALL_MODELS["cnn"]()
    b = bundles(model, build_graph(model))
    acts = forward(model, np.random.default_rng(0).random(model.input_shape, dtype=np.float32))
    glow = bundle_glow(b, acts)
    shown = bundle_signed(b.bundle_start, glow)
    assert shown.shape == glow.shape and np.all(np.sign(shown) == np.sign(glow))
    for lo, hi in zip(b.bundle_start[1:-1], b.bundle_start[2:], strict=True):
        assert np.abs(shown[lo:hi]).max() == pytest.approx(1.0)
    table = bundle_signed(b.bundle_start, np.stack([glow, 2 * glow, 0 * glow]))
    np.testing.assert_allclose(table[:2], [shown, shown], rtol=1e-6)
    assert not table[2].any()

"""The node-link graph: counts, edges that reproduce the forward pass, selection and tracing."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nnviz_blender.core.forward import forward
from nnviz_blender.core.graph import (
    GraphError,
    _topk_per_dst,
    build_graph,
    edge_scores,
    incoming,
    node_bias,
    node_values,
    select_edges,
    trace,
    weighted_input,
)
from nnviz_blender.core.modelfile import build_model

# --- models -----------------------------------------------------------------------------------


def random_model(input_shape, layers, seed=0, scale=0.5):
    """A model with random weights for a list of layer dicts (shapes read from the dicts)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, layer in enumerate(layers):
        if layer["type"] == "dense":
            shape = (layer["out_features"], layer["in_features"])
        elif layer["type"] == "conv2d":
            k = layer["kernel_size"]
            kh, kw = (k, k) if isinstance(k, int) else k
            shape = (layer["out_channels"], layer["in_channels"], kh, kw)
        else:
            continue
        fan_in = int(np.prod(shape[1:]))
        arrays[f"layers.{i}.weight"] = rng.normal(0, scale / np.sqrt(fan_in) * 2, shape)
        if layer.get("bias", True):
            arrays[f"layers.{i}.bias"] = rng.normal(0, 0.2, shape[0])
    return build_model({"input_shape": list(input_shape), "layers": layers}, arrays)


def dense(n_in, n_out, **kw):
    return {"type": "dense", "in_features": n_in, "out_features": n_out, **kw}


def conv(c_in, c_out, k, **kw):
    return {"type": "conv2d", "in_channels": c_in, "out_channels": c_out, "kernel_size": k, **kw}


def mlp_model(seed=0):
    layers = [{"type": "flatten"}, dense(784, 300), {"type": "tanh"}, dense(300, 100)]
    layers += [{"type": "tanh"}, dense(100, 10), {"type": "softmax"}]
    return random_model([1, 28, 28], layers, seed)


def cnn_model(seed=0):
    layers = [conv(1, 6, 5), {"type": "tanh"}, {"type": "maxpool2d", "kernel_size": 2}]
    layers += [conv(6, 16, 5), {"type": "tanh"}, {"type": "maxpool2d", "kernel_size": 2}]
    layers += [{"type": "flatten"}, dense(400, 120), {"type": "tanh"}, dense(120, 100)]
    layers += [{"type": "tanh"}, dense(100, 10), {"type": "softmax"}]
    return random_model([1, 32, 32], layers, seed)


ODD_MODELS = {
    "stride2_pad1_avgpool": lambda: random_model(
        [2, 11, 9],
        [
            conv(2, 4, 3, stride=2, padding=1),
            {"type": "relu"},
            {"type": "avgpool2d", "kernel_size": 2, "stride": 1, "padding": 1},
            conv(4, 3, [2, 3], stride=[1, 2], padding=[1, 0], bias=False),
            {"type": "sigmoid"},
            {"type": "maxpool2d", "kernel_size": 3, "stride": 2, "padding": 1},
            {"type": "flatten"},
            {"type": "relu"},
            dense(3 * 4 * 1, 7),
            {"type": "tanh"},
            dense(7, 5, bias=False),
        ],
        seed=3,
    ),
    "conv_chain_rgb": lambda: random_model(
        [3, 8, 10],
        [
            conv(3, 5, 3, padding=1),
            {"type": "tanh"},
            conv(5, 5, 1, padding=1),  # border outputs read only padding: no incoming edges
            {"type": "relu"},
            {"type": "avgpool2d", "kernel_size": 2},
            {"type": "maxpool2d", "kernel_size": 2, "stride": 1},
            {"type": "flatten"},
            dense(5 * 4 * 5, 6),
            {"type": "softmax"},
        ],
        seed=4,
    ),
    "mlp_2d_input": lambda: random_model(
        [6, 5], [{"type": "flatten"}, dense(30, 8), {"type": "relu"}, dense(8, 3)], seed=5
    ),
    "vector_input": lambda: random_model(
        [12], [{"type": "tanh"}, dense(12, 4), {"type": "sigmoid"}, {"type": "tanh"}], seed=6
    ),
}
ALL_MODELS = {"mlp": mlp_model, "cnn": cnn_model, **ODD_MODELS}


@pytest.fixture(scope="module")
def cnn():
    model = cnn_model()
    return model, build_graph(model)


@pytest.fixture(scope="module")
def mlp():
    model = mlp_model()
    return model, build_graph(model)


def sample_input(model, seed=1):
    return np.random.default_rng(seed).random(model.input_shape).astype(np.float32)


# --- structure --------------------------------------------------------------------------------


def test_mlp_counts_and_stages(mlp):
    _, g = mlp
    assert g.node_count == 784 + 300 + 100 + 10 == 1194
    assert g.edge_count == 784 * 300 + 300 * 100 + 100 * 10 == 266_200
    assert [s.name for s in g.stages] == ["input", "dense1", "dense2", "output"]
    assert [s.kind for s in g.stages] == ["input", "dense", "dense", "output"]
    assert [s.act_index for s in g.stages] == [0, 3, 5, 7]
    assert [s.shape for s in g.stages] == [(1, 28, 28), (300,), (100,), (10,)]
    assert [s.start for s in g.stages] == [0, 784, 1084, 1184]
    assert g.stages[-1].activations == ("softmax",)


def test_cnn_counts_and_stages(cnn):
    _, g = cnn
    assert g.node_count == 9134
    assert g.edge_count == 424_904
    names = ["input", "conv1", "pool1", "conv2", "pool2", "dense1", "dense2", "output"]
    assert [s.name for s in g.stages] == names
    kinds = ["input", "conv", "pool", "conv", "pool", "dense", "dense", "output"]
    assert [s.kind for s in g.stages] == kinds
    assert [s.act_index for s in g.stages] == [0, 2, 3, 5, 6, 9, 11, 13]
    assert [s.edge_count for s in g.stages] == [
        0,
        117_600,
        4_704,
        240_000,
        1_600,
        48_000,
        12_000,
        1_000,
    ]
    assert g.stages[1].activations == ("tanh",) and g.stages[1].op == "conv2d"
    assert g.stages[2].op == "maxpool2d" and g.stages[2].activations == ()
    assert sum(s.size for s in g.stages) == g.node_count


def test_arrays_are_typed_sorted_and_read_only(cnn):
    _, g = cnn
    for name, dtype in [("node_stage", np.int32), ("node_map", np.int32), ("src", np.int32)]:
        assert getattr(g, name).dtype == dtype
    assert g.dst.dtype == np.int32 and g.weight.dtype == np.float32
    assert g.node_stage.shape == g.node_map.shape == (g.node_count,)
    assert np.all(np.diff(g.dst) >= 0)
    assert np.all(g.node_stage[g.src] == g.node_stage[g.dst] - 1)  # edges join neighbour stages
    with pytest.raises(ValueError):
        g.src[0] = 1
    for i, stage in enumerate(g.stages):
        assert np.all(g.node_stage[stage.start : stage.stop] == i)
        assert np.all(g.dst[stage.edge_slice] >= stage.start)
        assert np.all(g.dst[stage.edge_slice] < stage.stop)
    conv2 = g.stage_named("conv2")
    assert np.array_equal(g.node_map[conv2.start : conv2.stop], np.repeat(np.arange(16), 100))
    assert np.all(g.node_map[g.stage_named("dense1").start :] == 0)


def test_build_cnn_graph_is_fast():
    model = cnn_model()
    build_graph(model)
    best = min(_timed(build_graph, model) for _ in range(3))
    assert best < 0.5, f"build_graph took {best:.3f} s"


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def test_in_degrees(cnn, mlp):
    _, g = cnn
    assert incoming(g, g.stage_named("conv1").start).size == 25
    assert incoming(g, g.stage_named("conv2").start).size == 150
    assert incoming(g, g.stage_named("pool1").start).size == 4
    assert incoming(g, g.stage_named("dense1").start).size == 400
    assert incoming(g, g.node_count - 1).size == 100
    assert incoming(g, 0).size == 0
    _, g = mlp
    assert incoming(g, 784).size == 784
    with pytest.raises(IndexError):
        incoming(g, g.node_count)


def test_small_conv_edges_by_hand():
    """3x3 input, 2x2 kernel: output (0, 0) reads pixels 0, 1, 3, 4 with W[0, 0, i, j]."""
    model = random_model([1, 3, 3], [conv(1, 1, 2)], seed=9)
    g = build_graph(model)
    w = model.layers[0].weight[0, 0]
    e = incoming(g, 9)  # output (0, 0, 0)
    assert g.src[e].tolist() == [0, 1, 3, 4]
    np.testing.assert_array_equal(g.weight[e], [w[0, 0], w[0, 1], w[1, 0], w[1, 1]])
    e = incoming(g, 9 + 1)  # output (0, 0, 1)
    assert g.src[e].tolist() == [1, 2, 4, 5]


def test_small_dense_edges_by_hand():
    model = random_model([3], [dense(3, 2)], seed=9)
    g = build_graph(model)
    w = model.layers[0].weight  # (out, in)
    for o in range(2):
        e = incoming(g, 3 + o)
        assert g.src[e].tolist() == [0, 1, 2]
        np.testing.assert_array_equal(g.weight[e], w[o])


def test_padding_drops_edges():
    model = random_model([1, 4, 4], [conv(1, 2, 3, padding=1)], seed=2)
    g = build_graph(model)
    assert incoming(g, 16).size == 4  # corner (0, 0, 0): 2x2 of the 3x3 taps inside
    assert incoming(g, 16 + 5).size == 9  # inner (0, 1, 1)
    assert incoming(g, 16 + 1).size == 6  # edge (0, 0, 1)


def test_2d_input_shape_is_one_channel_map():
    g = build_graph(ODD_MODELS["mlp_2d_input"]())
    assert g.stages[0].shape == (1, 6, 5)


def test_too_many_edges_is_a_clear_error():
    with pytest.raises(GraphError, match="too large to draw"):
        build_graph(cnn_model(), max_edges=1000)


# --- the edges reproduce the forward pass -----------------------------------------------------

_NONLINEAR = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softmax": lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
}


def recompute_stage(g, model, values, stage):
    """A stage's values from its incoming edges alone: sum (or max) of weight * source value."""
    cut = stage.edge_slice
    local = g.dst[cut] - stage.start
    terms = g.weight[cut].astype(np.float64) * values[g.src[cut]]
    if stage.op == "maxpool2d":
        pre = np.full(stage.size, -np.inf)
        np.maximum.at(pre, local, terms)
    else:
        pre = np.bincount(local, weights=terms, minlength=stage.size)
    bias = model.layers[stage.layer].bias
    if bias is not None:
        index = g.node_map[stage.start : stage.stop] if stage.op == "conv2d" else slice(None)
        pre = pre + bias[index]
    out = pre
    for name in stage.activations:
        out = _NONLINEAR[name](out)
    return pre, out


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_edges_reproduce_forward(name):
    model = ALL_MODELS[name]()
    g = build_graph(model)
    for seed in (1, 2):
        acts = forward(model, sample_input(model, seed))
        values = node_values(g, acts).astype(np.float64)
        for stage in g.stages[1:]:
            pre, out = recompute_stage(g, model, values, stage)
            want_pre = np.asarray(acts[stage.layer + 1]).ravel()
            np.testing.assert_allclose(pre, want_pre, atol=2e-5, err_msg=stage.name)
            np.testing.assert_allclose(
                out, values[stage.start : stage.stop], atol=2e-5, err_msg=stage.name
            )


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_weighted_input_matches_forward(name):
    model = ALL_MODELS[name]()
    g = build_graph(model)
    acts = forward(model, sample_input(model))
    rng = np.random.default_rng(0)
    for stage in g.stages[1:]:
        pre = np.asarray(acts[stage.layer + 1]).ravel()
        for node in rng.integers(stage.start, stage.stop, 5):
            assert weighted_input(g, model, node, acts) == pytest.approx(
                float(pre[node - stage.start]), abs=2e-5
            )
    values = node_values(g, acts)
    assert weighted_input(g, model, 0, acts) == pytest.approx(float(values[0]))


def test_node_bias(cnn):
    model, g = cnn
    conv2 = g.stage_named("conv2")
    node = conv2.start + 3 * 100 + 17  # map 3
    assert node_bias(g, model, node) == pytest.approx(float(model.layers[3].bias[3]))
    dense1 = g.stage_named("dense1")
    assert node_bias(g, model, dense1.start + 7) == pytest.approx(float(model.layers[7].bias[7]))
    assert node_bias(g, model, g.stage_named("pool1").start) == 0.0
    assert node_bias(g, model, 5) == 0.0


# --- values -----------------------------------------------------------------------------------


def test_node_values_single_and_batch(cnn):
    model, g = cnn
    x = np.random.default_rng(0).random((3, 1, 32, 32)).astype(np.float32)
    single = node_values(g, forward(model, x[1]))
    batch = node_values(g, forward(model, x))
    assert single.shape == (g.node_count,) and single.dtype == np.float32
    assert batch.shape == (3, g.node_count)
    np.testing.assert_allclose(batch[1], single, atol=1e-6)
    np.testing.assert_array_equal(single[:1024], x[1].ravel())
    acts = forward(model, x[1])
    np.testing.assert_array_equal(single[-10:], acts[-1])
    with pytest.raises(ValueError, match="stage"):
        node_values(g, acts[:1] + [a[:1] for a in acts[1:]])


# --- selection and tracing --------------------------------------------------------------------


def _check_topk(g, chosen, score, k):
    """Every node keeps min(k, in-degree) edges, and none left out beats one kept."""
    keep = np.zeros(g.edge_count, dtype=bool)
    keep[chosen] = True
    indeg = np.bincount(g.dst, minlength=g.node_count)
    kept = np.bincount(g.dst[chosen], minlength=g.node_count)
    np.testing.assert_array_equal(kept, np.minimum(indeg, k))
    low_kept = np.full(g.node_count, np.inf)
    np.minimum.at(low_kept, g.dst[keep], score[keep])
    high_dropped = np.full(g.node_count, -np.inf)
    np.maximum.at(high_dropped, g.dst[~keep], score[~keep])
    assert np.all(low_kept >= high_dropped)


@pytest.mark.parametrize("name", ["cnn", "mlp", "conv_chain_rgb", "stride2_pad1_avgpool"])
def test_select_topk(name):
    g = build_graph(ALL_MODELS[name]())
    for k in (1, 3, 8, 200):
        chosen = select_edges(g, "topk", k=k)
        assert chosen.dtype == np.int64 and np.all(np.diff(chosen) > 0)
        _check_topk(g, chosen, np.abs(g.weight), k)
        np.testing.assert_array_equal(chosen, _reference_topk(g.dst, np.abs(g.weight), k))


def _reference_topk(dst, score, k):
    """The plain way: one stable sort by (dst, -score), keep each run's first k."""
    order = np.lexsort((-score, dst))
    rank = np.arange(dst.size) - np.searchsorted(dst, dst[order])
    return np.sort(order[rank < k])


def test_select_all_none_and_errors(mlp):
    _, g = mlp
    assert np.array_equal(select_edges(g, "all"), np.arange(g.edge_count))
    assert select_edges(g, "none").size == 0 and select_edges(g, "none").dtype == np.int64
    with pytest.raises(ValueError):
        select_edges(g, "strongest")
    with pytest.raises(ValueError, match="values"):
        select_edges(g, "contribution")


def test_topk_ties_are_deterministic():
    """Average pooling: all weights equal, so the lowest edge indices win."""
    model = random_model([1, 4, 4], [{"type": "avgpool2d", "kernel_size": 2}])
    g = build_graph(model)
    chosen = select_edges(g, "topk", k=2)
    for node in range(16, 20):
        assert chosen[np.isin(chosen, incoming(g, node))].tolist() == incoming(g, node)[:2].tolist()
    ties = np.zeros(12, dtype=np.float32)
    assert _topk_per_dst(np.repeat(np.arange(3), 4), ties, 2).tolist() == [0, 1, 4, 5, 8, 9]


def test_select_contribution(cnn):
    model, g = cnn
    values = node_values(g, forward(model, sample_input(model)))
    chosen = select_edges(g, "contribution", k=5, values=values)
    score = edge_scores(g, values)
    _check_topk(g, chosen, score, 5)
    dense1 = g.stage_named("dense1")
    e = incoming(g, dense1.start + 4)
    brute = e[np.argsort(-np.abs(g.weight[e] * values[g.src[e]]), kind="stable")[:5]]
    assert sorted(brute.tolist()) == chosen[np.isin(chosen, e)].tolist()


def test_trace_down_to_input(cnn):
    model, g = cnn
    values = node_values(g, forward(model, sample_input(model)))
    start = g.node_count - 3
    nodes, edges = trace(g, values, start, per_node=2)
    assert nodes.dtype == edges.dtype == np.int64
    assert start in nodes and np.all(np.diff(nodes) > 0) and np.all(np.diff(edges) > 0)
    assert set(np.unique(g.node_stage[nodes]).tolist()) == set(range(len(g.stages)))
    assert np.all(np.isin(g.src[edges], nodes)) and np.all(np.isin(g.dst[edges], nodes))
    # every traced non-input node keeps its 2 strongest contributions, and only those
    score = edge_scores(g, values)
    for node in nodes[g.node_stage[nodes] > 0]:
        e = incoming(g, node)
        best = e[np.argsort(-score[e], kind="stable")[:2]]
        assert sorted(best.tolist()) == edges[np.isin(edges, e)].tolist()
    first = incoming(g, start)
    picked = edges[np.isin(edges, first)]
    contrib = np.abs(g.weight[first] * values[g.src[first]])
    assert set(picked.tolist()) == set(first[np.argsort(-contrib)[:2]].tolist())


def test_trace_through_maxpool_follows_the_max(cnn):
    model, g = cnn
    values = node_values(g, forward(model, sample_input(model)))
    pool1 = g.stage_named("pool1")
    node = pool1.start + 50
    nodes, edges = trace(g, values, node, per_node=1)
    e = incoming(g, node)
    winner = g.src[e][np.argmax(values[g.src[e]])]
    assert edges[np.isin(edges, e)].size == 1
    assert g.src[edges[np.isin(edges, e)][0]] == winner
    assert nodes.size == 3  # the pool node, the conv1 winner, its strongest input pixel


def test_trace_from_input_node(mlp):
    model, g = mlp
    values = node_values(g, forward(model, sample_input(model)))
    nodes, edges = trace(g, values, 5)
    assert nodes.tolist() == [5] and edges.size == 0

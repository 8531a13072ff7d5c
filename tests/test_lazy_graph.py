"""A lazy graph (connections computed on demand) answers every question exactly as the
materialised graph of the same model does."""

from __future__ import annotations

import numpy as np
import pytest
from test_graph import ALL_MODELS, sample_input

from nnviz_blender.core import graph as core_graph
from nnviz_blender.core.forward import forward
from nnviz_blender.core.graph import (
    GraphError,
    build_graph,
    edge_scores,
    edges_at,
    edges_into,
    incoming,
    node_values,
    select,
    select_edges,
    strongest,
    trace,
    weight_percentiles,
    weighted_input,
)
from nnviz_blender.core.inspect import describe


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of a few thousand connections: every query spans many chunks."""
    monkeypatch.setattr(core_graph, "CHUNK_EDGES", 5000)


def pair(name):
    model = ALL_MODELS[name]()
    full = build_graph(model)
    lazy = build_graph(model, materialise=0)
    assert not full.lazy and lazy.lazy
    return model, full, lazy


def same(a, b):
    for x, y in zip(
        (a.index, a.src, a.dst, a.weight), (b.index, b.src, b.dst, b.weight), strict=True
    ):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_lazy_connections_equal_the_materialised_ones(name):
    model, full, lazy = pair(name)
    assert lazy.stages == full.stages and lazy.edge_count == full.edge_count
    with pytest.raises(GraphError, match="on demand"):
        lazy.src  # noqa: B018
    everything = edges_into(lazy, np.arange(lazy.node_count))
    np.testing.assert_array_equal(everything.index, np.arange(full.edge_count))
    same(everything, edges_into(full, np.arange(full.node_count)))
    np.testing.assert_array_equal(everything.src, full.src)
    rng = np.random.default_rng(0)
    index = rng.integers(0, full.edge_count, 200)
    same(edges_at(lazy, index), edges_at(full, index))
    np.testing.assert_array_equal(edges_at(full, index).dst, full.dst[index])
    for node in rng.integers(0, full.node_count, 20):
        np.testing.assert_array_equal(incoming(lazy, node), incoming(full, node))


@pytest.mark.parametrize("name", ["cnn", "mlp", "stride2_pad1_avgpool", "conv_chain_rgb"])
def test_lazy_selection_trace_and_inspect(name):
    model, full, lazy = pair(name)
    acts = forward(model, sample_input(model))
    values = node_values(full, acts)
    for k in (1, 3):
        same(select(lazy, "topk", k), select(full, "topk", k))
        same(select(lazy, "contribution", k, values), select(full, "contribution", k, values))
    np.testing.assert_array_equal(select_edges(lazy, "topk", 2), select_edges(full, "topk", 2))
    assert select_edges(lazy, "none").size == 0
    with pytest.raises(GraphError, match="too many"):
        select(lazy, "all")
    index = np.arange(0, full.edge_count, 7)
    np.testing.assert_array_equal(
        edge_scores(lazy, values, index), edge_scores(full, values)[index]
    )
    for node in (full.node_count - 1, full.stages[1].start + 5, full.stages[-2].start):
        for got, want in zip(
            trace(lazy, values, node, 2), trace(full, values, node, 2), strict=True
        ):
            np.testing.assert_array_equal(got, want)
        assert weighted_input(lazy, model, node, acts) == weighted_input(full, model, node, acts)
        a, b = describe(model, lazy, acts, node), describe(model, full, acts, node)
        assert a.formula == b.formula and a.terms == b.terms


def check_strongest(model, full, lazy, values, budgets=(1, 50, 1000)):
    for vals in (None, values):
        score = edge_scores(full, vals)
        for budget in budgets:
            for graph in (lazy, full):
                got = strongest(graph, budget, vals)
                assert len(got) == min(budget, full.edge_count)
                assert np.all(np.diff(got.index) > 0)
                same(got, edges_at(full, got.index))
                cut = np.sort(score)[::-1][min(budget, full.edge_count) - 1]
                assert score[got.index].min() >= cut  # nothing left out beats what is kept
                assert np.sum(score > cut) <= budget


@pytest.mark.parametrize("name", ["cnn", "conv_chain_rgb", "stride2_pad1_avgpool"])
def test_strongest_is_a_global_budget(name):
    model, full, lazy = pair(name)
    values = node_values(full, forward(model, sample_input(model)))
    check_strongest(model, full, lazy, values)
    assert len(strongest(lazy, 0)) == 0
    assert len(strongest(lazy, full.edge_count + 5)) == full.edge_count


@pytest.mark.parametrize("seed", range(1, 30, 4))
def test_strongest_on_random_onnx_graphs(tmp_path, seed):
    """Grouped, dilated, strided convs with asymmetric padding among every other kind."""
    onnx = pytest.importorskip("onnx")
    from test_onnx_graphs import random_graph

    from nnviz_blender.core.modelfile import load_model

    path = tmp_path / "r.onnx"
    onnx.save(random_graph(seed), str(path))
    model = load_model(path)
    full, lazy = build_graph(model), build_graph(model, materialise=0)
    x = np.random.default_rng(seed).random(model.input_shape, dtype=np.float32)
    values = node_values(full, forward(model, x))
    check_strongest(model, full, lazy, values, budgets=(3, 200, full.edge_count // 2))
    np.testing.assert_allclose(weight_percentiles(lazy), weight_percentiles(full), rtol=1e-6)
    for k in (1, 3, 50):
        same(select(lazy, "topk", k), select(full, "topk", k))


def test_big_model_builds_lazily_without_connections(big_onnx):
    """The PyTorch example network: stages and counts, no edge arrays; the 8 strongest inputs
    of a node of every stage are computed on demand."""
    from nnviz_blender.core.modelfile import load_model

    model = load_model(big_onnx("ptex"))
    graph = build_graph(model, materialise=1_000_000)
    assert graph.lazy and graph.edge_src.size == 0
    convs = 32 * 26 * 26 * 9 + 64 * 24 * 24 * 32 * 9
    assert graph.edge_count == convs + 9216 * 4 + 9216 * 128 + 1280
    acts = forward(model, np.random.default_rng(0).random(model.input_shape, dtype=np.float32))
    for stage in graph.stages[1:]:
        node = stage.start + stage.size // 2
        info = describe(model, graph, acts, node)
        assert info.n_inputs == stage.edge_count // stage.size or stage.op == "conv2d"
        want = np.asarray(acts[stage.layer + 1]).ravel()[stage.size // 2]
        assert info.weighted_input == pytest.approx(float(want), rel=1e-4, abs=1e-4)


def test_trace_with_a_cap_per_stage_keeps_whole_paths():
    model, full, lazy = pair("cnn")
    values = node_values(full, forward(model, sample_input(model)))
    start = full.node_count - 2
    free = trace(lazy, values, start, per_node=3)
    for cap in (1, 4, 30):
        nodes, edges = trace(lazy, values, start, per_node=3, max_per_stage=cap)
        assert np.all(np.bincount(full.node_stage[nodes]) <= max(cap, 1))
        assert set(nodes.tolist()) <= set(free[0].tolist())
        assert set(edges.tolist()) <= set(free[1].tolist())
        e = edges_at(full, edges)
        assert np.all(np.isin(e.src, nodes)) and np.all(np.isin(e.dst, nodes))
        assert full.node_stage[nodes].min() == 0  # the paths reach the input
    same_cap = trace(lazy, values, start, per_node=3, max_per_stage=10**6)
    for got, want in zip(same_cap, free, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_weight_percentiles_without_connections(name):
    _, full, lazy = pair(name)
    for q in (99.0, 50.0, 0.0, 100.0):
        want = [
            np.percentile(np.abs(full.weight[s.edge_slice]), q) if s.edge_count else 0.0
            for s in full.stages
        ]
        np.testing.assert_allclose(weight_percentiles(lazy, q), want, rtol=1e-6)
        np.testing.assert_allclose(weight_percentiles(full, q), want, rtol=1e-6)

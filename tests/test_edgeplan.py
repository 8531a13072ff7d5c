"""Which connections are drawn one by one and which as bundles (core.edgeplan)."""

from __future__ import annotations

import numpy as np
import pytest
from test_graph import cnn_model

from nnviz_blender.core import edgeplan
from nnviz_blender.core import graph as core_graph


@pytest.fixture(scope="module")
def graph():
    return core_graph.build_graph(cnn_model())


def test_a_network_within_the_budget_is_drawn_as_always(graph):
    for mode, k in (("all", 8), ("topk", 3)):
        drawn = edgeplan.plan(graph, mode, k)
        assert drawn.bundled == () and drawn.per_node == 0
        np.testing.assert_array_equal(drawn.edges.index, core_graph.select_edges(graph, mode, k))
    assert len(edgeplan.plan(graph, "none").edges) == 0


def test_the_biggest_stages_are_bundled_until_the_rest_fit(graph):
    counts = [s.edge_count for s in graph.stages]
    budget = graph.edge_count - 1
    small = sorted(counts)[-3]  # the rest must fit under what the third biggest leaves
    bundled = edgeplan.bundled_stages(graph, budget, small)
    assert bundled and set(bundled) == set(np.argsort(counts)[::-1][: len(bundled)])
    rest = sum(c for i, c in enumerate(counts) if i not in bundled)
    assert rest <= small < rest + min(counts[i] for i in bundled)


@pytest.mark.parametrize("mode", ["all", "topk"])
def test_bundled_stages_keep_their_strongest_connections_within_the_budget(graph, mode):
    counts = [s.edge_count for s in graph.stages]
    biggest = int(np.argmax(counts))
    stage = graph.stages[biggest]
    others = core_graph.select(graph, mode, 4)
    others = others.take(graph.node_stage[others.dst] != biggest)
    # bundling goes by all connections; the room left goes to the biggest stage's nodes
    limit = graph.edge_count - counts[biggest] + 2 * stage.size
    drawn = edgeplan.plan(graph, mode, 4, graph.edge_count - 1, limit)
    per_node = min((limit - len(others)) // stage.size, 4)
    assert drawn.bundled == (biggest,) and drawn.per_node == per_node >= 2
    e = drawn.edges
    assert np.all(np.diff(e.index) > 0)  # index order, no repeats
    into = graph.node_stage[e.dst] == biggest
    assert into.sum() == per_node * stage.size
    want = core_graph.strongest_into(graph, np.arange(stage.start, stage.stop), per_node)
    np.testing.assert_array_equal(e.index[into], want.index)
    np.testing.assert_array_equal(e.index[~into], others.index)
    assert len(e) <= limit

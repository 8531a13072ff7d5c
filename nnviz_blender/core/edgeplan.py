"""Which connections are drawn one by one and which as bundles.

Every connection is shown one way or the other. A network whose connections fit EDGE_BUDGET is
drawn as it always was: the edge mode picks the curves (all, the strongest k per node, ...) and
there are no bundles. Above it, the stages with the most connections are bundled, biggest first,
until the connections of the other stages fit BUNDLED_BUDGET (every curve drawn is evaluated on
every update, so this bounds the update): a bundled stage shows one bundle per
(source block -> destination block) (core.bundles) and, on top, as many of its strongest
connections per node as the budget leaves room for (at least one per node when that fits).
The decision goes by connection counts alone, so it is the same for every input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import graph as core_graph
from .graph import Edges, Graph

EDGE_BUDGET = core_graph.MATERIALISE_EDGES  # networks up to this draw every connection as always
BUNDLED_BUDGET = 100_000  # connections drawn one by one in a network with bundles


@dataclass(frozen=True, eq=False)
class EdgePlan:
    edges: Edges  # the connections drawn one by one
    bundled: tuple[int, ...]  # stages whose connections are (also) drawn as bundles
    per_node: int  # strongest connections per node drawn in the bundled stages (0: none)


def bundled_stages(
    graph: Graph, budget: int | None = None, bundled_budget: int | None = None
) -> tuple[int, ...]:
    """No stage if all connections fit `budget` (EDGE_BUDGET); else the biggest stages (by
    connection count) until the rest fit `bundled_budget` (BUNDLED_BUDGET)."""
    counts = np.array([s.edge_count for s in graph.stages], np.int64)
    if counts.sum() <= (EDGE_BUDGET if budget is None else budget):
        return ()
    budget = BUNDLED_BUDGET if bundled_budget is None else bundled_budget
    bundled = []
    left = int(counts.sum())
    for i in np.argsort(-counts, kind="stable"):
        if left <= budget:
            break
        bundled.append(int(i))
        left -= int(counts[i])
    return tuple(sorted(bundled))


def plan(
    graph: Graph,
    mode: str,
    k: int = 8,
    budget: int | None = None,
    bundled_budget: int | None = None,
) -> EdgePlan:
    """The edges to draw for an edge `mode` ("all", "topk", "none"; see graph.select) and the
    stages to bundle."""
    if mode == "none":
        return EdgePlan(core_graph.NO_EDGES, (), 0)
    bundled = bundled_stages(graph, budget, bundled_budget)
    budget = BUNDLED_BUDGET if bundled_budget is None else bundled_budget
    if not bundled:
        return EdgePlan(core_graph.select(graph, mode, k), (), 0)
    plain = [i for i in range(1, len(graph.stages)) if i not in bundled]
    nodes = _nodes(graph, plain)
    if mode == "all":
        drawn = core_graph.edges_into(graph, nodes)
    else:
        drawn = core_graph.strongest_into(graph, nodes, k)
    heavy = _nodes(graph, bundled)
    room = max(budget - len(drawn), 0)
    per_node = min(room // max(heavy.size, 1), k if mode == "topk" else room)
    extra = core_graph.strongest_into(graph, heavy, per_node) if per_node else core_graph.NO_EDGES
    joined = Edges.join([drawn, extra])
    return EdgePlan(joined.take(np.argsort(joined.index, kind="stable")), bundled, per_node)


def _nodes(graph: Graph, stages) -> np.ndarray:
    parts = [np.arange(graph.stages[i].start, graph.stages[i].stop) for i in stages]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)

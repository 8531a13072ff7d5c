"""The node-link graph of a model: one node per neuron, one edge per connection.

A *stage* is one row or sheet of nodes, the activation the viewer sees: the input, and every
layer that computes something new (dense, conv, pool, global pool, affine/mul, add, concat),
shown *after* the elementwise layers (relu, tanh, softmax, ...) that directly follow it when
nothing else reads its raw output (so "conv1" shows tanh(conv)); the input likewise absorbs
elementwise layers right after it, so a stage always shows exactly what the next layers read.
An elementwise layer whose input something else also reads gets a stage of its own ("act", one
edge of weight 1 from each source node). Flatten makes no stage: the next dense layer reads the
previous stage's nodes in flattened (C, H, W) order, which is exactly how the nodes are numbered.
In a graph model a stage may read several stages (`sources`): add and concat do.

Edges are built vectorised, sorted by destination node, and carry the real weight: the kernel tap
for conv (only within its group for grouped/depthwise conv; a folded batch norm is already in the
weights), 1 for max pooling, 1/(window count) for average pooling, 1/(H*W) for global pooling, the
per-channel scale for affine, 1 for add (one edge from each operand) and concat (channels mapped
through). Summing weight * source value over a node's incoming edges (plus bias) therefore
reproduces the forward pass, as the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .modelfile import ELEMENTWISE, POOLS, SOFTMAXES, Layer, Model, ModelError

MAX_EDGES = 20_000_000
STAGE_KINDS = ("input", "conv", "pool", "dense", "affine", "add", "concat", "act", "output")
_ELEMENTWISE_ALL = (*ELEMENTWISE, *SOFTMAXES)  # layers whose output the current stage shows
_KINDS = {
    "dense": "dense",
    "conv2d": "conv",
    "maxpool2d": "pool",
    "avgpool2d": "pool",
    "global_avgpool": "pool",
    "affine": "affine",
    "mul": "affine",
    "add": "add",
    "concat": "concat",
}


class GraphError(ModelError):
    """A model whose graph cannot be built (e.g. far too many connections to draw)."""


@dataclass(frozen=True)
class Stage:
    """One row or sheet of nodes: one activation shown."""

    name: str  # "input", "conv1", "pool1", "dense1", "add1", ..., "output"
    kind: str  # one of STAGE_KINDS
    act_index: int  # index into forward()'s activation list whose values the nodes show
    shape: tuple[int, ...]  # (C, H, W) or (n,)
    start: int  # global index of the first node
    size: int  # node count = prod(shape); nodes are the activation flattened row-major
    layer: int = -1  # index of the layer that makes it (-1 for the input)
    op: str = ""  # that layer's type: "dense", "conv2d", "maxpool2d", "add", ... ("" for input)
    activations: tuple[str, ...] = ()  # elementwise layers applied after it, e.g. ("tanh",)
    edge_start: int = 0  # first of the edges ending in this stage (edges are sorted by dst)
    edge_count: int = 0  # number of edges ending in this stage
    sources: tuple[int, ...] = ()  # indices of the stages its edges come from, in input order

    @property
    def stop(self) -> int:
        """One past the global index of the last node."""
        return self.start + self.size

    @property
    def is_map(self) -> bool:
        """True for stages made of 2-D feature maps (shape (C, H, W))."""
        return len(self.shape) == 3

    @property
    def edge_slice(self) -> slice:
        """The edges ending in this stage, as a slice of src/dst/weight."""
        return slice(self.edge_start, self.edge_start + self.edge_count)


@dataclass(frozen=True, eq=False)
class Graph:
    """All nodes and all connections of a model; arrays are read-only."""

    stages: tuple[Stage, ...]
    node_count: int
    node_stage: np.ndarray  # int32 (N,) stage index of each node
    node_map: np.ndarray  # int32 (N,) channel / feature-map index (0 for flat stages)
    src: np.ndarray  # int32 (E,) source node of each connection, sorted by dst
    dst: np.ndarray  # int32 (E,) destination node, ascending
    weight: np.ndarray  # float32 (E,) the real weight of each connection

    @property
    def edge_count(self) -> int:
        return int(self.src.size)

    def stage_of(self, node: int) -> Stage:
        """The stage a node belongs to."""
        return self.stages[int(self.node_stage[_check_node(self, node)])]

    def stage_named(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name!r} (stages: {[s.name for s in self.stages]})")


# --- stages -----------------------------------------------------------------------------------


def _as_stage_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(H, W) inputs are one-channel maps."""
    return (1, *shape) if len(shape) == 2 else tuple(shape)


def _readers(model: Model) -> list[int]:
    """How many layers read each activation (the model's output counts as read once more)."""
    count = [0] * (len(model.layers) + 1)
    for layer in model.layers:
        for j in layer.inputs:
            count[j] += 1
    count[-1] += 1
    return count


def _plan_stages(model: Model) -> list[dict]:
    """The stages as plain dicts (before node and edge offsets are known).

    Each plan keeps `alias`: the activations that hold its current values (the one shown and
    flattened views of it), which is how later layers find the stage they read.
    """
    stages: list[dict] = [
        dict(name="input", kind="input", act_index=0, layer=-1, op="", activations=[], sources=[])
    ]
    stages[0]["shape"] = _as_stage_shape(model.input_shape)
    stages[0]["alias"] = {0}
    shown = {0: 0}  # activation -> stage showing its values
    readers = _readers(model)
    counts = dict.fromkeys(STAGE_KINDS, 0)
    for layer in model.layers:
        out = layer.index + 1
        source = shown.get(layer.inputs[0])
        if layer.type == "flatten" and source is not None:
            stages[source]["alias"].add(out)  # same values in the same order
            shown[out] = source
            continue
        if layer.type in _ELEMENTWISE_ALL and source is not None:
            plan = stages[source]
            alias = plan["alias"]
            flattens = sum(1 for j in alias if j != plan["act_index"])
            if sum(readers[j] for j in alias) - flattens == 1:  # nothing else reads the raw values
                for j in alias:
                    shown.pop(j, None)
                plan.update(act_index=out, alias={out})
                plan["activations"].append(layer.type)
                shown[out] = source
                continue
        kind = _KINDS.get(layer.type, "act")
        counts[kind] += 1
        stages.append(
            dict(
                name=f"{kind}{counts[kind]}",
                kind=kind,
                act_index=out,
                layer=layer.index,
                op=layer.type,
                activations=[] if kind != "act" else [layer.type],
                shape=_as_stage_shape(layer.out_shape),
                sources=[shown[j] for j in layer.inputs],
                alias={out},
            )
        )
        shown[out] = len(stages) - 1
    if len(stages) > 1:
        stages[-1].update(name="output", kind="output")
    return stages


# --- edges of one stage -----------------------------------------------------------------------


def _window_taps(
    n_out: int, k: int, s: int, p: int, n_in: int, d: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinate y*s - p + i*d of tap i for each output y -> (n_out, k), and validity."""
    coord = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
    return coord, (coord >= 0) & (coord < n_in)


def _window(layer: Layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple]:
    p = layer.params
    top, left = p["pads"][:2]
    dil = tuple(p.get("dilation", (1, 1)))
    return tuple(p["kernel_size"]), tuple(p["stride"]), (top, left), dil  # type: ignore[return-value]


def _valid_taps(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    (_, h, w), (_, ho, wo) = layer.in_shape, layer.out_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(layer)
    rows, row_ok = _window_taps(ho, kh, sh, ph, h, dh)  # (Ho, kh)
    cols, col_ok = _window_taps(wo, kw, sw, pw, w, dw)  # (Wo, kw)
    return rows, row_ok, cols, col_ok


def _edge_count(layer: Layer) -> int:
    t = layer.type
    if t == "dense":
        return int(layer.w.size)
    if t in ("conv2d", *POOLS):
        _, row_ok, _, col_ok = _valid_taps(layer)
        c_factor = layer.out_shape[0] * (layer.w.shape[1] if t == "conv2d" else 1)
        return c_factor * int(row_ok.sum()) * int(col_ok.sum())
    if t == "global_avgpool":
        return int(np.prod(layer.in_shape))
    if t == "add":
        return len(layer.inputs) * int(np.prod(layer.out_shape))
    return int(np.prod(layer.out_shape))  # one edge per node: affine, mul, concat, elementwise


def _window_edges(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local (src, dst, weight) of a conv or pool layer, grouped by destination node.

    Output node (o, y, x) reads input nodes (c, y*s - p + i*d, x*s - p + j*d): the input
    channels of its group for conv (every channel without groups), only its own channel (c = o)
    for pooling. Taps in the padding are dropped.
    """
    c_in, h, w = layer.in_shape
    c_out, ho, wo = layer.out_shape
    (kh, kw) = layer.params["kernel_size"]
    rows, row_ok, cols, col_ok = _valid_taps(layer)
    conv = layer.type == "conv2d"
    # axes (o, y, x, c, i, j); pooling has a single c per o (its own channel)
    cg = layer.w.shape[1] if conv else 1
    shape = (c_out, ho, wo, cg, kh, kw)
    if conv:
        first = (np.arange(c_out) // (c_out // layer.params.get("groups", 1))) * cg
        ch = first.reshape(c_out, 1, 1, 1, 1, 1) + np.arange(cg).reshape(1, 1, 1, cg, 1, 1)
    else:
        ch = np.arange(c_out).reshape(c_out, 1, 1, 1, 1, 1)
    r = rows[None, :, None, None, :, None]
    q = cols[None, None, :, None, None, :]
    src = ch * (h * w) + r * w + q
    ok = np.broadcast_to(
        row_ok[None, :, None, None, :, None] & col_ok[None, None, :, None, None, :], shape
    )
    dst = np.broadcast_to(np.arange(c_out * ho * wo).reshape(c_out, ho, wo, 1, 1, 1), shape)
    if conv:
        weight = np.broadcast_to(layer.w[:, None, None, :, :, :], shape)
    elif layer.type == "maxpool2d":
        weight = np.ones(shape, dtype=np.float32)
    else:
        count = ok.sum(axis=(3, 4, 5), keepdims=True)
        if layer.params.get("count_include_pad", True):
            count = np.full_like(count, kh * kw)
        weight = np.broadcast_to((1.0 / count).astype(np.float32), shape)
    src = np.broadcast_to(src, shape)
    return src[ok], dst[ok], weight[ok]


def _dense_edges(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local (src, dst, weight) of a dense layer: out x in edges, weight[o, i] from i to o."""
    n_out, n_in = layer.w.shape
    src = np.tile(np.arange(n_in), n_out)
    dst = np.repeat(np.arange(n_out), n_in)
    return src, dst, layer.w.ravel()


def _channel_weights(layer: Layer, values: np.ndarray) -> np.ndarray:
    """A per-channel vector spread over every node of the layer's output (C, H, W) or (n,)."""
    per = int(np.prod(layer.out_shape[1:])) if len(layer.out_shape) == 3 else 1
    return np.repeat(np.asarray(values, np.float32), per)


def _layer_edges(layer: Layer, sources: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global-source, local-destination (src, dst, weight) of one stage's layer.

    `sources` are the first node of each input's stage, in the layer's input order.
    """
    t = layer.type
    n = int(np.prod(layer.out_shape))
    if t == "dense":
        s, d, w = _dense_edges(layer)
        return s + sources[0], d, w
    if t in ("conv2d", *POOLS):
        s, d, w = _window_edges(layer)
        return s + sources[0], d, w
    if t == "global_avgpool":
        c, h, wd = layer.in_shape
        s = np.arange(c * h * wd)
        return s + sources[0], s // (h * wd), np.full(s.size, 1.0 / (h * wd), np.float32)
    if t == "add":  # one edge from each operand, grouped by destination
        s = np.arange(n)[:, None] + np.asarray(sources)[None, :]
        return s.ravel(), np.repeat(np.arange(n), len(sources)), np.ones(s.size, np.float32)
    if t == "concat":  # channels mapped through, in input order
        parts = [
            np.arange(int(np.prod(shape))) + start
            for shape, start in zip(layer.in_shapes, sources, strict=True)
        ]
        return np.concatenate(parts), np.arange(n), np.ones(n, np.float32)
    if t == "affine":
        return np.arange(n) + sources[0], np.arange(n), _channel_weights(layer, layer.w)
    if t == "mul":
        return (
            np.arange(n) + sources[0],
            np.arange(n),
            np.full(n, layer.params["factor"], np.float32),
        )
    return np.arange(n) + sources[0], np.arange(n), np.ones(n, np.float32)  # elementwise


# --- the graph --------------------------------------------------------------------------------


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.flags.writeable = False
    return a


def stage_sizes(model: Model) -> list[int]:
    """Nodes per stage of the model's graph, input first (without building its edges)."""
    return [int(np.prod(p["shape"])) for p in _plan_stages(model)]


def build_graph(model: Model, max_edges: int = MAX_EDGES) -> Graph:
    """Every node and every connection of a model.

    Raises GraphError before allocating anything when the model has more than `max_edges`
    connections (weight sharing makes conv layers on large images explode).
    """
    plan = _plan_stages(model)
    layers = {layer.index: layer for layer in model.layers}
    counts = [_edge_count(layers[p["layer"]]) if p["layer"] >= 0 else 0 for p in plan]
    if sum(counts) > max_edges:
        raise GraphError(
            f"network too large to draw: {sum(counts):,} connections (limit {max_edges:,})"
        )

    stages: list[Stage] = []
    node_start = edge_start = 0
    for p, n_edges in zip(plan, counts, strict=True):
        size = int(np.prod(p["shape"]))
        stages.append(
            Stage(
                name=p["name"],
                kind=p["kind"],
                act_index=p["act_index"],
                shape=tuple(int(v) for v in p["shape"]),
                start=node_start,
                size=size,
                layer=p["layer"],
                op=p["op"],
                activations=tuple(p["activations"]),
                edge_start=edge_start,
                edge_count=n_edges,
                sources=tuple(p["sources"]),
            )
        )
        node_start += size
        edge_start += n_edges

    src = np.empty(edge_start, dtype=np.int32)
    dst = np.empty(edge_start, dtype=np.int32)
    weight = np.empty(edge_start, dtype=np.float32)
    for stage in stages[1:]:
        starts = [stages[k].start for k in stage.sources]
        s, d, w = _layer_edges(layers[stage.layer], starts)
        cut = stage.edge_slice
        src[cut], dst[cut], weight[cut] = s, d + stage.start, w

    return Graph(
        stages=tuple(stages),
        node_count=node_start,
        node_stage=_node_stages(stages),
        node_map=_readonly(np.concatenate([_node_maps(s) for s in stages]), np.int32),
        src=_readonly(src, np.int32),
        dst=_readonly(dst, np.int32),
        weight=_readonly(weight, np.float32),
    )


def _node_maps(stage: Stage) -> np.ndarray:
    if stage.is_map:
        return np.repeat(np.arange(stage.shape[0]), stage.shape[1] * stage.shape[2])
    return np.zeros(stage.size, dtype=np.int32)


def stage_table(graph: Graph) -> list[dict]:
    """The stages as plain data (JSON-ready): what a built network keeps to find its node values
    again."""
    keys = ("name", "kind", "act_index", "shape", "start", "size")
    return [
        {k: getattr(s, k) for k in keys} | {"shape": list(s.shape), "sources": list(s.sources)}
        for s in graph.stages
    ]


def graph_from_table(table: list[dict]) -> Graph:
    """A Graph with the stages and node arrays of `stage_table` and no edges (enough for node
    values and their display values, and for where arcs go)."""
    stages = tuple(
        Stage(
            name=s["name"],
            kind=s["kind"],
            act_index=int(s["act_index"]),
            shape=tuple(int(v) for v in s["shape"]),
            start=int(s["start"]),
            size=int(s["size"]),
            sources=tuple(int(k) for k in s.get("sources", ())),  # absent before graph models
        )
        for s in table
    )
    empty_i, empty_f = np.empty(0, np.int32), np.empty(0, np.float32)
    return Graph(
        stages=stages,
        node_count=stages[-1].stop if stages else 0,
        node_stage=_node_stages(stages),
        node_map=_readonly(np.concatenate([_node_maps(s) for s in stages]), np.int32),
        src=empty_i,
        dst=empty_i,
        weight=empty_f,
    )


def _node_stages(stages) -> np.ndarray:
    return _readonly(np.repeat(np.arange(len(stages)), [s.size for s in stages]), np.int32)


def _check_node(graph: Graph, node: int) -> int:
    node = int(node)
    if not 0 <= node < graph.node_count:
        raise IndexError(f"node {node} out of range (graph has {graph.node_count} nodes)")
    return node


# --- values -----------------------------------------------------------------------------------


def node_values(graph: Graph, acts: list[np.ndarray]) -> np.ndarray:
    """One float per node: each stage's activation flattened, all concatenated -> float32 (N,).

    `acts` is forward()'s list for one input. A batch of B inputs gives (B, N).
    """
    first = graph.stages[0]
    batch = np.asarray(acts[first.act_index]).size // first.size
    parts = []
    for stage in graph.stages:
        a = np.asarray(acts[stage.act_index], dtype=np.float32)
        if a.size != batch * stage.size:
            raise ValueError(
                f"activation {stage.act_index} has {a.size} values, stage '{stage.name}' "
                f"needs {stage.size} per input"
            )
        parts.append(a.reshape(batch, stage.size))
    values = np.concatenate(parts, axis=1)
    last = graph.stages[-1]
    single = batch == 1 and np.ndim(acts[last.act_index]) <= len(last.shape)
    return np.ascontiguousarray(values[0] if single else values)


# --- edge selection ---------------------------------------------------------------------------


def _topk_per_dst(dst: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest-scoring entries of every run of equal dst (dst sorted).

    The runs are laid out as rows of a table padded with -inf and sorted row by row, which is
    several times faster than one global lexsort. Ties go to the lower position, so the result
    is deterministic. Returned ascending.
    """
    if k <= 0 or dst.size == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], dst[1:] != dst[:-1]]))
    counts = np.diff(np.append(starts, dst.size))
    if k >= counts.max():
        return np.arange(dst.size, dtype=np.int64)
    row = np.repeat(np.arange(starts.size), counts)
    table = np.full((starts.size, counts.max()), -np.inf, dtype=np.float32)
    table[row, np.arange(dst.size) - starts[row]] = score
    best = np.argsort(-table, axis=1, kind="stable")[:, :k]
    best.sort(axis=1)
    keep = best < counts[:, None]  # never a padding cell
    return (starts[:, None] + best)[keep].astype(np.int64)


def edge_scores(
    graph: Graph, values: np.ndarray | None = None, edges: np.ndarray | None = None
) -> np.ndarray:
    """How strongly each edge matters -> float32 (E,) (or one per index in `edges`).

    Without values: |weight|. With node values: the contribution |weight * source value|; for
    max pooling the source value itself (the largest input is the one that passes through).
    Higher is stronger.
    """
    pick = slice(None) if edges is None else edges
    weight = graph.weight[pick]
    if values is None:
        return np.abs(weight)
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (graph.node_count,):
        raise ValueError(f"values must have shape ({graph.node_count},), not {values.shape}")
    source = values[graph.src[pick]]
    is_max = np.array([stage.op == "maxpool2d" for stage in graph.stages])
    return np.where(is_max[graph.node_stage[graph.dst[pick]]], source, np.abs(weight * source))


def select_edges(
    graph: Graph, mode: str, k: int = 8, values: np.ndarray | None = None
) -> np.ndarray:
    """Indices (int64, ascending) into src/dst/weight of the edges to draw.

    mode "all": every edge; "none": no edge; "topk": the k strongest incoming edges of every
    node by |weight| (ties to the lower edge index); "contribution": the k incoming edges with the
    largest |weight * source value| for the given node `values` (see edge_scores).
    """
    if mode == "all":
        return np.arange(graph.edge_count, dtype=np.int64)
    if mode == "none":
        return np.empty(0, dtype=np.int64)
    if mode not in ("topk", "contribution"):
        raise ValueError(f"mode must be 'all', 'topk', 'contribution' or 'none', not {mode!r}")
    if mode == "contribution" and values is None:
        raise ValueError("mode 'contribution' needs the node values")
    score = edge_scores(graph, values if mode == "contribution" else None)
    picked = [
        _topk_per_dst(graph.dst[stage.edge_slice], score[stage.edge_slice], k) + stage.edge_start
        for stage in graph.stages[1:]
    ]
    return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)


def incoming(graph: Graph, node: int) -> np.ndarray:
    """Indices (int64) of the edges ending at `node`."""
    node = _check_node(graph, node)
    lo, hi = np.searchsorted(graph.dst, [node, node + 1])
    return np.arange(lo, hi, dtype=np.int64)


def _incoming_many(graph: Graph, nodes: np.ndarray) -> np.ndarray:
    """Indices of the edges ending at any of `nodes` (sorted, unique), ascending."""
    lo = np.searchsorted(graph.dst, nodes, side="left")
    hi = np.searchsorted(graph.dst, nodes, side="right")
    counts = hi - lo
    if counts.sum() == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(lo - np.cumsum(counts) + counts, counts)
    return np.arange(counts.sum(), dtype=np.int64) + offsets


def trace(
    graph: Graph, values: np.ndarray, node: int, per_node: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The strongest contributing paths from `node` down to the input.

    From the node, take the `per_node` incoming edges with the largest |weight * source value|
    (for max pooling: the largest source values), then do the same for every node reached, stage
    by stage down to the input. `values` are raw node values (node_values, not normalised).
    Returns (nodes, edges): int64, ascending, the start node included.
    """
    node = _check_node(graph, node)
    frontier = np.array([node], dtype=np.int64)
    nodes, edges = [frontier], []
    for _ in range(int(graph.node_stage[node])):
        cand = _incoming_many(graph, frontier)
        score = edge_scores(graph, values, cand)
        chosen = cand[_topk_per_dst(graph.dst[cand], score, per_node)]
        edges.append(chosen)
        frontier = np.unique(graph.src[chosen]).astype(np.int64)
        nodes.append(frontier)
        if frontier.size == 0:
            break
    return np.unique(np.concatenate(nodes)), np.sort(np.concatenate(edges or [frontier[:0]]))


def node_bias(graph: Graph, model: Model, node: int) -> float:
    """The bias added to the node's weighted sum (0 for pooling, add, input, bias-free layers)."""
    stage = graph.stage_of(node)
    if stage.layer < 0 or stage.op not in ("dense", "conv2d", "affine"):
        return 0.0
    bias = model.layers[stage.layer].bias
    if bias is None:
        return 0.0
    index = int(graph.node_map[node]) if stage.is_map else node - stage.start
    return float(bias[index])


def weighted_input(graph: Graph, model: Model, node: int, acts: list[np.ndarray]) -> float:
    """The node's pre-activation, summed over its incoming edges like the forward pass does.

    sum(weight * source value) + bias for dense, conv, affine, add, ... (before tanh/relu/
    softmax...); the mean for average pooling, the max for max pooling. For an input node: its
    own value.
    """
    node = _check_node(graph, node)
    stage = graph.stage_of(node)
    values = node_values(graph, acts)
    if stage.layer < 0:
        return float(values[node])
    e = incoming(graph, node)
    inputs = values[graph.src[e]].astype(np.float64)
    if stage.op == "maxpool2d":
        return float(inputs.max())
    return float(inputs @ graph.weight[e].astype(np.float64)) + node_bias(graph, model, node)

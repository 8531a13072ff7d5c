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

Up to MATERIALISE_EDGES connections (the shipped networks) the graph stores them all; above, it
is lazy: stages, counts and node arrays only, and every question about connections (a node's
inputs, the strongest k per node, a global budget of the strongest, a trace) computes just the
connections it needs from the layers, a chunk of destination nodes at a time. Edge indices are
the same either way. core.bundles sums them by block without computing any.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .modelfile import ELEMENTWISE, POOLS, SOFTMAXES, Layer, Model, ModelError

MAX_EDGES = 10_000_000_000  # connections in all; a lazy graph never holds them
MATERIALISE_EDGES = 2_000_000  # graphs with more connections compute them on demand
CHUNK_EDGES = 4_000_000  # connections computed at once when a lazy graph computes many
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
    """All nodes and all connections of a model; arrays are read-only.

    A graph with more than MATERIALISE_EDGES connections is *lazy*: it keeps every stage and its
    connection count, and computes connections only when asked (edges_into, edges_at, select,
    strongest, trace, weighted_input), a chunk of destination nodes at a time; its src, dst and
    weight arrays raise GraphError. Edge indices mean the same in both kinds of graph: the
    position in the materialised order (by destination node, see _node_edges).
    """

    stages: tuple[Stage, ...]
    node_count: int
    node_stage: np.ndarray  # int32 (N,) stage index of each node
    node_map: np.ndarray  # int32 (N,) channel / feature-map index (0 for flat stages)
    edge_src: np.ndarray  # int32 (E,) source node of each connection, sorted by dst
    edge_dst: np.ndarray  # int32 (E,) destination node, ascending
    edge_weight: np.ndarray  # float32 (E,) the real weight of each connection
    layers: tuple[Layer, ...] = ()  # the model's layers (what a lazy graph computes edges from)
    lazy: bool = False
    cache: dict = field(default_factory=dict, repr=False)  # per-stage edge offsets, on demand

    @property
    def edge_count(self) -> int:
        return sum(stage.edge_count for stage in self.stages)

    def _materialised(self, array: np.ndarray) -> np.ndarray:
        if self.lazy:
            raise GraphError(
                f"the {self.edge_count:,} connections of this network are computed on demand "
                "(edges_into, edges_at, select, strongest), not stored"
            )
        return array

    @property
    def src(self) -> np.ndarray:
        """int32 (E,) source node of each connection, sorted by dst (not for lazy graphs)."""
        return self._materialised(self.edge_src)

    @property
    def dst(self) -> np.ndarray:
        """int32 (E,) destination node of each connection, ascending (not for lazy graphs)."""
        return self._materialised(self.edge_dst)

    @property
    def weight(self) -> np.ndarray:
        """float32 (E,) the real weight of each connection (not for lazy graphs)."""
        return self._materialised(self.edge_weight)

    def stage_of(self, node: int) -> Stage:
        """The stage a node belongs to."""
        return self.stages[int(self.node_stage[_check_node(self, node)])]

    def stage_named(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name!r} (stages: {[s.name for s in self.stages]})")


@dataclass(frozen=True, eq=False)
class Edges:
    """Some connections of a graph: their edge indices and (src, dst, weight), index order
    unless said otherwise."""

    index: np.ndarray  # int64 (E,) position in the graph's materialised edge order
    src: np.ndarray  # int32 (E,)
    dst: np.ndarray  # int32 (E,)
    weight: np.ndarray  # float32 (E,)

    def __len__(self) -> int:
        return int(self.index.size)

    def take(self, pick) -> Edges:
        return Edges(self.index[pick], self.src[pick], self.dst[pick], self.weight[pick])

    @staticmethod
    def join(parts: list[Edges]) -> Edges:
        if not parts:
            return NO_EDGES
        if len(parts) == 1:
            return parts[0]
        return Edges(*(np.concatenate(a) for a in zip(*(_fields(p) for p in parts), strict=True)))


def _fields(e: Edges) -> tuple[np.ndarray, ...]:
    return e.index, e.src, e.dst, e.weight


NO_EDGES = Edges(
    np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float32)
)


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


def window_taps(
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
    rows, row_ok = window_taps(ho, kh, sh, ph, h, dh)  # (Ho, kh)
    cols, col_ok = window_taps(wo, kw, sw, pw, w, dw)  # (Wo, kw)
    return rows, row_ok, cols, col_ok


def _in_degree(layer: Layer) -> np.ndarray:
    """Connections ending at every node of the layer's output -> int64 (n,)."""
    t = layer.type
    n = int(np.prod(layer.out_shape))
    if t == "dense":
        return np.full(n, layer.w.shape[1], np.int64)
    if t in ("conv2d", *POOLS):
        _, row_ok, _, col_ok = _valid_taps(layer)
        per_map = np.outer(row_ok.sum(axis=1), col_ok.sum(axis=1)).ravel()
        cg = layer.w.shape[1] if t == "conv2d" else 1
        return np.tile(per_map * cg, layer.out_shape[0]).astype(np.int64)
    if t == "global_avgpool":
        return np.full(n, int(np.prod(layer.in_shape[1:])), np.int64)
    if t == "add":
        return np.full(n, len(layer.inputs), np.int64)
    return np.ones(n, np.int64)  # one edge per node: affine, mul, concat, elementwise


def _window_edges(
    layer: Layer, first: int, nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, local dst, weight) of the connections into `nodes` of a conv or pool layer.

    Output node (o, y, x) reads input nodes (c, y*s - p + i*d, x*s - p + j*d): the input
    channels of its group for conv (every channel without groups), only its own channel (c = o)
    for pooling; in the order (c, i, j). Taps in the padding are dropped.
    """
    _, h, w = layer.in_shape
    c_out, ho, wo = layer.out_shape
    (kh, kw) = layer.params["kernel_size"]
    rows, row_ok, cols, col_ok = _valid_taps(layer)
    o, y, x = nodes // (ho * wo), nodes // wo % ho, nodes % wo
    conv = layer.type == "conv2d"
    cg = layer.w.shape[1] if conv else 1  # axes (node, c, i, j)
    shape = (nodes.size, cg, kh, kw)
    if conv:
        group_first = (o // (c_out // layer.params.get("groups", 1))) * cg
        ch = group_first[:, None] + np.arange(cg)[None, :]
    else:
        ch = o[:, None]
    at = (rows[y] * w + first).astype(np.int32)[:, None, :, None] + cols[x].astype(np.int32)[
        :, None, None, :
    ]
    src = (ch * (h * w)).astype(np.int32)[:, :, None, None] + at
    ok = row_ok[y][:, None, :, None] & col_ok[x][:, None, None, :]  # (n, 1, kh, kw)
    if conv:
        weight = layer.w[o]
    elif layer.type == "maxpool2d":
        weight = np.ones(shape, dtype=np.float32)
    else:
        count = ok.sum(axis=(1, 2, 3), keepdims=True)
        if layer.params.get("count_include_pad", True):
            count = np.full_like(count, kh * kw)
        weight = np.broadcast_to((1.0 / count).astype(np.float32), shape)
    degree = ok.reshape(nodes.size, -1).sum(axis=1) * cg
    dst = np.repeat(nodes, degree)
    if ok.all():  # no tap in the padding: nothing to drop
        return src.reshape(-1), dst, np.ascontiguousarray(weight).reshape(-1)
    ok = np.broadcast_to(ok, shape)
    return src[ok], dst, weight[ok]


def _node_edges(
    layer: Layer, sources: list[int], nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global-source, local-destination (src, dst, weight) of the connections ending at `nodes`
    (local indices into the layer's output, ascending), grouped by destination node.

    `sources` are the first node of each input's stage, in the layer's input order. Within a
    node the connections come in the order (channel, tap row, tap column) for windows, input
    order for add; the whole graph's edges are these for every node, in node order.
    """
    t = layer.type
    nodes = np.asarray(nodes, np.int64)
    if t == "dense":
        n_in = layer.w.shape[1]
        src = np.tile(np.arange(n_in), nodes.size) + sources[0]
        return src, np.repeat(nodes, n_in), layer.w[nodes].ravel()
    if t in ("conv2d", *POOLS):
        return _window_edges(layer, sources[0], nodes)
    if t == "global_avgpool":
        hw = int(np.prod(layer.in_shape[1:]))
        src = (nodes[:, None] * hw + np.arange(hw)).ravel() + sources[0]
        return src, np.repeat(nodes, hw), np.full(src.size, 1.0 / hw, np.float32)
    if t == "add":  # one edge from each operand
        src = (nodes[:, None] + np.asarray(sources)[None, :]).ravel()
        return src, np.repeat(nodes, len(sources)), np.ones(src.size, np.float32)
    ones = np.ones(nodes.size, np.float32)
    if t == "concat":  # channels mapped through, in input order: the flattened inputs in a row
        offsets = np.cumsum([0] + [int(np.prod(shape)) for shape in layer.in_shapes])
        k = np.searchsorted(offsets, nodes, side="right") - 1
        return np.asarray(sources)[k] + nodes - offsets[k], nodes, ones
    if t == "affine":  # the per-channel scale
        per = int(np.prod(layer.out_shape)) // layer.w.size
        return nodes + sources[0], nodes, layer.w[nodes // per]
    if t == "mul":
        return nodes + sources[0], nodes, ones * np.float32(layer.params["factor"])
    return nodes + sources[0], nodes, ones  # elementwise


# --- the graph --------------------------------------------------------------------------------


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.flags.writeable = False
    return a


def stage_sizes(model: Model) -> list[int]:
    """Nodes per stage of the model's graph, input first (without building its edges)."""
    return [int(np.prod(p["shape"])) for p in _plan_stages(model)]


def build_graph(model: Model, max_edges: int = MAX_EDGES, materialise: int | None = None) -> Graph:
    """Every node and every connection of a model.

    Up to `materialise` (default MATERIALISE_EDGES) connections they are computed and stored
    (src, dst, weight); above, the graph is lazy (see Graph). Raises GraphError before
    allocating anything when the model has more than `max_edges` connections.
    """
    plan = _plan_stages(model)
    layers = {layer.index: layer for layer in model.layers}
    counts = [int(_in_degree(layers[p["layer"]]).sum()) if p["layer"] >= 0 else 0 for p in plan]
    if sum(counts) > max_edges:
        raise GraphError(
            f"network too large to draw: {sum(counts):,} connections (limit {max_edges:,})"
        )
    lazy = sum(counts) > (MATERIALISE_EDGES if materialise is None else materialise)

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

    n_stored = 0 if lazy else edge_start
    src = np.empty(n_stored, dtype=np.int32)
    dst = np.empty(n_stored, dtype=np.int32)
    weight = np.empty(n_stored, dtype=np.float32)
    for stage in stages[1:] if not lazy else ():
        starts = [stages[k].start for k in stage.sources]
        s, d, w = _node_edges(layers[stage.layer], starts, np.arange(stage.size))
        cut = stage.edge_slice
        src[cut], dst[cut], weight[cut] = s, d + stage.start, w

    return Graph(
        stages=tuple(stages),
        node_count=node_start,
        node_stage=_node_stages(stages),
        node_map=_readonly(np.concatenate([_node_maps(s) for s in stages]), np.int32),
        edge_src=_readonly(src, np.int32),
        edge_dst=_readonly(dst, np.int32),
        edge_weight=_readonly(weight, np.float32),
        layers=tuple(model.layers),
        lazy=lazy,
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
        edge_src=empty_i,
        edge_dst=empty_i,
        edge_weight=empty_f,
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

    The runs are laid out as rows of a table padded with -inf; per row everything above the
    k-th largest score is kept, and of the entries equal to it the first ones (ties go to the
    lower position), so the result is deterministic. A partition per row, no sort: linear time.
    Returned ascending.
    """
    if k <= 0 or dst.size == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], dst[1:] != dst[:-1]]))
    counts = np.diff(np.append(starts, dst.size))
    width = int(counts.max())
    if k >= width:
        return np.arange(dst.size, dtype=np.int64)
    valid = None if counts.min() == width else np.arange(width)[None, :] < counts[:, None]
    if valid is None:  # every run equally long (no padding): the scores are the table
        table = score.astype(np.float32, copy=False).reshape(starts.size, width)
    else:
        table = np.full((starts.size, width), -np.inf, dtype=np.float32)
        table[valid] = score  # row-major: run after run, as the entries come
    kth = -np.partition(-table, k - 1, axis=1)[:, k - 1 : k]  # the k-th largest of every row
    keep = table > kth
    tied = table == kth
    if valid is not None:
        tied &= valid
    room = k - keep.sum(axis=1)
    crowded = np.flatnonzero(tied.sum(axis=1) > room)  # more ties than places: first ones win
    tied[crowded] &= np.cumsum(tied[crowded], axis=1) <= room[crowded, None]
    keep |= tied
    return np.flatnonzero(keep if valid is None else keep[valid]).astype(np.int64)


# connections on demand: per stage, a chunk of destination nodes at a time


def _offsets(graph: Graph, i: int) -> np.ndarray:
    """int64 (size + 1,): where each node's connections start within stage i's edges."""
    key = ("offsets", i)
    if key not in graph.cache:
        degree = _in_degree(graph.layers[graph.stages[i].layer])
        graph.cache[key] = np.concatenate([[0], np.cumsum(degree)])
    return graph.cache[key]


def _chunks(graph: Graph, i: int, nodes: np.ndarray):
    """`nodes` (local to stage i, ascending) in runs of at most CHUNK_EDGES connections (at
    least one node each)."""
    limit = CHUNK_EDGES
    offsets = _offsets(graph, i)
    total = np.cumsum(offsets[nodes + 1] - offsets[nodes])
    lo = 0
    while lo < nodes.size:
        base = total[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(total, base + limit, side="right")))
        yield nodes[lo:hi]
        lo = hi


def _stage_edges(graph: Graph, i: int, nodes: np.ndarray) -> Edges:
    """The connections ending at `nodes` (local to stage i, ascending), in index order."""
    stage = graph.stages[i]
    if not graph.lazy:
        lo = np.searchsorted(graph.edge_dst, nodes + stage.start, side="left")
        hi = np.searchsorted(graph.edge_dst, nodes + stage.start, side="right")
        counts = hi - lo
        index = np.arange(counts.sum(), dtype=np.int64) + np.repeat(
            lo - np.cumsum(counts) + counts, counts
        )
        return Edges(index, graph.edge_src[index], graph.edge_dst[index], graph.edge_weight[index])
    offsets = _offsets(graph, i)
    degree = offsets[nodes + 1] - offsets[nodes]
    first = stage.edge_start + offsets[nodes] - (np.cumsum(degree) - degree)
    index = np.repeat(first, degree) + np.arange(degree.sum(), dtype=np.int64)
    starts = [graph.stages[k].start for k in stage.sources]
    src, dst, weight = _node_edges(graph.layers[stage.layer], starts, nodes)
    return Edges(
        index,
        src.astype(np.int32),
        (dst + stage.start).astype(np.int32),
        np.asarray(weight, np.float32),
    )


def _by_stage(graph: Graph, nodes) -> list[tuple[int, np.ndarray]]:
    """Unique nodes grouped by stage: [(stage index, local nodes ascending)], inputs left out."""
    nodes = np.unique(np.asarray(nodes, np.int64).reshape(-1))
    if nodes.size and (nodes[0] < 0 or nodes[-1] >= graph.node_count):
        raise IndexError(f"node out of range (graph has {graph.node_count} nodes)")
    stage = graph.node_stage[nodes]
    return [
        (int(i), nodes[stage == i] - graph.stages[int(i)].start)
        for i in np.unique(stage)
        if graph.stages[int(i)].layer >= 0
    ]


def edges_into(graph: Graph, nodes) -> Edges:
    """Every connection ending at any of `nodes` (global indices), in index order."""
    return Edges.join(
        [
            _stage_edges(graph, i, chunk)
            for i, local in _by_stage(graph, nodes)
            for chunk in _chunks(graph, i, local)
        ]
    )


def edges_at(graph: Graph, index) -> Edges:
    """The connections with these edge indices (select_edges, incoming, trace), in the order
    given; a lazy graph computes the connections of the nodes they end at."""
    index = np.asarray(index, np.int64).reshape(-1)
    if index.size and (index.min() < 0 or index.max() >= graph.edge_count):
        raise IndexError(f"edge index out of range (graph has {graph.edge_count} edges)")
    if not graph.lazy:
        return Edges(index, graph.edge_src[index], graph.edge_dst[index], graph.edge_weight[index])
    order = np.argsort(index, kind="stable")
    wanted = index[order]
    starts = np.array([s.edge_start for s in graph.stages], np.int64)
    stage_of = np.searchsorted(starts, wanted, side="right") - 1
    parts = []
    for i in np.unique(stage_of):
        local = wanted[stage_of == i] - starts[i]
        node = np.searchsorted(_offsets(graph, int(i)), local, side="right") - 1
        for chunk in _chunks(graph, int(i), np.unique(node)):
            e = _stage_edges(graph, int(i), chunk)
            lo, hi = np.searchsorted(wanted, e.index[[0, -1]] + [0, 1])
            parts.append(e.take(np.searchsorted(e.index, wanted[lo:hi])))
    out = Edges.join(parts)
    return out.take(np.argsort(order, kind="stable"))


def _scores(graph: Graph, e: Edges, values: np.ndarray | None) -> np.ndarray:
    """|weight|, or with node values |weight * source value| (max pooling: the source value)."""
    if values is None:
        return np.abs(e.weight)
    source = values[e.src]
    is_max = np.array([stage.op == "maxpool2d" for stage in graph.stages])
    return np.where(is_max[graph.node_stage[e.dst]], source, np.abs(e.weight * source))


def _check_values(graph: Graph, values: np.ndarray | None) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (graph.node_count,):
        raise ValueError(f"values must have shape ({graph.node_count},), not {values.shape}")
    return values


def edge_scores(
    graph: Graph, values: np.ndarray | None = None, edges: np.ndarray | None = None
) -> np.ndarray:
    """How strongly each edge matters -> float32 (E,) (or one per index in `edges`).

    Without values: |weight|. With node values: the contribution |weight * source value|; for
    max pooling the source value itself (the largest input is the one that passes through).
    Higher is stronger. A lazy graph needs `edges`.
    """
    values = _check_values(graph, values)
    if edges is None:
        all_edges = Edges(
            np.arange(graph.edge_count, dtype=np.int64), graph.src, graph.dst, graph.weight
        )
        return _scores(graph, all_edges, values)
    return _scores(graph, edges_at(graph, edges), values)


def _topk_into(graph: Graph, nodes, k: int, values: np.ndarray | None) -> Edges:
    """The k strongest connections into each of `nodes` (see edge_scores), in index order."""
    parts = []
    for i, local in _by_stage(graph, nodes):
        for chunk in _chunks(graph, i, local):
            e = _stage_edges(graph, i, chunk)
            parts.append(e.take(_topk_per_dst(e.dst, _scores(graph, e, values), k)))
    return Edges.join(parts)


def _conv_topk_by_weight(graph: Graph, i: int, k: int) -> Edges:
    """The k strongest inputs by |weight| of every node of conv stage i, in index order, without
    computing every connection: a node's choice depends only on its output channel and on which
    kernel taps its position keeps inside the input (a border class of rows and of columns), so
    it is made once per (channel, class) and repeated over the class's positions."""
    stage = graph.stages[i]
    layer = graph.layers[stage.layer]
    _, h, w = layer.in_shape
    c_out, ho, wo = layer.out_shape
    cg = layer.w.shape[1]
    rows, row_ok, cols, col_ok = _valid_taps(layer)
    group_first = (np.arange(c_out) // (c_out // layer.params.get("groups", 1))) * cg
    offsets = _offsets(graph, i)
    src_start = graph.stages[stage.sources[0]].start
    row_classes, row_of = np.unique(row_ok, axis=0, return_inverse=True)
    col_classes, col_of = np.unique(col_ok, axis=0, return_inverse=True)
    parts = []
    for a, row_taps in enumerate(row_classes):
        for b, col_taps in enumerate(col_classes):
            ys, xs = np.flatnonzero(row_of.ravel() == a), np.flatnonzero(col_of.ravel() == b)
            ti_ok, tj_ok = np.flatnonzero(row_taps), np.flatnonzero(col_taps)
            if not (ys.size and xs.size and ti_ok.size and tj_ok.size):
                continue
            # the class's taps in (c, i, j) order: a node's connections in index order
            kept = np.abs(layer.w)[:, :, ti_ok][:, :, :, tj_ok].reshape(c_out, -1)
            n_taps = kept.shape[1]
            best = _topk_per_dst(np.repeat(np.arange(c_out), n_taps), kept.ravel(), k)
            o, pos = np.divmod(best, n_taps)
            c, rest = np.divmod(pos, ti_ok.size * tj_ok.size)
            ti, tj = ti_ok[rest // tj_ok.size], tj_ok[rest % tj_ok.size]
            y, x = np.repeat(ys, xs.size)[None, :], np.tile(xs, ys.size)[None, :]
            dst = o[:, None] * (ho * wo) + y * wo + x
            src = (group_first[o] + c)[:, None] * (h * w) + rows[y, ti[:, None]] * w
            src = src + cols[x, tj[:, None]] + src_start
            weight = np.broadcast_to(layer.w[o, c, ti, tj][:, None], dst.shape)
            index = stage.edge_start + offsets[dst] + pos[:, None]
            parts.append(
                Edges(
                    index.ravel(),
                    src.ravel().astype(np.int32),
                    (dst + stage.start).ravel().astype(np.int32),
                    weight.ravel().astype(np.float32),
                )
            )
    found = Edges.join(parts)
    return found.take(np.argsort(found.index, kind="stable"))


def _non_input_nodes(graph: Graph) -> np.ndarray:
    return np.arange(graph.stages[0].stop if graph.stages else 0, graph.node_count)


def select(graph: Graph, mode: str, k: int = 8, values: np.ndarray | None = None) -> Edges:
    """The edges to draw, in index order (see select_edges), with their src, dst and weight."""
    if mode == "all":
        if graph.lazy:
            raise GraphError(
                f"{graph.edge_count:,} connections are too many to draw one by one: "
                "draw the strongest k per node or bundles"
            )
        return Edges(
            np.arange(graph.edge_count, dtype=np.int64), graph.src, graph.dst, graph.weight
        )
    if mode == "none":
        return NO_EDGES
    if mode not in ("topk", "contribution"):
        raise ValueError(f"mode must be 'all', 'topk', 'contribution' or 'none', not {mode!r}")
    if mode == "contribution" and values is None:
        raise ValueError("mode 'contribution' needs the node values")
    values = _check_values(graph, values) if mode == "contribution" else None
    if values is not None or not graph.lazy:
        return _topk_into(graph, _non_input_nodes(graph), k, values)
    return Edges.join(  # by |weight| in a lazy graph: conv stages without a scan
        [
            _conv_topk_by_weight(graph, i, k)
            if stage.op == "conv2d"
            else _topk_into(graph, np.arange(stage.start, stage.stop), k, None)
            for i, stage in enumerate(graph.stages)
            if stage.layer >= 0
        ]
    )


def select_edges(
    graph: Graph, mode: str, k: int = 8, values: np.ndarray | None = None
) -> np.ndarray:
    """Indices (int64, ascending) into src/dst/weight of the edges to draw.

    mode "all": every edge; "none": no edge; "topk": the k strongest incoming edges of every
    node by |weight| (ties to the lower edge index); "contribution": the k incoming edges with the
    largest |weight * source value| for the given node `values` (see edge_scores). A lazy graph
    computes them a chunk of nodes at a time ("all" is refused); `select` also gives their
    src, dst and weight.
    """
    return select(graph, mode, k, values).index


class _Best:
    """The `budget` highest-scoring connections seen so far."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.edges, self.score = NO_EDGES, np.empty(0, np.float32)

    def add(self, e: Edges, score: np.ndarray) -> None:
        if len(e) > self.budget:
            keep = np.argpartition(-score, self.budget - 1)[: self.budget]
            e, score = e.take(keep), score[keep]
        self.edges = Edges.join([self.edges, e])
        self.score = np.concatenate([self.score, score])
        if len(self.edges) > self.budget:
            keep = np.argpartition(-self.score, self.budget - 1)[: self.budget]
            self.edges, self.score = self.edges.take(keep), self.score[keep]

    def floor(self) -> float:
        """The lowest kept score once the budget is full (-inf before)."""
        return float(self.score.min()) if len(self.edges) >= self.budget else -np.inf


def _tap_bounds(graph: Graph, i: int, values: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """For a conv stage: per kernel tap (o, c, i, j) the highest score any of its connections
    can have -> float32 (O, cg, kh, kw), and how many connections it has -> int64 (kh, kw).

    By |weight| every connection of a tap scores |w|; by contribution at most |w| times the
    largest |value| the tap reads in its source channel."""
    layer = graph.layers[graph.stages[i].layer]
    _, row_ok, _, col_ok = _valid_taps(layer)
    count = np.outer(row_ok.sum(axis=0), col_ok.sum(axis=0)).astype(np.int64)  # (kh, kw)
    bound = np.abs(layer.w)
    if values is None:
        return bound, count
    source = graph.stages[graph.stages[i].sources[0]]
    a = np.abs(values[source.start : source.stop]).reshape(source.shape)
    (kh, kw), (sh, sw), (top, left) = _window(layer)[:3]
    dh, dw = _window(layer)[3]
    reach = np.zeros((a.shape[0], kh, kw), np.float32)
    for ti in range(kh):
        ys = np.flatnonzero(row_ok[:, ti])
        for tj in range(kw):
            xs = np.flatnonzero(col_ok[:, tj])
            if ys.size and xs.size:
                rows = slice(ys[0] * sh - top + ti * dh, ys[-1] * sh - top + ti * dh + 1, sh)
                cols = slice(xs[0] * sw - left + tj * dw, xs[-1] * sw - left + tj * dw + 1, sw)
                reach[:, ti, tj] = a[:, rows, cols].max(axis=(1, 2))
    o, cg = layer.w.shape[:2]
    first = (np.arange(o) // (o // layer.params.get("groups", 1))) * cg
    channel = first[:, None] + np.arange(cg)[None, :]
    return bound * reach[channel], count


def _tap_edges(graph: Graph, i: int, taps: tuple[np.ndarray, ...]):
    """The connections of conv kernel taps (o, c, i, j arrays), a chunk at a time (Edges)."""
    stage = graph.stages[i]
    layer = graph.layers[stage.layer]
    _, h, w = layer.in_shape
    c_out, ho, wo = layer.out_shape
    rows, row_ok, cols, col_ok = _valid_taps(layer)
    first_i, n_i = row_ok.argmax(axis=1), row_ok.sum(axis=1)  # valid taps per output row
    first_j, n_j = col_ok.argmax(axis=1), col_ok.sum(axis=1)
    cg = layer.w.shape[1]
    group_first = (np.arange(c_out) // (c_out // layer.params.get("groups", 1))) * cg
    offsets = _offsets(graph, i)
    src_start = graph.stages[stage.sources[0]].start
    o, c, ti, tj = taps
    for a in np.unique(ti):
        for b in np.unique(tj[ti == a]):
            pick = (ti == a) & (tj == b)
            ys, xs = np.flatnonzero(row_ok[:, a]), np.flatnonzero(col_ok[:, b])
            y, x = np.repeat(ys, xs.size), np.tile(xs, ys.size)  # the positions the tap reaches
            at = (rows[y, a] * w + cols[x, b]).astype(np.int64)
            inside = (a - first_i[y]) * n_j[x] + (b - first_j[x])  # place among the node's taps
            per_c = n_i[y] * n_j[x]
            step = max(1, CHUNK_EDGES // max(1, y.size))
            po, pc = o[pick], c[pick]
            for lo in range(0, po.size, step):
                oo, cc = po[lo : lo + step, None], pc[lo : lo + step, None]
                dst = oo * (ho * wo) + y * wo + x
                yield Edges(
                    (stage.edge_start + offsets[dst] + cc * per_c + inside).ravel(),
                    (src_start + (group_first[oo] + cc) * (h * w) + at).ravel().astype(np.int32),
                    (dst + stage.start).ravel().astype(np.int32),
                    np.broadcast_to(layer.w[oo, cc, a, b], dst.shape).ravel().astype(np.float32),
                )


def _bound_reaching(bound: np.ndarray, count: np.ndarray, wanted: int) -> float:
    """The highest bound such that the taps bounded at least that have `wanted` connections
    or more (-inf if all taps together have fewer); a partition, then a sort of the few."""
    k = min(wanted, bound.size)  # every tap has a connection: `wanted` taps are enough
    top = np.argpartition(-bound, k - 1)[:k] if k < bound.size else np.arange(bound.size)
    top = top[np.argsort(-bound[top])]
    cut = int(np.searchsorted(np.cumsum(count[top]), wanted))
    if cut < k:
        return float(bound[top[cut]])
    return float(bound[top[-1]]) if k < bound.size else -np.inf


def strongest(graph: Graph, budget: int, values: np.ndarray | None = None) -> Edges:
    """The `budget` strongest connections of the whole graph (see edge_scores: by |weight|, or
    by contribution for node `values`), in index order; ties at the cut go either way.

    Memory stays O(budget + CHUNK_EDGES). The connections of conv layers are taken kernel tap
    by kernel tap, the taps that can score highest first (their |weight| times the largest
    value they read), until no tap left can beat what is kept: time O(parameters + activations
    + the connections looked at), far below O(connections) for a small budget. Other stages
    are scanned a chunk of destination nodes at a time."""
    values = _check_values(graph, values)
    if budget <= 0:
        return NO_EDGES
    best = _Best(budget)
    convs = {i for i, s in enumerate(graph.stages) if s.op == "conv2d"}
    for i, local in _by_stage(graph, _non_input_nodes(graph)):
        if i in convs:
            continue
        for chunk in _chunks(graph, i, local):
            e = _stage_edges(graph, i, chunk)
            best.add(e, _scores(graph, e, values))
    if not convs:
        return best.edges.take(np.argsort(best.edges.index))
    bounds = {i: _tap_bounds(graph, i, values) for i in sorted(convs)}
    flat = np.concatenate([b.ravel() for b, _ in bounds.values()])
    many = np.concatenate([np.broadcast_to(n, b.shape).ravel() for b, n in bounds.values()])
    upper, wanted = np.inf, 2 * budget
    while upper > best.floor():
        lower = _bound_reaching(flat, many, wanted)
        for i, (bound, _) in bounds.items():
            band = (bound >= lower) & (bound < upper) if lower > -np.inf else bound < upper
            for e in _tap_edges(graph, i, np.nonzero(band)):
                best.add(e, _scores(graph, e, values))
        if lower == -np.inf:
            break
        upper, wanted = lower, wanted * 4
    return best.edges.take(np.argsort(best.edges.index))


def _weighted_percentile(value: np.ndarray, count: np.ndarray, q: float) -> float:
    """np.percentile (linear) of an array holding each value[k] count[k] times."""
    order = np.argsort(value, kind="stable")
    value, ends = value[order], np.cumsum(count[order])
    at = q / 100.0 * (ends[-1] - 1)
    lo, hi = int(np.floor(at)), int(np.ceil(at))
    v_lo = value[np.searchsorted(ends, lo, side="right")]
    v_hi = value[np.searchsorted(ends, hi, side="right")]
    return float(v_lo + (v_hi - v_lo) * (at - lo))


def weight_percentiles(graph: Graph, q: float = 99.0) -> np.ndarray:
    """float32 (S,): the q-th percentile of |weight| over the connections into each stage (0
    for the input), as np.percentile over the materialised weights gives it; computed from the
    layers' weights and how often each one is used, without materialising any connection."""
    out = np.zeros(len(graph.stages), np.float32)
    for i, stage in enumerate(graph.stages):
        if stage.layer < 0 or stage.edge_count == 0:
            continue
        if not graph.lazy:
            out[i] = np.percentile(np.abs(graph.edge_weight[stage.edge_slice]), q)
            continue
        layer = graph.layers[stage.layer]
        if stage.op == "conv2d":
            _, row_ok, _, col_ok = _valid_taps(layer)
            per_tap = np.outer(row_ok.sum(axis=0), col_ok.sum(axis=0))  # uses of each tap
            value = np.abs(layer.w).ravel()
            count = np.broadcast_to(per_tap, layer.w.shape).ravel()
        elif stage.op == "dense":
            value, count = np.abs(layer.w).ravel(), np.ones(layer.w.size, np.int64)
        else:  # one or a few connections per node: their weights, counted
            parts = [
                np.abs(_stage_edges(graph, i, chunk).weight)
                for chunk in _chunks(graph, i, np.arange(stage.size))
            ]
            value, count = np.unique(np.concatenate(parts), return_counts=True)
        out[i] = _weighted_percentile(value.astype(np.float64), count.astype(np.int64), q)
    return out


def incoming(graph: Graph, node: int) -> np.ndarray:
    """Indices (int64) of the edges ending at `node`."""
    return edges_into(graph, [_check_node(graph, node)]).index


def trace(
    graph: Graph,
    values: np.ndarray,
    node: int,
    per_node: int = 3,
    max_per_stage: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The strongest contributing paths from `node` down to the input.

    From the node, take the `per_node` incoming edges with the largest |weight * source value|
    (for max pooling: the largest source values), then do the same for every node reached, stage
    by stage down to the input. `values` are raw node values (node_values, not normalised).
    `max_per_stage` bounds the nodes reached per step (a large network's cone fans out to
    hundreds of thousands): the ones the chosen edges feed most strongly go on, and only edges
    from them are kept, so every path still ends at the input.
    Returns (nodes, edges): int64, ascending, the start node included.
    """
    node = _check_node(graph, node)
    checked = _check_values(graph, values)
    frontier = np.array([node], dtype=np.int64)
    nodes, edges = [frontier], []
    for _ in range(int(graph.node_stage[node])):
        chosen = _topk_into(graph, frontier, per_node, checked)
        frontier, inverse = np.unique(chosen.src, return_inverse=True)
        if max_per_stage is not None and frontier.size > max_per_stage:
            feed = np.bincount(inverse, weights=_scores(graph, chosen, checked))
            kept = np.sort(np.argsort(-feed, kind="stable")[:max_per_stage])
            chosen = chosen.take(np.isin(inverse, kept))
            frontier = frontier[kept]
        edges.append(chosen.index)
        frontier = frontier.astype(np.int64)
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
    e = edges_into(graph, [node])
    inputs = values[e.src].astype(np.float64)
    if stage.op == "maxpool2d":
        return float(inputs.max())
    return float(inputs @ e.weight.astype(np.float64)) + node_bias(graph, model, node)


def strongest_into(graph: Graph, nodes, k: int, values: np.ndarray | None = None) -> Edges:
    """The k strongest connections into each of `nodes` (global indices; see edge_scores: by
    |weight|, or by contribution for node `values`), in index order, a chunk at a time."""
    return _topk_into(graph, nodes, k, _check_values(graph, values))

"""Connections in bundles: every connection of the graph counted, none materialised.

A *block* is a group of consecutive nodes of one stage: one feature map (channel) of a (C, H, W)
stage, or one of at most BLOCKS_PER_VECTOR equal chunks of a flat stage (the last may be shorter).
A *bundle* is every connection from one source block to one destination block; there is one
bundle per (source block, destination block) pair that has at least one connection, per stage.

A bundle's *glow* for an input is the sum over its member connections of weight x source value
(graph.py gives every connection its real weight), so the bundles into a node's block add up to
what the network computes there, biases aside. Max pooling passes only the largest input of a
window: its bundle sums only the winning connection of every window (the pooled outputs), which
is what flows on. Nothing here grows with the number of connections: a conv's glow is a sum over
its kernel taps of (tap weight x the source map summed over the rows and columns that tap reads),
a dense layer's the weights summed by destination block times the source values, summed by
source block; every other stage is one connection per source node, summed by runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph, Stage, window_taps
from .modelfile import Layer, Model

BLOCKS_PER_VECTOR = 16


def block_size(stage: Stage, map_blocks: int | None = None) -> int:
    """Nodes per block of a stage: a feature map, or a chunk of a flat stage. With `map_blocks`
    a stage of more feature maps than that has blocks of several consecutive maps (at most
    `map_blocks` blocks)."""
    if stage.is_map:
        c = stage.shape[0]
        maps = -(-c // map_blocks) if map_blocks and c > map_blocks else 1
        return int(stage.shape[1] * stage.shape[2]) * maps
    return -(-stage.size // min(stage.size, BLOCKS_PER_VECTOR))


def node_blocks(graph: Graph, map_blocks: int | None = None) -> np.ndarray:
    """int32 (N,): the global block of every node, blocks numbered stage after stage."""
    out = np.empty(graph.node_count, np.int32)
    first = 0
    for stage in graph.stages:
        size = block_size(stage, map_blocks)
        out[stage.start : stage.stop] = first + np.arange(stage.size) // size
        first += block_count(stage, map_blocks)
    return out


def block_count(stage: Stage, map_blocks: int | None = None) -> int:
    return -(-stage.size // block_size(stage, map_blocks))


@dataclass(frozen=True, eq=False)
class _Part:
    """How one stage's bundle glows are computed (see bundle_glow)."""

    kind: str  # "conv", "dense", "pooled" (per channel sum of the layer's output), "runs"
    count: int  # bundles of the stage
    arrays: tuple = ()  # kind-specific precomputed arrays
    fold: np.ndarray | None = None  # conv / pooled in blocks of several maps: bundle of each pair


@dataclass(frozen=True, eq=False)
class Bundles:
    """The blocks of every stage and the bundles between them; arrays are read-only.

    Blocks are numbered globally in stage order (block_start); bundles are grouped by destination
    stage (bundle_start) and carry their source and destination blocks and member counts.
    """

    block_start: np.ndarray  # int64 (S + 1,) first block of every stage, then the block count
    block_size: np.ndarray  # int64 (S,) nodes per block of every stage
    bundle_start: np.ndarray  # int64 (S + 1,) first bundle ending in every stage, then the count
    src: np.ndarray  # int32 (B,) source block of every bundle
    dst: np.ndarray  # int32 (B,) destination block
    members: np.ndarray  # int64 (B,) connections in the bundle
    parts: tuple[_Part, ...]  # per stage (the input's is empty)
    sources: tuple[tuple[int, ...], ...]  # per stage: the stages its bundles come from
    acts: tuple[tuple[int, ...], ...]  # per stage: the activations its glow reads
    map_blocks: int | None = None  # bundles()'s: blocks of feature maps per stage, at most

    @property
    def count(self) -> int:
        return int(self.src.size)

    @property
    def block_count(self) -> int:
        return int(self.block_start[-1])

    @property
    def stage(self) -> np.ndarray:
        """int32 (B,): the destination stage of every bundle."""
        return np.repeat(np.arange(len(self.parts)), np.diff(self.bundle_start)).astype(np.int32)

    def node_blocks(self, graph: Graph) -> np.ndarray:
        """int32 (N,): the block of every node."""
        return node_blocks(graph, self.map_blocks)


def _tap_matrix(n_out: int, k: int, s: int, p: int, n_in: int, d: int) -> np.ndarray:
    """(k, n_in) float32: 1 where tap i of some output reads input row r (each at most once)."""
    coord, ok = window_taps(n_out, k, s, p, n_in, d)
    out = np.zeros((k, n_in), np.float32)
    taps = np.broadcast_to(np.arange(k), coord.shape)
    out[taps[ok], coord[ok]] = 1.0
    return out


def _tap_matrices(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    (_, h, w), (_, ho, wo) = layer.in_shape, layer.out_shape
    p = layer.params
    (kh, kw), (sh, sw), pads = p["kernel_size"], p["stride"], p["pads"]
    dh, dw = p.get("dilation", (1, 1))
    return _tap_matrix(ho, kh, sh, pads[0], h, dh), _tap_matrix(wo, kw, sw, pads[1], w, dw)


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.flags.writeable = False
    return a


def _runs(src_block: np.ndarray, dst_block: np.ndarray, weight) -> tuple:
    """Pairs and runs of source nodes with one connection each: (src blocks, dst blocks,
    members, (run starts, run pair, weight per node or None, scalar weight))."""
    n = src_block.size
    key = src_block.astype(np.int64) * (int(dst_block.max(initial=0)) + 1) + dst_block
    starts = np.flatnonzero(np.diff(key, prepend=-1)) if n else np.zeros(0, np.int64)
    pairs, run_pair = np.unique(key[starts], return_inverse=True)
    width = int(dst_block.max(initial=0)) + 1
    lengths = np.diff(np.append(starts, n))
    members = np.bincount(run_pair, weights=lengths, minlength=pairs.size).astype(np.int64)
    per_node = None if np.isscalar(weight) else np.asarray(weight, np.float32)
    scalar = np.float32(weight) if per_node is None else np.float32(1.0)
    runs = (starts, run_pair.astype(np.int64), per_node, scalar)
    return pairs // width, pairs % width, members, runs


def _folded(
    stage: Stage, src: Stage, s: np.ndarray, d: np.ndarray, m: np.ndarray, part: _Part, maps
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], _Part]:
    """Per-(map, map) bundles s -> d with members m, gathered into blocks of several maps."""
    per_src = block_size(src, maps) // (src.shape[1] * src.shape[2])
    per_dst = block_size(stage, maps) // (stage.shape[1] * stage.shape[2])
    if per_src == per_dst == 1:
        return [s], [d], [m], part
    width = block_count(stage, maps)
    pairs, fold = np.unique((s // per_src) * width + d // per_dst, return_inverse=True)
    members = np.bincount(fold, weights=m, minlength=pairs.size).astype(np.int64)
    folded = _Part(part.kind, pairs.size, part.arrays, fold.astype(np.int64))
    return [pairs // width], [pairs % width], [members], folded


def _stage_bundles(
    graph: Graph, model: Model, stage: Stage, maps: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], _Part]:
    """Local (source block, destination block, members) of one stage's bundles and its _Part.

    Source blocks are local to their source stage; for several sources the lists hold one entry
    per source stage. `maps` is bundles()'s map_blocks."""
    layer = model.layers[stage.layer]
    op = stage.op
    srcs = [graph.stages[k] for k in stage.sources]
    if op == "conv2d":
        o, cg, kh, kw = layer.w.shape
        rows, cols = _tap_matrices(layer)
        first = (np.arange(o) // (o // layer.params.get("groups", 1))) * cg
        channel = first[:, None] + np.arange(cg)[None, :]  # (O, cg) source channel of each pair
        members = int(np.outer(rows.sum(1), cols.sum(1)).sum())
        s, d = channel.ravel(), np.repeat(np.arange(o), cg)
        groups = layer.params.get("groups", 1)
        per_dst = block_size(stage, maps) // (stage.shape[1] * stage.shape[2])
        per_src = block_size(srcs[0], maps) // (srcs[0].shape[1] * srcs[0].shape[2])
        weights = layer.w.reshape(o, cg, kh * kw)
        if groups == 1 and per_dst * per_src > 1:  # every block pair: weights summed by block
            d_starts, s_starts = np.arange(0, o, per_dst), np.arange(0, cg, per_src)
            by_block = np.add.reduceat(weights, d_starts, axis=0).transpose(1, 0, 2)
            by_block = np.ascontiguousarray(by_block)[None]  # (1, C, dst blocks, taps)
            n = s_starts.size * d_starts.size
            m = np.outer(np.diff(np.append(s_starts, cg)), np.diff(np.append(d_starts, o)))
            part = _Part("conv", n, (rows, cols, by_block, s_starts))
            s_block, d_block = np.divmod(np.arange(n), d_starts.size)
            return [s_block], [d_block], [(m * members).ravel().astype(np.int64)], part
        # (groups, cg, O / groups, taps): one small matrix product per source channel
        by_source = weights.reshape(groups, o // groups, cg, kh * kw).transpose(0, 2, 1, 3)
        part = _Part("conv", o * cg, (rows, cols, np.ascontiguousarray(by_source), None))
        return _folded(stage, srcs[0], s, d, np.full(s.size, members, np.int64), part, maps)
    if op in ("maxpool2d", "avgpool2d", "global_avgpool"):
        c = stage.shape[0]
        if op == "global_avgpool":
            members = int(np.prod(layer.in_shape[1:]))
        else:
            rows, cols = _tap_matrices(layer)
            members = int(np.outer(rows.sum(1), cols.sum(1)).sum())
        s = np.arange(c)
        return _folded(stage, srcs[0], s, s, np.full(c, members), _Part("pooled", c), maps)
    if op == "dense":
        n_out, n_in = layer.w.shape
        d_size, s_size = block_size(stage, maps), block_size(srcs[0], maps)
        d_starts, s_starts = np.arange(0, n_out, d_size), np.arange(0, n_in, s_size)
        d_len = np.diff(np.append(d_starts, n_out))
        s_len = np.diff(np.append(s_starts, n_in))
        by_dst = np.add.reduceat(layer.w, d_starts, axis=0)  # (dst blocks, n_in)
        nd, ns = d_starts.size, s_starts.size
        s, d = np.tile(np.arange(ns), nd), np.repeat(np.arange(nd), ns)
        part = _Part("dense", nd * ns, (by_dst, s_starts))
        return [s], [d], [np.outer(d_len, s_len).ravel().astype(np.int64)], part
    # one connection per source node: affine, mul, add, concat, elementwise stages
    d_size = block_size(stage, maps)
    ss, ds, ms, runs = [], [], [], []
    offset = 0
    for src in srcs:
        dst_node = np.arange(src.size) + offset
        if op == "concat":
            offset += src.size
        weight: float | np.ndarray = 1.0
        if op == "affine":
            per = src.size // layer.w.size
            weight = np.repeat(layer.w, per)
        elif op == "mul":
            weight = float(layer.params["factor"])
        src_block = np.arange(src.size) // block_size(src, maps)
        s, d, m, r = _runs(src_block, dst_node // d_size, weight)
        ss.append(s)
        ds.append(d)
        ms.append(m)
        runs.append((*r, s.size))
    return ss, ds, ms, _Part("runs", sum(s.size for s in ss), tuple(runs))


def bundles(model: Model, graph: Graph, map_blocks: int | None = None) -> Bundles:
    """The blocks and bundles of a model's graph (no connection is materialised).

    `map_blocks` caps the blocks of a stage of feature maps (None: one per map): a ResNet-18
    has 1.4M bundles with one block per map, about 6k with 16."""
    sizes = [block_size(s, map_blocks) for s in graph.stages]
    counts = [block_count(s, map_blocks) for s in graph.stages]
    block_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    src, dst, members, parts, n_bundles = [], [], [], [], [0]
    sources: list[tuple[int, ...]] = []
    acts: list[tuple[int, ...]] = []
    for i, stage in enumerate(graph.stages):
        if stage.layer < 0:
            parts.append(_Part("none", 0))
            n_bundles.append(0)
            sources.append(())
            acts.append(())
            continue
        ss, ds, ms, part = _stage_bundles(graph, model, stage, map_blocks)
        for k, s, d, m in zip(stage.sources, ss, ds, ms, strict=True):
            src.append(s + block_start[k])
            dst.append(d + block_start[i])
            members.append(m)
        parts.append(part)
        n_bundles.append(part.count)
        sources.append(tuple(stage.sources))
        layer = model.layers[stage.layer]
        acts.append(tuple(graph.stages[k].act_index for k in stage.sources) + (layer.index + 1,))
    empty = [np.zeros(0, np.int64)]
    return Bundles(
        block_start=_readonly(block_start, np.int64),
        block_size=_readonly(np.array(sizes), np.int64),
        bundle_start=_readonly(np.cumsum(n_bundles), np.int64),
        src=_readonly(np.concatenate(src or empty), np.int32),
        dst=_readonly(np.concatenate(dst or empty), np.int32),
        members=_readonly(np.concatenate(members or empty), np.int64),
        parts=tuple(parts),
        sources=tuple(sources),
        acts=tuple(acts),
        map_blocks=map_blocks,
    )


def _part_glow(part: _Part, inputs: list[np.ndarray], output: np.ndarray) -> np.ndarray:
    if part.kind == "conv":
        rows, cols, by_source, s_starts = part.arrays
        a = inputs[0].reshape(-1, rows.shape[1], cols.shape[1])
        # per channel and tap: the source map summed over the rows and columns the tap reads
        window = rows @ (a @ cols.T)  # (C, kh, kw)
        g, cg, per_group, taps = by_source.shape
        glow = np.matmul(by_source, window.reshape(g, cg, taps, 1))  # (G, cg, O / G, 1)
        if s_starts is not None:  # (C, dst blocks): summed by source block, source-major
            return np.add.reduceat(glow.reshape(cg, per_group), s_starts, axis=0).ravel()
        return glow.reshape(g, cg, per_group).transpose(0, 2, 1).ravel()  # (o, c) order
    if part.kind == "pooled":
        return output.reshape(output.shape[0], -1).sum(axis=1, dtype=np.float64)  # per map
    if part.kind == "dense":
        by_dst, s_starts = part.arrays
        return np.add.reduceat(by_dst * inputs[0].reshape(-1), s_starts, axis=1).ravel()
    out = []
    for a, (starts, run_pair, per_node, scalar, n) in zip(inputs, part.arrays, strict=True):
        a = a.reshape(-1)
        if per_node is not None:
            a = a * per_node
        sums = np.add.reduceat(a, starts, dtype=np.float64) if starts.size else starts
        out.append(np.bincount(run_pair, weights=sums, minlength=n) * scalar)
    return np.concatenate(out) if out else np.zeros(0)


def bundle_glow(b: Bundles, acts: list[np.ndarray]) -> np.ndarray:
    """float32 (B,): every bundle's sum of weight x source value for one input (forward()'s
    activations); max pooling counts each window's winner only (see the module docstring).

    Costs O(parameters + activations), never O(connections)."""
    out = np.empty(b.count, np.float32)
    for i, part in enumerate(b.parts):
        if part.count == 0:
            continue
        ids = b.acts[i]
        inputs = [np.asarray(acts[j], np.float32) for j in ids[:-1]]
        glow = _part_glow(part, inputs, np.asarray(acts[ids[-1]], np.float32))
        if part.fold is not None:  # blocks of several maps: sum the per-map bundles
            glow = np.bincount(part.fold, weights=glow, minlength=part.count)
        out[b.bundle_start[i] : b.bundle_start[i + 1]] = glow
    return out

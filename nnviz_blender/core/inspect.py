"""What the original showed when you clicked a node: its layer, its sum, the formula with numbers.

Pure functions of (model, graph, activations, node); the UI only formats the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .graph import Graph, Stage, edges_into, node_bias, node_values, weighted_input
from .modelfile import Model


@dataclass(frozen=True)
class Term:
    """One incoming connection's share of the node's weighted input."""

    src: int
    stage: str
    index: int
    weight: float
    value: float

    @property
    def product(self) -> float:
        return self.weight * self.value


@dataclass(frozen=True)
class NodeInfo:
    node: int
    stage: str
    kind: str
    index: int  # inside its stage
    map: int  # feature map (0 for flat stages)
    position: tuple[int, ...]  # (c, y, x) for maps, (i,) for vectors
    activation: float
    weighted_input: float
    bias: float
    function: str  # "tanh", "relu", "softmax", "max", "mean", "" (identity), "pixel"
    formula: str
    n_inputs: int
    terms: tuple[Term, ...] = ()  # the strongest contributions, largest |w x| first
    weights: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    patch: np.ndarray | None = None  # conv: the input patch (C, kh, kw)
    kernel: np.ndarray | None = None  # conv: the filter (C, kh, kw)
    is_winner: bool = False


def place(info: NodeInfo, labels=()) -> str:
    """Where a node sits, in words: "map 2, row 3, column 4" in a stack of maps, "row 1, column
    1" in a single map, "class 7" at the output; "" for any other vector (its index says it)."""
    if len(info.position) == 3:
        c, y, x = info.position
        pixel = f"row {y}, column {x}"
        return pixel if info.kind == "input" and c == 0 else f"map {c}, {pixel}"
    if info.kind == "output":
        label = labels[info.index] if info.index < len(labels) else info.index
        return f"class {label}"
    return ""


def _position(shape: tuple[int, ...], index: int) -> tuple[int, ...]:
    return tuple(int(v) for v in np.unravel_index(index, shape))


def _function(graph: Graph, node: int) -> str:
    stage = graph.stage_of(node)
    if stage.layer < 0:
        return "pixel"
    if stage.op == "maxpool2d":
        return "max"
    if stage.op in ("avgpool2d", "global_avgpool"):
        return "mean"
    return "∘".join(reversed(stage.activations))


def _conv_patch(model: Model, graph: Graph, node: int, acts: list[np.ndarray]):
    """The input patch a conv node reads (its group's channels, dilated taps) and its filter."""
    stage = graph.stage_of(node)
    layer = model.layers[stage.layer]
    o, y, x = _position(stage.shape, node - stage.start)
    p = layer.params
    (kh, kw), (sh, sw), (dh, dw) = p["kernel_size"], p["stride"], p["dilation"]
    top, left, bottom, right = p["pads"]
    cg = layer.w.shape[1]
    first = o // (layer.out_shape[0] // p.get("groups", 1)) * cg
    src = np.asarray(acts[layer.inputs[0]], np.float32).reshape(layer.in_shape)
    padded = np.pad(src[first : first + cg], ((0, 0), (top, bottom), (left, right)))
    rows = slice(y * sh, y * sh + dh * (kh - 1) + 1, dh)
    cols = slice(x * sw, x * sw + dw * (kw - 1) + 1, dw)
    return padded[:, rows, cols].copy(), layer.w[o].copy()


def _plus(v: float) -> str:
    """ "+ 0.120" or "- 0.120": a term added to a sum."""
    return f"+ {v:.3f}" if v >= 0 else f"- {-v:.3f}"


def _sum_text(values) -> str:
    first, *rest = (float(v) for v in values)
    return " ".join([f"{first:.3f}", *(_plus(v) for v in rest)])


def _computed(stage: Stage, z: float, bias: float | None, x, w, terms) -> str:
    """How the stage's layer computes the node's weighted input z from its inputs `x` (values,
    in edge order, weights `w`), ending in "= z"; bias None for a layer without one."""
    n = len(x)
    if stage.op in ("dense", "conv2d"):
        if bias is None:
            return f"Σ{n} w·x = {z:.3f}"
        return f"Σ{n} w·x + b = {z - bias:.3f} {_plus(bias)} = {z:.3f}"
    if stage.op == "maxpool2d":
        return f"max({', '.join(f'{v:.2f}' for v in x)}) = {z:.3f}"
    if stage.op in ("avgpool2d", "global_avgpool"):
        d = round(1.0 / float(w[0])) if n else 1
        if d == n and n <= len(terms):
            return f"mean({', '.join(f'{v:.2f}' for v in x)}) = {z:.3f}"
        head = f"mean of {n} = Σx" if d == n else f"Σ{n} x"
        return f"{head} / {d} = {z * d:.3f} / {d} = {z:.3f}"
    if stage.op == "add":
        return f"{_sum_text(x)} = {z:.3f}"
    if stage.op == "affine":  # a per-channel scale and shift (an unfolded batch norm)
        shift = _plus(bias or 0.0)
        return f"w·x + b = {float(w[0]):.3f} × {float(x[0]):.3f} {shift} = {z:.3f}"
    if stage.op == "mul":
        return f"{float(w[0]):g} × {float(x[0]):.3f} = {z:.3f}"
    # concat and elementwise stages: the node is one input node's value
    t = terms[0]
    return f"{t.stage}[{t.index}] = {z:.3f}"


def _has_bias(model: Model, stage: Stage) -> bool:
    return stage.layer >= 0 and model.layers[stage.layer].bias is not None


def _formula(stage: Stage, z: float, bias: float | None, a: float, x, w, terms) -> str:
    """The node's value with numbers: the layer's sum (or max, mean, copy, ...), then the
    functions applied after it; identity stages end at the sum, never repeat it."""
    if stage.layer < 0:
        return f"input pixel = {a:.3f}"
    computed = _computed(stage, z, bias, x, w, terms)
    function = "∘".join(reversed(stage.activations))
    if not function:
        return computed
    if function.endswith("softmax"):
        return f"z = {computed};  {function}(z) = {a:.3f}"
    return f"{function}({computed}) = {a:.3f}"


def describe(
    model: Model, graph: Graph, acts: list[np.ndarray], node: int, top: int = 8
) -> NodeInfo:
    """Everything the info box shows about `node` for the input whose activations are `acts`."""
    values = node_values(graph, acts)
    stage = graph.stage_of(node)
    index = node - stage.start
    edges = edges_into(graph, [node])
    w = edges.weight
    v = values[edges.src]
    order = np.argsort(-np.abs(w * v), kind="stable")[:top]
    if stage.op == "maxpool2d":  # every input of a pool: show them all
        order = np.arange(len(edges))
    terms = tuple(
        Term(
            int(edges.src[i]),
            graph.stage_of(int(edges.src[i])).name,
            int(edges.src[i]) - graph.stage_of(int(edges.src[i])).start,
            float(w[i]),
            float(v[i]),
        )
        for i in order
    )
    z = weighted_input(graph, model, node, acts)
    bias = node_bias(graph, model, node)
    function = _function(graph, node)
    a = float(values[node])
    patch = kernel = None
    if stage.op == "conv2d":
        patch, kernel = _conv_patch(model, graph, node, acts)
    is_winner = stage.kind == "output" and index == int(np.argmax(values[stage.start : stage.stop]))
    return NodeInfo(
        node=node,
        stage=stage.name,
        kind=stage.kind,
        index=index,
        map=int(graph.node_map[node]),
        position=_position(stage.shape, index),
        activation=a,
        weighted_input=z,
        bias=bias,
        function=function,
        formula=_formula(stage, z, bias if _has_bias(model, stage) else None, a, v, w, terms),
        n_inputs=len(edges),
        terms=terms,
        weights=w.astype(np.float32),
        patch=patch,
        kernel=kernel,
        is_winner=is_winner,
    )


def nearest_node(positions: np.ndarray, point, visible: np.ndarray | None = None) -> int:
    """The node whose position is closest to `point` (e.g. the 3D cursor)."""
    d = np.square(np.asarray(positions, np.float64) - np.asarray(point, np.float64)).sum(axis=1)
    if visible is not None:
        d[~visible] = np.inf
    return int(np.argmin(d))

"""How a node's colour value is computed: the one owner of display values (pure NumPy).

Every node shows three numbers (the POINT attributes of the nodes mesh):

- `act`: its raw activation (`core.graph.node_values` of forward()'s list);
- `level`: min-max normalised to [0, 1] within its group, for the colour ramps;
- `signed`: divided by its group's largest magnitude, in [-1, 1], for diverging colour maps
  (the light theme's look).

The groups follow the graph's stages (node ranges), so any graph whose stages are node ranges
fits: `per` = "map" makes every feature map of a (C, H, W) stage a group of its own (as the
original did) and every flat stage one group; "stage" one group per stage; "global" one `level`
group of all non-input nodes (`signed` then groups by stage, so a sign keeps its scale).
Input stages hold pixels: one group each, shown as they are unless they leave [0, 1] (then
min-max normalised); their `signed` is the pixels themselves.

Both normalised values are affine per group, so they are always computed in two steps: the
per-group constants (lo, span, peak) of `constants`, then `level = (act - lo) / span` and
`signed = act / peak` (0 where the divisor is 0, as Blender's Math node divides). The live view,
the render command and the bake (whose Geometry Nodes do the second step per frame from a table
of baked constants) all use these functions, so a baked frame equals the live view to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .forward import forward
from .graph import Graph, node_values
from .modelfile import Model
from .preprocess import is_blank

NORMALISE = ("map", "stage", "global")
# Edges whose |glow| is below this share of full strength do not show: deleted before a render,
# faded in above it by the edge material (scene.network.set_edge_fade), and not traced.
DEFAULT_FADE = 0.12


@dataclass(frozen=True, eq=False)
class _Partition:
    """Nodes in groups: the group of every node, and the runs of equal group in node order
    (a group is normally one run; several runs may share one, as "global" could)."""

    label: np.ndarray  # int32 (N,) group of every node
    count: int  # number of groups
    pixels: np.ndarray  # bool (count,) groups made of input pixels
    starts: np.ndarray  # int64 (R,) first node of every run
    lengths: np.ndarray  # int64 (R,) nodes in every run
    run_group: np.ndarray  # int64 (R,) group of every run

    @property
    def one_run_each(self) -> bool:
        return self.run_group.size == self.count


def _partition(graph: Graph, per: str) -> _Partition:
    label = np.zeros(graph.node_count, np.int32)
    pixels: list[bool] = []
    global_group = -1
    for stage in graph.stages:
        nodes = slice(stage.start, stage.stop)
        if stage.kind == "input":
            label[nodes] = len(pixels)
            pixels.append(True)
        elif per == "global":
            if global_group < 0:
                global_group = len(pixels)
                pixels.append(False)
            label[nodes] = global_group
        elif per == "map" and stage.is_map:
            c, h, w = stage.shape
            label[nodes] = len(pixels) + np.repeat(np.arange(c), h * w)
            pixels += [False] * c
        else:
            label[nodes] = len(pixels)
            pixels.append(False)
    starts = np.flatnonzero(np.diff(label, prepend=-1)) if label.size else np.zeros(0, np.int64)
    lengths = np.diff(np.append(starts, label.size))
    return _Partition(
        label, len(pixels), np.array(pixels, bool), starts, lengths, label[starts].astype(np.int64)
    )


@dataclass(frozen=True, eq=False)
class Groups:
    """The groups `level` and `signed` are normalised over; groups are numbered in node order,
    so for a sequential model group 0 is the input."""

    level_groups: _Partition
    signed_groups: _Partition

    @property
    def level(self) -> np.ndarray:
        """int32 (N,): the `level` group of every node."""
        return self.level_groups.label

    @property
    def signed(self) -> np.ndarray:
        """int32 (N,): the `signed` group of every node."""
        return self.signed_groups.label

    @property
    def n_level(self) -> int:
        return self.level_groups.count

    @property
    def n_signed(self) -> int:
        return self.signed_groups.count

    @property
    def width(self) -> int:
        """Rows per key in a constants table (level and signed groups share rows)."""
        return max(self.n_level, self.n_signed)


def groups(graph: Graph, per: str = "map") -> Groups:
    """The groups `level` and `signed` are normalised over."""
    if per not in NORMALISE:
        raise ValueError(f"normalise must be one of {', '.join(NORMALISE)}, not {per!r}")
    level_groups = _partition(graph, per)
    return Groups(level_groups, _partition(graph, "stage") if per == "global" else level_groups)


def _reduce(ufunc, values: np.ndarray, part: _Partition) -> np.ndarray:
    """ufunc (minimum / maximum) over every group -> (K, part.count)."""
    runs = ufunc.reduceat(values, part.starts, axis=1)
    if part.one_run_each:
        return runs
    fill = np.inf if ufunc is np.minimum else -np.inf
    out = np.full((values.shape[0], part.count), fill, values.dtype)
    ufunc.at(out, (slice(None), part.run_group), runs)
    return out


def constants(grp: Groups, values: np.ndarray) -> np.ndarray:
    """Per group (lo, span, peak) -> float32 (grp.width, 3) for values (N,), (K, width, 3) for
    values (K, N). Rows beyond a value's own group count stay 0."""
    values = np.asarray(values, np.float32)
    single = values.ndim == 1
    values = values[None] if single else values
    out = np.zeros((values.shape[0], grp.width, 3), np.float32)
    lv = grp.level_groups
    lo = _reduce(np.minimum, values, lv)
    hi = _reduce(np.maximum, values, lv)
    inside = lv.pixels & (lo >= 0.0) & (hi <= 1.0)  # pixels in [0, 1] stay as they are
    out[:, : lv.count, 0] = np.where(inside, np.float32(0.0), lo)
    out[:, : lv.count, 1] = np.where(inside, np.float32(1.0), hi - lo)
    sg = grp.signed_groups
    if sg is lv:  # the largest |value| of a group is its -minimum or its maximum
        peak = np.maximum(np.abs(lo), np.abs(hi))
    else:
        peak = _reduce(np.maximum, np.abs(values), sg)
    out[:, : sg.count, 2] = np.where(sg.pixels, np.float32(1.0), peak)
    return out[0] if single else out


def _per_node(column: np.ndarray, part: _Partition) -> np.ndarray:
    """A per-group constant ((..., groups)) spread over the nodes ((..., N))."""
    return np.repeat(column[..., part.run_group], part.lengths, axis=-1)


def _divisor(b: np.ndarray) -> np.ndarray:
    """b, with 1 where b == 0: dividing by it is a / b, 0 where b == 0 (Blender's Math node
    divides safely the same way). Where b == 0 here a is 0 too (a constant group minus its
    minimum, or an all-zero group), so dividing by 1 there gives that 0. Applied to the
    per-group constants before they are spread over the nodes: the same quotients, bit for bit,
    at a fraction of the cost."""
    return np.where(b == 0, np.float32(1.0), b)


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b == 0 (see _divisor)."""
    return np.divide(a, _divisor(b))


def level(values: np.ndarray, grp: Groups, const: np.ndarray) -> np.ndarray:
    """`level` of values (N,) or (K, N) from their constants ((width, 3) or (K, width, 3))."""
    values = np.asarray(values, np.float32)
    part = grp.level_groups
    out = np.subtract(values, _per_node(const[..., 0], part))
    return np.divide(out, _per_node(_divisor(const[..., 1]), part), out=out)


def signed(values: np.ndarray, grp: Groups, const: np.ndarray) -> np.ndarray:
    """`signed` of values (N,) or (K, N) from their constants, as the bake modifier does."""
    divisor = _per_node(_divisor(const[..., 2]), grp.signed_groups)
    return np.divide(np.asarray(values, np.float32), divisor)


@dataclass(frozen=True, eq=False)
class Display:
    """What the nodes show for one input (or K inputs): float32 (N,) or (K, N) each."""

    act: np.ndarray
    level: np.ndarray
    signed: np.ndarray


def display(grp: Groups, values: np.ndarray) -> Display:
    """Raw node values (N,) or (K, N) -> what the nodes show."""
    act = np.ascontiguousarray(values, np.float32)
    const = constants(grp, act)
    return Display(act, level(act, grp, const), signed(act, grp, const))


def show(graph: Graph, acts: list[np.ndarray], per: str = "map") -> Display:
    """forward()'s activations of one input (or a batch) -> what the nodes show."""
    return display(groups(graph, per), node_values(graph, acts))


def key_values(model: Model, graph: Graph, inputs, each=None) -> np.ndarray:
    """Node values (K, N) of K network inputs, each run on its own exactly as live drawing runs
    it (a batched forward pass may differ in the last bit: matrix products sum in another order),
    so a held frame equals the live view of that input bit for bit; an input without ink shows
    the idle state, all zeros, as live drawing does. `each(k, activations)`, if given, also
    sees forward()'s list of every input k with ink, so one pass serves what else a key needs
    (scene.network.key_values_and_glow: the bundles' glow)."""
    rows = []
    for k, x in enumerate(inputs):
        x = np.asarray(x, np.float32)
        if is_blank(x):
            rows.append(np.zeros(graph.node_count, np.float32))
            continue
        acts = forward(model, x)
        if each is not None:
            each(k, acts)
        rows.append(node_values(graph, acts))
    if not rows:
        raise ValueError("no inputs")
    return np.stack(rows).astype(np.float32)


def bundle_signed(bundle_start: np.ndarray, glow: np.ndarray) -> np.ndarray:
    """A bundle's shown glow: its sum (core.bundles.bundle_glow) divided by the largest |sum| of
    the bundles ending in the same stage -> float32 (B,) in [-1, 1] (0 where all are 0).

    `bundle_start` is Bundles.bundle_start (bundles grouped by destination stage); a (K, B)
    table of K inputs gives (K, B), each row on its own scale."""
    glow = np.asarray(glow, np.float32)
    counts = np.diff(np.asarray(bundle_start, np.int64))
    starts = np.asarray(bundle_start[:-1], np.int64)[counts > 0]
    if glow.shape[-1] == 0:
        return glow.copy()
    peak = np.maximum.reduceat(np.abs(glow), starts, axis=-1)
    return _safe_divide(glow, np.repeat(peak, counts[counts > 0], axis=-1))

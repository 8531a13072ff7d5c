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
from typing import NamedTuple

import numpy as np

from .forward import forward
from .graph import Graph, node_values
from .modelfile import Model

NORMALISE = ("map", "stage", "global")


class _Run(NamedTuple):
    """`n_groups` consecutive groups of `size` nodes each from node `start`, the first being
    group `group` (several runs may feed one group: "global")."""

    start: int
    n_groups: int
    size: int
    group: int
    pixels: bool

    @property
    def stop(self) -> int:
        return self.start + self.n_groups * self.size


@dataclass(frozen=True, eq=False)
class Groups:
    """The group of every node for `level` and for `signed` (int32 (N,)) and the group counts.

    Groups are numbered in stage order, so for a sequential model group 0 is the input.
    """

    level: np.ndarray
    signed: np.ndarray
    n_level: int
    n_signed: int
    level_runs: tuple[_Run, ...]
    signed_runs: tuple[_Run, ...]

    @property
    def width(self) -> int:
        """Rows per key in a constants table (level and signed groups share rows)."""
        return max(self.n_level, self.n_signed)


def _runs(graph: Graph, per: str) -> tuple[_Run, ...]:
    runs: list[_Run] = []
    group = 0
    global_group = -1
    for stage in graph.stages:
        if stage.kind == "input":
            runs.append(_Run(stage.start, 1, stage.size, group, True))
            group += 1
        elif per == "global":
            if global_group < 0:
                global_group, group = group, group + 1
            runs.append(_Run(stage.start, 1, stage.size, global_group, False))
        elif per == "map" and stage.is_map:
            n = stage.shape[1] * stage.shape[2]
            runs.append(_Run(stage.start, stage.shape[0], n, group, False))
            group += stage.shape[0]
        else:
            runs.append(_Run(stage.start, 1, stage.size, group, False))
            group += 1
    return tuple(runs)


def _label(graph: Graph, runs: tuple[_Run, ...]) -> tuple[np.ndarray, int]:
    label = np.zeros(graph.node_count, np.int32)
    for r in runs:
        label[r.start : r.stop] = np.repeat(np.arange(r.group, r.group + r.n_groups), r.size)
    return label, max((r.group + r.n_groups for r in runs), default=0)


def groups(graph: Graph, per: str = "map") -> Groups:
    """The groups `level` and `signed` are normalised over."""
    if per not in NORMALISE:
        raise ValueError(f"normalise must be one of {', '.join(NORMALISE)}, not {per!r}")
    level_runs = _runs(graph, per)
    signed_runs = _runs(graph, "stage" if per == "global" else per)
    level, n_level = _label(graph, level_runs)
    signed, n_signed = _label(graph, signed_runs)
    return Groups(level, signed, n_level, n_signed, level_runs, signed_runs)


def _blocks(values: np.ndarray, r: _Run) -> np.ndarray:
    """The run's values as (K, n_groups, size)."""
    return values[:, r.start : r.stop].reshape(values.shape[0], r.n_groups, r.size)


def constants(grp: Groups, values: np.ndarray) -> np.ndarray:
    """Per group (lo, span, peak) -> float32 (grp.width, 3) for values (N,), (K, width, 3) for
    values (K, N). Rows beyond a value's own group count stay 0."""
    values = np.asarray(values, np.float32)
    single = values.ndim == 1
    values = values[None] if single else values
    k = values.shape[0]
    lo = np.full((k, grp.width), np.inf, np.float32)
    hi = np.full((k, grp.width), -np.inf, np.float32)
    pixel_group = np.zeros(grp.width, bool)
    for r in grp.level_runs:
        block = _blocks(values, r)
        cut = slice(r.group, r.group + r.n_groups)
        np.minimum(lo[:, cut], block.min(axis=2), out=lo[:, cut])
        np.maximum(hi[:, cut], block.max(axis=2), out=hi[:, cut])
        pixel_group[cut] = r.pixels
    out = np.zeros((k, grp.width, 3), np.float32)
    used = np.isfinite(lo)
    out[..., 0] = np.where(used, lo, 0.0)
    out[..., 1] = np.where(used, hi - lo, 0.0)
    inside = pixel_group & (lo >= 0.0) & (hi <= 1.0)  # pixels in [0, 1] stay as they are
    out[..., 0] = np.where(inside, 0.0, out[..., 0])
    out[..., 1] = np.where(inside, 1.0, out[..., 1])
    for r in grp.signed_runs:
        cut = slice(r.group, r.group + r.n_groups)
        out[:, cut, 2] = 1.0 if r.pixels else np.abs(_blocks(values, r)).max(axis=2)
    return out[0] if single else out


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b == 0 (Blender's Math node divides safely the same way)."""
    zero = b == 0
    out = np.divide(a, np.where(zero, np.float32(1.0), b))
    out[zero] = 0.0
    return out


def level(values: np.ndarray, grp: Groups, const: np.ndarray) -> np.ndarray:
    """`level` of values (N,) or (K, N) from their constants ((width, 3) or (K, width, 3))."""
    values = np.asarray(values, np.float32)
    return _safe_divide(values - const[..., grp.level, 0], const[..., grp.level, 1])


def signed(values: np.ndarray, grp: Groups, const: np.ndarray) -> np.ndarray:
    """`signed` of values (N,) or (K, N) from their constants, as the bake modifier does."""
    return _safe_divide(np.asarray(values, np.float32), const[..., grp.signed, 2])


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


def key_values(model: Model, graph: Graph, inputs) -> np.ndarray:
    """Node values (K, N) of K network inputs, each run on its own exactly as live drawing runs
    it (a batched forward pass may differ in the last bit: matrix products sum in another order),
    so a held frame equals the live view of that input bit for bit."""
    rows = [node_values(graph, forward(model, np.asarray(x, np.float32))) for x in inputs]
    if not rows:
        raise ValueError("no inputs")
    return np.stack(rows).astype(np.float32)

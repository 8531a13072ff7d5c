"""The compact per-key table: raw node values plus normalisation constants per group.

The nodes show three values (see scene.network): `act` (raw), `level` (min-max per group, for
colour) and `signed` (divided by the group's largest magnitude). Storing all three for every key
state would cost 12 bytes per node per key (27 MB for 250 states of the CNN). Both normalised
values are affine per group, so the table keeps only `act` (4 bytes per node per key) and, per
key and group, (lo, span) for `level` and the peak for `signed`:

    level  = (act - lo[g]) / span[g]      (0 where span = 0)
    signed = act / peak[h]                (0 where peak = 0)

which is exactly what core.graph.normalized_values and scene.network.signed_values compute
(same float32 operations), so a baked frame equals the live view to the last bit.
Group 0 is always the input stage: its pixels stay as they are (lo 0, span 1, peak 1) unless
they leave [0, 1], as in normalized_values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.graph import Graph

NORMALISE = ("map", "stage", "global")


@dataclass(frozen=True)
class Groups:
    """Group of every node for `level` and for `signed` (int32 (N,)) and the group counts."""

    level: np.ndarray
    signed: np.ndarray
    n_level: int
    n_signed: int

    @property
    def width(self) -> int:
        """Rows per key in the constants table (level and signed groups share rows)."""
        return max(self.n_level, self.n_signed)


def _spans(graph: Graph, per: str) -> list[tuple[int, int]]:
    """(start, size) of the normalisation groups after the input stage, as graph._groups."""
    if per == "global":
        start = graph.stages[1].start if len(graph.stages) > 1 else graph.node_count
        return [(start, graph.node_count - start)] if start < graph.node_count else []
    spans = []
    for stage in graph.stages[1:]:
        if per == "map" and stage.is_map:
            n = stage.shape[1] * stage.shape[2]
            spans += [(stage.start + m * n, n) for m in range(stage.shape[0])]
        else:
            spans.append((stage.start, stage.size))
    return spans


def _label(graph: Graph, spans: list[tuple[int, int]]) -> np.ndarray:
    group = np.zeros(graph.node_count, np.int32)
    for g, (start, size) in enumerate(spans, start=1):
        group[start : start + size] = g
    return group


def groups(graph: Graph, per: str = "map") -> Groups:
    """The groups `level` and `signed` are normalised over (as the live view does)."""
    if per not in NORMALISE:
        raise ValueError(f"normalise must be one of {', '.join(NORMALISE)}, not {per!r}")
    level_spans = _spans(graph, per)
    signed_spans = _spans(graph, "stage" if per == "global" else per)
    return Groups(
        _label(graph, level_spans),
        _label(graph, signed_spans),
        len(level_spans) + 1,
        len(signed_spans) + 1,
    )


def constants(graph: Graph, grp: Groups, values: np.ndarray) -> np.ndarray:
    """Per key and group (lo, span, peak): float32 (K, grp.width, 3) for values (K, N)."""
    values = np.asarray(values, np.float32)
    if values.ndim == 1:
        values = values[None]
    k = values.shape[0]
    out = np.zeros((k, grp.width, 3), np.float32)
    first = graph.stages[0]
    pixels = values[:, first.start : first.stop]
    lo, hi = pixels.min(axis=1), pixels.max(axis=1)
    inside = (lo >= 0.0) & (hi <= 1.0)
    out[:, 0, 0] = np.where(inside, 0.0, lo)
    out[:, 0, 1] = np.where(inside, 1.0, hi - lo)
    out[:, 0, 2] = 1.0
    for g in range(1, grp.n_level):
        block = values[:, grp.level == g]
        lo, hi = block.min(axis=1), block.max(axis=1)
        out[:, g, 0] = lo
        out[:, g, 1] = hi - lo
    for h in range(1, grp.n_signed):
        out[:, h, 2] = np.abs(values[:, grp.signed == h]).max(axis=1)
    return out


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b == 0 (Blender's Math node divides safely the same way)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / np.where(b == 0, np.float32(1.0), b)
    return np.where(b == 0, np.float32(0.0), out).astype(np.float32)


def level(values: np.ndarray, grp: Groups, const: np.ndarray) -> np.ndarray:
    """`level` of one key's values (N,) from its constants (width, 3), as the modifier does."""
    values = np.asarray(values, np.float32)
    lo, span = const[grp.level, 0], const[grp.level, 1]
    return _safe_divide(values - lo, span)


def signed(values: np.ndarray, grp: Groups, const: np.ndarray) -> np.ndarray:
    """`signed` of one key's values (N,) from its constants (width, 3), as the modifier does."""
    return _safe_divide(np.asarray(values, np.float32), const[grp.signed, 2])


def key_values(model, graph: Graph, inputs) -> np.ndarray:
    """Node values (K, N) of K network inputs, each run on its own exactly as live drawing runs
    it (a batched forward pass may differ in the last bit: matrix products sum in another order),
    so a held frame equals the live view of that input bit for bit."""
    from ..core.forward import forward
    from ..core.graph import node_values

    rows = [node_values(graph, forward(model, np.asarray(x, np.float32))) for x in inputs]
    if not rows:
        raise ValueError("no inputs")
    return np.stack(rows).astype(np.float32)

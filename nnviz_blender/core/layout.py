"""Node positions in Blender units (1 unit = 100 units of the original), z up, seen along +y.

Two styles, as in the original (A. W. Harley's 2015 web visualization, the paper the README
cites; its coordinates were read from its source):

- "3d": every stage is a horizontal plane, stacked upward from the input at the bottom. Inside a
  plane, x runs right and y runs away from the front camera (which sits at negative y).
- "flat": the same x positions, every node on the vertical plane y = 0, stages stacked in z.

Inside a stage, nodes sit on a 0.1 pitch (10 original units). A 2-D map is drawn upright as the
viewer sees it: image row 0 at the back (3d) or at the top (flat), column 0 on the left.
Feature maps lie side by side along x with a 0.4 gap (so 28x28 maps have centres 3.2 apart and
10x10 maps 1.4 apart, as in the original, with map 0 at +x as the original's table has it); a
pooling stage reuses the map centres of the stage below it. Flat vectors are one row, unit 0 on
the left, folded into a rectangle beyond 300 units; many maps wrap into rows of maps.

The original maps to Blender as (x, y_height, z_depth) -> (x, -z, y) / 100 (a rotation, so nothing
is mirrored). In 3d the stages of both shipped networks are 1.0 apart and centred on z = 0, which
is what the automatic rule gives; the original's flat heights are irregular and are kept as a
preset for the two shipped architectures. `spacing` scales only the gaps between stages.

Graph models: stages are stacked by depth along the graph (the longest path from the input), so
one plane (3d) or row (flat) may hold several stages. Stages every path passes through (the
*trunk*: input, stem, each add or concat, the head) sit centred on x = 0; between two trunk stages
the longest branch stands in the centre column above the trunk and the other branches beside it,
side by side. A stage's maps fold into a compact block of a few rows (a network of many stages
would otherwise be a long thin strip). Connections that skip levels (a residual's identity, a
downsampling branch's output) arch around the stages they skip (`arcs`): each swings out beside
them, the bundle narrowed, and back in. A chain is all trunk, has no arcs and keeps its rows of
maps, so sequential networks look as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .graph import Graph, Stage

PITCH = 0.1  # distance between neighbouring nodes
MAP_GAP = 0.4  # empty space between neighbouring feature maps
ROW_MAX = 300  # longest flat vector drawn as a single row
MAPS_PER_ROW = 16  # feature maps drawn side by side before wrapping into rows of maps
GAP_3D = 1.0  # smallest distance between stacked planes (3d)
GAP_FLAT = 0.5  # smallest gap between stacked stages (flat)
LABEL_OFFSET = 0.2  # height of the output labels above their nodes
EDGE_RADIUS = 0.015 * PITCH  # a connection's radius in layouts up to SHIPPED_EXTENT long
SHIPPED_EXTENT = 32.0  # longest side of the shipped networks' 3d layouts (the ResNet's is 31)
STYLES = ("3d", "flat")


def edge_radius(positions: np.ndarray) -> float:
    """A connection's radius for a layout: EDGE_RADIUS up to SHIPPED_EXTENT, then growing with
    the layout's longest side, so that a view of a whole big network (a ResNet-18 at 64x64 is
    105 long) draws its connections as wide on screen as a view of a whole shipped one."""
    extent = float(np.ptp(positions, axis=0).max()) if len(positions) else 0.0
    return EDGE_RADIUS * max(1.0, extent / SHIPPED_EXTENT)


# The original's flat layout: the height (z) of each stage's centre, keyed by the stages.
_FLAT_PRESETS: dict[tuple, tuple[float, ...]] = {
    (
        ("input", (1, 28, 28)),
        ("dense", (300,)),
        ("dense", (100,)),
        ("output", (10,)),
    ): (-2.0, 0.0, 1.0, 2.0),
    (
        ("input", (1, 32, 32)),
        ("conv", (6, 28, 28)),
        ("pool", (6, 14, 14)),
        ("conv", (16, 10, 10)),
        ("pool", (16, 5, 5)),
        ("dense", (120,)),
        ("dense", (100,)),
        ("output", (10,)),
    ): (-5.7, -2.3, 0.0, 1.6, 2.6, 3.5, 4.5, 5.5),
}


# --- inside one stage -------------------------------------------------------------------------


def _is_vector(stage: Stage) -> bool:
    """Flat vectors, and maps of a single pixel each (e.g. after global pooling)."""
    return len(stage.shape) == 1 or stage.shape[1] * stage.shape[2] == 1


def _fold(n: int) -> int:
    """Columns for a vector of n units: one row up to ROW_MAX, else a balanced wide rectangle."""
    if n <= ROW_MAX:
        return n
    rows = math.ceil(n / max(ROW_MAX, math.ceil(math.sqrt(4 * n))))
    return math.ceil(n / rows)


def _grid(index: np.ndarray, cols: int, rows: int, pitch: tuple[float, float]) -> np.ndarray:
    """Centred cell coordinates (u right, v up/back) of row-major cells; column 0 on the left."""
    col, row = index % cols, index // cols
    return np.stack([(col - (cols - 1) / 2) * pitch[0], ((rows - 1) / 2 - row) * pitch[1]], 1)


def _vector_uv(n: int) -> np.ndarray:
    cols = _fold(n)
    return _grid(np.arange(n), cols, math.ceil(n / cols), (PITCH, PITCH))


def _maps_per_row(channels: int) -> int:
    if channels <= MAPS_PER_ROW:
        return channels
    return max(MAPS_PER_ROW, math.ceil(2 * math.sqrt(channels)))


def _maps_uv(shape: tuple[int, ...], per_row: int, cell: tuple[float, float]) -> np.ndarray:
    """Every node of C maps of H x W: the maps on a grid of cells (map 0 at +x), pixels upright."""
    c, h, w = shape
    index = np.arange(c * h * w)
    pixel = _grid(index % (h * w), w, h, (PITCH, PITCH))
    centre = _grid(index // (h * w), per_row, math.ceil(c / per_row), cell)
    centre[:, 0] *= -1  # map 0 at +x, as in the original's table
    return pixel + centre


def _compact_per_row(channels: int) -> int:
    """Maps per row in a graph model: about twice as many maps across as down, rows filled evenly
    (12 maps: 6 x 2, 16: 8 x 2, 24: 8 x 3, 32: 11, 11, 10)."""
    rows = math.ceil(channels / math.ceil(math.sqrt(4 * channels)))
    return math.ceil(channels / rows)


def _even_per_row(channels: int) -> int:
    """Maps per row in a flat graph model: rows of at most MAPS_PER_ROW (or 4 sqrt(C) for many
    maps, so a deep network's stack of stages stays wide: 512 maps in 6 rows), filled evenly."""
    widest = max(MAPS_PER_ROW, math.ceil(4 * math.sqrt(channels)))
    return math.ceil(channels / math.ceil(channels / widest))


def is_chain(graph: Graph) -> bool:
    """True when every stage reads exactly the one before it (a sequential network)."""
    return all(s.sources == (i - 1,) for i, s in enumerate(graph.stages) if i)


def _stage_uvs(graph: Graph, style: str = "3d") -> list[np.ndarray]:
    """In-plane coordinates of every stage, centred on its own origin.

    A map stage with as many channels as the map stage it reads reuses that stage's map cells,
    so pooled maps sit exactly above the maps they pool. Graph models: in 3d the maps of a stage
    fold into a compact block (`_compact_per_row`); flat, each stage keeps rows of maps of its
    own size (stacked rows of wide cells would make a tall narrow figure).
    """
    uvs: list[np.ndarray] = []
    cells: list[tuple[int, int, tuple[float, float]] | None] = []
    chain = is_chain(graph)
    per_row_of = _maps_per_row if chain else _compact_per_row if style == "3d" else _even_per_row
    inherit = chain or style == "3d"
    for stage in graph.stages:
        if _is_vector(stage):
            uvs.append(_vector_uv(stage.size))
            cells.append(None)
            continue
        c, h, w = stage.shape
        per_row, cell = per_row_of(c), (w * PITCH + MAP_GAP, h * PITCH + MAP_GAP)
        below = cells[stage.sources[0]] if stage.sources and inherit else None
        if below is not None and below[0] == c:
            per_row, cell = below[1], (max(cell[0], below[2][0]), max(cell[1], below[2][1]))
        uvs.append(_maps_uv(stage.shape, per_row, cell))
        cells.append((c, per_row, cell))
    return uvs


# --- levels and columns (graph models) -------------------------------------------------------

BRANCH_GAP = 1.0  # empty space between side-by-side stages of one level
GRAPH_RISE = 0.45  # graph models in 3d: plane gap per unit of plane depth


def _levels(graph: Graph) -> list[int]:
    """Depth of every stage: 0 for the input, 1 + the deepest stage it reads."""
    level: list[int] = []
    for stage in graph.stages:
        level.append(1 + max((level[k] for k in stage.sources), default=-1))
    return level


def _trunk(graph: Graph) -> list[bool]:
    """Stages every path from the input to the output passes through: no edge jumps over them."""
    reach = list(range(len(graph.stages)))  # the furthest stage index any edge from here reaches
    for i, stage in enumerate(graph.stages):
        for k in stage.sources:
            reach[k] = max(reach[k], i)
    trunk, furthest = [], 0
    for i in range(len(graph.stages)):
        trunk.append(furthest <= i)
        furthest = max(furthest, reach[i])
    return trunk


def _width(uv: np.ndarray) -> float:
    return float(uv[:, 0].max() - uv[:, 0].min())


def _row(widths: list[float], centre: float) -> list[float]:
    """Centres of items of these widths side by side, BRANCH_GAP apart, centred on `centre`."""
    total = sum(widths) + BRANCH_GAP * (len(widths) - 1)
    x, out = centre - total / 2, []
    for w in widths:
        out.append(x + w / 2)
        x += w + BRANCH_GAP
    return out


def _column_offsets(members: list[int], level: list[int], uvs, centre: float) -> dict[int, float]:
    """x centre of each stage of one branch: stages of one level side by side in its column."""
    out: dict[int, float] = {}
    for lv in sorted({level[i] for i in members}):
        row = [i for i in members if level[i] == lv]
        for i, x in zip(row, _row([_width(uvs[i]) for i in row], centre), strict=True):
            out[i] = x
    return out


def _column_width(members: list[int], level: list[int], uvs) -> float:
    by_level: dict[int, list[float]] = {}
    for i in members:
        by_level.setdefault(level[i], []).append(_width(uvs[i]))
    return max(sum(w) + BRANCH_GAP * (len(w) - 1) for w in by_level.values())


def _branches(graph: Graph, region: list[int]) -> list[list[int]]:
    """The connected parts of a set of stages (their edges among themselves), first stage first."""
    parent = {i: i for i in region}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in region:
        for k in graph.stages[i].sources:
            if k in parent:
                parent[root(i)] = root(k)
    parts: dict[int, list[int]] = {}
    for i in region:
        parts.setdefault(root(i), []).append(i)
    return list(parts.values())


def _x_offsets(graph: Graph, uvs: list[np.ndarray], level: list[int]) -> list[float]:
    """Where each stage's centre goes along x (0 for every stage of a chain)."""
    trunk = _trunk(graph)
    offsets = [0.0] * len(graph.stages)
    trunks = [i for i, t in enumerate(trunk) if t]
    for t0, t1 in zip(trunks, trunks[1:], strict=False):
        region = list(range(t0 + 1, t1))
        if not region:
            continue
        # the branch of most levels (the main path) in the centre, the others beside it,
        # alternately right and left
        columns = sorted(_branches(graph, region), key=lambda c: -len({level[i] for i in c}))
        widths = [_column_width(c, level, uvs) for c in columns]
        placed = {0: 0.0}
        right, left = widths[0] / 2 + BRANCH_GAP, -widths[0] / 2 - BRANCH_GAP
        for j, w in enumerate(widths[1:], 1):
            if j % 2:
                placed[j], right = right + w / 2, right + w + BRANCH_GAP
            else:
                placed[j], left = left - w / 2, left - w - BRANCH_GAP
        for j, members in enumerate(columns):
            for i, x in _column_offsets(members, level, uvs, placed[j]).items():
                offsets[i] = x
    return offsets


# --- stacking the stages ----------------------------------------------------------------------


def _extent(uv: np.ndarray) -> tuple[float, float]:
    return float(uv[:, 1].min()), float(uv[:, 1].max())


def _heights_3d(uvs: list[np.ndarray], spacing: float, rise: float = 0.3) -> np.ndarray:
    """Plane heights: gaps of at least GAP_3D, more for deep planes (`rise` x the deeper one's
    depth); centred on z = 0."""
    depth = [hi - lo for lo, hi in map(_extent, uvs)]
    gaps = [max(GAP_3D, rise * max(a, b)) * spacing for a, b in zip(depth, depth[1:], strict=False)]
    z = np.concatenate([[0.0], np.cumsum(gaps)])
    return z - (z[0] + z[-1]) / 2


def _stack(extents: list[tuple[float, float]], gaps: list[float]) -> np.ndarray:
    """Centres that put stage i+1's bottom gaps[i] above stage i's top, the first bottom at 0."""
    centres = [-extents[0][0]]
    for (_, top), (bottom, _), gap in zip(extents, extents[1:], gaps, strict=False):
        centres.append(centres[-1] + top + gap - bottom)
    return np.array(centres)


def _span_middle(centres: np.ndarray, extents: list[tuple[float, float]]) -> float:
    return (centres[0] + extents[0][0] + centres[-1] + extents[-1][1]) / 2


def _heights_flat(graph: Graph, uvs: list[np.ndarray], spacing: float) -> np.ndarray:
    """Level centres in z for the flat style: the original's heights for the shipped networks."""
    extents = [_extent(uv) for uv in uvs]
    key = tuple((s.kind, s.shape) for s in graph.stages)
    preset = _FLAT_PRESETS.get(key) if len(uvs) == len(graph.stages) else None
    if preset is not None:
        base = np.array(preset)
        gaps = [
            (b + lo_b) - (a + hi_a)
            for a, b, (_, hi_a), (lo_b, _) in zip(
                base, base[1:], extents, extents[1:], strict=False
            )
        ]
        middle = _span_middle(base, extents)
    else:
        heights = [hi - lo for lo, hi in extents]
        gaps = [
            GAP_3D if max(a, b) == 0 else max(GAP_FLAT, 0.2 * max(a, b))
            for a, b in zip(heights, heights[1:], strict=False)
        ]
        middle = 0.0
    centres = _stack(extents, [g * spacing for g in gaps])
    return centres - _span_middle(centres, extents) + middle


# --- public -----------------------------------------------------------------------------------


def layout(graph: Graph, style: str = "3d", spacing: float = 1.0) -> np.ndarray:
    """Position of every node -> float32 (N, 3), C-contiguous, in Blender units.

    style "3d" stacks horizontal planes upward; "flat" puts every node on the plane y = 0.
    `spacing` scales the gaps between stages (and nothing else).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    if not (math.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a positive number, not {spacing!r}")
    level = _levels(graph)
    own = _stage_uvs(graph, style)
    uvs = [
        uv + np.array([x, 0.0]) for uv, x in zip(own, _x_offsets(graph, own, level), strict=True)
    ]
    per_level = [
        np.concatenate([uv for uv, lv in zip(uvs, level, strict=True) if lv == n])
        for n in range(max(level) + 1)
    ]
    out = np.zeros((graph.node_count, 3), dtype=np.float64)
    if style == "3d":
        # graph models: planes far enough apart that the view from above sees into each
        heights = _heights_3d(per_level, spacing, 0.3 if is_chain(graph) else GRAPH_RISE)
        for stage, uv, lv in zip(graph.stages, uvs, level, strict=True):
            out[stage.start : stage.stop] = np.column_stack([uv, np.full(stage.size, heights[lv])])
    else:
        centres = _heights_flat(graph, per_level, spacing)
        for stage, uv, lv in zip(graph.stages, uvs, level, strict=True):
            block = out[stage.start : stage.stop]
            block[:, 0], block[:, 2] = uv[:, 0], uv[:, 1] + centres[lv]
    return np.ascontiguousarray(out, dtype=np.float32)


# --- skip connections: arcs around the stages they skip --------------------------------------

ARC_GAP = 0.5  # room between an arc's bundle and the stages it passes
ARC_SQUEEZE = 0.25  # an arc's bundle narrows to this fraction of its source stage's size
ARC_MIN_REACH = 0.05  # an arc swings out over at least this fraction of its length


@dataclass(frozen=True)
class _Route:
    """How the connections from one stage to a stage levels above it pass the levels between."""

    src: int  # stage indices
    dst: int
    side: np.ndarray  # (x, y) the bundle's centre runs at while it passes the skipped stages
    centre: np.ndarray  # (x, y) of the source stage's centre: an edge keeps its offset from it
    z: tuple[float, float]  # the height span of the skipped stages


def _box(positions: np.ndarray, stages: list[Stage]) -> tuple[np.ndarray, np.ndarray]:
    block = np.concatenate([positions[s.start : s.stop] for s in stages]).astype(np.float64)
    return block.min(axis=0), block.max(axis=0)


def _routes(graph: Graph, positions: np.ndarray, style: str) -> list[_Route]:
    """One route for every (source, stage) pair more than one level apart; the bundle passes on
    the side nearer the straight path, ARC_GAP clear of the skipped stages. On a tie: in 3d the
    left, nearer the three-quarter views (which look from the front left); flat the right, away
    from the stage names."""
    level = _levels(graph)
    routes = []
    for d, stage in enumerate(graph.stages):
        for k in stage.sources:
            if level[d] - level[k] < 2:
                continue
            between = [
                s for s, lv in zip(graph.stages, level, strict=True) if level[k] < lv < level[d]
            ]
            lo, hi = _box(positions, between)
            src_lo, src_hi = _box(positions, [graph.stages[k]])
            dst_lo, dst_hi = _box(positions, [stage])
            centre = (src_lo + src_hi)[:2] / 2
            half = ARC_SQUEEZE * (src_hi[0] - src_lo[0]) / 2
            mid = (centre[0] + (dst_lo[0] + dst_hi[0]) / 2) / 2
            right, left = hi[0] + ARC_GAP + half, lo[0] - ARC_GAP - half
            to_right, to_left = abs(right - mid), abs(left - mid)
            if math.isclose(to_right, to_left, abs_tol=1e-6):
                x = right if style == "flat" else left
            else:
                x = right if to_right < to_left else left
            y = (src_lo[1] + src_hi[1] + dst_lo[1] + dst_hi[1]) / 4
            routes.append(_Route(k, d, np.array([x, y]), centre, (float(lo[2]), float(hi[2]))))
    return routes


@dataclass(frozen=True)
class Arcs:
    """The connections that skip levels and how each arches around the stages it skips.

    `edges` indexes the edges given to `arcs`. Edge i runs from p0 to p1; at a fraction t of the
    way its coordinates `axes` are pulled towards `side[i]` by min(1, sin(pi t) / sin(pi
    reach[i])): fully while it passes the skipped stages, smoothly out and back in (arc_points).
    """

    edges: np.ndarray  # int64 (k,)
    side: np.ndarray  # float64 (k, len(axes))
    reach: np.ndarray  # float64 (k,), in [ARC_MIN_REACH, 0.5]
    axes: tuple[int, ...]  # (0,) flat: only x; (0, 1) in 3d: x and y


def arcs(
    graph: Graph, positions: np.ndarray, src: np.ndarray, dst: np.ndarray, style: str = "3d"
) -> Arcs:
    """Which of the edges (src, dst) arch, and how (see Arcs). None do in a chain."""
    axes = (0,) if style == "flat" else (0, 1)
    picked, sides, reaches = [], [], []
    src_stage, dst_stage = graph.node_stage[src], graph.node_stage[dst]
    for r in _routes(graph, positions, style):
        sel = np.flatnonzero((src_stage == r.src) & (dst_stage == r.dst))
        p0 = np.asarray(positions[src[sel]], np.float64)
        p1 = np.asarray(positions[dst[sel]], np.float64)
        rise = np.maximum(p1[:, 2] - p0[:, 2], 1e-9)
        first, last = (r.z[0] - p0[:, 2]) / rise, (r.z[1] - p0[:, 2]) / rise
        reaches.append(np.clip(np.minimum(first, 1.0 - last), ARC_MIN_REACH, 0.5))
        sides.append((r.side + ARC_SQUEEZE * (p0[:, :2] - r.centre))[:, axes])
        picked.append(sel)
    if not picked:
        return Arcs(np.zeros(0, np.int64), np.zeros((0, len(axes))), np.zeros(0), axes)
    return Arcs(
        np.concatenate(picked).astype(np.int64),
        np.concatenate(sides),
        np.concatenate(reaches),
        axes,
    )


def arc_points(
    p0: np.ndarray, p1: np.ndarray, t: np.ndarray, side: np.ndarray, reach: np.ndarray, axes
) -> np.ndarray:
    """Points at fractions t along arching edges (one row per point: its edge's p0, p1, side,
    reach), float64 (n, 3)."""
    t = np.asarray(t, np.float64)
    p = np.asarray(p0, np.float64) * (1.0 - t[:, None]) + np.asarray(p1, np.float64) * t[:, None]
    pull = np.clip(np.sin(np.pi * t) / np.sin(np.pi * np.asarray(reach)), 0.0, 1.0)
    cols = list(axes)
    p[:, cols] += pull[:, None] * (side - p[:, cols])
    return p


def arc_bounds(graph: Graph, positions: np.ndarray, style: str = "3d") -> np.ndarray:
    """Corners of the boxes the arcs' bundles pass through (float32 (8 x routes, 3)), for
    framing a camera; empty for a chain."""
    corners = []
    for r in _routes(graph, positions, style):
        lo, hi = _box(positions, [graph.stages[r.src]])
        for x in (lo[0], hi[0]):
            for y in (lo[1], hi[1]):
                at = r.side + ARC_SQUEEZE * (np.array([x, y]) - r.centre)
                if style == "flat":
                    at[1] = y
                corners += [[at[0], at[1], r.z[0]], [at[0], at[1], r.z[1]]]
    return np.array(corners, np.float32).reshape(-1, 3)


def stage_anchor(
    graph: Graph, positions: np.ndarray, stage_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """(centre, size) of the box around a stage's node centres, each float64 (3,)."""
    stage = graph.stages[stage_index]
    block = np.asarray(positions[stage.start : stage.stop], dtype=np.float64)
    lo, hi = block.min(axis=0), block.max(axis=0)
    return (lo + hi) / 2, hi - lo


def output_label_positions(graph: Graph, positions: np.ndarray) -> np.ndarray:
    """Where the output labels ("0" .. "9") go: LABEL_OFFSET above each output node, float32."""
    stage = graph.stages[-1]
    at = np.array(positions[stage.start : stage.stop], dtype=np.float32)
    at[:, 2] += LABEL_OFFSET
    return at


BESIDE_GAP = 4.0  # room left of a network for its canvas (at most 3.6 wide) and stage names


def beside(boxes: list[tuple[np.ndarray, np.ndarray]], lo: np.ndarray) -> np.ndarray:
    """Offset (float32 (3,)) that moves a layout whose node box starts at `lo` to the right of
    every box (lo, hi) in `boxes`, BESIDE_GAP apart; zero when there is nothing to avoid."""
    if not boxes:
        return np.zeros(3, np.float32)
    right = max(float(hi[0]) for _, hi in boxes)
    return np.array([right + BESIDE_GAP - float(lo[0]), 0.0, 0.0], np.float32)

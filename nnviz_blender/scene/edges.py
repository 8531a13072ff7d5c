"""The edges object: a hair Curves data-block with one two-point curve per drawn connection.

CURVE attributes written once at build: `src`, `dst` (node indices), `weight`, `gain`, a
per-stage constant that brings weight x activation into roughly [-1, 1] for colouring, and
`cuts`, the extra segments a render splits the edge into (build). Edges that skip levels arch
around the stages between (core.layout.arcs) and have more points.
The Geometry Nodes modifier reads the nodes object (Object Info), samples `act` of each edge's
source node (Sample Index on the instances), and stores

    glow = weight * act[src] * gain          (CURVE domain, float)

so an update writes only the node activations. Edges with |glow| < Threshold are deleted inside
the modifier, which makes "contribution" mode follow the input and lets renders skip edges that
would be invisible anyway.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..core import graph as core_graph
from ..core import layout
from . import attributes, trees, util

MODIFIER = "NNViz Edges"


def build_tree(network: str):
    tree = trees.new_tree(f"{network} edges", network, "edges_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Nodes", "NodeSocketObject")
    trees.add_socket(tree, "Threshold", "NodeSocketFloat", default=0.0, min_value=0.0)
    trees.add_socket(tree, "Hide Layers", "NodeSocketBool", default=False)
    trees.add_socket(tree, "Painting", "NodeSocketBool", default=False)
    trees.add_socket(tree, "Painting Threshold", "NodeSocketFloat", default=0.0, min_value=0.0)
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")

    n, link = trees.node, trees.link
    gin = n(tree, "NodeGroupInput", -1100, 0)
    # glow = weight * act[src] * gain
    src = trees.named(tree, "src", "INT", -900, -50)
    act = trees.node_value(tree, gin.outputs["Nodes"], "act", src, -900, 100)
    weight = trees.named(tree, "weight", "FLOAT", -700, -100)
    gain = trees.named(tree, "gain", "FLOAT", -700, -250)
    weighted = trees.math(tree, "MULTIPLY", act, weight, -500, 100)
    glow_value = trees.math(tree, "MULTIPLY", weighted, gain, -350, 100)
    stored = trees.store(
        tree, gin.outputs["Geometry"], "glow", glow_value, "FLOAT", "CURVE", -150, 0
    )
    glow = trees.named(tree, "glow", "FLOAT", -150, -250)
    absolute = trees.math(tree, "ABSOLUTE", glow, None, 0, -250)
    less = trees.math(tree, "LESS_THAN", absolute, gin.outputs["Threshold"], 150, -250)
    # Edges into or out of a hidden layer carry a CURVE attribute `hidden` (visibility.py).
    hidden = trees.named(tree, "hidden", "BOOLEAN", 150, -400)
    drop = n(tree, "FunctionNodeBooleanMath", 300, -300, operation="OR")
    link(tree, less, drop.inputs[0])
    link(tree, hidden, drop.inputs[1])
    delete = n(tree, "GeometryNodeDeleteGeometry", 300, -100, domain="CURVE")
    link(tree, stored, delete.inputs["Geometry"])
    link(tree, drop.outputs[0], delete.inputs["Selection"])
    # Threshold 0 and nothing hidden skip the delete entirely (the switch evaluates only the
    # branch it takes).
    positive = trees.math(tree, "GREATER_THAN", gin.outputs["Threshold"], 0.0, 300, 150)
    active = n(tree, "FunctionNodeBooleanMath", 400, 200, operation="OR")
    link(tree, positive, active.inputs[0])
    link(tree, gin.outputs["Hide Layers"], active.inputs[1])
    switch = n(tree, "GeometryNodeSwitch", 500, 0, input_type="GEOMETRY")
    link(tree, active.outputs[0], switch.inputs["Switch"])
    link(tree, stored, switch.inputs["False"])
    link(tree, delete.outputs["Geometry"], switch.inputs["True"])
    light = _painting_branch(tree, gin, stored, glow, hidden)
    # Painting (set by live drawing): viewports draw the light version.
    shown = n(tree, "GeometryNodeSwitch", 650, 300, input_type="GEOMETRY")
    link(tree, gin.outputs["Painting"], shown.inputs["Switch"])
    link(tree, switch.outputs[0], shown.inputs["False"])
    link(tree, light, shown.inputs["True"])
    # Viewports draw hair curves at their evaluated points, and a Catmull-Rom curve (the type
    # of new hair curves) has `resolution` (12) of them per segment: poly curves, the same
    # straight lines, draw and evaluate 12x fewer (converted after the deletes, on what is
    # left). A render (Is Viewport is false in the render depsgraph) gets the full version,
    # its long straight edges split into `cuts` + 1 segments (see build); Cycles interpolates
    # the control points itself.
    poly = n(tree, "GeometryNodeCurveSplineType", 800, 300, spline_type="POLY")
    link(tree, shown.outputs[0], poly.inputs["Curve"])
    split = n(tree, "GeometryNodeSubdivideCurve", 800, -150)
    link(tree, switch.outputs[0], split.inputs["Curve"])
    link(tree, trees.named(tree, "cuts", "INT", 650, -300), split.inputs["Cuts"])
    viewport = n(tree, "GeometryNodeIsViewport", 800, 450)
    pick = n(tree, "GeometryNodeSwitch", 950, 0, input_type="GEOMETRY")
    link(tree, viewport.outputs[0], pick.inputs["Switch"])
    link(tree, split.outputs[0], pick.inputs["False"])
    link(tree, poly.outputs[0], pick.inputs["True"])
    gout = n(tree, "NodeGroupOutput", 1150, 0)
    link(tree, pick.outputs[0], gout.inputs["Geometry"])
    return tree


def _painting_branch(tree, gin, stored, glow, hidden):
    """The viewport's edges while strokes come in: only those that show clearly (|glow| at or
    above Painting Threshold, see painting_threshold), each one straight segment. Values are the
    full version's, unchanged."""
    n, link = trees.node, trees.link
    absolute = trees.math(tree, "ABSOLUTE", glow, None, 0, 700)
    level = trees.math(
        tree, "MAXIMUM", gin.outputs["Threshold"], gin.outputs["Painting Threshold"], 0, 850
    )
    weak = trees.math(tree, "LESS_THAN", absolute, level, 150, 750)
    drop = n(tree, "FunctionNodeBooleanMath", 300, 750, operation="OR")
    link(tree, weak, drop.inputs[0])
    link(tree, hidden, drop.inputs[1])
    strong = n(tree, "GeometryNodeDeleteGeometry", 450, 650, domain="CURVE")
    link(tree, stored, strong.inputs["Geometry"])
    link(tree, drop.outputs[0], strong.inputs["Selection"])
    # arches too become one straight segment each: fewer points to hand on than as drawn
    ends = n(tree, "GeometryNodeCurveEndpointSelection", 450, 850)
    ends.inputs["Start Size"].default_value = 1
    ends.inputs["End Size"].default_value = 1
    inner = n(tree, "FunctionNodeBooleanMath", 600, 850, operation="NOT")
    link(tree, ends.outputs[0], inner.inputs[0])
    straight = n(tree, "GeometryNodeDeleteGeometry", 600, 650, domain="POINT")
    link(tree, strong.outputs["Geometry"], straight.inputs["Geometry"])
    link(tree, inner.outputs[0], straight.inputs["Selection"])
    return straight.outputs["Geometry"]


PAINTING_AMOUNT = 0.05  # while painting, the viewport skips edges that show less than this


def painting_threshold(strength: float, fade: float) -> float:
    """The |glow| at which an edge shows PAINTING_AMOUNT of its colour in the edge material:
    amount = (|glow| x strength - fade) / (1 - fade)  (materials.edge_material)."""
    return (fade + PAINTING_AMOUNT * (1.0 - fade)) / max(strength, 1e-6)


def stage_gains(graph) -> np.ndarray:
    """Per stage: 1 / (99th percentile of |weight| over the connections into it) -> float32 (S,).

    Activations shown here are at most ~1 in magnitude (pixels, tanh, probabilities), so
    weight x activation x gain lands mostly in [-1, 1] whatever the layer's weight scale.
    """
    scale = core_graph.weight_percentiles(graph, 99.0)
    return np.where(scale > 0, 1.0 / np.maximum(scale, 1e-30), 1.0).astype(np.float32)


def build(
    network: str,
    collection,
    positions: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    gain: np.ndarray,
    values_object: str,
    *,
    radius: float = 0.002,
    threshold: float = 0.0,
    material=None,
    max_segment: float | None = 1.0,
    behind: tuple[float, float] | None = None,
    arcs: layout.Arcs | None = None,
) -> str:
    """Create the edges object (one curve per (src, dst) pair); returns its name.

    Edges are straight but for `arcs` (core.layout.arcs: connections that skip levels), which
    arch around the stages they skip, drawn with at least ARC_SEGMENTS segments.

    Renders split long straight edges into segments of at most `max_segment` (None: one
    segment): the CURVE attribute `cuts` says into how many, and the modifier subdivides them
    when Is Viewport is false. It changes nothing on screen but a lot for ray tracing: the
    bounding box of one long diagonal segment overlaps thousands of others, and Cycles then
    tests every ray against all of them. CNN edges layer at 1920x1080, 64 samples: 51.8 s with
    one segment per edge (0.85M points), 13.0 s with segments of at most 1.0 (3.3M points),
    12.7 s at 0.5 (5.9M). The data and viewports keep one segment per straight edge: an update
    re-evaluates the edges, and at 2 points an edge instead of ~8 it costs a quarter as much.
    """
    m = len(src)
    curves = util.tag(bpy.data.hair_curves.new(f"{network} edges"), network, "edges")
    if m:
        p0, p1 = positions[src], positions[dst]
        if behind is not None:  # flat layouts: see spread_behind
            p0, p1 = spread_behind(p0, p1, *behind)
        cuts = segment_counts(p0, p1, max_segment) - 1  # split by renders only (build_tree)
        segments = np.ones(m, np.int64)
        if arcs is not None:  # arches are drawn with their own points everywhere
            segments[arcs.edges] = np.maximum(cuts[arcs.edges] + 1, ARC_SEGMENTS)
            cuts[arcs.edges] = 0
        curves.add_curves((segments + 1).tolist())
        attributes.write_positions(curves, subdivide(p0, p1, segments, arcs))
        attributes.write(curves, "cuts", cuts.astype(np.int32), "INT", "CURVE")
        attributes.write(curves, "src", src, "INT", "CURVE")
        attributes.write(curves, "dst", dst, "INT", "CURVE")
        attributes.write(curves, "weight", weight, "FLOAT", "CURVE")
        attributes.write(curves, "gain", gain, "FLOAT", "CURVE")
        # Radius lives in the data, not in a Set Curve Radius node: that node rewrote every
        # point's radius on each evaluation (40 ms of a 42 ms update).
        n_points = int(segments.sum()) + m
        attributes.write(curves, "radius", np.full(n_points, radius, np.float32), "FLOAT", "POINT")
    if material is not None:
        curves.materials.append(material)
    curves.update_tag()

    obj = util.new_object(collection, network, "edges", curves)
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = build_tree(network)
    trees.set_modifier_input(mod, "Nodes", bpy.data.objects[values_object])
    trees.set_modifier_input(mod, "Threshold", float(threshold))
    # Edges are context, not something to click: selecting 425k curves stalls the viewport.
    obj.hide_select = True
    return obj.name


def draw_control_points(curves) -> None:
    """Viewports draw a curve at `resolution` points per segment (12 for new hair curves, which
    are Catmull-Rom): 1 draws just the control points, joined by the straight segments our
    curves are made of, 12x fewer to evaluate and draw (for curves whose modifier does not make
    them poly curves, as the edges' does). Cycles interpolates the control points itself and
    ignores it, so renders do not change (checked: bit-identical)."""
    n = attributes.domain_size(curves, "CURVE")
    attributes.write(curves, "resolution", np.ones(n, np.int32), "INT", "CURVE")


MAX_SEGMENTS = 32
ARC_SEGMENTS = 16  # fewest segments of an arching edge


def spread_behind(p0, p1, near: float, far: float, seed: int = 0):
    """Move each edge to its own depth between `near` and `far` behind the plane y = 0.

    For flat layouts, whose nodes and edges would otherwise all lie in one plane facing the
    camera: the nodes' faces then hide the edges behind them cleanly, and a ray meets the
    strands one after another instead of all at the same depth - where it has to test every
    overlapping one (the flat CNN's edges layer took 4x longer than the 3d one).
    """
    depth = np.random.default_rng(seed).uniform(near, far, len(p0)).astype(np.float32)
    p0, p1 = p0.copy(), p1.copy()
    p0[:, 1] += depth
    p1[:, 1] += depth
    return p0, p1


def segment_counts(p0: np.ndarray, p1: np.ndarray, max_segment: float | None) -> np.ndarray:
    """Segments per edge: ceil(length / max_segment), between 1 and MAX_SEGMENTS (int64)."""
    if max_segment is None or max_segment <= 0:
        return np.ones(len(p0), dtype=np.int64)
    length = np.linalg.norm(p1 - p0, axis=1)
    return np.clip(np.ceil(length / max_segment), 1, MAX_SEGMENTS).astype(np.int64)


def subdivide(
    p0: np.ndarray, p1: np.ndarray, segments: np.ndarray, arcs: layout.Arcs | None = None
) -> np.ndarray:
    """All curve points, curve after curve: segments[i] + 1 evenly spaced points from p0 to p1
    (for the edges of `arcs`, along their arch)."""
    counts = segments + 1
    first = np.cumsum(counts) - counts
    local = np.arange(int(counts.sum())) - np.repeat(first, counts)
    t = (local / np.repeat(segments, counts)).astype(np.float32)[:, None]
    # repeat + in-place (1.5x faster than fancy indexing at the 7M points of 500k edges)
    points = np.repeat(np.asarray(p0, np.float32), counts, axis=0)
    points *= 1.0 - t
    end = np.repeat(np.asarray(p1, np.float32), counts, axis=0)
    end *= t
    points += end
    if arcs is not None and len(arcs.edges):
        curve = np.repeat(np.arange(len(p0)), counts)
        which = np.full(len(p0), -1, np.int64)
        which[arcs.edges] = np.arange(len(arcs.edges))
        on = np.flatnonzero(which[curve] >= 0)
        e, a = curve[on], which[curve[on]]
        points[on] = layout.arc_points(
            p0[e], p1[e], t[on, 0], arcs.side[a], arcs.reach[a], arcs.axes
        )
    return points


def set_radius(curves, radius: float) -> None:
    """Set the radius of every edge point."""
    n = attributes.domain_size(curves, "POINT")
    attributes.write(curves, "radius", np.full(n, radius, np.float32), "FLOAT", "POINT")

"""The bundles object: one curve per (source block -> destination block) of connections.

For layers with more connections than can be drawn one by one, every connection still shows:
as part of a bundle that runs from the centre of its source block (a feature map, or a run of a
vector layer) to the centre of its destination block. The update writes one float per bundle,
its display-normalised glow (the sum of weight x source activation over its members, from
core.bundles through core.values); the edge material reads it as it reads a single edge's glow.
Nothing else changes per update, so the cost follows the number of bundles, never the number of
connections.

CURVE attributes: `glow` (float, written per update), `src_block`, `dst_block`, `src_stage`,
`dst_stage` (int), `width` (float: a bundle's radius over a single connection's, set_radius) and
`hidden` (bool, scene.visibility: a Geometry Nodes modifier deletes those).

A bake (animation.bake) adds `nnviz_glow_<k>` per key state and `dst_node` (a node of the
bundle's destination stage); the modifier then mixes the two key states of the frame by that
node's stage factor, both read from the evaluated values object (POSITION_ATTR, EASE_ATTR), so
bundles follow the baked animation and its wave with no Python, as nodes and edges do.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import attributes, compat, edges, trees, util

ROLE = "bundles"
MODIFIER = "NNViz Bundles"
GLOW_NAME = "nnviz_glow_{}"
POSITION_ATTR = "nnviz_position"  # written by the bake on the node values (animation.bake)
EASE_ATTR = "nnviz_ease"


def build_tree(network: str):
    """Baked: glow = mix(key a, key b, the stage's factor); then delete the bundles into or out
    of hidden layers (the CURVE attribute `hidden`)."""
    tree = trees.new_tree(f"{network} bundles", network, "bundles_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Nodes", "NodeSocketObject")
    trees.add_socket(tree, "Baked", "NodeSocketBool", default=False)
    trees.add_socket(tree, "Keys", "NodeSocketInt", default=1, min_value=1)
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")
    n, link = trees.node, trees.link
    gin = n(tree, "NodeGroupInput", -1400, 0)
    points = trees.node_points(tree, gin.outputs["Nodes"], -1400, 400)
    stat = n(tree, "GeometryNodeAttributeStatistic", -1000, 400)
    link(tree, points, stat.inputs["Geometry"])
    link(tree, trees.named(tree, POSITION_ATTR, "FLOAT", -1200, 250), stat.inputs["Attribute"])
    p = stat.outputs["Max"]  # the same on every point
    last = trees.math(tree, "SUBTRACT", gin.outputs["Keys"], 1, -1000, 100)
    a = trees.math(tree, "FLOOR", p, None, -800, 300)
    b = trees.math(tree, "MINIMUM", trees.math(tree, "ADD", a, 1, -800, 150), last, -650, 150)
    ga = trees.named(tree, trees.key_name(tree, GLOW_NAME, a, -600, 400), "FLOAT", -200, 400)
    gb = trees.named(tree, trees.key_name(tree, GLOW_NAME, b, -450, 200), "FLOAT", -200, 200)
    dst_node = trees.named(tree, "dst_node", "INT", -600, -100)
    ease_field = trees.named(tree, EASE_ATTR, "FLOAT", -600, -250)
    ease = trees.sample(tree, points, ease_field, dst_node, "FLOAT", -350, -150)
    mix = n(tree, "ShaderNodeMix", 0, 200, data_type="FLOAT", clamp_factor=False)
    link(tree, ease, compat.factor(mix.inputs))
    link(tree, ga, mix.inputs[2])
    link(tree, gb, mix.inputs[3])
    baked = trees.store(tree, gin.outputs["Geometry"], "glow", mix.outputs[0], "FLOAT", "CURVE")
    pick = n(tree, "GeometryNodeSwitch", 250, 0, input_type="GEOMETRY")
    link(tree, gin.outputs["Baked"], pick.inputs["Switch"])
    link(tree, gin.outputs["Geometry"], pick.inputs["False"])
    link(tree, baked, pick.inputs["True"])
    hidden = trees.named(tree, "hidden", "BOOLEAN", 250, -150)
    delete = n(tree, "GeometryNodeDeleteGeometry", 450, 0, domain="CURVE")
    link(tree, pick.outputs[0], delete.inputs["Geometry"])
    link(tree, hidden, delete.inputs["Selection"])
    gout = n(tree, "NodeGroupOutput", 650, 0)
    link(tree, delete.outputs["Geometry"], gout.inputs["Geometry"])
    return tree


def block_centres(positions: np.ndarray, node_block: np.ndarray, n_blocks: int) -> np.ndarray:
    """Mean position of every block's nodes -> float32 (n_blocks, 3)."""
    counts = np.bincount(node_block, minlength=n_blocks).astype(np.float64)
    centre = np.stack(
        [np.bincount(node_block, positions[:, i], minlength=n_blocks) for i in range(3)], axis=1
    )
    return (centre / np.maximum(counts, 1.0)[:, None]).astype(np.float32)


def build(
    network: str,
    collection,
    start: np.ndarray,
    end: np.ndarray,
    src_block: np.ndarray,
    dst_block: np.ndarray,
    src_stage: np.ndarray,
    dst_stage: np.ndarray,
    *,
    radius: float,
    width: np.ndarray | float = 1.0,
    values_object=None,
    material=None,
    max_segment: float | None = 1.0,
) -> str:
    """Create the bundles object (curve i from start[i] to end[i], `width[i]` times as thick as
    a single connection of `radius`); returns the object's name.

    Long bundles are split into straight segments as edges are (edges.build explains why)."""
    m = len(start)
    curves = util.tag(bpy.data.hair_curves.new(f"{network} bundles"), network, ROLE)
    if m:
        segments = edges.segment_counts(start, end, max_segment)
        curves.add_curves((segments + 1).tolist())
        attributes.write_positions(curves, edges.subdivide(start, end, segments))
        attributes.write(curves, "glow", np.zeros(m, np.float32), "FLOAT", "CURVE")
        attributes.write(curves, "src_block", src_block, "INT", "CURVE")
        attributes.write(curves, "dst_block", dst_block, "INT", "CURVE")
        attributes.write(curves, "src_stage", src_stage, "INT", "CURVE")
        attributes.write(curves, "dst_stage", dst_stage, "INT", "CURVE")
        attributes.write(
            curves, "width", np.broadcast_to(np.float32(width), (m,)), "FLOAT", "CURVE"
        )
        _write_radius(curves, radius)
        edges.draw_control_points(curves)
    if material is not None:
        curves.materials.append(material)
    curves.update_tag()
    obj = util.new_object(collection, network, ROLE, curves)
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = build_tree(network)
    trees.set_modifier_input(mod, "Nodes", values_object)
    obj.hide_select = True
    return obj.name


def _write_radius(curves, radius: float) -> None:
    per_curve = attributes.read(curves, "width") * np.float32(radius)
    points = attributes.read_curve_sizes(curves)
    attributes.write(curves, "radius", np.repeat(per_curve, points), "FLOAT", "POINT")


def set_radius(network: str, radius: float) -> None:
    """Make every bundle its `width` times `radius` thick (`radius`: a single connection's, e.g.
    a render's pixel-based one, studio.setup)."""
    obj = util.find("objects", network, ROLE)
    if obj is not None and len(obj.data.curves) and "width" in obj.data.attributes:
        _write_radius(obj.data, radius)


def bake(network: str, glow: np.ndarray | None, graph=None) -> None:
    """Store the shown glow of every bundle for each key state (glow (K, bundles)) and switch
    the modifier to follow the bake; None removes a bake."""
    obj = util.find("objects", network, ROLE)
    if obj is None:
        return
    data = obj.data
    for name in [a.name for a in data.attributes if a.name.startswith(GLOW_NAME.format(""))]:
        data.attributes.remove(data.attributes[name])
    mod = obj.modifiers.get(MODIFIER)
    if glow is not None and graph is not None and len(data.curves):
        starts = np.array([s.start for s in graph.stages], np.int32)
        attributes.write(
            data, "dst_node", starts[attributes.read(data, "dst_stage")], "INT", "CURVE"
        )
        for k, row in enumerate(glow):
            attributes.write(data, GLOW_NAME.format(k), row, "FLOAT", "CURVE")
        if mod is not None:
            trees.set_modifier_input(mod, "Keys", int(len(glow)))
    if mod is not None:
        trees.set_modifier_input(mod, "Baked", glow is not None)
    data.update_tag()


def set_hidden(network: str, hide: np.ndarray) -> None:
    """Delete the bundles into or out of the stages where `hide` (bool per stage) is set."""
    obj = util.find("objects", network, ROLE)
    if obj is None or not len(obj.data.curves):
        return
    data = obj.data
    cut = hide[attributes.read(data, "src_stage")] | hide[attributes.read(data, "dst_stage")]
    attributes.write(data, "hidden", cut, "BOOLEAN", "CURVE")


def write_glow(network: str, glow: np.ndarray | None) -> None:
    """The per-update write: one display-normalised glow per bundle (None: all 0)."""
    obj = util.find("objects", network, ROLE)
    if obj is None:
        return
    if glow is None:
        glow = np.zeros(attributes.domain_size(obj.data, "CURVE"), np.float32)
    attributes.write_existing(obj.data, "glow", np.asarray(glow, np.float32))


def read_glow(network: str) -> np.ndarray:
    """The glow every bundle shows now (for checks and tests)."""
    obj = util.find("objects", network, ROLE)
    if obj is None or "glow" not in obj.data.attributes:
        return np.empty(0, np.float32)
    return attributes.read(obj.data, "glow")

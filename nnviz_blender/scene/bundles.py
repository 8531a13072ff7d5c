"""The bundles object: one curve per (source block -> destination block) of connections.

For layers with more connections than can be drawn one by one, every connection still shows:
as part of a bundle that runs from the centre of its source block (a feature map, or a run of a
vector layer) to the centre of its destination block. The update writes one float per bundle,
its display-normalised glow (the sum of weight x source activation over its members, from
core.bundles through core.values); the edge material reads it as it reads a single edge's glow.
Nothing else changes per update, so the cost follows the number of bundles, never the number of
connections.

CURVE attributes: `glow` (float, written per update), `src_block`, `dst_block`, `src_stage`,
`dst_stage` (int) and `hidden` (bool, scene.visibility: a Geometry Nodes modifier deletes those).
"""

from __future__ import annotations

import bpy
import numpy as np

from . import attributes, edges, trees, util

ROLE = "bundles"
MODIFIER = "NNViz Bundles"


def build_tree(network: str):
    """Delete the bundles into or out of hidden layers (the CURVE attribute `hidden`)."""
    tree = trees.new_tree(f"{network} bundles", network, "bundles_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")
    gin = trees.node(tree, "NodeGroupInput", -400, 0)
    hidden = trees.named(tree, "hidden", "BOOLEAN", -400, -150)
    delete = trees.node(tree, "GeometryNodeDeleteGeometry", -150, 0, domain="CURVE")
    trees.link(tree, gin.outputs["Geometry"], delete.inputs["Geometry"])
    trees.link(tree, hidden, delete.inputs["Selection"])
    gout = trees.node(tree, "NodeGroupOutput", 100, 0)
    trees.link(tree, delete.outputs["Geometry"], gout.inputs["Geometry"])
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
    radius: np.ndarray | float,
    material=None,
    max_segment: float | None = 1.0,
) -> str:
    """Create the bundles object (curve i from start[i] to end[i]); returns the object's name.

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
        per_curve = np.broadcast_to(np.asarray(radius, np.float32), (m,))
        attributes.write(curves, "radius", np.repeat(per_curve, segments + 1), "FLOAT", "POINT")
    if material is not None:
        curves.materials.append(material)
    curves.update_tag()
    obj = util.tag(bpy.data.objects.new(f"{network} bundles", curves), network, ROLE)
    collection.objects.link(obj)
    obj.modifiers.new(MODIFIER, "NODES").node_group = build_tree(network)
    obj.hide_select = True
    return obj.name


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

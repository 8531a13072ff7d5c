"""Stages drawn as surfaces instead of instances: "maps" and "slab" levels of detail (core.lod).

- maps: one object per stage whose mesh has, per feature map, one shared-vertex grid of
  quads, one quad (texel) per neuron, pitch-sized and centred where the layout puts the neuron
  (so edges still end at quad centres). A FACE int attribute `node` holds the neuron's global
  index.
- slab: one box per block (a channel; a chunk of a vector stage, core.lod.blocks) spanning
  its members; `node` is the block's first member.

Both get a Geometry Nodes modifier that samples the values of vertex `node` of the evaluated
values object (scene.nodes; slabs: the mean over the block, see _block_means) and stores those
OPTIONAL names on the faces, where a copy of the node material reads them (Attribute GEOMETRY:
a FACE attribute is constant over its face, so each texel shows exactly its neuron's colour).
An update still writes only the nodes' values. For Solid viewports and Workbench, which colour
by material, each face also gets the material index 1 + its colour bin: slots 1..PALETTE_SIZE
are copies of that material (the same shader, so renders do not change) whose viewport colour
is the colormap at the bin.

`set_lods` is the one way to change levels on a built network: it rewrites the nodes'
`lod` (which instances they get) and rebuilds these objects; Network.lods keeps the choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np

from ..core import graph as core_graph
from ..core import layout as core_layout
from ..core import lod as core_lod
from . import attributes, materials, trees, util
from . import nodes as scene_nodes
from .handle import Network, NetworkError

MODIFIER = "NNViz Maps"
# Values the faces carry besides the one their colour shows (`level`, or `signed` for diverging
# colour maps), each only where its modifier input is on: an input stage's raw `act` (a colour
# image's pixels, materials._rgb_input) and the output stage's `level` (the winner's glow).
# Sampling and storing a value costs about as much as drawing it (ResNet-18: 30 map objects,
# 293k faces, 6 of 23 ms of an update for two unused values).
OPTIONAL = {"act": "Act", "level": "Level"}
PALETTE = materials.PALETTE_SIZE
SLAB_DEPTH = 0.9  # thickness of a slab, in pitches (a node cube's size)
_KEY = 1 << 20  # grid coordinates are offset by this in the vertex keys (|coordinate| < 2^20)


def axes(layout: str) -> tuple[np.ndarray, np.ndarray]:
    """In-plane unit vectors (u, v) of a layout's stages; u x v faces the viewer."""
    u = np.array([1.0, 0.0, 0.0])
    v = np.array([0.0, 1.0, 0.0]) if layout == "3d" else np.array([0.0, 0.0, 1.0])
    return u, v


def _cells(positions: np.ndarray, block: np.ndarray, u, v, pitch: float):
    """Integer (column, row) of every node on its block's pitch lattice, from its position."""
    first = np.r_[0, np.flatnonzero(np.diff(block)) + 1]
    origin = positions[first][np.searchsorted(block[first], block)]
    rel = (positions - origin).astype(np.float64) / pitch
    return np.rint(rel @ u).astype(np.int64), np.rint(rel @ v).astype(np.int64)


def grid_mesh(positions: np.ndarray, block: np.ndarray, layout: str, pitch: float):
    """Quads of side `pitch` centred on `positions`, sharing corners within a block.

    `block` (ascending) groups the nodes into grids (feature maps); returns (vertices float32
    (V, 3), corner indices int32 (F, 4) counter-clockwise seen from the viewer), one face per
    node in the order given.
    """
    u, v = axes(layout)
    col, row = _cells(positions, block, u, v, pitch)
    di = np.array([0, 1, 1, 0])
    dj = np.array([0, 0, 1, 1])
    cc, rr = col[:, None] + di, row[:, None] + dj  # corner lattice coordinates (F, 4)
    key = ((block.astype(np.int64)[:, None] * 2 * _KEY + cc + _KEY) * 2 * _KEY) + rr + _KEY
    _, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    offset = pitch * ((di - 0.5)[:, None] * u + (dj - 0.5)[:, None] * v)  # (4, 3)
    vertices = positions[first // 4] + offset[first % 4]  # each corner from its first face
    return vertices.astype(np.float32), inverse.reshape(-1, 4).astype(np.int32)


def slab_mesh(positions: np.ndarray, block: np.ndarray, layout: str, pitch: float):
    """One box per block around its members (half a pitch beyond their centres in the plane,
    SLAB_DEPTH pitches thick). Returns (vertices (8B, 3), faces (6B, 4), first member (B,))."""
    u, v = axes(layout)
    w = np.cross(u, v)
    starts = np.r_[0, np.flatnonzero(np.diff(block)) + 1]
    p = positions.astype(np.float64)
    pu, pv, pw = p @ u, p @ v, p @ w
    half = 0.5 * pitch
    lo_u, hi_u = np.minimum.reduceat(pu, starts) - half, np.maximum.reduceat(pu, starts) + half
    lo_v, hi_v = np.minimum.reduceat(pv, starts) - half, np.maximum.reduceat(pv, starts) + half
    mid_w = (np.minimum.reduceat(pw, starts) + np.maximum.reduceat(pw, starts)) / 2
    dw = SLAB_DEPTH * half
    # corner k of a box: bit 0 -> u, bit 1 -> v, bit 2 -> w
    bits = np.arange(8)
    cu = np.where(bits & 1, hi_u[:, None], lo_u[:, None])
    cv = np.where(bits & 2, hi_v[:, None], lo_v[:, None])
    cw = mid_w[:, None] + np.where(bits & 4, dw, -dw)
    vertices = cu[..., None] * u + cv[..., None] * v + cw[..., None] * w
    box = np.array(
        [[0, 2, 3, 1], [4, 5, 7, 6], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]]
    )
    faces = box[None] + 8 * np.arange(len(starts))[:, None, None]
    return (
        vertices.reshape(-1, 3).astype(np.float32),
        faces.reshape(-1, 4).astype(np.int32),
        starts.astype(np.int32),
    )


def _mesh(name: str, network: str, role: str, vertices: np.ndarray, faces: np.ndarray):
    """A mesh of quads (`faces`: 4 vertex indices each, counter-clockwise)."""
    corners = faces.reshape(-1)
    starts = np.arange(len(faces)) * 4
    mesh = util.tag(bpy.data.meshes.new(name), network, role)
    mesh.vertices.add(len(vertices))
    attributes.write_positions(mesh, vertices)
    mesh.loops.add(corners.size)
    # the corners' vertices as the attribute they are (4.0+): 400x faster than loops' vertex_index
    attributes.write(mesh, ".corner_vert", corners, "INT", "CORNER")
    mesh.polygons.add(len(starts))
    # face offsets; each face's corner count follows from them (4.0+)
    attributes.set_items(mesh.polygons, "loop_start", starts, np.int32)
    mesh.update()  # makes the edges
    return mesh


# --- node tree and material -------------------------------------------------------------------


def build_tree(network: str, slab: bool, signed: bool):
    """Faces take the values of nodes object point `node` (slabs: its block's means), and the
    material of their colour bin (of `signed` or `level`)."""
    role = "slab_tree" if slab else "maps_tree"
    tree = util.find("node_groups", network, role)
    if tree is not None:
        return tree
    tree = trees.new_tree(f"{network} {'slab' if slab else 'maps'}", network, role)
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Nodes", "NodeSocketObject")
    if slab:
        trees.add_socket(tree, "Stage", "NodeSocketInt", default=0, min_value=0)
    for name in OPTIONAL:
        trees.add_socket(tree, OPTIONAL[name], "NodeSocketBool", default=False)
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")
    gin = trees.node(tree, "NodeGroupInput", -900, 0)
    node = trees.named(tree, "node", "INT", -700, -300)
    geometry = gin.outputs["Geometry"]
    nodes_geometry = trees.node_points(tree, gin.outputs["Nodes"], -1900, 500)
    means = _block_means(tree, gin, nodes_geometry) if slab else None
    shown_name = "signed" if signed else "level"
    for i, name in enumerate(scene_nodes.VALUE_ATTRS):
        if name != shown_name and name not in OPTIONAL:
            continue  # nothing draws it
        if means is not None:
            value = means[i]
        else:
            field = trees.named(tree, name, "FLOAT", -700, -250 * i)
            value = trees.sample(tree, nodes_geometry, field, node, "FLOAT", -500, -250 * i)
        x = -100 + 300 * i
        stored = trees.store(tree, geometry, name, value, "FLOAT", "FACE", x, 0)
        if name != shown_name:  # only where the stage's modifier asks for it
            switch = trees.node(tree, "GeometryNodeSwitch", x + 150, 150, input_type="GEOMETRY")
            trees.link(tree, gin.outputs[OPTIONAL[name]], switch.inputs["Switch"])
            trees.link(tree, geometry, switch.inputs["False"])
            trees.link(tree, stored, switch.inputs["True"])
            stored = switch.outputs[0]
        geometry = stored
    k = PALETTE
    shown = trees.named(tree, "signed" if signed else "level", "FLOAT", 300, -300)
    scale = trees.node(tree, "ShaderNodeMapRange", 450, -300, clamp=True)
    trees.link(tree, shown, scale.inputs["Value"])
    scale.inputs["From Min"].default_value = -1.0 if signed else 0.0
    scale.inputs["To Min"].default_value = 1.0
    scale.inputs["To Max"].default_value = k + 1 - 1e-3
    slot = trees.math(tree, "FLOOR", scale.outputs["Result"], None, 600, -300)
    index = trees.node(tree, "GeometryNodeSetMaterialIndex", 600, 0)
    trees.link(tree, geometry, index.inputs["Geometry"])
    trees.link(tree, slot, index.inputs["Material Index"])
    geometry = index.outputs["Geometry"]
    gout = trees.node(tree, "NodeGroupOutput", 800, 0)
    trees.link(tree, geometry, gout.inputs["Geometry"])
    return tree


def _block_means(tree, gin, nodes_geometry) -> list:
    """The means of VALUE_ATTRS over the block of the stage's point `local` (a FACE attribute:
    the block's first member, counted from the stage's first node): Accumulate Field over the
    stage's points alone, grouped by their `block`, each weighted by its `block_weight` (one
    over its block's size). About 40 ns per point and attribute (measured at 590k points), the
    same as averaging through n-gon faces, so only slabs pay it."""
    n, link = trees.node, trees.link
    stage = trees.named(tree, "stage", "INT", -1700, 100)
    mine = trees.math(tree, "COMPARE", stage, gin.outputs["Stage"], -1500, 100)
    mine.node.inputs[2].default_value = 0.5
    part = n(tree, "GeometryNodeSeparateGeometry", -1300, 200, domain="POINT")
    link(tree, nodes_geometry, part.inputs["Geometry"])
    link(tree, mine, part.inputs["Selection"])
    block = trees.named(tree, "block", "INT", -1300, -100)
    weight = trees.named(tree, "block_weight", "FLOAT", -1300, -200)
    local = trees.named(tree, "local", "INT", -900, -300)
    means = []
    for i, name in enumerate(scene_nodes.VALUE_ATTRS):
        y = -250 * i
        value = trees.named(tree, name, "FLOAT", -1300, y - 400)
        weighted = trees.math(tree, "MULTIPLY", value, weight, -1100, y)
        total = n(tree, "GeometryNodeAccumulateField", -900, y, data_type="FLOAT", domain="POINT")
        link(tree, weighted, total.inputs["Value"])
        link(tree, block, total.inputs[1])  # Group ID
        mean = total.outputs["Total"]
        means.append(trees.sample(tree, part.outputs["Selection"], mean, local, "FLOAT", -700, y))
    return means


def palette(network: str, stops) -> list:
    """The node material read from the faces' attributes (a copy), then PALETTE_SIZE copies of
    it whose viewport colour is the colormap at each bin; made once per network."""
    found = [util.find("materials", network, f"maps_material_{i}") for i in range(PALETTE + 1)]
    if all(m is not None for m in found):
        return found
    node_mat = util.find("materials", network, "nodes_material")
    mat = node_mat.copy()
    mat.name = f"{network} maps"
    util.tag(mat, network, "maps_material_0")
    for node in mat.node_tree.nodes:
        if node.bl_idname == "ShaderNodeAttribute":
            node.attribute_type = "GEOMETRY"
    mats = [mat]
    for i in range(PALETTE):
        copy = mat.copy()
        copy.name = f"{mat.name} {i:02d}"
        util.tag(copy, network, f"maps_material_{i + 1}")
        copy.diffuse_color = materials.linear(materials.sample_colormap(stops, (i + 0.5) / PALETTE))
        mats.append(copy)
    return mats


# --- build / switch ---------------------------------------------------------------------------


def role(stage: int) -> str:
    return f"maps {stage}"


def _build_stage(network: str, collection, graph, k: int, lod: str, positions, layout, blocks):
    stage = graph.stages[k]
    cut = slice(stage.start, stage.stop)
    pitch = core_layout.PITCH
    if lod == "maps":
        local = graph.node_map[cut] if len(stage.shape) == 3 else np.zeros(stage.size, np.int32)
        vertices, faces = grid_mesh(positions[cut], local, layout, pitch)
        first = np.arange(stage.size, dtype=np.int32)
    else:
        vertices, faces, first = slab_mesh(positions[cut], blocks[cut], layout, pitch)
        first = np.repeat(first, 6)
    name = f"{network} {stage.name}"
    mesh = _mesh(name, network, role(k), vertices, faces)
    node = stage.start + first
    attributes.write(mesh, "node", node, "INT", "FACE")
    attributes.write(mesh, "local", first, "INT", "FACE")
    attributes.write(mesh, "stage", np.full(len(faces), k), "INT", "FACE")
    attributes.write(mesh, "map", graph.node_map[node], "INT", "FACE")
    net = Network(network)
    cmap, signed = materials.node_colormap(materials.get_theme(net.theme), net.colormap or None)
    # the value the colour shows, replaced by the modifier; here for the original mesh
    zeros = np.zeros(len(faces), np.float32)
    attributes.write(mesh, "signed" if signed else "level", zeros, "FLOAT", "FACE")
    for mat in palette(network, materials.COLORMAPS[cmap]):
        mesh.materials.append(mat)
    obj = util.new_object(collection, network, role(k), mesh, name)
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = build_tree(network, lod == "slab", signed)
    trees.set_modifier_input(mod, "Nodes", net.values)
    if lod == "slab":
        trees.set_modifier_input(mod, "Stage", k)
    if trees.has_input(mod, "Act"):
        trees.set_modifier_input(mod, "Act", stage.kind == "input")
        trees.set_modifier_input(mod, "Level", k == len(graph.stages) - 1)
    obj.matrix_world = net.nodes.matrix_world.copy()
    return obj


def remove(network: str) -> None:
    """Remove every maps and slab object of the network (and their meshes)."""
    for kind in ("objects", "meshes"):
        blocks = getattr(bpy.data, kind)
        for block in [b for b in blocks if b.get(util.TAG) == network]:
            if str(block.get(util.ROLE, "")).startswith("maps "):
                blocks.remove(block)


def set_lods(network: str, lods: Sequence[str]) -> list[str]:
    """Draw each stage of a built network at its level (one of core.lod.LODS per stage)."""
    net = Network(network)
    graph = core_graph.graph_from_table(net.stages)
    lods = [str(v) for v in lods]
    if len(lods) != len(graph.stages):
        raise NetworkError(f"{len(lods)} levels of detail for {len(graph.stages)} layers")
    bad = sorted(set(lods) - set(core_lod.LODS))
    if bad:
        raise NetworkError(f"level of detail {bad[0]!r}: use one of {', '.join(core_lod.LODS)}")
    nodes = net.nodes
    mod = nodes.modifiers.get(scene_nodes.MODIFIER)
    if mod is None or scene_nodes.KEEP_POINTS not in mod.node_group.nodes:  # built before them
        raise NetworkError(
            f"network {network!r} was built by an older version: rebuild it to change its "
            "levels of detail"
        )
    attributes.write(nodes.data, "lod", core_lod.node_lods(graph, lods), "INT", "POINT")
    blocks = core_lod.blocks(graph)
    if "slab" in lods and "block_weight" not in nodes.data.attributes:  # what slabs average by
        size = np.bincount(blocks)
        attributes.write(nodes.data, "block", blocks, "INT", "POINT")
        attributes.write(nodes.data, "block_weight", 1.0 / size[blocks], "FLOAT", "POINT")
    nodes.data.update_tag()
    remove(network)
    coll = nodes.users_collection[0] if nodes.users_collection else net.collection
    positions = net.positions()
    hidden = set(net.hidden)
    for k, lod in enumerate(lods):
        if lod != "neurons":
            obj = _build_stage(network, coll, graph, k, lod, positions, net.layout, blocks)
            obj.hide_viewport = obj.hide_render = k in hidden
    net.lods = lods
    return lods


def read_values(network: str, stage: int, depsgraph=None) -> dict[str, np.ndarray]:
    """The evaluated FACE values of a stage's maps or slab object, for checks and tests: `node`
    and those of `act`, `level`, `signed` it carries (OPTIONAL); empty when the stage shows
    neurons."""
    obj = util.find("objects", network, role(stage))
    if obj is None:
        return {}
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    data = obj.evaluated_get(depsgraph).data
    names = ("node", *scene_nodes.VALUE_ATTRS)
    return {name: attributes.read(data, name) for name in names if name in data.attributes}

"""Small helpers shared by the scene modules: ownership tags, node-tree building, modifier inputs.

Every data-block a network creates carries the ID property `nnviz_network = <network name>`, so
removing the network removes exactly what it made (and nothing of the user's), whatever the
data-block type. Nothing here keeps a bpy reference between calls.
"""

from __future__ import annotations

import math

import bpy
import numpy as np

from . import attributes, compat

TAG = "nnviz_network"
ROLE = "nnviz_role"

# bpy.data collections a network may create data-blocks in, removed in this order (users first).
DATA_KINDS = (
    "objects",
    "collections",
    "meshes",
    "hair_curves",
    "curves",
    "materials",
    "node_groups",
    "cameras",
    "lights",
    "worlds",
    "images",
    "texts",
    "actions",
    "fonts",
)


# Blocks several networks (or the user) may share; removed only once nothing uses them.
SHARED_KINDS = ("fonts",)


def tag(block, network: str, role: str | None = None):
    """Mark `block` as owned by `network` (and give it a role name for look-ups)."""
    block[TAG] = network
    if role is not None:
        block[ROLE] = role
    return block


def new_object(collection, network: str, role: str, data, name: str | None = None):
    """An object showing `data` (a mesh, curves, text), tagged and linked into `collection`
    (None: linked nowhere). It casts no shadows: every material a network makes is emission,
    which shadows cannot darken, so Cycles and Workbench draw the same; EEVEE (Material Preview)
    would otherwise re-render its shadow maps for every object an update changes: a ResNet-18's
    update plus redraw in the real window took 4.1 s with them and 1.5 s without."""
    obj = tag(bpy.data.objects.new(name or f"{network} {role}", data), network, role)
    obj.visible_shadow = False
    if collection is not None:
        collection.objects.link(obj)
    return obj


def owned(network: str) -> list[tuple[str, object]]:
    """Every data-block owned by `network` as (bpy.data attribute, block)."""
    found = []
    for kind in DATA_KINDS:
        for block in getattr(bpy.data, kind, ()):
            if block.get(TAG) == network:
                found.append((kind, block))
    return found


def find(kind: str, network: str, role: str):
    """The data-block of `kind` owned by `network` with `role`, or None.

    Blocks are made with the name "<network> <role>" (see tag's callers), so that name is
    asked first (a hash lookup); a renamed or clashing block is still found by the scan."""
    blocks = getattr(bpy.data, kind)
    block = blocks.get(f"{network} {role}")
    if block is not None and block.get(TAG) == network and block.get(ROLE) == role:
        return block
    for block in blocks:
        if block.get(TAG) == network and block.get(ROLE) == role:
            return block
    return None


def remove_owned(network: str) -> int:
    """Remove every data-block owned by `network`; returns how many were removed."""
    count = 0
    for kind in DATA_KINDS:
        blocks = getattr(bpy.data, kind, None)
        if blocks is None or kind in SHARED_KINDS:
            continue
        for block in [b for b in blocks if b.get(TAG) == network]:
            blocks.remove(block)
            count += 1
    # Shared blocks (the built-in font, loaded by the first text object) go with their last user.
    for kind in SHARED_KINDS:
        blocks = getattr(bpy.data, kind)
        for block in [b for b in blocks if b.get(TAG) is not None and b.users == 0]:
            blocks.remove(block)
    return count


def adopt_new(kind: str, before: set[str], network: str) -> None:
    """Tag the blocks of `kind` that appeared since `before` (names) as loaded by nnviz."""
    for block in getattr(bpy.data, kind):
        if block.name not in before and block.get(TAG) is None:
            tag(block, network, "shared")


UPRIGHT = (math.pi / 2, 0.0, 0.0)  # text and strips face the front camera (-y)


def text_object(network, collection, role, body, location, size, mat, align_x="CENTER"):
    """An upright text object (tagged), centred vertically; tags Blender's built-in font if
    this call loaded it, so removing the network leaves no orphan font."""
    fonts_before = {f.name for f in bpy.data.fonts}
    curve = tag(bpy.data.curves.new(f"{network} {role}", "FONT"), network, role)
    curve.body = body
    curve.size = size
    curve.align_x = align_x
    curve.align_y = "CENTER"
    curve.materials.append(mat)
    obj = new_object(collection, network, role, curve)
    obj.location = tuple(float(v) for v in location)
    obj.rotation_euler = UPRIGHT
    adopt_new("fonts", fonts_before, network)
    return obj


def layer_collection(layer_coll, collection):
    """The LayerCollection of `collection` under `layer_coll` (depth first), or None."""
    if layer_coll.collection == collection:
        return layer_coll
    for child in layer_coll.children:
        found = layer_collection(child, collection)
        if found is not None:
            return found
    return None


def quad_mesh(name: str, network: str, role: str, corners) -> bpy.types.Mesh:
    """A one-face mesh through 4 corners (counter-clockwise) with UVs 0..1, tagged."""
    mesh = tag(bpy.data.meshes.new(name), network, role)
    mesh.vertices.add(4)
    attributes.write_positions(mesh, corners)
    mesh.loops.add(4)
    attributes.set_items(mesh.loops, "vertex_index", np.arange(4), np.int32)
    mesh.polygons.add(1)
    attributes.set_items(mesh.polygons, "loop_start", [0], np.int32)
    attributes.set_items(mesh.polygons, "loop_total", [4], np.int32)
    uv = mesh.uv_layers.new(name="UVMap")
    attributes.set_items(uv.data, "uv", [0, 0, 1, 0, 1, 1, 0, 1])
    mesh.update()
    return mesh


def unique_name(blocks, base: str) -> str:
    """`base`, or `base.001` ... the first name not used in `blocks`."""
    if base not in blocks:
        return base
    i = 1
    while f"{base}.{i:03d}" in blocks:
        i += 1
    return f"{base}.{i:03d}"


def new_material(name: str, network: str, role: str):
    """A material with an empty node tree (on every supported Blender: see compat.shader_tree)."""
    mat = bpy.data.materials.new(name)
    compat.shader_tree(mat).nodes.clear()
    # Emission here is colour, not lighting: keep Cycles from turning 9k instanced cubes into
    # lights (a light tree build per render and no benefit, as nothing is lit by them).
    cycles = getattr(mat, "cycles", None)
    if cycles is not None and hasattr(cycles, "emission_sampling"):
        cycles.emission_sampling = "NONE"
    tag(mat, network, role)
    return mat

"""The nodes object: a mesh vertex per neuron, instanced as cubes, spheres or tiles by GN.

POINT attributes (all written from NumPy through `attributes`):
- `act` (float): the raw activation, `level` (float 0..1): normalised for colouring,
  `signed` (float -1..1): symmetric normalisation for diverging maps;
- `stage`, `index` (index inside its stage), `map` (feature map, 0 for dense stages) (int);
- `lod` (int, index into core.lod.LODS), and for slabs `block` and `block_weight`, written by
  scene.maps: only "neurons" points get an instance; maps and slabs draw the others.

The modifier's inputs are the user's knobs: Shape (0 cube, 1 sphere, 2 tile), Size, Tile
Rotation and Material. Instance on Points copies the point attributes to the instances, where
materials read them with an Attribute node of type INSTANCER.

The mesh has two objects. The *values* object (role "node_values", hidden in viewports and
renders) is what everything reads: edges, labels, maps, slabs and bundles sample its evaluated
vertices (trees.node_points; vertex i = network node i whatever is drawn), and a bake's
modifier sits on it. Blender evaluates a hidden object that others read. The *nodes* object
draws: its modifier instances the values object's evaluated vertices (Object Info), so its
own output is instances only. Neither draws the points themselves: a mesh's loose vertices show
as dots in Object Mode, and a point cloud of them, even of radius 0, is what EEVEE spent over
half of a ResNet-18's 9 s redraw after each update on (real window, software GL).
"""

from __future__ import annotations

import bpy
import numpy as np

from . import attributes, trees, util
from .handle import VALUES

SHAPES = ("cube", "sphere", "tile")
VALUE_ATTRS = ("act", "level", "signed")
MODIFIER = "NNViz Nodes"


def build_tree(network: str):
    """The instancing node group (one per network, so removing the network removes it)."""
    tree = trees.new_tree(f"{network} nodes", network, "nodes_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Shape", "NodeSocketInt", default=0, min_value=0, max_value=2)
    trees.add_socket(tree, "Size", "NodeSocketFloat", default=0.09, min_value=0.0)
    trees.add_socket(tree, "Tile Rotation", "NodeSocketVector", default=(0.0, 0.0, 0.0))
    trees.add_socket(tree, "Material", "NodeSocketMaterial")
    trees.add_socket(tree, "Values", "NodeSocketObject")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")

    n, link = trees.node, trees.link
    gin = n(tree, "NodeGroupInput", -900, 0)
    cube = n(tree, "GeometryNodeMeshCube", -700, 250)
    cube.inputs["Size"].default_value = (1.0, 1.0, 1.0)
    sphere = n(tree, "GeometryNodeMeshIcoSphere", -700, 50)
    sphere.inputs["Radius"].default_value = 0.5
    sphere.inputs["Subdivisions"].default_value = 2
    smooth = n(tree, "GeometryNodeSetShadeSmooth", -500, 50)
    link(tree, sphere.outputs["Mesh"], smooth.inputs["Geometry"])
    grid = n(tree, "GeometryNodeMeshGrid", -700, -200)
    grid.inputs["Size X"].default_value = 1.0
    grid.inputs["Size Y"].default_value = 1.0
    grid.inputs["Vertices X"].default_value = 2
    grid.inputs["Vertices Y"].default_value = 2
    turn = n(tree, "GeometryNodeTransform", -500, -200)
    link(tree, grid.outputs["Mesh"], turn.inputs["Geometry"])
    link(tree, gin.outputs["Tile Rotation"], turn.inputs["Rotation"])

    switch = n(tree, "GeometryNodeIndexSwitch", -300, 0, data_type="GEOMETRY")
    # three items (5.0 also lists an unnamed "__extend__" input, which makes none when linked)
    while len(switch.index_switch_items) < 3:
        switch.index_switch_items.new()
    link(tree, gin.outputs["Shape"], switch.inputs["Index"])
    link(tree, cube.outputs["Mesh"], switch.inputs[1])
    link(tree, smooth.outputs["Geometry"], switch.inputs[2])
    link(tree, turn.outputs["Geometry"], switch.inputs[3])

    material = n(tree, "GeometryNodeSetMaterial", -100, 0)
    link(tree, switch.outputs[0], material.inputs["Geometry"])
    link(tree, gin.outputs["Material"], material.inputs["Material"])

    points = trees.node_points(tree, gin.outputs["Values"], -300, 500)
    inst = n(tree, "GeometryNodeInstanceOnPoints", 100, 100)
    link(tree, points, inst.inputs["Points"])
    # only "neurons" points (lod 0, or no `lod` at all) get an instance
    lod = trees.named(tree, "lod", "INT", -100, 300)
    link(tree, trees.math(tree, "LESS_THAN", lod, 0.5, 0, 300), inst.inputs["Selection"])
    link(tree, material.outputs["Geometry"], inst.inputs["Instance"])
    link(tree, gin.outputs["Size"], inst.inputs["Scale"])
    # Hidden layers (visibility.py) shrink to nothing rather than being deleted: the edges and
    # labels sample nodes by index, so every instance must stay where it is.
    hidden = trees.named(tree, "hidden", "BOOLEAN", 100, -150)
    shrink = n(tree, "GeometryNodeScaleInstances", 300, 100)
    link(tree, inst.outputs["Instances"], shrink.inputs["Instances"])
    link(tree, hidden, shrink.inputs["Selection"])
    shrink.inputs["Scale"].default_value = (0.0, 0.0, 0.0)
    keep = n(tree, "GeometryNodeJoinGeometry", 700, 100)
    keep.name = keep.label = KEEP_POINTS  # the mark of a tree made since levels of detail
    link(tree, shrink.outputs["Instances"], keep.inputs[0])
    gout = n(tree, "NodeGroupOutput", 900, 100)
    link(tree, keep.outputs[0], gout.inputs["Geometry"])
    return tree


KEEP_POINTS = "Keep Points"


def instances_link(tree):
    """The link that brings the instances into the final Join (solid.py inserts its branch
    there)."""
    return tree.nodes[KEEP_POINTS].inputs[0].links[0]


def build(
    network: str,
    collection,
    positions: np.ndarray,
    stage: np.ndarray,
    index: np.ndarray,
    fmap: np.ndarray,
    *,
    shape: str = "cube",
    size: float = 0.09,
    tile_rotation: tuple[float, float, float] = (0.0, 0.0, 0.0),
    material=None,
) -> str:
    """Create the nodes object in `collection`; returns the object's name."""
    if shape not in SHAPES:
        raise ValueError(f"node shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    n = len(positions)
    mesh = util.tag(bpy.data.meshes.new(f"{network} nodes"), network, "nodes")
    mesh.vertices.add(n)
    attributes.write_positions(mesh, positions)
    zeros = np.zeros(n, dtype=np.float32)
    for name in VALUE_ATTRS:
        attributes.write(mesh, name, zeros, "FLOAT", "POINT")
    attributes.write(mesh, "stage", stage, "INT", "POINT")
    attributes.write(mesh, "index", index, "INT", "POINT")
    attributes.write(mesh, "map", fmap, "INT", "POINT")
    mesh.update()

    values = util.new_object(collection, network, VALUES, mesh)
    values.hide_viewport = values.hide_render = values.hide_select = True
    obj = util.new_object(collection, network, "nodes", mesh)
    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = build_tree(network)
    trees.set_modifier_input(mod, "Values", values)
    trees.set_modifier_input(mod, "Shape", SHAPES.index(shape))
    trees.set_modifier_input(mod, "Size", float(size))
    trees.set_modifier_input(mod, "Tile Rotation", tuple(float(v) for v in tile_rotation))
    if material is not None:
        trees.set_modifier_input(mod, "Material", material)
    return obj.name


def write_values(mesh, act: np.ndarray, level: np.ndarray, signed: np.ndarray) -> None:
    """The per-update write: three float32 arrays of one value per node, then one update tag."""
    attributes.write_existing(mesh, "act", act)
    attributes.write_existing(mesh, "level", level)
    attributes.write_existing(mesh, "signed", signed)
    mesh.update_tag()

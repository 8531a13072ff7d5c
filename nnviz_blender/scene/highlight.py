"""Highlighted connections: a small curves object of its own, built on demand (inspect, trace).

Colour follows the sign of weight x source value (warm = positive, cool = negative) and its
strength follows the magnitude, so a trace reads as "what pushed this neuron up or down".
"""

from __future__ import annotations

import bpy
import numpy as np

from . import attributes, compat, edges, util
from .handle import Network

ROLE = "highlight"
COOL, WARM = (0.05, 0.35, 1.0, 1.0), (1.0, 0.55, 0.05, 1.0)  # the signal ramp's two ends


def _material(network: str):
    mat = util.find("materials", network, "highlight_material")
    if mat is not None:
        return mat
    mat = util.tag(bpy.data.materials.new(f"{network} highlight"), network, "highlight_material")
    tree = compat.shader_tree(mat)
    tree.nodes.clear()
    attr = tree.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = "signal"
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    stops = ramp.color_ramp.elements
    stops[0].position, stops[0].color = 0.0, COOL
    stops[1].position, stops[1].color = 1.0, WARM
    mid = stops.new(0.5)
    mid.color = (1.0, 1.0, 1.0, 1.0)
    emit = tree.nodes.new("ShaderNodeEmission")
    emit.inputs["Strength"].default_value = 6.0
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(compat.factor(attr.outputs), compat.factor(ramp.inputs))
    tree.links.new(ramp.outputs["Color"], emit.inputs["Color"])
    tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    # Solid viewports draw a Curves object in its first material's viewport colour (one per
    # object: Blender 4.3's Solid ignores a material index on curves) and cannot read the
    # signal: the warm end, to stand out from the cyan edges, not Blender's default grey.
    mat.diffuse_color = WARM
    return mat


def clear(network: str) -> None:
    for kind, role in (("objects", ROLE), ("hair_curves", ROLE)):
        block = util.find(kind, network, role)
        if block is not None:
            getattr(bpy.data, kind).remove(block)


def show(network: str, src: np.ndarray, dst: np.ndarray, signal: np.ndarray, radius: float) -> str:
    """Replace the highlight with curves src -> dst; `signal` in [-1, 1] colours each one."""
    clear(network)
    net = Network(network)
    coll = net.collection
    positions = net.positions()
    m = len(src)
    curves = util.tag(bpy.data.hair_curves.new(f"{network} highlight"), network, ROLE)
    if m:
        curves.add_curves([2] * m)
        pos = np.stack([positions[src], positions[dst]], axis=1)
        attributes.write_positions(curves, pos.reshape(-1, 3))
        attributes.write(curves, "signal", 0.5 + 0.5 * np.clip(signal, -1, 1), "FLOAT", "CURVE")
        attributes.write(curves, "radius", np.full(2 * m, radius, np.float32), "FLOAT", "POINT")
        edges.draw_control_points(curves)
    curves.materials.append(_material(network))
    obj = util.new_object(coll, network, ROLE, curves)
    obj.matrix_world = net.nodes.matrix_world.copy()  # same space as the node positions
    obj.hide_select = True
    return obj.name

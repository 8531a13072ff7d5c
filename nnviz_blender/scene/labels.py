"""Text: the class labels above the output nodes and the stage names beside the stages.

Each class label is a text object with a small Geometry Nodes modifier that samples its output
node's `level` from the nodes object and stores it on the text's faces, so the predicted class
lights up through the material with no Python on update (the rule of design.md: an update
writes node activations only).
"""

from __future__ import annotations

import bpy
import numpy as np

from . import compat, materials, trees, util

MODIFIER = "NNViz Label"


def _label_tree(network: str):
    tree = trees.new_tree(f"{network} label", network, "label_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Nodes", "NodeSocketObject")
    trees.add_socket(tree, "Node", "NodeSocketInt", default=0, min_value=0)
    trees.add_socket(tree, "Grow", "NodeSocketFloat", default=1.0, min_value=0.0)
    trees.add_socket(tree, "Lift", "NodeSocketFloat", default=0.05)
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")
    n, link = trees.node, trees.link
    gin = n(tree, "NodeGroupInput", -700, 0)
    level = trees.node_value(tree, gin.outputs["Nodes"], "level", gin.outputs["Node"], -500, 0)
    text = trees.store(tree, gin.outputs["Geometry"], "level", level, "FLOAT", "FACE", -100, 0)
    # The predicted class grows (level 1 -> 1 + Grow times its size), upward from its baseline.
    sharp = trees.math(tree, "POWER", level, 4.0, -100, -250)
    grow = trees.math(tree, "MULTIPLY", sharp, gin.outputs["Grow"], 50, -250)
    scale = trees.math(tree, "ADD", grow, 1.0, 200, -250)
    lift = trees.math(tree, "MULTIPLY", grow, gin.outputs["Lift"], 200, -400)
    offset = n(tree, "ShaderNodeCombineXYZ", 350, -400)
    link(tree, lift, offset.inputs["Y"])
    transform = n(tree, "GeometryNodeTransform", 500, 0)
    link(tree, text, transform.inputs["Geometry"])
    link(tree, scale, transform.inputs["Scale"])
    link(tree, offset.outputs[0], transform.inputs["Translation"])
    gout = n(tree, "NodeGroupOutput", 700, 0)
    link(tree, transform.outputs["Geometry"], gout.inputs["Geometry"])
    return tree


def class_material(network: str, theme: materials.Theme):
    """Text colour from `level`: the predicted class (level 1) in the highlight colour, bright."""
    mat = util.new_material(f"{network} class labels", network, "class_label_material")
    nt = mat.node_tree
    n, link = trees.node, trees.link
    level = n(nt, "ShaderNodeAttribute", -600, 0, attribute_type="GEOMETRY")
    level.attribute_name = "level"
    sharp = n(nt, "ShaderNodeMath", -400, 0, operation="POWER")
    link(nt, compat.factor(level.outputs), sharp.inputs[0])
    sharp.inputs[1].default_value = 3.0
    color = n(nt, "ShaderNodeMix", -200, 100, data_type="RGBA")
    link(nt, sharp.outputs[0], compat.factor(color.inputs))
    color.inputs[6].default_value = materials.linear(theme.text)
    color.inputs[7].default_value = materials.linear(theme.highlight)
    strength = n(nt, "ShaderNodeMath", -200, -150, operation="MULTIPLY_ADD")
    link(nt, sharp.outputs[0], strength.inputs[0])
    strength.inputs[1].default_value = 1.5 if theme.edge_blend == "add" else 0.0
    strength.inputs[2].default_value = 1.0
    emit = n(nt, "ShaderNodeEmission", 0, 0)
    link(nt, color.outputs[2], emit.inputs["Color"])
    link(nt, strength.outputs[0], emit.inputs["Strength"])
    out = n(nt, "ShaderNodeOutputMaterial", 200, 0)
    link(nt, emit.outputs[0], out.inputs["Surface"])
    return mat


MAX_CLASS_LABELS = 100  # output nodes with a class label over them, at most


def build(
    network: str,
    collection,
    graph,
    positions: np.ndarray,
    class_names: list[str],
    theme: materials.Theme,
    style: str,
    values_object: str,
    label_positions: np.ndarray,
    pitch: float = 0.1,
) -> list[str]:
    """Class labels over the output nodes (up to MAX_CLASS_LABELS of them) and stage names at
    the left of each stage."""
    names = []
    out_stage = graph.stages[-1]
    mat = class_material(network, theme)
    tree = _label_tree(network)
    # Each label follows its node's value through a modifier of its own, re-evaluated on every
    # update: 1,000 of them (an ImageNet classifier) took 0.5 s per update.
    many = len(label_positions) > MAX_CLASS_LABELS
    for i, at in enumerate([] if many else label_positions):
        label = class_names[i] if i < len(class_names) else str(i)
        obj = util.text_object(network, collection, f"label {i}", label, at, 1.6 * pitch, mat)
        mod = obj.modifiers.new(MODIFIER, "NODES")
        mod.node_group = tree
        trees.set_modifier_input(mod, "Nodes", bpy.data.objects[values_object])
        trees.set_modifier_input(mod, "Node", int(out_stage.start + i))
        trees.set_modifier_input(mod, "Lift", 0.6 * pitch)
        names.append(obj.name)

    name_mat = materials.label_material(network, theme, "stage_label_material", theme.text)
    for k, stage in enumerate(graph.stages):
        block = positions[stage.start : stage.stop]
        lo, hi = block.min(axis=0), block.max(axis=0)
        at = np.array([lo[0] - 2.5 * pitch, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2])
        if style == "3d":
            at[1] = lo[1]  # front edge of the plane
        obj = util.text_object(
            network, collection, f"stage {k}", stage.name, at, 2.5 * pitch, name_mat, "RIGHT"
        )
        names.append(obj.name)
    return names

"""What differs between the supported Blender versions (4.2 LTS, 4.5 LTS, 5.0, 5.1 - which is
5.0 here): one helper per concern, so the rest of the package is written once and never tests a
version number.

- factor sockets: Attribute (output), Color Ramp and Mix Shader name it "Fac" on 4.x and
  "Factor" on 5.0 (identifier "Fac" on all) -> `factor`.
- shader node trees: a new material's / world's `node_tree` is None on 4.x until `use_nodes`
  is set; 5.0 always has it and deprecates `use_nodes` -> `shader_tree`.
- EEVEE engine id: BLENDER_EEVEE_NEXT on 4.x, BLENDER_EEVEE on 5.0 -> `eevee_engine_id`.
- compositor: the scene's embedded `node_tree` ending in a Composite node, with the
  compositor's own Math / MixRGB nodes and Set Alpha's `mode` on 4.x; a node group in
  `scene.compositing_node_group` with an Image output, shader Math / Mix nodes and Set Alpha's
  "Type" input on 5.0 -> `new_compositor`, `compositor_math`, `compositor_mix`, ...

Checked and the same on all three (so no helper): EEVEE's blended transparency
(`Material.surface_render_method = 'BLENDED'`, `use_transparency_overlap`; `blend_method` is
the pre-4.2 API), the viewport's `View3DShading.use_scene_world` / `use_scene_lights` (and their
`_render` twins) and `color_type` items, the Is Viewport node, and the multi-input order of
Geometry to Instance (read back from the socket's links, never assumed).
"""

from __future__ import annotations

from typing import cast

import bpy

# --- node sockets -----------------------------------------------------------------------------

_FACTOR_IDS = ("Fac", "Factor_Float")


def factor(sockets):
    """The factor socket among a node's `inputs` or `outputs`.

    Attribute (output), Color Ramp, Mix Shader and the 4.x compositor's Mix: identifier "Fac",
    named "Fac" on 4.x and "Factor" on 5.0. The Mix node: "Factor" everywhere (identifier
    "Factor_Float", the first of its factor inputs). Looked up by identifier, the stable key.
    """
    for socket in sockets:
        if socket.identifier in _FACTOR_IDS:
            return socket
    raise KeyError(f"no factor socket among {[s.identifier for s in sockets]}")


# --- shader node trees ------------------------------------------------------------------------


def shader_tree(block):
    """The node tree of a material or world; 4.x makes it only when `use_nodes` is set."""
    if block.node_tree is None:
        block.use_nodes = True
    return block.node_tree


# --- render engines ---------------------------------------------------------------------------


def eevee_engine_id() -> str:
    """'BLENDER_EEVEE_NEXT' on 4.2-4.5, 'BLENDER_EEVEE' on 5.0."""
    # (the stub types bl_rna.properties[...] as Property; "engine" is an EnumProperty)
    prop = cast(bpy.types.EnumProperty, bpy.types.RenderSettings.bl_rna.properties["engine"])
    items = prop.enum_items.keys()
    return "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in items else "BLENDER_EEVEE"


# --- compositor -------------------------------------------------------------------------------
#
# 5.0 composites through a node group (scene.compositing_node_group) whose result is its Image
# output, and its compositor takes the shader Math / Mix nodes; 4.2 / 4.5 use the scene's
# embedded tree (scene.node_tree, switched on by use_nodes) ending in a Composite node, with the
# compositor's own Math / MixRGB nodes (4.2 accepts no shader nodes there).


def _compositor_is_group() -> bool:
    return "compositing_node_group" in bpy.types.Scene.bl_rna.properties


def _new(tree, type_name: str, x: float, y: float, **props):
    node = tree.nodes.new(type_name)
    node.location = (x, y)
    for key, value in props.items():
        setattr(node, key, value)
    return node


def compositor(scene):
    """The node tree `scene` composites through, or None."""
    if _compositor_is_group():
        return scene.compositing_node_group
    return scene.node_tree if scene.use_nodes else None


def new_compositor(scene, name: str):
    """Make `scene` composite through a new, empty node tree and return it.

    5.0: a new compositor node group (named `name`) with one Image output. 4.x: the scene's own
    tree, switched on and emptied; 4.5 fills a new one with a Viewer node, which makes a
    "Viewer Node" image: removed again here so that nothing is left behind.
    """
    if _compositor_is_group():
        tree = bpy.data.node_groups.new(name, "CompositorNodeTree")
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        scene.compositing_node_group = tree
        return tree
    images = set(bpy.data.images)
    scene.use_nodes = True
    tree = scene.node_tree
    tree.nodes.clear()
    for image in set(bpy.data.images) - images:
        if image.type == "COMPOSITING":  # (keeps an extra user after its node is gone)
            bpy.data.images.remove(image)
    return tree


def drop_compositor(scene) -> None:
    """Stop compositing `scene` through its tree (5.0: the node group is removed too)."""
    if _compositor_is_group():
        tree = scene.compositing_node_group
        scene.compositing_node_group = None
        if tree is not None:
            bpy.data.node_groups.remove(tree)
    elif scene.node_tree is not None:
        scene.node_tree.nodes.clear()
        scene.use_nodes = False


def compositor_output(tree, x: float, y: float):
    """The input socket the composited image goes into."""
    if _compositor_is_group():
        return _new(tree, "NodeGroupOutput", x, y).inputs[0]
    return _new(tree, "CompositorNodeComposite", x, y).inputs["Image"]


def compositor_math(tree, operation: str, x: float, y: float, use_clamp: bool = False):
    """A Math node for a compositor tree (inputs 0-2 and output 0 as in the shader one)."""
    kind = "CompositorNodeMath" if hasattr(bpy.types, "CompositorNodeMath") else "ShaderNodeMath"
    return _new(tree, kind, x, y, operation=operation, use_clamp=use_clamp)


def compositor_mix(tree, blend_type: str, x: float, y: float):
    """A colour Mix node at full factor for a compositor tree: (A input, B input, result)."""
    if hasattr(bpy.types, "CompositorNodeMixRGB"):
        mix = _new(tree, "CompositorNodeMixRGB", x, y, blend_type=blend_type, use_alpha=False)
        a, b, result = mix.inputs[1], mix.inputs[2], mix.outputs[0]
    else:
        mix = _new(tree, "ShaderNodeMix", x, y, data_type="RGBA", blend_type=blend_type)
        a, b, result = mix.inputs[6], mix.inputs[7], mix.outputs[2]  # the RGBA sockets
    factor(mix.inputs).default_value = 1.0
    return a, b, result


def compositor_replace_alpha(tree, x: float, y: float):
    """A Set Alpha node that replaces the alpha (4.x: `mode` property; 5.0: "Type" input)."""
    node = _new(tree, "CompositorNodeSetAlpha", x, y)
    if "Type" in node.inputs:
        node.inputs["Type"].default_value = "Replace Alpha"
    else:
        node.mode = "REPLACE_ALPHA"
    return node

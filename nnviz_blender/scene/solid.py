"""Solid colours: what Workbench and the Solid viewport show, which colour by material and
cannot read attributes.

Both instancing trees (nodes, edges) get a "Solid Colors" switch input; on, a branch sorts the
geometry into bins of its colour value and gives each bin a material of the palette
(materials.node_palette / edge_palette). Off (the default), the trees work as if it were not
there. studio.setup switches it on for Workbench renders.
"""

from __future__ import annotations

from . import edges as scene_edges
from . import materials, trees, util
from . import nodes as scene_nodes
from .handle import Network


def palette_branch(tree, geometry, value, materials, lo: float, hi: float, x=0, y=0):
    """Geometry with a material per bin of `value` over [lo, hi] (one bin per material).

    For Workbench and the Solid viewport, which colour by material and cannot read attributes:
    a chain of Set Material nodes, the k-th selecting the elements (faces, curves) whose value
    falls in bin k. Returns the output socket of the last node.
    """
    k = len(materials)
    scale = trees.node(tree, "ShaderNodeMapRange", x, y - 200, clamp=True)
    trees.link(tree, value, scale.inputs["Value"])
    scale.inputs["From Min"].default_value = lo
    scale.inputs["From Max"].default_value = hi
    scale.inputs["To Max"].default_value = k - 1e-3
    bin_ = trees.math(tree, "FLOOR", scale.outputs["Result"], None, x + 150, y - 200)
    current = geometry
    for i, mat in enumerate(materials):
        pick = trees.node(tree, "ShaderNodeMath", x + 300 + 150 * i, y - 200, operation="COMPARE")
        trees.link(tree, bin_, pick.inputs[0])
        pick.inputs[1].default_value = float(i)
        pick.inputs[2].default_value = 0.5
        setm = trees.node(tree, "GeometryNodeSetMaterial", x + 300 + 150 * i, y)
        trees.link(tree, current, setm.inputs["Geometry"])
        trees.link(tree, pick.outputs[0], setm.inputs["Selection"])
        setm.inputs["Material"].default_value = mat
        current = setm.outputs["Geometry"]
    return current


def add_solid_colors(tree, build_branch, at=None) -> None:
    """Insert `build_branch(tree, geometry_socket) -> socket` into the link `at` (default: the
    one into the group output), behind a "Solid Colors" switch input (off: the tree works
    exactly as before)."""
    trees.add_socket(tree, "Solid Colors", "NodeSocketBool", default=False)
    if at is None:
        out = next(n for n in tree.nodes if n.bl_idname == "NodeGroupOutput")
        at = out.inputs[0].links[0]
    gin = next(n for n in tree.nodes if n.bl_idname == "NodeGroupInput")
    last, target = at.from_socket, at.to_socket
    # a multi-input (a Join) keeps the order of its inputs: the points before the instances
    order = [lk.from_socket for lk in target.links]
    for lk in list(target.links):
        tree.links.remove(lk)
    branch = build_branch(tree, last)
    to = target.node
    switch = trees.node(tree, "GeometryNodeSwitch", to.location.x, to.location.y - 300)
    switch.input_type = "GEOMETRY"
    trees.link(tree, gin.outputs["Solid Colors"], switch.inputs["Switch"])
    trees.link(tree, last, switch.inputs["False"])
    trees.link(tree, branch, switch.inputs["True"])
    to.location.x += 2500
    for socket in order:
        trees.link(tree, switch.outputs[0] if socket == last else socket, target)


def add_to_nodes(name: str, theme: materials.Theme, colormap: str | None) -> None:
    """Solid colours for the nodes: realized cubes with a material per colour bin."""
    _, signed = materials.node_colormap(theme, colormap)
    pal = materials.node_palette(name, theme, colormap)

    def branch(tree, geometry):
        realize = trees.node(tree, "GeometryNodeRealizeInstances", 400, -300)
        trees.link(tree, geometry, realize.inputs["Geometry"])
        value = trees.named(tree, "signed" if signed else "level", "FLOAT", 400, -500)
        lo = -1.0 if signed else 0.0
        return palette_branch(tree, realize.outputs[0], value, pal, lo, 1.0, 600, -300)

    tree = util.find("node_groups", name, "nodes_tree")
    add_solid_colors(tree, branch, scene_nodes.instances_link(tree))


def add_viewport_colors(name: str, theme: materials.Theme, colormap: str | None) -> None:
    """Node colours in Solid viewports, at no cost per update: in viewports every node picks
    one of PALETTE_SIZE instances of its shape by the bin of its colour value, each carrying a
    copy of the node material whose viewport colour (what Solid shows) is the colormap at
    that bin. Material Preview draws the copies' shader, the node material's own; renders
    (Is Viewport false) instance the one shape as before.
    """
    tree = util.find("node_groups", name, "nodes_tree")
    node_mat = util.find("materials", name, "nodes_material")
    cmap, signed = materials.node_colormap(theme, colormap)
    stops = materials.COLORMAPS[cmap]
    k = materials.PALETTE_SIZE
    inst = next(n for n in tree.nodes if n.bl_idname == "GeometryNodeInstanceOnPoints")
    shaped = inst.inputs["Instance"].links[0].from_socket  # the shape with the node material
    shape = shaped.node.inputs["Geometry"].links[0].from_socket
    n, link = trees.node, trees.link
    group = n(tree, "GeometryNodeGeometryToInstance", -100, -600)
    for i in range(k):
        setm = n(tree, "GeometryNodeSetMaterial", -300, -600 - 60 * i)
        link(tree, shape, setm.inputs["Geometry"])
        link(tree, setm.outputs["Geometry"], group.inputs["Geometry"])
    # instance i is the i-th link of the multi-input, in the order the socket lists them
    for i, incoming in enumerate(group.inputs["Geometry"].links):
        mat = node_mat.copy()
        mat.name = f"{node_mat.name} {i:02d}"
        util.tag(mat, name, f"nodes_material_{i}")
        mat.diffuse_color = materials.linear(materials.sample_colormap(stops, (i + 0.5) / k))
        incoming.from_node.inputs["Material"].default_value = mat
    viewport = n(tree, "GeometryNodeIsViewport", -100, -450)
    pick = n(tree, "GeometryNodeSwitch", 0, -300, input_type="GEOMETRY")
    link(tree, viewport.outputs[0], pick.inputs["Switch"])
    link(tree, shaped, pick.inputs["False"])
    link(tree, group.outputs[0], pick.inputs["True"])
    link(tree, pick.outputs[0], inst.inputs["Instance"])
    link(tree, viewport.outputs[0], inst.inputs["Pick Instance"])
    value = trees.named(tree, "signed" if signed else "level", "FLOAT", -300, -1400)
    scale = n(tree, "ShaderNodeMapRange", -100, -1400, clamp=True)
    link(tree, value, scale.inputs["Value"])
    scale.inputs["From Min"].default_value = -1.0 if signed else 0.0
    scale.inputs["To Max"].default_value = k - 1e-3
    bin_ = trees.math(tree, "FLOOR", scale.outputs["Result"], None, 50, -1400)
    link(tree, bin_, inst.inputs["Instance Index"])


def add_to_edges(name: str, theme: materials.Theme) -> None:
    """Solid colours for the edges: a material per bin of their glow."""
    pal = materials.edge_palette(name, theme)

    def branch(tree, geometry):
        glow = trees.named(tree, "glow", "FLOAT", 900, -500)
        scaled = trees.math(tree, "MULTIPLY", glow, theme.edge_strength, 1050, -500)
        return palette_branch(tree, geometry, scaled, pal, -1.0, 1.0, 1200, -300)

    add_solid_colors(util.find("node_groups", name, "edges_tree"), branch)


def set_solid_colors(name: str, on: bool) -> None:
    """Colour by material bins (Workbench, Solid viewport) instead of by attributes."""
    for role, modifier in (("nodes", scene_nodes.MODIFIER), ("edges", scene_edges.MODIFIER)):
        mod = Network(name).modifier(role, modifier)
        if mod is not None:
            trees.set_modifier_input(mod, "Solid Colors", bool(on))

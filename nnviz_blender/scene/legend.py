"""Figure elements as real objects: layer sizes, probability bars and a colour legend.

labels.py writes the stage names and the class labels; this module adds what a figure still
needs to be read without the text around it:

- the size of every layer under its name ("6 x 28 x 28");
- probability bars: one bar per class whose height is the output node's value, computed by
  Geometry Nodes from the evaluated values object (like the edges), so the bars follow live
  updates and baked animations with no Python;
- a colour legend: the nodes' colour ramp as a gradient strip with its meaning, and the two edge
  colours (excitatory / inhibitory contributions).

Everything sits in the collection "<network> figure", a child of the network's collection, so a
view layer can render or hold it out apart from nodes and edges (see figure_layers). Everything
is tagged with the network, so removing the network removes it.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import attributes, compat, materials, trees, util
from .handle import Network

BARS_MODIFIER = "NNViz Bars"
PITCH = 0.1


def figure_collection(network: str):
    """The collection "<network> figure" (made on first use) for figure elements."""
    fig = util.find("collections", network, "figure_collection")
    if fig is None:
        fig = util.tag(bpy.data.collections.new(f"{network} figure"), network, "figure_collection")
        Network(network).collection.children.link(fig)
    return fig


def _theme(network: str) -> materials.Theme:
    return materials.get_theme(Network(network).theme)


def _text_material(network: str, role: str, theme: materials.Theme, color=None):
    mat = util.find("materials", network, role)
    return mat or materials.label_material(network, theme, role, color or theme.text)


def size_text(shape) -> str:
    """(6, 28, 28) -> '6 × 28 × 28', (120,) -> '120'."""
    return " × ".join(str(int(v)) for v in shape)


# --- layer sizes ------------------------------------------------------------------------------


def layer_sizes(network: str) -> list[str]:
    """A smaller caption with the layer's size under each stage name; returns the objects."""
    theme = _theme(network)
    fig = figure_collection(network)
    mat = _text_material(network, "figure_text_material", theme)
    names = []
    for k, stage in enumerate(Network(network).stages):
        label = util.find("objects", network, f"stage {k}")
        if label is None:
            continue
        size = label.data.size * 0.75
        at = label.location.copy()
        at.z -= label.data.size * 1.05
        obj = util.text_object(
            network,
            fig,
            f"size {k}",
            size_text(stage["shape"]),
            at,
            size,
            mat,
            align_x=label.data.align_x,
        )
        names.append(obj.name)
    return names


# --- probability bars -------------------------------------------------------------------------


def _probability(tree, points, act, output: str):
    """Class probability from the output node's raw value, whatever the model ends in (as
    core.forward.probabilities): a softmax output as it is, exp of log-probabilities, the
    softmax of logits over the bars' points (one per class)."""
    if output == "log_probabilities":
        return trees.math(tree, "EXPONENT", act, None, -600, 200, clamp=True)
    if output != "logits":
        return trees.math(tree, "MAXIMUM", act, 0.0, -400, 200, clamp=True)
    n, link = trees.node, trees.link

    def stat(field, output_name, y):
        node = n(tree, "GeometryNodeAttributeStatistic", -700, y, data_type="FLOAT", domain="POINT")
        link(tree, points, node.inputs["Geometry"])
        link(tree, field, node.inputs["Attribute"])
        return node.outputs[output_name]

    top = stat(act, "Max", 450)
    shifted = trees.math(tree, "EXPONENT", trees.math(tree, "SUBTRACT", act, top, -550, 350))
    return trees.math(tree, "DIVIDE", shifted, stat(shifted, "Sum", 550), -400, 200, clamp=True)


def _bars_tree(network: str, output: str = "probabilities"):
    tree = trees.new_tree(f"{network} bars", network, "bars_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Nodes", "NodeSocketObject")
    trees.add_socket(tree, "Height", "NodeSocketFloat", default=1.0, min_value=0.0)
    trees.add_socket(tree, "Width", "NodeSocketFloat", default=0.08, min_value=0.0)
    trees.add_socket(tree, "Bar Material", "NodeSocketMaterial")
    trees.add_socket(tree, "Track Material", "NodeSocketMaterial")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")
    n, link = trees.node, trees.link
    gin = n(tree, "NodeGroupInput", -1000, 0)
    node = trees.named(tree, "node", "INT", -800, -50)
    act = trees.node_value(tree, gin.outputs["Nodes"], "act", node, -800, 100)
    prob = _probability(tree, gin.outputs["Geometry"], act, output)
    points = trees.store(tree, gin.outputs["Geometry"], "prob", prob, "FLOAT", "POINT", -200, 0)

    cube = n(tree, "GeometryNodeMeshCube", -600, -300)
    cube.inputs["Size"].default_value = (1.0, 1.0, 1.0)
    lift = n(tree, "GeometryNodeTransform", -400, -300)  # base on the point, growing up
    link(tree, cube.outputs["Mesh"], lift.inputs["Geometry"])
    lift.inputs["Translation"].default_value = (0.0, 0.0, 0.5)

    def bars(height, material, y):
        scale = n(tree, "ShaderNodeCombineXYZ", 0, y - 150)
        link(tree, gin.outputs["Width"], scale.inputs["X"])
        depth = trees.math(tree, "MULTIPLY", gin.outputs["Width"], 0.25, -150, y - 250)
        link(tree, depth, scale.inputs["Y"])
        link(tree, height, scale.inputs["Z"])
        inst = n(tree, "GeometryNodeInstanceOnPoints", 200, y)
        link(tree, points, inst.inputs["Points"])
        link(tree, lift.outputs["Geometry"], inst.inputs["Instance"])
        link(tree, scale.outputs[0], inst.inputs["Scale"])
        mat = n(tree, "GeometryNodeSetMaterial", 400, y)
        link(tree, inst.outputs["Instances"], mat.inputs["Geometry"])
        link(tree, material, mat.inputs["Material"])
        return mat.outputs["Geometry"]

    tall = trees.math(tree, "MULTIPLY", prob, gin.outputs["Height"], -200, 150)
    front = bars(tall, gin.outputs["Bar Material"], 200)
    track = bars(gin.outputs["Height"], gin.outputs["Track Material"], -200)
    # the track sits just behind its bar so the bar always wins the depth test
    back = n(tree, "GeometryNodeTranslateInstances", 600, -200)
    link(tree, track, back.inputs["Instances"])
    back.inputs["Translation"].default_value = (0.0, 0.02, 0.0)
    join = n(tree, "GeometryNodeJoinGeometry", 800, 0)
    link(tree, back.outputs["Instances"], join.inputs["Geometry"])
    link(tree, front, join.inputs["Geometry"])
    gout = n(tree, "NodeGroupOutput", 1000, 0)
    link(tree, join.outputs["Geometry"], gout.inputs["Geometry"])
    return tree


def _bar_material(network: str, theme: materials.Theme):
    mat = util.new_material(f"{network} probability bars", network, "bars_material")
    nt = mat.node_tree
    n, link = trees.node, trees.link
    prob = n(nt, "ShaderNodeAttribute", -600, 0, attribute_type="INSTANCER")
    prob.attribute_name = "prob"
    color = n(nt, "ShaderNodeMix", -300, 100, data_type="RGBA")
    link(nt, compat.factor(prob.outputs), compat.factor(color.inputs))
    color.inputs[6].default_value = materials.linear(theme.text)
    color.inputs[7].default_value = materials.linear(theme.highlight)
    emit = n(nt, "ShaderNodeEmission", 0, 0)
    link(nt, color.outputs[2], emit.inputs["Color"])
    emit.inputs["Strength"].default_value = 1.3
    out = n(nt, "ShaderNodeOutputMaterial", 200, 0)
    link(nt, emit.outputs[0], out.inputs["Surface"])
    return mat


def _track_material(network: str, theme: materials.Theme):
    (r0, g0, b0), (r1, g1, b1) = theme.text, theme.background[1]
    dim = (0.35 * r0 + 0.65 * r1, 0.35 * g0 + 0.65 * g1, 0.35 * b0 + 0.65 * b1)
    return materials.label_material(network, theme, "bars_track_material", dim)


def probability_bars(network: str, height: float | None = None) -> list[str]:
    """Bars of the output probabilities beside the output layer, with the class names."""
    net = Network(network)
    out = net.stages[-1]
    labels = net.labels
    pos = net.positions()
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    out_pos = pos[out["start"] : out["start"] + out["size"]]
    n_out = int(out["size"])
    theme = _theme(network)
    fig = figure_collection(network)
    span = float(hi[0] - lo[0])
    height = height or max(0.6, 0.09 * float(hi[2] - lo[2] + span * 0.3))
    gap = height / 4.0
    x0 = float(hi[0]) + max(0.4, 0.06 * span)
    z0 = float(out_pos[:, 2].mean()) - 0.5 * height
    y0 = float(lo[1])

    mesh = util.tag(bpy.data.meshes.new(f"{network} probability bars"), network, "bars")
    mesh.vertices.add(n_out)
    co = np.zeros((n_out, 3), np.float32)
    co[:, 0] = x0 + gap * np.arange(n_out)
    co[:, 1], co[:, 2] = y0, z0
    attributes.write_positions(mesh, co)
    attributes.write(mesh, "node", out["start"] + np.arange(n_out), "INT", "POINT")
    mesh.update()
    obj = util.new_object(fig, network, "bars", mesh, f"{network} probability bars")
    mod = obj.modifiers.new(BARS_MODIFIER, "NODES")
    mod.node_group = _bars_tree(network, net.output)
    trees.set_modifier_input(mod, "Nodes", Network(network).values)
    trees.set_modifier_input(mod, "Height", float(height))
    trees.set_modifier_input(mod, "Width", float(gap * 0.7))
    trees.set_modifier_input(mod, "Bar Material", _bar_material(network, theme))
    trees.set_modifier_input(mod, "Track Material", _track_material(network, theme))

    names = [obj.name]
    mat = _text_material(network, "figure_text_material", theme)
    size = gap * 0.9
    for i in range(n_out):
        body = labels[i] if i < len(labels) else str(i)
        at = (co[i, 0], y0, z0 - 0.75 * size)
        names.append(util.text_object(network, fig, f"bar label {i}", body, at, size, mat).name)
    title = (x0 - 0.35 * gap, y0, z0 + height + 0.9 * size)
    names.append(
        util.text_object(
            network, fig, "bars title", "probability", title, size, mat, align_x="LEFT"
        ).name
    )
    return names


# --- colour legend ----------------------------------------------------------------------------


def _ramp_material(network: str, role: str, source_ramp, theme: materials.Theme):
    """Emission along the strip's U coordinate through a copy of `source_ramp`'s colours."""
    mat = util.new_material(f"{network} {role}", network, role)
    nt = mat.node_tree
    n, link = trees.node, trees.link
    uv = n(nt, "ShaderNodeTexCoord", -700, 0)
    split = n(nt, "ShaderNodeSeparateXYZ", -500, 0)
    link(nt, uv.outputs["UV"], split.inputs[0])
    ramp = n(nt, "ShaderNodeValToRGB", -300, 0)
    elements = ramp.color_ramp.elements
    if source_ramp is not None:
        src = source_ramp.color_ramp.elements
        while len(elements) < len(src):
            elements.new(0.5)
        for dst, el in zip(elements, src, strict=False):
            dst.position, dst.color = el.position, tuple(el.color)
        ramp.color_ramp.interpolation = source_ramp.color_ramp.interpolation
    else:
        materials.fill_ramp(ramp, materials.COLORMAPS[theme.node_colormap])
    link(nt, split.outputs["X"], compat.factor(ramp.inputs))
    emit = n(nt, "ShaderNodeEmission", 0, 0)
    link(nt, ramp.outputs["Color"], emit.inputs["Color"])
    out = n(nt, "ShaderNodeOutputMaterial", 200, 0)
    link(nt, emit.outputs[0], out.inputs["Surface"])
    return mat


def _strip(network, coll, role, location, width, height, mat):
    """A flat rectangle from `location` (its left-bottom corner) with UVs 0..1, facing -y."""
    corners = [[0, 0, 0], [width, 0, 0], [width, 0, height], [0, 0, height]]
    mesh = util.quad_mesh(f"{network} {role}", network, role, corners)
    mesh.materials.append(mat)
    obj = util.new_object(coll, network, role, mesh)
    obj.location = tuple(float(v) for v in location)
    return obj


def _node_value_kind(network: str) -> str:
    """'signed' if the node material colours -1..1 values, else 'level'."""
    mat = util.find("materials", network, "nodes_material")
    if mat is not None:
        for node in mat.node_tree.nodes:
            if node.bl_idname == "ShaderNodeAttribute" and node.attribute_name == "signed":
                return "signed"
    return "level"


def color_legend(network: str) -> list[str]:
    """The node colour ramp with its meaning and the edge colours, under the network's right."""
    net = Network(network)
    theme = _theme(network)
    fig = figure_collection(network)
    pos = net.positions()
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    span = float(hi[0] - lo[0])
    width = max(1.0, 0.16 * span)
    bar_h = width * 0.07
    size = bar_h * 1.5
    x0 = float(hi[0]) + max(0.4, 0.06 * span)
    y0 = float(lo[1])
    z0 = float(lo[2]) + 3.2 * size
    text = _text_material(network, "figure_text_material", theme)
    names = []

    nodes_mat = util.find("materials", network, "nodes_material")
    ramp = nodes_mat.node_tree.nodes.get("Node Colormap") if nodes_mat is not None else None
    grad = _ramp_material(network, "legend_ramp_material", ramp, theme)
    names.append(_strip(network, fig, "legend ramp", (x0, y0, z0), width, bar_h, grad).name)
    per = net.normalise
    scope = {"map": "feature map", "stage": "layer", "global": "network"}.get(per, per)
    if _node_value_kind(network) == "signed":
        ends = ("−max", "0", "+max")
        title = f"node value / largest |value| in its {scope}"
    else:
        ends = ("min", "", "max")
        title = f"node value, from min to max of its {scope}"
    below = z0 - 0.9 * size
    for frac, body in zip((0.0, 0.5, 1.0), ends, strict=True):
        if body:
            at = (x0 + frac * width, y0, below)
            names.append(
                util.text_object(network, fig, f"legend end {frac:g}", body, at, size, text).name
            )
    at = (x0 + width, y0, z0 + bar_h + 0.9 * size)
    names.append(
        util.text_object(network, fig, "legend title", title, at, size, text, align_x="RIGHT").name
    )

    if util.find("objects", network, "edges") is not None:
        z = z0 + bar_h + 2.6 * size
        for i, (color, body) in enumerate(
            (
                (theme.edge_colors[1], "weight × input > 0"),
                (theme.edge_colors[0], "weight × input < 0"),
            )
        ):
            zi = z + (1 - i) * 1.5 * size
            mat = materials.label_material(network, theme, f"legend_edge_{i}_material", color)
            strip = _strip(
                network, fig, f"legend edge {i}", (x0, y0, zi), width * 0.18, bar_h * 0.35, mat
            )
            names.append(strip.name)
            at = (x0 + width, y0, zi + bar_h * 0.17)
            names.append(
                util.text_object(
                    network, fig, f"legend edge text {i}", body, at, size, text, align_x="RIGHT"
                ).name
            )
        at = (x0 + width, y0, z + 3.0 * size)
        names.append(
            util.text_object(
                network, fig, "legend edges title", "connections", at, size, text, align_x="RIGHT"
            ).name
        )
    return names


# --- all at once, removal, view layers --------------------------------------------------------


def add(network: str, *, sizes: bool = True, bars: bool = True, legend: bool = True) -> list[str]:
    """Add the chosen figure elements (replacing earlier ones); returns the objects' names."""
    remove(network)
    names = []
    if sizes:
        names += layer_sizes(network)
    if bars:
        names += probability_bars(network)
    if legend:
        names += color_legend(network)
    return names


FIGURE_ROLES = (
    ("objects", "size "),
    ("objects", "bar"),
    ("objects", "legend"),
    ("curves", "size "),
    ("curves", "bar"),
    ("curves", "legend"),
    ("meshes", "bars"),
    ("meshes", "legend"),
    ("materials", "bars"),
    ("materials", "legend"),
    ("materials", "figure_text"),
    ("node_groups", "bars_tree"),
)


def remove(network: str) -> int:
    """Remove every figure element of the network; returns how many blocks went."""
    count = 0
    for kind, prefix in FIGURE_ROLES:
        blocks = getattr(bpy.data, kind)
        for block in [
            b
            for b in blocks
            if b.get(util.TAG) == network and str(b.get(util.ROLE, "")).startswith(prefix)
        ]:
            blocks.remove(block)
            count += 1
    fig = util.find("collections", network, "figure_collection")
    if fig is not None and len(fig.objects) == 0:
        bpy.data.collections.remove(fig)
    return count

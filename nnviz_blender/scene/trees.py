"""Node trees built in code: the one place that makes nodes, links and the chains builders share.

Every tree of the add-on (Geometry Nodes modifiers, materials, world, compositor) is built in
Python at build time: explicit, reviewable, and it survives Blender versions. The builders
(nodes, edges, labels, legend, bake, solid) compose these pieces; each returns the socket to
link on, so a chain reads as the formula it computes.
"""

from __future__ import annotations

from typing import Literal

import bpy

from .util import tag

TreeType = Literal["GeometryNodeTree", "ShaderNodeTree", "CompositorNodeTree"]


# --- trees, interfaces, modifier inputs -------------------------------------------------------


def new_tree(name: str, network: str, role: str, kind: TreeType = "GeometryNodeTree"):
    """A node group owned by `network` (see util.tag)."""
    tree = bpy.data.node_groups.new(name, kind)
    tag(tree, network, role)
    return tree


def add_socket(tree, name: str, socket_type: str, in_out: str = "INPUT", default=None, **limits):
    """Add an interface socket; `limits` may set min_value / max_value / subtype etc."""
    sock = tree.interface.new_socket(name, in_out=in_out, socket_type=socket_type)
    if default is not None and hasattr(sock, "default_value"):
        sock.default_value = default
    for key, value in limits.items():
        setattr(sock, key, value)
    return sock


def socket_identifier(tree, name: str, in_out: str = "INPUT") -> str:
    """The identifier of an interface socket (never hard-code `Socket_N`)."""
    for item in tree.interface.items_tree:
        if item.item_type == "SOCKET" and item.in_out == in_out and item.name == name:
            return item.identifier
    raise KeyError(f"node group {tree.name!r} has no {in_out.lower()} socket {name!r}")


def has_input(modifier, name: str) -> bool:
    """Whether a Geometry Nodes modifier's tree has the input `name` (a network built by an
    older version may lack it)."""
    try:
        socket_identifier(modifier.node_group, name)
    except KeyError:
        return False
    return True


def set_modifier_input(modifier, name: str, value) -> None:
    """Set a Geometry Nodes modifier input and tag the object (ID properties do not tag)."""
    modifier[socket_identifier(modifier.node_group, name)] = value
    modifier.id_data.update_tag()


def get_modifier_input(modifier, name: str):
    return modifier[socket_identifier(modifier.node_group, name)]


# --- nodes and links --------------------------------------------------------------------------


def node(tree, type_name: str, x: float = 0.0, y: float = 0.0, **props):
    """A node of `type_name` at (x, y) with `props` set."""
    n = tree.nodes.new(type_name)
    n.location = (x, y)
    for key, value in props.items():
        setattr(n, key, value)
    return n


def link(tree, from_socket, to_socket) -> None:
    tree.links.new(from_socket, to_socket)


def _feed(tree, socket, value) -> None:
    """Link a socket into `socket`, or set a constant as its default value."""
    if isinstance(value, int | float):
        socket.default_value = float(value)
    elif isinstance(value, str):
        socket.default_value = value
    else:
        link(tree, value, socket)


# --- chains the builders share ----------------------------------------------------------------


def math(tree, op: str, a, b=None, x: float = 0.0, y: float = 0.0, clamp: bool = False):
    """A Math node `op` on sockets or constants; returns its output socket."""
    n = node(tree, "ShaderNodeMath", x, y, operation=op, use_clamp=clamp)
    for i, v in enumerate((a, b)):
        if v is not None:
            _feed(tree, n.inputs[i], v)
    return n.outputs[0]


def named(tree, name, data_type: str, x: float = 0.0, y: float = 0.0):
    """The field of the attribute `name` (a string or a string socket)."""
    n = node(tree, "GeometryNodeInputNamedAttribute", x, y, data_type=data_type)
    _feed(tree, n.inputs["Name"], name)
    return n.outputs["Attribute"]


def sample(tree, geometry, field, index, data_type: str, x=0.0, y=0.0, domain="POINT", clamp=False):
    """`field` of `geometry` at element `index` (Sample Index); returns the value. With `clamp`
    an index past the end reads the last element (else the type's zero)."""
    n = node(tree, "GeometryNodeSampleIndex", x, y, data_type=data_type, domain=domain, clamp=clamp)
    link(tree, geometry, n.inputs["Geometry"])
    link(tree, field, n.inputs["Value"])
    _feed(tree, n.inputs["Index"], index)
    return n.outputs[0]


def store(tree, geometry, name: str, value, data_type: str, domain: str, x=0.0, y=0.0):
    """Store `value` as the attribute `name` on `geometry`; returns the geometry socket."""
    n = node(tree, "GeometryNodeStoreNamedAttribute", x, y, data_type=data_type, domain=domain)
    n.inputs["Name"].default_value = name
    link(tree, geometry, n.inputs["Geometry"])
    link(tree, value, n.inputs["Value"])
    return n.outputs["Geometry"]


def object_geometry(tree, obj, x: float = 0.0, y: float = 0.0):
    """The evaluated geometry of the object socket `obj` (Object Info, original space)."""
    n = node(tree, "GeometryNodeObjectInfo", x, y, transform_space="ORIGINAL")
    link(tree, obj, n.inputs["Object"])
    return n.outputs["Geometry"]


def node_points(tree, values_object, x: float = 0.0, y: float = 0.0):
    """The evaluated values object's vertices: vertex i = network node i (scene.nodes), with
    its POINT attributes (a bake's included)."""
    parts = node(tree, "GeometryNodeSeparateComponents", x + 150, y)
    link(tree, object_geometry(tree, values_object, x, y), parts.inputs["Geometry"])
    return parts.outputs["Mesh"]


def node_value(tree, values_object, attribute: str, index, x: float = 0.0, y: float = 0.0):
    """A float attribute of network node `index`, read from the evaluated values object: how
    edges, labels, maps and bars follow live updates and baked animations with no Python."""
    geometry = node_points(tree, values_object, x, y + 200)
    field = named(tree, attribute, "FLOAT", x, y)
    return sample(tree, geometry, field, index, "FLOAT", x + 200, y + 100, domain="POINT")


def key_name(tree, pattern: str, key, x: float = 0.0, y: float = 0.0):
    """The attribute name `pattern` ("nnviz_act_{}") of a (single value) key index socket, for
    a Named Attribute: how baked key states are picked inside a tree."""
    text = node(tree, "FunctionNodeValueToString", x, y)
    link(tree, key, text.inputs["Value"])
    text.inputs["Decimals"].default_value = 0
    name = node(tree, "FunctionNodeReplaceString", x + 180, y)
    name.inputs["String"].default_value = pattern.format("#")
    name.inputs["Find"].default_value = "#"
    link(tree, text.outputs[0], name.inputs["Replace"])
    return name.outputs[0]

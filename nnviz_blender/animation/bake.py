"""Bake a sequence of key states into the .blend: render-farm safe, no add-on needed to play it.

What a bake adds to a network (all tagged with util.tag, so remove_network removes it):

- a *table* mesh: one vertex per node, the float attribute `nnviz_act_<k>` per key state k
  (the raw node values) and `nnviz_stage`, `nnviz_lgroup`, `nnviz_sgroup` (int);
- a *constants* mesh: one vertex per (key, group) whose position is (lo, span, peak), the
  normalisation constants of that group for that key (see core.values);
- the "NNViz Bake" Geometry Nodes modifier on the network's values object (scene.nodes): it
  reads both tables through Object Info and rewrites the vertices' `act`, `level`, `signed` for
  the current frame; instancing, materials, edges, labels, maps and bundles follow because they
  all read the evaluated values object (a network built before it has none: the modifier goes
  first in the nodes object's stack, before the instancing);
- keyframes (LINEAR) on the modifier's "Position" input: the animation's whole timing
  (see animation.schedule), editable in the Graph Editor.

The key state is picked by name inside the node tree (Value to String -> Replace String ->
Named Attribute), so evaluation costs the same for 2 or 2,000 key states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import bpy
import numpy as np

from ..core import values as vals
from ..core.errors import NNVizError
from ..core.graph import Graph
from ..scene import attributes, compat, trees, util
from ..scene import bundles as scene_bundles
from ..scene.handle import Network, NetworkError
from . import keys
from . import schedule as sched

MODIFIER = "NNViz Bake"
NODES_MODIFIER = "NNViz Nodes"
ACT_NAME = "nnviz_act_{}"
POSITION_ATTR = scene_bundles.POSITION_ATTR  # stored on the evaluated values for the bundles
EASE_ATTR = scene_bundles.EASE_ATTR
VALUE_ATTRS = ("act", "level", "signed")


class BakeError(NNVizError, ValueError):
    """A bake that cannot be made (no network, wrong number of values...); message for users."""


@dataclass(frozen=True)
class BakeInfo:
    keys: int
    frame_start: int
    frame_end: int
    wave: float
    table_bytes: int  # payload of the baked values (both tables)
    seconds: float


# --- the node tree ----------------------------------------------------------------------------


def _key_name(tree, key, x: float, y: float):
    """'nnviz_act_<key>' for a (single value) key index socket."""
    return trees.key_name(tree, ACT_NAME, key, x, y)


def build_tree(network: str):
    tree = trees.new_tree(f"{network} bake", network, "bake_tree")
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry")
    trees.add_socket(tree, "Table", "NodeSocketObject")
    trees.add_socket(tree, "Constants", "NodeSocketObject")
    trees.add_socket(tree, "Position", "NodeSocketFloat", default=0.0, min_value=0.0)
    trees.add_socket(tree, "Keys", "NodeSocketInt", default=1, min_value=1)
    trees.add_socket(tree, "Groups", "NodeSocketInt", default=1, min_value=1)
    trees.add_socket(tree, "Stage Delay", "NodeSocketFloat", default=0.0, min_value=0.0)
    trees.add_socket(tree, "Stage Width", "NodeSocketFloat", default=1.0, min_value=0.001)
    trees.add_socket(tree, "Geometry", "NodeSocketGeometry", in_out="OUTPUT")

    n, link = trees.node, trees.link
    gin = n(tree, "NodeGroupInput", -2200, 0)
    table_geo = trees.object_geometry(tree, gin.outputs["Table"], -1900, 500)
    const_geo = trees.object_geometry(tree, gin.outputs["Constants"], -1900, -700)
    index = n(tree, "GeometryNodeInputIndex", -1900, 200).outputs[0]

    # p -> a = floor(p), b = min(a + 1, K - 1), t = p - a   (single values)
    last = trees.math(tree, "SUBTRACT", gin.outputs["Keys"], 1, -1900, 0)
    p = trees.math(tree, "MAXIMUM", gin.outputs["Position"], 0.0, -1750, 0)
    p = trees.math(tree, "MINIMUM", p, last, -1600, 0)
    a = trees.math(tree, "FLOOR", p, None, -1450, 50)
    b = trees.math(tree, "MINIMUM", trees.math(tree, "ADD", a, 1, -1300, -50), last, -1150, -50)
    t = trees.math(tree, "SUBTRACT", p, a, -1300, 150)

    def table_int(name: str, y: float):
        """The int attribute `name` of this node in the value table."""
        field = trees.named(tree, name, "INT", -1700, y)
        return trees.sample(tree, table_geo, field, index, "INT", -1450, y, clamp=True)

    # per node: its stage's eased mix factor e = smoothstep((t - stage * delay) / width)
    stage = table_int("nnviz_stage", 350)
    lag = trees.math(tree, "MULTIPLY", stage, gin.outputs["Stage Delay"], -1150, 350)
    local = trees.math(tree, "SUBTRACT", t, lag, -1000, 300)
    local = trees.math(tree, "DIVIDE", local, gin.outputs["Stage Width"], -850, 300, clamp=True)
    ease = trees.math(tree, "MULTIPLY_ADD", local, -2.0, -700, 250)  # 3 - 2x (input 2 below)
    ease.node.inputs[2].default_value = 3.0
    ease = trees.math(
        tree, "MULTIPLY", ease, trees.math(tree, "MULTIPLY", local, local, -700, 400), -550, 300
    )

    lgroup = table_int("nnviz_lgroup", -250)
    sgroup = table_int("nnviz_sgroup", -400)
    position = n(tree, "GeometryNodeInputPosition", -1700, -850).outputs[0]

    def state(key, y: float):
        """(act, level, signed) fields of key state `key` (a single value socket)."""
        field = trees.named(tree, _key_name(tree, key, -1100, y), "FLOAT", -700, y)
        act = trees.sample(tree, table_geo, field, index, "FLOAT", -500, y, clamp=True)
        row = trees.math(tree, "MULTIPLY", key, gin.outputs["Groups"], -700, y - 150)
        lrow = trees.math(tree, "ADD", row, lgroup, -550, y - 150)
        srow = trees.math(tree, "ADD", row, sgroup, -550, y - 250)
        lconst = n(tree, "ShaderNodeSeparateXYZ", -200, y - 150)
        link(
            tree,
            trees.sample(
                tree, const_geo, position, lrow, "FLOAT_VECTOR", -380, y - 150, clamp=True
            ),
            lconst.inputs[0],
        )
        sconst = n(tree, "ShaderNodeSeparateXYZ", -200, y - 300)
        link(
            tree,
            trees.sample(
                tree, const_geo, position, srow, "FLOAT_VECTOR", -380, y - 300, clamp=True
            ),
            sconst.inputs[0],
        )
        shifted = trees.math(tree, "SUBTRACT", act, lconst.outputs["X"], -50, y - 100)
        level = trees.math(tree, "DIVIDE", shifted, lconst.outputs["Y"], 100, y - 100)
        signed = trees.math(tree, "DIVIDE", act, sconst.outputs["Z"], 100, y - 250)
        return act, level, signed

    first = state(a, 0)
    second = state(b, -600)

    geometry = gin.outputs["Geometry"]
    for i, name in enumerate(VALUE_ATTRS):
        mix = n(tree, "ShaderNodeMix", 350, 200 - 250 * i, data_type="FLOAT", clamp_factor=False)
        link(tree, ease, compat.factor(mix.inputs))
        link(tree, first[i], mix.inputs[2])
        link(tree, second[i], mix.inputs[3])
        geometry = trees.store(
            tree, geometry, name, mix.outputs[0], "FLOAT", "POINT", 550 + 200 * i, 200
        )
    # what the bundles follow (scene.bundles): the position and each point's stage mix factor
    geometry = trees.store(tree, geometry, POSITION_ATTR, p, "FLOAT", "POINT", 1150, 200)
    geometry = trees.store(tree, geometry, EASE_ATTR, ease, "FLOAT", "POINT", 1300, 200)
    gout = n(tree, "NodeGroupOutput", 1500, 200)
    link(tree, geometry, gout.inputs["Geometry"])
    return tree


# --- tables -----------------------------------------------------------------------------------


def _table_object(network: str, role: str, mesh):
    """An object for a table mesh. It is linked to no collection: it never renders and never
    shows, yet the bake modifier's reference keeps it in the file and in the depsgraph."""
    obj = util.new_object(None, network, role, mesh, mesh.name)
    obj.hide_select = True
    return obj


def _value_table(network: str, key_values: np.ndarray, stage: np.ndarray, grp: vals.Groups):
    k, n = key_values.shape
    mesh = util.tag(bpy.data.meshes.new(f"{network} bake table"), network, "bake_table")
    mesh.vertices.add(n)
    attributes.write(mesh, "nnviz_stage", stage, "INT", "POINT")
    attributes.write(mesh, "nnviz_lgroup", grp.level, "INT", "POINT")
    attributes.write(mesh, "nnviz_sgroup", grp.signed, "INT", "POINT")
    for key in range(k):
        attributes.write(mesh, ACT_NAME.format(key), key_values[key], "FLOAT", "POINT")
    mesh.update()
    return _table_object(network, "bake_table", mesh)


def _constants_table(network: str, const: np.ndarray):
    mesh = util.tag(bpy.data.meshes.new(f"{network} bake constants"), network, "bake_constants")
    rows = const.reshape(-1, 3)
    mesh.vertices.add(len(rows))
    attributes.write_positions(mesh, rows)
    mesh.update()
    return _table_object(network, "bake_constants", mesh)


# --- bake / remove ----------------------------------------------------------------------------


def baked_object(network: str):
    """The object the bake's modifier goes on (Network.values), or None without a network."""
    try:
        return Network(network).values
    except NetworkError:
        return None


def _values_object(network: str):
    obj = baked_object(network)
    if obj is None:
        raise BakeError(f"no network named {network!r} in this file (build it first)")
    return obj


def _position_path(modifier) -> str:
    ident = trees.socket_identifier(modifier.node_group, "Position")
    return f'modifiers["{modifier.name}"]["{ident}"]'


def bake(
    network: str,
    graph: Graph,
    key_values: np.ndarray,
    schedule: sched.Schedule,
    *,
    wave: float = 0.0,
    scene=None,
    set_frame_range: bool = True,
    bundle_glow: np.ndarray | None = None,
) -> BakeInfo:
    """Bake key states (node values (K, N), graph order) with `schedule` into the network, and
    the shown glow of its bundles (K, bundles), if it has any (scene.network.key_bundle_glow).

    Replaces an earlier bake of the same network. The scene's frame range becomes the
    schedule's unless `set_frame_range` is False.
    """
    t0 = time.perf_counter()
    obj = _values_object(network)
    key_values = np.ascontiguousarray(key_values, np.float32)
    if key_values.ndim != 2 or key_values.shape[1] != graph.node_count:
        raise BakeError(
            f"expected node values of shape (keys, {graph.node_count}), "
            f"got {list(key_values.shape)}"
        )
    if key_values.shape[0] != schedule.n_keys:
        raise BakeError(f"{key_values.shape[0]} key states for a {schedule.n_keys}-key schedule")
    if len(obj.data.vertices) != graph.node_count:
        raise BakeError(
            f"network {network!r} has {len(obj.data.vertices)} nodes, the model {graph.node_count}"
        )
    if not np.all(np.isfinite(key_values)):
        raise BakeError("the node values contain NaN or infinity")
    delay, width = sched.wave_timing(len(graph.stages), wave)
    net = Network(network)
    per = net.normalise

    remove(network)
    grp = vals.groups(graph, per)
    const = vals.constants(grp, key_values)
    table = _value_table(network, key_values, graph.node_stage, grp)
    constants = _constants_table(network, const)

    mod = obj.modifiers.new(MODIFIER, "NODES")
    mod.node_group = build_tree(network)
    obj.modifiers.move(len(obj.modifiers) - 1, 0)  # before any instancing
    trees.set_modifier_input(mod, "Table", table)
    trees.set_modifier_input(mod, "Constants", constants)
    trees.set_modifier_input(mod, "Keys", int(schedule.n_keys))
    trees.set_modifier_input(mod, "Groups", int(grp.width))
    trees.set_modifier_input(mod, "Stage Delay", float(delay))
    trees.set_modifier_input(mod, "Stage Width", float(width))
    ident = trees.socket_identifier(mod.node_group, "Position")

    def set_position(v):
        mod[ident] = float(v)

    keys.set_keys(
        obj, _position_path(mod), schedule.frames, schedule.positions, set_value=set_position
    )
    _adopt_action(obj, network)
    if bundle_glow is not None:
        scene_bundles.bake(network, np.asarray(bundle_glow, np.float32), graph)
    net.bake = {
        "keys": int(schedule.n_keys),
        "frame_start": int(schedule.frame_start),
        "frame_end": int(schedule.frame_end),
        "wave": float(wave),
    }
    scene = scene or bpy.context.scene
    if set_frame_range:
        scene.frame_start, scene.frame_end = schedule.frame_start, schedule.frame_end
    obj.update_tag()
    return BakeInfo(
        int(schedule.n_keys),
        int(schedule.frame_start),
        int(schedule.frame_end),
        float(wave),
        int(key_values.nbytes + const.nbytes + 3 * 4 * graph.node_count),
        time.perf_counter() - t0,
    )


def _adopt_action(obj, network: str) -> None:
    """Tag the action the keyframes created (if it is ours) so it is found and removed."""
    anim = obj.animation_data
    action = None if anim is None else anim.action
    if action is not None and action.get(util.TAG) is None and action.users <= 1:
        util.tag(action, network, "bake_action")


def info(network: str) -> dict | None:
    """What the current bake holds ({keys, frame_start, frame_end, wave}) or None."""
    obj = baked_object(network)
    if obj is None or obj.modifiers.get(MODIFIER) is None:
        return None
    net = Network(network)
    return (net.bake or {}) if net.exists else {}


def is_enabled(network: str) -> bool:
    obj = baked_object(network)
    mod = None if obj is None else obj.modifiers.get(MODIFIER)
    return bool(mod is not None and mod.show_viewport and mod.show_render)


def shows_in_viewport(network: str) -> bool:
    """True when the 3D viewport plays the bake (Play Bake in Viewport), not live values."""
    obj = baked_object(network)
    mod = None if obj is None else obj.modifiers.get(MODIFIER)
    return bool(mod is not None and mod.show_viewport)


def stop_playing_in_viewport(network: str) -> bool:
    """Let the viewport show live values again (renders keep the bake); True if it played."""
    if not shows_in_viewport(network):
        return False
    obj = baked_object(network)
    obj.modifiers[MODIFIER].show_viewport = False
    obj.update_tag()
    return True


def set_enabled(network: str, enabled: bool) -> bool:
    """Switch the baked animation on or off (off: the nodes show live values again)."""
    obj = baked_object(network)
    mod = None if obj is None else obj.modifiers.get(MODIFIER)
    if mod is None:
        return False
    mod.show_viewport = mod.show_render = bool(enabled)
    obj.update_tag()
    return True


def remove(network: str) -> bool:
    """Remove the bake (modifier, tables, keyframes); True if there was one."""
    found = False
    obj = baked_object(network)
    if obj is not None:
        mod = obj.modifiers.get(MODIFIER)
        if mod is not None:
            if mod.node_group is not None:
                keys.remove(obj, _position_path(mod))
            obj.modifiers.remove(mod)
            found = True
        anim = obj.animation_data
        action = None if anim is None else anim.action
        if action is not None and action.get(util.ROLE) == "bake_action":
            fcurves = keys._fcurves(obj)
            if fcurves is None or len(fcurves) == 0:
                anim.action = None
                bpy.data.actions.remove(action)
        obj.update_tag()
    for kind, role in (
        ("objects", "bake_table"),
        ("objects", "bake_constants"),
        ("meshes", "bake_table"),
        ("meshes", "bake_constants"),
        ("node_groups", "bake_tree"),
    ):
        block = util.find(kind, network, role)
        while block is not None:
            getattr(bpy.data, kind).remove(block)
            found = True
            block = util.find(kind, network, role)
    scene_bundles.bake(network, None)
    net = Network(network)
    if net.exists:
        net.bake = None
    return found


def read_values(network: str, depsgraph=None) -> dict[str, np.ndarray]:
    """The nodes' evaluated `act`, `level`, `signed` at the current frame (for checks/tests).

    Reads the values object's vertices (a network built before it: the nodes object's points
    before instancing, evaluated with the instancing modifier off).
    """
    obj = _values_object(network)
    inst = obj.modifiers.get(NODES_MODIFIER)
    was = inst.show_viewport if inst is not None else None
    try:
        if inst is not None:
            inst.show_viewport = False
        depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
        depsgraph.update()
        data = obj.evaluated_get(depsgraph).data
        return {name: attributes.read(data, name).copy() for name in VALUE_ATTRS}
    finally:
        if inst is not None:
            inst.show_viewport = was

"""Build, update and remove a whole network: the one entry point the UI and the CLI use.

Everything a network creates lives in its own collection and carries the `nnviz_network` tag
(see util), so rebuilding or removing it touches nothing else and leaves no orphan data.
Nothing here holds a bpy reference between calls: objects are found again by tag and role.
A small per-network cache of the stage table and update buffers (plain NumPy) keeps updates fast;
it is rebuilt from the collection's properties when missing (e.g. after loading a .blend).
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ..core import graph as core_graph
from ..core import layout as core_layout
from ..core import values as core_values
from ..core.forward import forward
from ..core.modelfile import Model, ModelError
from ..core.preprocess import input_stats
from . import edges as scene_edges
from . import labels as scene_labels
from . import materials, solid, studio, trees, util
from . import nodes as scene_nodes
from .handle import Network, NetworkError

LAYOUTS = ("3d", "flat")
NORMALISE = core_values.NORMALISE


@dataclass(frozen=True)
class EdgeMode:
    kind: str  # "all" | "topk" | "contrib" | "none"
    k: int = 0
    threshold: float = 0.0

    def __str__(self) -> str:
        if self.kind == "topk":
            return f"topk:{self.k}"
        if self.kind == "contrib":
            return f"contrib:{self.threshold:g}"
        return self.kind


def parse_edges(spec: str | EdgeMode) -> EdgeMode:
    """'all' | 'none' | 'topk:K' | 'contrib:T' -> EdgeMode (NetworkError with a clear message)."""
    if isinstance(spec, EdgeMode):
        return spec
    text = str(spec).strip().lower()
    if text in ("all", "none"):
        return EdgeMode(text)
    kind, _, arg = text.partition(":")
    try:
        if kind == "topk":
            k = int(arg) if arg else 8
            if k < 1:
                raise ValueError
            return EdgeMode("topk", k=k)
        if kind in ("contrib", "contribution"):
            t = float(arg) if arg else 0.1
            if not t >= 0:
                raise ValueError
            return EdgeMode("contrib", threshold=t)
    except ValueError:
        pass
    raise NetworkError(
        f"bad edge mode {spec!r}: use all, none, topk:K (K >= 1) or contrib:T (T >= 0)"
    )


# --- the per-network cache (NumPy only) -------------------------------------------------------


@dataclass
class _Cache:
    graph: core_graph.Graph  # stages and node arrays; edges left empty
    groups: core_values.Groups


_CACHE: dict[str, _Cache] = {}


def _cache(network: str) -> _Cache:
    cached = _CACHE.get(network)
    if cached is None:
        net = Network(network)
        graph = core_graph.graph_from_table(net.stages)
        cached = _CACHE[network] = _Cache(graph, core_values.groups(graph, net.normalise))
    return cached


# --- build / remove ---------------------------------------------------------------------------


def list_networks() -> list[str]:
    return sorted(
        {c.get(util.TAG) for c in bpy.data.collections if c.get(util.ROLE) == "collection"}
    )


def bounds(name: str, depsgraph=None) -> tuple[np.ndarray, np.ndarray] | None:
    """World-space box (lo, hi) around everything a network made (evaluated: edges, labels,
    canvas included), or None if it has no objects."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    net = Network(name)
    corners = []
    for obj in net.collection.all_objects:
        ev = obj.evaluated_get(depsgraph)
        m = np.array(ev.matrix_world, np.float64)
        box = np.array([tuple(c) for c in ev.bound_box], np.float64)
        if np.ptp(box, axis=0).any():  # the nodes' instances are not in their object's box
            corners.append(box @ m[:3, :3].T + m[:3, 3])
    if net.find("objects", "nodes") is not None:
        m = np.array(net.nodes.matrix_world, np.float64)
        corners.append(net.positions() @ m[:3, :3].T + m[:3, 3])
    if not corners:
        return None
    points = np.concatenate(corners)
    return points.min(axis=0), points.max(axis=0)


def _place(name: str, positions: np.ndarray) -> np.ndarray:
    """Where a build goes: where the network of the same name was (a rebuild replaces it in
    place), else to the right of every other network in the file."""
    lo = positions.min(axis=0)
    net = Network(name)
    if net.exists and net.find("objects", "nodes") is not None:
        return (net.positions().min(axis=0) - lo).astype(np.float32)
    boxes = [bounds(other) for other in list_networks() if other != name]
    return core_layout.beside([b for b in boxes if b is not None], lo)


def remove_network(name: str) -> bool:
    """Remove everything the network made; True if there was something to remove."""
    _CACHE.pop(name, None)
    for scene in bpy.data.scenes:
        studio.remove_edge_layer(name, scene)
    return util.remove_owned(name) > 0


def build_network(
    model: Model,
    name: str | None = None,
    *,
    layout: str = "3d",
    node_shape: str | None = None,
    edges: str | EdgeMode = "all",
    theme: str = "dark",
    spacing: float = 1.0,
    colormap: str | None = None,
    normalise: str | None = None,
    edge_radius: float | None = None,
    scene=None,
) -> str:
    """Build `model` as geometry in a collection of its own; returns the collection's name.

    A network with the same name is replaced, in its place; other networks stay, and a new one
    goes to their right (`core.layout.beside`). Options are checked before anything is
    created, so a bad request leaves the file untouched.
    """
    if not isinstance(model, Model):
        raise NetworkError("not a model (load it with core.modelfile.load_model first)")
    name = name or model.name
    if layout not in LAYOUTS:
        raise NetworkError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    try:
        th = materials.get_theme(theme)
    except ValueError as exc:
        raise NetworkError(str(exc)) from None
    shape = node_shape or th.node_shape
    if shape not in scene_nodes.SHAPES:
        raise NetworkError(f"node shape must be one of {', '.join(scene_nodes.SHAPES)}")
    if colormap is not None and colormap not in materials.COLORMAPS:
        raise NetworkError(f"colormap must be one of {', '.join(materials.COLORMAPS)}")
    per = normalise or th.normalise
    if per not in NORMALISE:
        raise NetworkError(f"normalise must be one of {', '.join(NORMALISE)}")
    mode = parse_edges(edges)
    try:
        graph = core_graph.build_graph(model)
        positions = core_layout.layout(graph, layout, spacing)
    except ModelError as exc:
        raise NetworkError(str(exc)) from None
    except ValueError as exc:
        raise NetworkError(str(exc)) from None

    positions = positions + _place(name, positions)
    remove_network(name)
    if name in bpy.data.collections:  # the user's own collection: never touch it, pick a new name
        name = util.unique_name(bpy.data.collections, name)
    scene = scene or bpy.context.scene
    coll = util.tag(bpy.data.collections.new(name), name, "collection")
    scene.collection.children.link(coll)
    # Children so a view layer can treat them apart (studio.layered_render): nodes and labels,
    # and edges.
    nodes_coll = util.tag(bpy.data.collections.new(f"{name} nodes"), name, "nodes_collection")
    edges_coll = util.tag(bpy.data.collections.new(f"{name} edges"), name, "edges_collection")
    coll.children.link(nodes_coll)
    coll.children.link(edges_coll)
    net = Network(name)
    net.stages = core_graph.stage_table(graph)
    net.normalise = per
    net.layout = layout
    net.theme = th.name
    net.edge_mode = str(mode)
    net.model = model.path or ""
    net.labels = list(model.labels)
    net.output = model.output_kind

    index = np.concatenate([np.arange(s.size) for s in graph.stages]).astype(np.int32)
    pitch = core_layout.PITCH
    rgb = input_stats(model, 3) if model.channels == 3 else None
    node_mat = materials.node_material(name, th, colormap, len(graph.stages) - 1, rgb_input=rgb)
    tile_rotation = (np.pi / 2, 0.0, 0.0) if layout == "flat" else (0.0, 0.0, 0.0)
    nodes_name = scene_nodes.build(
        name,
        nodes_coll,
        positions,
        graph.node_stage,
        index,
        graph.node_map,
        shape=shape,
        size=0.9 * pitch if shape != "sphere" else 0.8 * pitch,
        tile_rotation=tile_rotation,
        material=node_mat,
    )

    solid.add_to_nodes(name, th, colormap)
    solid.add_viewport_colors(name, th, colormap)

    if mode.kind != "none":
        pick = core_graph.select_edges(graph, "topk", mode.k) if mode.kind == "topk" else None
        # the gain comes from all of a stage's weights, so every edge mode colours alike
        gain = scene_edges.stage_gain(graph.weight, graph.node_stage[graph.dst], len(graph.stages))
        src, dst, weight = graph.src, graph.dst, graph.weight
        if pick is not None:
            src, dst, weight, gain = src[pick], dst[pick], weight[pick], gain[pick]
        edge_mat = materials.edge_material(name, th)
        scene_edges.build(
            name,
            edges_coll,
            positions,
            src,
            dst,
            weight,
            gain,
            nodes_name,
            radius=edge_radius if edge_radius is not None else 0.015 * pitch,
            threshold=mode.threshold,
            material=edge_mat,
            behind=(0.6 * pitch, 4.0 * pitch) if layout == "flat" else None,
            arcs=core_layout.arcs(graph, positions, src, dst, layout),
        )
        solid.add_to_edges(name, th)
        set_edge_fade(name, mode.threshold)

    scene_labels.build(
        name,
        nodes_coll,
        graph,
        positions,
        model.labels,
        th,
        layout,
        nodes_name,
        core_layout.output_label_positions(graph, positions),
        pitch,
    )
    _CACHE.pop(name, None)
    return coll.name


def set_edge_fade(name: str, fade: float, strength: float | None = None) -> None:
    """Edges with |glow| below `fade` are deleted (Geometry Nodes, follows every update) and the
    rest fade in from that level (the material); `strength` scales their brightness."""
    mod = Network(name).modifier("edges", scene_edges.MODIFIER)
    if mod is not None:
        trees.set_modifier_input(mod, "Threshold", float(fade))
    mat = util.find("materials", name, "edges_material")
    if mat is not None:
        materials.set_edge_look(mat, strength=strength, fade=fade)
        if mod is not None and _has_input(mod, "Painting Threshold"):
            level = scene_edges.painting_threshold(*materials.edge_look(mat))
            trees.set_modifier_input(mod, "Painting Threshold", level)


def _has_input(mod, socket: str) -> bool:
    """False for a network built by an older version (its tree lacks the input)."""
    try:
        trees.socket_identifier(mod.node_group, socket)
    except KeyError:
        return False
    return True


def set_painting(name: str, on: bool) -> None:
    """While the user paints, viewports draw a light version of the edges: only those that show
    clearly, one segment each (edges.build_tree); renders always draw the full one."""
    mod = Network(name).modifier("edges", scene_edges.MODIFIER)
    if mod is None or not _has_input(mod, "Painting"):
        return
    if bool(trees.get_modifier_input(mod, "Painting")) != bool(on):
        trees.set_modifier_input(mod, "Painting", bool(on))


# --- update -----------------------------------------------------------------------------------


def apply_values(name: str, values: np.ndarray) -> None:
    """Write raw node values (one per node, graph order) and their display values."""
    cache = _cache(name)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size != cache.graph.node_count:
        raise NetworkError(f"{values.size} values for a network of {cache.graph.node_count} nodes")
    shown = core_values.display(cache.groups, values)
    scene_nodes.write_values(Network(name).nodes.data, shown.act, shown.level, shown.signed)


def apply_activations(name: str, model: Model, acts: list[np.ndarray]) -> None:
    """Show one input's activations (forward()'s list) on the network."""
    apply_values(name, core_graph.node_values(_cache(name).graph, acts))


def show_input(name: str, model: Model, x: np.ndarray) -> list[np.ndarray]:
    """Run the model on one network input and show it; returns the activations."""
    acts = forward(model, x)
    apply_activations(name, model, acts)
    return acts


def read_glow(name: str, depsgraph=None) -> np.ndarray:
    """The evaluated `glow` of every drawn edge (after Geometry Nodes), for checks and tests."""
    from . import attributes

    obj = util.find("objects", name, "edges")
    if obj is None:
        return np.empty(0, np.float32)
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    data = obj.evaluated_get(depsgraph).data
    if "glow" not in data.attributes:
        return np.empty(0, np.float32)
    return attributes.read(data, "glow")


def forget_cache() -> None:
    """Drop every cached stage table (a file load may bring networks of the same names)."""
    _CACHE.clear()

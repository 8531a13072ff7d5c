"""Build, update and remove a whole network: the one entry point the UI and the CLI use.

Everything a network creates lives in its own collection and carries the `nnviz_network` tag
(see util), so rebuilding or removing it touches nothing else and leaves no orphan data.
Nothing here holds a bpy reference between calls: objects are found again by tag and role.
A small per-network cache of the stage table and update buffers (plain NumPy) keeps updates fast;
it is rebuilt from the collection's properties when missing (e.g. after loading a .blend).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import bpy
import numpy as np

from ..core import bundles as core_bundles
from ..core import edgeplan as core_edgeplan
from ..core import graph as core_graph
from ..core import layout as core_layout
from ..core import lod as core_lod
from ..core import values as core_values
from ..core.forward import forward
from ..core.modelfile import Model, ModelError
from ..core.preprocess import input_stats
from . import bundles as scene_bundles
from . import edges as scene_edges
from . import labels as scene_labels
from . import maps as scene_maps
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
    bundled: tuple[int, ...] = ()  # stages also drawn as bundles (Network.bundled)
    bundles: core_bundles.Bundles | None = None  # as drawn, once an update brings the model
    drawn: np.ndarray | None = None  # which of them the bundles object draws (bool (B,))


_CACHE: dict[str, _Cache] = {}


def _cache(network: str) -> _Cache:
    cached = _CACHE.get(network)
    if cached is None:
        net = Network(network)
        graph = core_graph.graph_from_table(net.stages)
        groups = core_values.groups(graph, net.normalise)
        cached = _CACHE[network] = _Cache(graph, groups, tuple(net.bundled))
    return cached


DRAWN_MAP_BLOCKS = 16  # blocks of feature maps per stage, at most, between which bundles run


def _bundles(model: Model, graph: core_graph.Graph) -> core_bundles.Bundles:
    """The bundles as drawn: a stage of many feature maps takes them in DRAWN_MAP_BLOCKS runs
    (a ResNet-18 has 5.5k bundles so, 1.4M with one block per map)."""
    return core_bundles.bundles(model, graph, map_blocks=DRAWN_MAP_BLOCKS)


def _drawn_bundles(b: core_bundles.Bundles, stages) -> np.ndarray:
    """bool (B,): the bundles ending in the bundled `stages`."""
    return np.isin(b.stage, np.asarray(list(stages), np.int32))


def _build_bundles(name, model, graph, positions, stages, collection, radius, material) -> None:
    """The bundles object: one curve per bundle into the bundled `stages`, from the centre of
    its source block to the centre of its destination block; thicker for more members."""
    b = _bundles(model, graph)
    pick = _drawn_bundles(b, stages)
    centres = scene_bundles.block_centres(positions, b.node_blocks(graph), b.block_count)
    src, dst, members = b.src[pick], b.dst[pick], b.members[pick]
    block_stage = np.repeat(np.arange(len(graph.stages)), np.diff(b.block_start))
    share = np.sqrt(members / max(int(members.max()), 1)) if members.size else members
    scene_bundles.build(
        name,
        collection,
        centres[src],
        centres[dst],
        src,
        dst,
        block_stage[src],
        block_stage[dst],
        radius=radius,
        width=(1.0 + 2.0 * share).astype(np.float32),
        values_object=Network(name).values,
        material=material,
    )
    _CACHE.pop(name, None)


def _bundle_glow(name: str, model: Model, acts: list[np.ndarray]) -> np.ndarray | None:
    """The shown glow of the drawn bundles for one input, or None for a network without
    bundles."""
    cache = _cache(name)
    if not cache.bundled:
        return None
    if cache.bundles is None or cache.drawn is None:
        cache.bundles = _bundles(model, core_graph.build_graph(model))
        cache.drawn = _drawn_bundles(cache.bundles, cache.bundled)
    b = cache.bundles
    glow = core_bundles.bundle_glow(b, acts)
    return np.ascontiguousarray(core_values.bundle_signed(b.bundle_start, glow)[cache.drawn])


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


def _kept_lods(name: str, model: Model, graph, lod):
    """`lod`, or for None the levels of the network `name` replaces if it showed this model."""
    net = Network(name)
    if lod is not None or not net.exists or net.model != (model.path or ""):
        return lod
    if [s["name"] for s in net.stages] != [s.name for s in graph.stages]:
        return lod
    return dict(zip((s.name for s in graph.stages), net.stage_lods(), strict=True))


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
    lod: str | Mapping[str, str] | None = None,
    scene=None,
) -> str:
    """Build `model` as geometry in a collection of its own; returns the collection's name.

    A network with the same name is replaced, in its place; other networks stay, and a new one
    goes to their right (`core.layout.beside`). `lod` overrides the automatic level of detail
    of some stages ({"conv1": "maps"} or "conv1=maps,pool1=slab", see core.lod); None keeps
    the levels of the network it replaces when that showed the same model, {} takes the
    automatic ones. Options are checked before anything is created, so a bad request leaves
    the file untouched.
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
        lods = core_lod.choose(graph, core_lod.parse(_kept_lods(name, model, graph, lod)))
    except ModelError as exc:
        raise NetworkError(str(exc)) from None
    except (ValueError, core_lod.LodError) as exc:
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
    net.colormap = colormap or ""
    net.edge_mode = str(mode)
    net.model = model.path or ""
    net.labels = list(model.labels)
    net.output = model.output_kind

    index = np.concatenate([np.arange(s.size) for s in graph.stages]).astype(np.int32)
    pitch = core_layout.PITCH
    rgb = input_stats(model, 3) if model.channels == 3 else None
    node_mat = materials.node_material(name, th, colormap, len(graph.stages) - 1, rgb_input=rgb)
    tile_rotation = (np.pi / 2, 0.0, 0.0) if layout == "flat" else (0.0, 0.0, 0.0)
    scene_nodes.build(
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

    values_name = Network(name).values.name  # what edges and labels read node values from
    solid.add_to_nodes(name, th, colormap)
    solid.add_viewport_colors(name, th, colormap)
    scene_maps.set_lods(name, lods)

    if mode.kind != "none":
        try:
            drawn = core_edgeplan.plan(graph, "topk" if mode.kind == "topk" else "all", mode.k)
        except ModelError as exc:
            raise NetworkError(str(exc)) from None
        # the gain comes from all of a stage's weights, so every edge mode colours alike
        gains = scene_edges.stage_gains(graph)
        e = drawn.edges
        radius = edge_radius if edge_radius is not None else core_layout.edge_radius(positions)
        edge_mat = materials.edge_material(name, th)
        scene_edges.build(
            name,
            edges_coll,
            positions,
            e.src,
            e.dst,
            e.weight,
            gains[graph.node_stage[e.dst]],
            values_name,
            radius=radius,
            threshold=mode.threshold,
            material=edge_mat,
            behind=(0.6 * pitch, 4.0 * pitch) if layout == "flat" else None,
            arcs=core_layout.arcs(graph, positions, e.src, e.dst, layout),
        )
        solid.add_to_edges(name, th)
        set_edge_fade(name, mode.threshold)
        if drawn.bundled:
            net.bundled = list(drawn.bundled)
            _build_bundles(
                name, model, graph, positions, drawn.bundled, edges_coll, radius, edge_mat
            )
            set_painting(name, False)  # its viewports draw the light version

    scene_labels.build(
        name,
        nodes_coll,
        graph,
        positions,
        model.labels,
        th,
        layout,
        values_name,
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
        if mod is not None and trees.has_input(mod, "Painting Threshold"):
            level = scene_edges.painting_threshold(*materials.edge_look(mat))
            trees.set_modifier_input(mod, "Painting Threshold", level)


def set_painting(name: str, on: bool) -> None:
    """While the user paints, viewports draw a light version of the edges: only those that show
    clearly, one segment each (edges.build_tree); renders always draw the full one. A network
    too big to draw every connection (it has bundles) draws the light version in viewports
    always: drawing its invisible connections made every redraw of a ResNet-18 after Build take
    2.5x as long in the real window (3.5 s against 1.4 s on software GL)."""
    net = Network(name)
    mod = net.modifier("edges", scene_edges.MODIFIER)
    if mod is None or not trees.has_input(mod, "Painting"):
        return
    on = bool(on) or bool(net.bundled)
    if bool(trees.get_modifier_input(mod, "Painting")) != bool(on):
        trees.set_modifier_input(mod, "Painting", bool(on))


# --- update -----------------------------------------------------------------------------------


def apply_values(name: str, values: np.ndarray, bundle_glow: np.ndarray | None = None) -> None:
    """Write raw node values (one per node, graph order) and their display values, and the
    shown glow of the network's bundles (_bundle_glow; zeros when not given)."""
    cache = _cache(name)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size != cache.graph.node_count:
        raise NetworkError(f"{values.size} values for a network of {cache.graph.node_count} nodes")
    shown = core_values.display(cache.groups, values)
    scene_nodes.write_values(Network(name).nodes.data, shown.act, shown.level, shown.signed)
    if cache.bundled:
        scene_bundles.write_glow(name, bundle_glow)


def apply_activations(name: str, model: Model, acts: list[np.ndarray]) -> None:
    """Show one input's activations (forward()'s list) on the network: node values, and the
    glow of its bundles."""
    values = core_graph.node_values(_cache(name).graph, acts)
    apply_values(name, values, _bundle_glow(name, model, acts))


def key_values_and_glow(
    name: str, model: Model, graph, inputs
) -> tuple[np.ndarray, np.ndarray | None]:
    """What a bake stores (animation.bake) for K network inputs, each shown as live drawing
    would show it, from one forward pass each: node values (K, N) (core.values.key_values) and
    the shown glow of the network's bundles (K, bundles; blank inputs 0), or None for a network
    without bundles."""
    obj = util.find("objects", name, scene_bundles.ROLE)
    if obj is None or not _cache(name).bundled:
        return core_values.key_values(model, graph, inputs), None
    inputs = list(inputs)
    glow = np.zeros((len(inputs), len(obj.data.curves)), np.float32)

    def bundle_row(k: int, acts: list[np.ndarray]) -> None:
        glow[k] = _bundle_glow(name, model, acts)

    return core_values.key_values(model, graph, inputs, bundle_row), glow


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

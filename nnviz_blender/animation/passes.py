"""Compositing-friendly renders: nodes, edges and labels in view layers of their own.

`split_layers` makes three view layers, each showing one part of the network on a transparent
film with the other parts as holdouts (so occlusion stays right when the layers are stacked
again), and writes them together as a multilayer OpenEXR per frame:

    NNViz Nodes   nodes (and the canvas)
    NNViz Edges   edges, nodes held out: opaque emission x strength, to be ADDED over the
                  nodes on dark themes (the AOV `edge_alpha` holds the coverage for "over"
                  themes: nodes x (1 - edge_alpha) + edges, as scene.stage composites)
    NNViz Labels  stage names, class labels and the figure elements of scene.legend, nodes
                  held out

Labels made by scene.labels live in the nodes collection; they are moved (by tag, nothing
else changes) into the figure collection so a view layer can treat them apart.
"""

from __future__ import annotations

import bpy

from ..scene import legend, materials, studio, util
from ..scene.handle import Network

LAYERS = ("NNViz Nodes", "NNViz Edges", "NNViz Labels")


def gather_labels(network: str) -> int:
    """Move the network's text objects out of the nodes collection into the figure collection."""
    nodes_coll = util.find("collections", network, "nodes_collection")
    fig = legend.figure_collection(network)
    moved = 0
    if nodes_coll is None:
        return 0
    for obj in list(nodes_coll.objects):
        if obj.type == "FONT" and obj.get(util.TAG) == network:
            fig.objects.link(obj)
            nodes_coll.objects.unlink(obj)
            moved += 1
    return moved


def split_layers(network: str, scene=None) -> list[str]:
    """Set up the three view layers and multilayer EXR output; returns the layer names."""
    scene = scene or bpy.context.scene
    coll = Network(network).collection
    studio.single_layer_render(network, scene)  # drop the blended two-layer setup, if any
    gather_labels(network)
    parts = {
        "NNViz Nodes": util.find("collections", network, "nodes_collection"),
        "NNViz Edges": util.find("collections", network, "edges_collection"),
        "NNViz Labels": legend.figure_collection(network),
    }
    base = scene.view_layers[0]
    base.name = LAYERS[0]
    names = []
    for name in LAYERS:
        layer = scene.view_layers.get(name) or scene.view_layers.new(name)
        layer[util.TAG] = network
        layer.use = parts[name] is not None
        for child in layer.layer_collection.children:
            child.exclude = child.collection != coll  # only this network
        for other, part in parts.items():
            if part is None:
                continue
            lc = util.layer_collection(layer.layer_collection, part)
            # the nodes hide what is behind them in every layer; the rest stays out
            lc.exclude = other not in (name, "NNViz Nodes")
            lc.holdout = other != name
        layer.use_sky = False
        if name == "NNViz Edges" and materials.EDGE_ALPHA_AOV not in layer.aovs:
            aov = layer.aovs.add()
            aov.name = materials.EDGE_ALPHA_AOV
            aov.type = "VALUE"
        if hasattr(layer, "cycles") and name != "NNViz Nodes":
            layer.cycles.use_denoising = False  # hairlines and text: keep them crisp
        names.append(layer.name)
    edge_mat = util.find("materials", network, "edges_material")
    if edge_mat is not None:
        materials.set_edge_look(edge_mat, layered=True)
    scene.render.film_transparent = True
    scene.render.use_single_layer = False
    scene.render.use_compositing = False
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # 5.0
        settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "16"
    settings.exr_codec = "ZIP"
    return names


def remove_layers(network: str, scene=None) -> None:
    """Back to one view layer (the first), showing everything."""
    scene = scene or bpy.context.scene
    for layer in list(scene.view_layers)[1:]:
        if layer.get(util.TAG) == network:
            scene.view_layers.remove(layer)
    base = scene.view_layers[0]
    for lc in base.layer_collection.children:
        _clear(lc)
    scene.render.use_compositing = True


def _clear(lc) -> None:
    lc.exclude = False
    lc.holdout = False
    for child in lc.children:
        _clear(child)

"""Per-layer visibility, as the original's CNN pages had: hide a stage's nodes, its edges and
bundles in and out, its name label and its maps or slab (scene.maps). Written once per toggle
(never per update): a POINT attribute `hidden` on the nodes (Geometry Nodes shrinks those
instances to nothing), a CURVE attribute `hidden` on the edges and bundles (Geometry Nodes
deletes them), and the visibility of the label and maps objects. The choice is kept on the
collection, so it survives saving and reloading.
"""

from __future__ import annotations

import numpy as np

from . import attributes, maps, trees, util
from . import bundles as scene_bundles
from . import edges as scene_edges
from .handle import Network, NetworkError


def hidden_stages(network: str) -> list[int]:
    return [int(s) for s in Network(network).hidden]


def set_hidden_stages(network: str, stages) -> list[int]:
    """Hide exactly `stages` (indices into the graph's stages); returns them sorted."""
    net = Network(network)
    nodes = net.nodes
    stage_of = attributes.read(nodes.data, "stage")
    n_stages = int(stage_of.max()) + 1 if stage_of.size else 0
    chosen = sorted({int(s) for s in stages})
    if any(s < 0 or s >= n_stages for s in chosen):
        raise NetworkError(f"layers are numbered 0-{n_stages - 1}")
    hide = np.zeros(n_stages, dtype=bool)
    hide[chosen] = True
    attributes.write(nodes.data, "hidden", hide[stage_of], "BOOLEAN", "POINT")
    nodes.data.update_tag()

    edges = net.edges
    if edges is not None and len(edges.data.curves):
        curves = edges.data
        cut = (
            hide[stage_of[attributes.read(curves, "src")]]
            | hide[stage_of[attributes.read(curves, "dst")]]
        )
        attributes.write(curves, "hidden", cut, "BOOLEAN", "CURVE")
        curves.update_tag()
        mod = edges.modifiers.get(scene_edges.MODIFIER)
        if mod is not None:
            trees.set_modifier_input(mod, "Hide Layers", bool(chosen))

    scene_bundles.set_hidden(network, hide)
    for k in range(n_stages):
        for role in (f"stage {k}", maps.role(k)):  # its name label, its maps or slab
            obj = util.find("objects", network, role)
            if obj is not None:
                obj.hide_viewport = obj.hide_render = bool(hide[k])
    net.hidden = chosen
    return chosen

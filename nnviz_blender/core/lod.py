"""Levels of detail per stage: how each layer of a built network is drawn.

- "neurons": one instance (cube, sphere, tile) per neuron, as the shipped networks are drawn;
- "maps": each feature map is one grid surface, one quad (texel) per neuron showing its value;
- "slab": one block per channel (a vector stage: per chunk of consecutive units) showing the
  mean of its members.

Every level shows every neuron's value or a summary of it; the nodes stay one point per neuron
whatever the level (scene.nodes), so edges, labels and bakes never change. The automatic choice
goes by size: a network of at most NEURON_BUDGET neurons is all "neurons" (the shipped MLP, CNN
and the MNIST ResNet); above it, map stages become "maps" (or "slab" beyond SLAB_NODES) and
vector stages stay "neurons" (or "slab" beyond VECTOR_SLAB). Overrides are by stage name.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .bundles import node_blocks
from .errors import NNVizError
from .graph import Graph, Stage

LODS = ("neurons", "maps", "slab")
NEURON_BUDGET = 50_000  # neurons a network may have and still be drawn all as instances
SLAB_NODES = 1 << 20  # a map stage with more neurons than this is a slab
VECTOR_SLAB = 16_384  # a vector stage with more units than this is a slab


class LodError(NNVizError, ValueError):
    """A level-of-detail request that cannot be met (unknown stage or level)."""


def is_grid(stage: Stage) -> bool:
    """True for stages of 2-D feature maps bigger than one pixel (maps of their own)."""
    return len(stage.shape) == 3 and stage.shape[1] * stage.shape[2] > 1


def automatic(graph: Graph) -> list[str]:
    """The level of every stage, by size alone (see the module docstring)."""
    if graph.node_count <= NEURON_BUDGET:
        return ["neurons"] * len(graph.stages)
    lods = []
    for stage in graph.stages:
        if is_grid(stage):
            lods.append("slab" if stage.size > SLAB_NODES else "maps")
        else:
            lods.append("slab" if stage.size > VECTOR_SLAB else "neurons")
    return lods


def choose(graph: Graph, overrides: Mapping[str, str] | None = None) -> list[str]:
    """One level per stage: the automatic choice, then `overrides` (stage name -> level)."""
    lods = automatic(graph)
    names = [s.name for s in graph.stages]
    for name, lod in (overrides or {}).items():
        if name not in names:
            raise LodError(
                f"no layer named {name!r} for a level of detail (layers: {', '.join(names)})"
            )
        if lod not in LODS:
            raise LodError(f"level of detail {lod!r} for {name}: use one of {', '.join(LODS)}")
        lods[names.index(name)] = lod
    return lods


def parse(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """'conv1=maps,pool1=slab' -> {'conv1': 'maps', 'pool1': 'slab'} (levels checked here,
    stage names when a graph is known: choose)."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(str(k), str(v)) for k, v in spec.items()]
    else:
        items = []
        for part in str(spec).split(","):
            if not part.strip():
                continue
            name, eq, lod = part.partition("=")
            if not eq or not name.strip():
                raise LodError(
                    f"bad level of detail {part.strip()!r}: use LAYER=LEVEL, e.g. conv1=maps"
                )
            items.append((name.strip(), lod.strip().lower()))
    out = {}
    for name, lod in items:
        if lod not in LODS:
            raise LodError(f"level of detail {lod!r} for {name}: use one of {', '.join(LODS)}")
        out[name] = lod
    return out


def node_lods(graph: Graph, lods: list[str]) -> np.ndarray:
    """The level of every node as an int32 (N,) array: its stage's index into LODS."""
    per_stage = np.array([LODS.index(lod) for lod in lods], dtype=np.int32)
    return per_stage[graph.node_stage]


def blocks(graph: Graph) -> np.ndarray:
    """Global block id of every node, int32 (N,): what a slab draws as one block, the blocks
    of core.bundles (a channel, or one of at most BLOCKS_PER_VECTOR chunks of a vector stage)."""
    return node_blocks(graph)

"""The handle of one built network: where its settings are stored and how its objects are found.

`Network(name)` holds nothing but the name. Every access looks the network's data-blocks up again
by tag and role (util.find), so a handle never points at freed Blender memory (undo, file loads,
deleted objects) and may be kept or rebuilt at will. It alone reads and writes the network's
settings, kept as `nnviz_*` custom properties on the network's collection (so they are saved
with the .blend); each has one default here. Node positions are read through `attributes`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..core.errors import NNVizError
from . import attributes, util

VALUES = "node_values"  # role of the object node values are read from (scene.nodes)


class NetworkError(NNVizError, ValueError):
    """A request that cannot be built (bad option, unknown network); the message is for users."""


class _Setting:
    """One `nnviz_<key>` property of the network's collection, with its default.

    `encode` = "json" keeps a list or dict as JSON text, "group" as an ID property group, "str"
    as a string.
    """

    def __init__(self, default: Any, encode: str = "str", key: str = ""):
        self.default, self.encode = default, encode
        self.key = f"nnviz_{key}" if key else ""

    def __set_name__(self, owner, name: str) -> None:
        self.key = self.key or f"nnviz_{name}"

    def __get__(self, net: Network | None, owner=None) -> Any:
        if net is None:
            return self
        raw = net.collection.get(self.key)
        if raw is None:
            return json.loads(json.dumps(self.default))  # a fresh copy of the default
        if self.encode == "json":
            return json.loads(raw)
        if self.encode == "group":
            return raw.to_dict()
        return str(raw)

    def __set__(self, net: Network, value: Any) -> None:
        coll = net.collection
        if value is None:
            coll.pop(self.key, None)
        else:
            coll[self.key] = json.dumps(value) if self.encode == "json" else value


class Network:
    """One built network, by name (see the module docstring)."""

    __slots__ = ("name",)

    # settings (written by scene.network.build_network unless said otherwise)
    stages = _Setting([], "json")  # the stage table (core.graph.stage_table)
    normalise = _Setting("map")  # core.values grouping: "map" | "stage" | "global"
    layout = _Setting("3d")  # "3d" | "flat"
    theme = _Setting("dark")  # materials theme name
    colormap = _Setting("")  # the nodes' colormap when not the theme's
    edge_mode = _Setting("all", key="edges")  # the edge mode it was built with, e.g. "topk:8"
    model = _Setting("")  # path of the model file (live drawing reloads it)
    labels = _Setting([], "json")  # class labels of the output stage
    output = _Setting("probabilities")  # what the output stage holds (Model.output_kind)
    hidden = _Setting([], "json")  # hidden stage indices (scene.visibility)
    bundled = _Setting([], "json")  # stages also drawn as bundles (core.edgeplan)
    lods = _Setting([], "json")  # level of detail per stage, core.lod.LODS (scene.maps.set_lods)
    prediction = _Setting([], "json")  # top-3 [label, probability] of the last input (live)
    bake = _Setting(None, "group")  # {keys, frame_start, frame_end, wave} (animation.bake)
    recording = _Setting(None, "group")  # {rate, shape, times, inputs} (animation.record)

    def __init__(self, name: str):
        self.name = str(name)

    def __repr__(self) -> str:
        return f"Network({self.name!r})"

    # --- data-blocks --------------------------------------------------------------------------

    def find(self, kind: str, role: str):
        """The data-block of `kind` (a bpy.data attribute) with `role`, or None."""
        return util.find(kind, self.name, role)

    @property
    def exists(self) -> bool:
        return self.find("collections", "collection") is not None

    @property
    def collection(self):
        """The network's own collection (NetworkError when the file has no such network)."""
        coll = self.find("collections", "collection")
        if coll is None:
            raise NetworkError(f"no network named {self.name!r} in this file")
        return coll

    @property
    def nodes(self):
        """The nodes object (NetworkError if it is gone)."""
        obj = self.find("objects", "nodes")
        if obj is None:
            raise NetworkError(f"network {self.name!r} has no nodes object (was it deleted?)")
        return obj

    @property
    def values(self):
        """The object everything samples node values from (scene.nodes: the hidden values
        object; for a network built before it, the nodes object)."""
        return self.find("objects", VALUES) or self.nodes

    @property
    def edges(self):
        """The edges object, or None (built with edges "none")."""
        return self.find("objects", "edges")

    def modifier(self, role: str, name: str):
        """The modifier `name` of the object with `role`, or None."""
        obj = self.find("objects", role)
        return obj.modifiers.get(name) if obj is not None else None

    def stage_lods(self) -> list[str]:
        """The level of detail of every stage ("neurons" for a network built before levels)."""
        lods = list(self.lods)
        return lods if len(lods) == len(self.stages) else ["neurons"] * len(self.stages)

    def positions(self) -> np.ndarray:
        """Node positions, float32 (N, 3), graph order."""
        return attributes.read_positions(self.nodes.data)

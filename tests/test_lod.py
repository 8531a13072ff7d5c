"""Levels of detail per stage (core.lod): the automatic choice, overrides, blocks."""

import os

import numpy as np
import pytest
from conftest import MODELS

from nnviz_blender.core import lod
from nnviz_blender.core.bundles import BLOCKS_PER_VECTOR
from nnviz_blender.core.graph import build_graph, graph_from_table
from nnviz_blender.core.modelfile import load_model

SCRATCH_RESNET = os.path.join(os.path.dirname(MODELS), "..", "scratch-train", "resnet.onnx")


def stages_only(*stages):
    """A graph of these (name, shape) stages and no edges (big networks, without their edges)."""
    table, start = [], 0
    for i, (name, shape) in enumerate(stages):
        size = int(np.prod(shape))
        table.append(
            dict(name=name, kind="conv", act_index=i, shape=list(shape), start=start, size=size)
        )
        start += size
    return graph_from_table(table)


def ptex():
    """The classic PyTorch MNIST example: conv32, conv64 (3x3), max pool, 9216-128-10."""
    return stages_only(
        ("input", (1, 28, 28)),
        ("conv1", (32, 26, 26)),
        ("conv2", (64, 24, 24)),
        ("pool1", (64, 12, 12)),
        ("dense1", (128,)),
        ("output", (10,)),
    )


def resnet18(side):
    """The stages a torchvision-shaped ResNet-18 on 3 x side x side shows."""
    s = side // 4
    stages = [
        ("input", (3, side, side)),
        ("conv1", (64, side // 2, side // 2)),
        ("pool1", (64, s, s)),
    ]
    c = 64
    for block in range(4):
        if block:
            c, s = 2 * c, s // 2
        for unit in range(2):
            stages += [(f"b{block}u{unit}a", (c, s, s)), (f"b{block}u{unit}b", (c, s, s))]
            stages += [(f"b{block}u{unit}add", (c, s, s))]
    return stages_only(*stages, ("gap", (512, 1, 1)), ("output", (1000,)))


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_shipped_networks_stay_all_neurons(name):
    graph = build_graph(load_model(os.path.join(MODELS, f"{name}.npz")))
    assert lod.choose(graph) == ["neurons"] * len(graph.stages)


@pytest.mark.skipif(not os.path.exists(SCRATCH_RESNET), reason="no MNIST ResNet here")
def test_the_mnist_resnet_stays_all_neurons():
    graph = build_graph(load_model(SCRATCH_RESNET))
    assert set(lod.choose(graph)) == {"neurons"}


def test_a_mnist_resnet_of_width_16_stays_all_neurons():
    """The shipped ResNet's shapes (width 16): 32k neurons."""
    w = 16
    graph = stages_only(
        ("input", (1, 28, 28)),
        ("conv1", (w, 28, 28)),
        *[(f"s{i}", (w, 14, 14)) for i in range(4)],
        *[(f"t{i}", (2 * w, 7, 7)) for i in range(4)],
        ("pool2", (2 * w, 1, 1)),
        ("output", (10,)),
    )
    assert set(lod.choose(graph)) == {"neurons"}


def test_big_conv_stages_become_maps():
    graph = ptex()
    assert lod.choose(graph) == ["maps", "maps", "maps", "maps", "neurons", "neurons"]
    r18 = resnet18(64)
    lods = dict(zip([s.name for s in r18.stages], lod.choose(r18), strict=True))
    assert {v for k, v in lods.items() if k not in ("gap", "output")} == {"maps"}
    assert lods["gap"] == lods["output"] == "neurons"


def test_huge_stages_become_slabs():
    r18 = resnet18(512)  # conv1 64 x 256 x 256 = 4.2M neurons
    lods = lod.choose(r18)
    assert lods[1] == "slab" and lods[2] == "maps"
    wide = stages_only(("input", (1, 28, 28)), ("dense1", (100_000,)), ("output", (10,)))
    assert lod.choose(wide) == ["maps", "slab", "neurons"]


def test_overrides_by_stage_name():
    graph = ptex()
    lods = lod.choose(graph, {"conv1": "slab", "dense1": "maps", "input": "neurons"})
    assert lods == ["neurons", "slab", "maps", "maps", "maps", "neurons"]
    assert lod.choose(graph, lod.parse("conv2=slab, pool1 = neurons"))[2:4] == ["slab", "neurons"]


def test_bad_overrides_say_why_in_one_line():
    graph = ptex()
    with pytest.raises(lod.LodError, match="no layer named 'conv9'.*conv1"):
        lod.choose(graph, {"conv9": "maps"})
    with pytest.raises(lod.LodError, match="'cubes' for conv1: use one of neurons, maps, slab"):
        lod.choose(graph, {"conv1": "cubes"})
    with pytest.raises(lod.LodError, match="bad level of detail 'conv1'"):
        lod.parse("conv1")
    with pytest.raises(lod.LodError, match="use one of"):
        lod.parse("conv1=huge")
    assert lod.parse("") == lod.parse(None) == {}


def test_blocks_are_channels_or_chunks():
    graph = stages_only(("input", (2, 3, 3)), ("dense1", (200,)), ("output", (10,)))
    ids = lod.blocks(graph)
    assert ids.dtype == np.int32 and ids.shape == (graph.node_count,)
    assert ids[:18].tolist() == [0] * 9 + [1] * 9
    dense = ids[18:218]
    n = BLOCKS_PER_VECTOR
    assert dense.min() == 2 and dense.max() == 2 + n - 1
    assert np.all(np.diff(dense) >= 0)  # consecutive units
    assert ids[218:].tolist() == list(range(2 + n, 2 + n + 10))
    assert (
        lod.node_lods(graph, ["maps", "slab", "neurons"]).tolist()
        == [1] * 18 + [2] * 200 + [0] * 10
    )

"""Imported ONNX graphs in real Blender: node and edge counts as the architecture implies, live
values on adds and global pooling, and a broken .onnx builds nothing."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytest.importorskip("onnx")
pytestmark = pytest.mark.blender

import onnx  # noqa: E402
from onnx_builder import Builder  # noqa: E402
from test_scene import counts, nodes_data  # noqa: E402

from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core.modelfile import ModelError, load_model  # noqa: E402
from nnviz_blender.scene import network, util  # noqa: E402

C, H = 4, 8


def residual_onnx(path):
    """conv -> relu -> conv, added to the first relu (a skip), relu, global pool, dense, softmax."""
    b = Builder(np.random.default_rng(0), 17)
    a = b.node("Relu", [b.conv("x", 1, C, 3)])
    y = b.node("Relu", [b.node("Add", [b.conv(a, C, C, 3), a])])
    y = b.node("Flatten", [b.node("GlobalAveragePool", [y])])
    w = np.random.default_rng(1).normal(size=(3, C)).astype(np.float32)
    y = b.node("Gemm", [y, b.const(w), b.const(np.zeros(3, np.float32))], transB=1)
    onnx.save(b.model((1, H, H), b.node("Softmax", [y], axis=-1)), str(path))
    return path


@pytest.fixture(autouse=True)
def clean_file():
    bpy.ops.wm.read_homefile(use_empty=True)
    network.forget_cache()
    yield


def test_residual_counts_match_the_architecture(tmp_path):
    model = load_model(residual_onnx(tmp_path / "res.onnx"))
    name = network.build_network(model, "res", edges="all")
    taps = (3 * H - 2) ** 2  # valid taps of a 3x3, padding-1 conv over H x H
    maps = C * H * H
    assert len(nodes_data(name).vertices) == H * H + 3 * maps + C + 3  # input conv conv add gap out
    conv = 1 * C * taps + C * C * taps
    assert len(util.find("objects", name, "edges").data.curves) == conv + 2 * maps + maps + 3 * C
    x = np.random.default_rng(0).random((1, H, H), dtype=np.float32)
    acts = network.show_input(name, model, x)
    graph = core_graph.build_graph(model)
    add = next(s for s in graph.stages if s.op == "add")
    np.testing.assert_allclose(
        core_graph.node_values(graph, acts)[add.start : add.stop],
        np.asarray(acts[add.act_index]).ravel(),
    )


def test_broken_onnx_builds_nothing_and_says_why(tmp_path, capsys):
    from nnviz_blender.cli import main

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(residual_onnx(tmp_path / "ok.onnx").read_bytes()[:200])
    with pytest.raises(ModelError, match="broken.onnx"):
        load_model(bad)
    before = counts()
    out = tmp_path / "fig.png"
    assert main(["render", "--model", str(bad), "--input", "sample:3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "broken.onnx" in err and "\n" not in err.strip()
    assert counts() == before
    assert not out.exists()


def test_skips_arch_beside_the_layers_and_the_camera_frames_them(tmp_path):
    from nnviz_blender.scene import attributes, studio

    model = load_model(residual_onnx(tmp_path / "res.onnx"))
    name = network.build_network(model, "res", edges="all")
    nodes = network.Network(name).positions()
    points = attributes.read_positions(util.find("objects", name, "edges").data)
    # the identity skip's edges swing out beside the convs they skip (in 3d on the left, the
    # side the three-quarter views look from); the others stay between the nodes
    assert points[:, 0].min() < nodes[:, 0].min() - 0.2
    assert points[:, 0].max() <= nodes[:, 0].max() + 1e-5
    assert studio.scene_points(name)[:, 0].min() <= points[:, 0].min() + 1e-5

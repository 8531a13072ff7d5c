"""Own models in the real Blender (bpy wheel): an RGB PyTorch net exported to ONNX in the test is
picked, built and driven by a PNG loaded onto its colour canvas; every node shows what the forward
pass computes from the preprocessed image, the input stage is drawn in colour, and the probability
bars show probabilities whatever the model ends in."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
pytest.importorskip("onnx")
pytestmark = pytest.mark.blender

from onnx_builder import Builder  # noqa: E402
from test_addon import addon, clean_file  # noqa: E402, F401  (the add-on, a fresh file per test)
from test_own_model import export_rgb  # noqa: E402

from nnviz_blender import live  # noqa: E402
from nnviz_blender.core.forward import forward, probabilities, top_k  # noqa: E402
from nnviz_blender.core.graph import build_graph, node_values  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402
from nnviz_blender.core.preprocess import prepare  # noqa: E402
from nnviz_blender.inputs import read_image  # noqa: E402
from nnviz_blender.scene import attributes, util  # noqa: E402


def export_rgb_net(path, ending: str = "logits") -> None:
    """The RGB classifier of test_own_model exported by PyTorch; where there is no PyTorch (the
    LTS test environments), the same shape of network written with onnx.helper."""
    try:
        import torch  # noqa: F401
    except ImportError:
        import onnx

        b = Builder(np.random.default_rng(0), 17)
        y = b.node("MaxPool", [b.node("Relu", [b.conv("x", 3, 4, 3)])], kernel_shape=[2, 2],
                   strides=[2, 2])  # fmt: skip
        w = np.random.default_rng(1).normal(0, 0.1, (5, 4 * 8 * 8)).astype(np.float32)
        y = b.node("Gemm", [b.node("Flatten", [y]), b.const(w), b.const(np.zeros(5, "f4"))],
                   transB=1)  # fmt: skip
        if ending != "logits":
            y = b.node({"softmax": "Softmax", "log_softmax": "LogSoftmax"}[ending], [y], axis=-1)
        onnx.save(b.model((3, 16, 16), y), str(path))
        return
    export_rgb(path, ending)


def write_png(path, rgb: np.ndarray) -> None:
    """An 8-bit RGB PNG of `rgb` (H, W, 3) in [0, 1], top row first, written by Blender."""
    h, w, _ = rgb.shape
    image = bpy.data.images.new("png", w, h, alpha=True)
    px = np.ones((h, w, 4), np.float32)
    px[..., :3] = rgb[::-1]
    image.pixels.foreach_set(px.ravel())
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)


def test_png_drives_an_rgb_onnx_model(tmp_path):
    onnx_path = tmp_path / "rgb.onnx"
    export_rgb_net(onnx_path)
    assert bpy.ops.nnviz.choose_model(filepath=str(onnx_path)) == {"FINISHED"}
    s = bpy.context.scene.nnviz
    assert s.model == "FILE"
    s.edges = "all"
    assert bpy.ops.nnviz.build() == {"FINISHED"}
    name = s.network
    model = load_model(onnx_path)
    graph = build_graph(model)

    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    canvas = live.canvas_image(name)
    assert not canvas.is_float  # a colour canvas: 8-bit sRGB, what an image file holds
    assert live.is_colour_canvas(name)
    from panel_stub import draw_panel

    from nnviz_blender.ui.panel import NNVIZ_PT_live, NNVIZ_PT_network

    assert ("operator", "nnviz.choose_model") in draw_panel(NNVIZ_PT_network, bpy.context)
    # the panel's picker (filtered to .onnx/.npz) is the File row's only browse button
    assert s.bl_rna.properties["model_path"].subtype == "NONE"
    log = draw_panel(NNVIZ_PT_live, bpy.context)
    assert ("operator", "nnviz.load_image") in log
    assert ("label", "any brush colour; F sets radius") in log
    labels = [text for kind, text in log if kind == "label"]
    hint = " ".join(labels[labels.index("Nothing drawn: no prediction") + 1 :])
    assert "Load Image" in hint and "digit" not in hint  # an image model wants an image

    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3)) / 255.0
    rgb[:4, :4] = (1.0, 0.0, 0.0)  # a red corner
    png = tmp_path / "photo.png"
    write_png(png, rgb)
    image = read_image(str(png))
    np.testing.assert_allclose(image[..., :3], rgb, atol=1e-6)  # the file's own values
    assert bpy.ops.nnviz.load_image(filepath=str(png)) == {"FINISHED"}

    x = prepare(model, image)
    np.testing.assert_allclose(x.transpose(1, 2, 0), rgb, atol=1e-6)
    acts = forward(model, x)
    shown = attributes.read(util.find("objects", name, "nodes").data, "act")
    np.testing.assert_allclose(shown, node_values(graph, acts), rtol=1e-5, atol=1e-5)
    top = live.prediction(name)
    want = top_k(probabilities(model, acts[-1]), model.labels)
    assert [t[0] for t in top] == [t[0] for t in want]
    np.testing.assert_allclose([t[1] for t in top], [t[1] for t in want], atol=1e-5)
    assert abs(sum(probabilities(model, acts[-1])) - 1.0) < 1e-5

    # the input stage's material draws each channel in its own colour, from the pixel values
    mat = util.find("materials", name, "nodes_material")
    assert "Input Colour" in mat.node_tree.nodes
    level = attributes.read(util.find("objects", name, "nodes").data, "level")
    inp = graph.stages[0]
    np.testing.assert_allclose(
        level[inp.start : inp.stop], rgb.transpose(2, 0, 1).ravel(), atol=1e-5
    )


def test_the_input_colour_undoes_the_models_normalisation(tmp_path):
    from nnviz_blender.cli import main
    from nnviz_blender.scene import network

    export_rgb_net(tmp_path / "rgb.onnx")
    npz = tmp_path / "rgb.npz"
    assert main(["convert", str(tmp_path / "rgb.onnx"), "--out", str(npz),
                 "--mean", "0.5,0.4,0.3", "--std", "0.25,0.2,0.1"]) == 0  # fmt: skip
    name = network.build_network(load_model(npz), "rgb", edges="none")
    nodes = util.find("materials", name, "nodes_material").node_tree.nodes
    undo = sorted(
        (n.inputs[1].default_value, n.inputs[2].default_value)
        for n in nodes
        if n.bl_idname == "ShaderNodeMath" and n.operation == "MULTIPLY_ADD" and n.use_clamp
    )
    np.testing.assert_allclose(undo, [(0.1, 0.3), (0.2, 0.4), (0.25, 0.5)], rtol=1e-6)


def test_digit_models_keep_their_grey_canvas():
    s = bpy.context.scene.nnviz
    s.model, s.edges = "mlp", "none"
    assert bpy.ops.nnviz.build() == {"FINISHED"}
    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    assert live.canvas_image(s.network).is_float
    mat = util.find("materials", s.network, "nodes_material")
    assert "Input Colour" not in mat.node_tree.nodes


def test_a_file_that_is_not_an_image_is_one_line(tmp_path):
    s = bpy.context.scene.nnviz
    s.model, s.edges = "mlp", "none"
    assert bpy.ops.nnviz.build() == {"FINISHED"}
    bad = tmp_path / "not.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(RuntimeError, match="cannot read image"):
        bpy.ops.nnviz.load_image(filepath=str(bad))
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.nnviz.load_image(filepath=str(tmp_path / "missing.png"))


@pytest.mark.parametrize("ending", ["logits", "log_softmax", "softmax"])
def test_probability_bars_whatever_the_model_ends_in(tmp_path, ending):
    from nnviz_blender.scene import legend, network, trees

    path = tmp_path / f"{ending}.onnx"
    export_rgb_net(path, ending)
    model = load_model(path)
    name = network.build_network(model, "rgb", edges="none")
    legend.probability_bars(name)
    x = np.random.default_rng(4).random((3, 16, 16), dtype=np.float32)
    acts = network.show_input(name, model, x)
    want = probabilities(model, acts[-1])
    bars = util.find("objects", name, "bars")
    height = trees.get_modifier_input(bars.modifiers[legend.BARS_MODIFIER], "Height")
    depsgraph = bpy.context.evaluated_depsgraph_get()
    found = [
        (*inst.matrix_world.translation[:2], inst.matrix_world.to_scale().z)
        for inst in depsgraph.object_instances
        if inst.is_instance and inst.parent and inst.parent.original == bars
    ]
    front = min(y for _, y, _ in found)
    bar = [z for _, z in sorted((x, z) for x, y, z in found if y == front)]
    np.testing.assert_allclose(bar, height * want, atol=1e-5)

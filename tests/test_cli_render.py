"""`python -m nnviz_blender render` in real Blender: figure, .blend that reopens intact, errors."""

import os

import numpy as np
import pytest
from conftest import MODELS

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from nnviz_blender.cli import main  # noqa: E402
from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402
from nnviz_blender.scene import attributes, maps, network, studio, util  # noqa: E402
from nnviz_blender.scene.handle import Network  # noqa: E402

HAVE_MODELS = os.path.isfile(os.path.join(MODELS, "mlp.npz")) and os.path.isfile(
    os.path.join(MODELS, "samples.npz")
)
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="shipped models not built yet")


@pytest.fixture(autouse=True)
def clean_file():
    bpy.ops.wm.read_homefile(use_empty=True)
    network.forget_cache()
    yield


def render(*argv):
    return main(["render", *map(str, argv)])


def read_png(path):
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = image.size
        px = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(px)
        return px.reshape(h, w, 4)
    finally:
        bpy.data.images.remove(image)


@needs_models
@pytest.mark.slow
def test_render_writes_a_figure_and_a_blend_that_reopens_intact(tmp_path, capsys):
    out, blend = tmp_path / "fig.png", tmp_path / "fig.blend"
    code = render(
        "--model", "mlp", "--input", "sample:3", "--layout", "flat", "--out", str(out),
        "--resolution", "96x54", "--samples", "4", "--edges", "topk:3", "--theme", "light",
        "--save-blend", str(blend),
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "prediction:" in text and "[5/6" in text and "wrote" in text
    px = read_png(out)
    assert px.shape == (54, 96, 4)
    assert px[..., :3].std() > 0.02  # not a blank frame

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    network.forget_cache()
    name = network.list_networks()[0]
    nodes = util.find("objects", name, "nodes")
    edges_obj = util.find("objects", name, "edges")
    assert nodes is not None and edges_obj is not None
    assert bpy.context.scene.camera is not None
    assert studio.EDGE_LAYER in bpy.context.scene.view_layers
    # the saved activations drive the Geometry Nodes glow with no add-on code involved
    act = attributes.read(nodes.data, "act")
    assert np.abs(act).max() > 0
    studio.single_layer_render(name, bpy.context.scene)  # edges back in the active view layer
    evaluated = edges_obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    glow = attributes.read(evaluated, "glow")
    curves = edges_obj.data
    src = attributes.read(curves, "src")
    expected = attributes.read(curves, "weight") * act[src] * attributes.read(curves, "gain")
    keep = np.abs(expected) >= 0.12  # the render's fade threshold deletes the rest
    np.testing.assert_allclose(glow, expected[keep], rtol=1e-5, atol=1e-6)
    # and the reopened network still takes updates
    model = load_model(os.path.join(MODELS, "mlp.npz"))
    acts = forward(model, np.zeros(model.input_shape, np.float32))
    network.apply_activations(name, model, acts)
    values = core_graph.node_values(core_graph.build_graph(model), acts)
    assert np.array_equal(attributes.read(nodes.data, "act"), values)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "nope.npz", "--input", "sample:3"], "model file not found"),
        (["--model", "mlp", "--input", "missing.npy"], "input file not found"),
        (["--model", "mlp", "--input", "sample:x"], "bad sample spec"),
        (["--model", "mlp", "--input", "sample:3", "--edges", "best"], "bad edge mode"),
        (["--model", "mlp", "--input", "sample:3", "--lod", "conv9=maps"], "no layer named"),
    ],
)
def test_bad_input_is_reported_and_builds_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "fig.png"
    objects = len(bpy.data.objects)
    assert render(*argv, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert len(bpy.data.objects) == objects
    assert not out.exists()


def test_out_must_be_a_png(tmp_path, capsys):
    assert render("--model", "mlp", "--input", "sample:3", "--out", tmp_path / "fig.jpg") == 2
    assert ".png" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--resolution", "big"],
        ["--resolution", "10x10"],
        ["--samples", "0"],
        ["--camera", "side"],
        ["--engine", "povray"],
        ["--edge-fade", "1.5"],
        ["--lod", "dense1=huge"],
        ["--lod", "dense1"],
    ],
)
def test_bad_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        render("--model", "mlp", "--input", "sample:3", "--out", "x.png", *argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


@needs_models
def test_lod_option_draws_layers_as_maps_and_slabs(tmp_path, capsys):
    out = tmp_path / "lod.png"
    code = render(
        "--model", "mlp", "--input", "sample:3", "--out", str(out), "--edges", "none",
        "--resolution", "64x36", "--samples", "1", "--lod", "input=maps,dense1=slab", "--quiet",
    )  # fmt: skip
    assert code == 0 and out.exists()
    name = network.list_networks()[0]
    assert Network(name).lods == ["maps", "slab", "neurons", "neurons"]
    assert util.find("objects", name, maps.role(0)) is not None
    assert util.find("objects", name, maps.role(1)) is not None

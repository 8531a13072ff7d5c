"""The scene layer in real Blender (bpy wheel): geometry, Geometry Nodes glow, renders, cleanup."""

import os

import numpy as np
import pytest
from conftest import CNN_SPEC, MLP_SPEC, digit, evaluated_edges, random_arrays, render_png

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.usefixtures("empty_blend")]

from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core import values as core_values  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import ModelError, build_model, load_model  # noqa: E402
from nnviz_blender.scene import attributes, edges, network, studio, util  # noqa: E402
from nnviz_blender.scene.handle import NetworkError  # noqa: E402

TINY_SPEC = {
    "name": "tiny",
    "input_shape": [1, 4, 4],
    "layers": [
        {"type": "flatten"},
        {"type": "dense", "in_features": 16, "out_features": 6},
        {"type": "tanh"},
        {"type": "dense", "in_features": 6, "out_features": 3},
        {"type": "softmax"},
    ],
}


def make_model(spec, seed=0):
    return build_model(spec, random_arrays(spec, seed))


def tiny_model():
    """16 pixels -> 6 tanh -> 3 classes; lighting pixels 2c, 2c+1 (and 2c+6, 2c+7) picks class c."""
    rng = np.random.default_rng(1)
    w1 = rng.normal(0, 0.1, (6, 16)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (3, 6)).astype(np.float32)
    for j in range(6):
        w1[j, [j, j + 6]] += 2.0
    for c in range(3):
        w2[c, [2 * c, 2 * c + 1]] += 3.0
    arrays = {
        "layers.1.weight": w1,
        "layers.1.bias": np.zeros(6, np.float32),
        "layers.3.weight": w2,
        "layers.3.bias": np.zeros(3, np.float32),
    }
    return build_model(TINY_SPEC, arrays)


def tiny_input(c):
    x = np.zeros(16, np.float32)
    x[[2 * c, 2 * c + 1, 2 * c + 6, 2 * c + 7]] = 1.0
    return x.reshape(1, 4, 4)


@pytest.fixture(scope="module")
def cnn():
    return make_model(CNN_SPEC)


@pytest.fixture(scope="module")
def mlp():
    return make_model(MLP_SPEC)


def nodes_data(name):
    return util.find("objects", name, "nodes").data


# --- counts -----------------------------------------------------------------------------------


def test_cnn_counts_match_the_architecture(cnn):
    name = network.build_network(cnn, "cnn", edges="all")
    conv1 = 6 * 28 * 28 * (1 * 5 * 5)
    pool1 = 6 * 14 * 14 * 4
    conv2 = 16 * 10 * 10 * (6 * 5 * 5)
    pool2 = 16 * 5 * 5 * 4
    dense = 400 * 120 + 120 * 100 + 100 * 10
    assert len(nodes_data(name).vertices) == 1024 + 4704 + 1176 + 1600 + 400 + 120 + 100 + 10
    assert len(nodes_data(name).vertices) == 9134
    curves = util.find("objects", name, "edges").data
    assert len(curves.curves) == conv1 + pool1 + conv2 + pool2 + dense == 424_904
    # the evaluated object (after Geometry Nodes) draws every one of them
    assert len(evaluated_edges(name).curves) == 424_904
    # every node shows up as one instance
    depsgraph = bpy.context.evaluated_depsgraph_get()
    nodes_obj = util.find("objects", name, "nodes").evaluated_get(depsgraph)
    instances = [
        i
        for i in depsgraph.object_instances
        if i.is_instance and i.parent == nodes_obj and i.object.type == "MESH"
    ]  # not the point cloud of every node beside them
    assert len(instances) == 9134


def test_topk_and_none_counts(mlp):
    k = 5
    name = network.build_network(mlp, "mlp", edges=f"topk:{k}")
    assert len(util.find("objects", name, "edges").data.curves) == (300 + 100 + 10) * k
    src = attributes.read(util.find("objects", name, "edges").data, "src")
    dst = attributes.read(util.find("objects", name, "edges").data, "dst")
    graph = core_graph.build_graph(mlp)
    w = {
        (int(s), int(d)): float(x)
        for s, d, x in zip(graph.src, graph.dst, graph.weight, strict=True)
    }
    # each kept edge is among the k largest |weight| into its node
    node = int(dst[0])
    incoming = np.abs(graph.weight[core_graph.incoming(graph, node)])
    kept = sorted((abs(w[(int(s), node)]) for s in src[dst == node]), reverse=True)
    assert np.allclose(kept, np.sort(incoming)[::-1][:k])

    name = network.build_network(mlp, "mlp", edges="none")
    assert util.find("objects", name, "edges") is None
    assert len(nodes_data(name).vertices) == 784 + 300 + 100 + 10


def test_contribution_mode_follows_the_input(mlp):
    name = network.build_network(mlp, "mlp", edges="contrib:0.3")
    curves = util.find("objects", name, "edges").data
    weight, gain = attributes.read(curves, "weight"), attributes.read(curves, "gain")
    src = attributes.read(curves, "src")
    counts = []
    for seed in (0, 1):
        acts = forward(mlp, digit(mlp, seed))
        network.apply_activations(name, mlp, acts)
        values = core_graph.node_values(core_graph.build_graph(mlp), acts)
        expected = int((np.abs(weight * values[src] * gain) >= 0.3).sum())
        drawn = len(evaluated_edges(name).curves)
        assert drawn == expected
        counts.append(drawn)
        assert np.all(np.abs(attributes.read(evaluated_edges(name), "glow")) >= 0.3)
    assert counts[0] != counts[1]


def test_bad_edge_modes_are_reported():
    for bad in ("some", "topk:0", "topk:x", "contrib:-1"):
        with pytest.raises(NetworkError, match="edge mode"):
            network.parse_edges(bad)
    assert network.parse_edges("topk:7") == network.EdgeMode("topk", k=7)
    assert network.parse_edges("contrib:0.25").threshold == 0.25


# --- values and glow --------------------------------------------------------------------------


def test_evaluated_glow_is_weight_times_source_activation(cnn):
    name = network.build_network(cnn, "cnn", edges="all")
    graph = core_graph.build_graph(cnn)
    gain = edges.stage_gains(graph)[graph.node_stage[graph.dst]]
    for seed in (0, 1):
        acts = forward(cnn, digit(cnn, seed))
        network.apply_activations(name, cnn, acts)
        values = core_graph.node_values(graph, acts)
        assert np.array_equal(attributes.read(nodes_data(name), "act"), values)
        glow = network.read_glow(name)
        expected = graph.weight * values[graph.src] * gain
        assert glow.shape == expected.shape
        np.testing.assert_allclose(glow, expected, rtol=1e-5, atol=1e-6)
        assert np.abs(glow).max() > 0.1  # not trivially zero


def test_levels_are_normalised_per_feature_map(cnn):
    name = network.build_network(cnn, "cnn", edges="none", theme="dark")
    acts = forward(cnn, digit(cnn))
    network.apply_activations(name, cnn, acts)
    graph = core_graph.build_graph(cnn)
    level = attributes.read(nodes_data(name), "level")
    signed = attributes.read(nodes_data(name), "signed")
    conv1 = graph.stage_named("conv1")
    for m in range(6):
        block = level[conv1.start + m * 784 : conv1.start + (m + 1) * 784]
        assert block.min() == pytest.approx(0.0) and block.max() == pytest.approx(1.0)
    values = core_graph.node_values(graph, acts)
    out = graph.stages[-1]
    assert np.argmax(level[out.start : out.stop]) == np.argmax(values[out.start : out.stop])
    assert np.abs(signed[conv1.start : conv1.stop]).max() == pytest.approx(1.0)
    first = graph.stages[0]
    assert np.array_equal(level[first.start : first.stop], values[first.start : first.stop])


@pytest.mark.parametrize("per", ["map", "stage", "global"])
def test_live_view_shows_the_core_display_values(cnn, per):
    name = network.build_network(cnn, "cnn", edges="none", normalise=per)
    graph = core_graph.build_graph(cnn)
    for seed in (0, 1):
        values = core_graph.node_values(graph, forward(cnn, digit(cnn, seed)))
        if seed:
            values[: graph.stages[0].size] *= 3.0  # pixels outside [0, 1] get min-max too
        values[graph.stages[-1].start :] = 0.5  # a constant group maps to 0
        network.apply_values(name, values)
        want = core_values.display(core_values.groups(graph, per), values)
        assert np.array_equal(attributes.read(nodes_data(name), "level"), want.level)
        assert np.array_equal(attributes.read(nodes_data(name), "signed"), want.signed)


def test_update_is_a_node_write_only(cnn):
    """After the build, an update changes node attributes; the edge data-block is not written."""
    name = network.build_network(cnn, "cnn", edges="all")
    curves = util.find("objects", name, "edges").data
    before = attributes.read(curves, "weight").copy()
    network.apply_activations(name, cnn, forward(cnn, digit(cnn, 3)))
    assert np.array_equal(attributes.read(curves, "weight"), before)
    assert "glow" not in curves.attributes  # glow exists only on the evaluated geometry
    assert "glow" in evaluated_edges(name).attributes


# --- cleanup ----------------------------------------------------------------------------------

KINDS = (
    "objects",
    "meshes",
    "hair_curves",
    "curves",
    "materials",
    "node_groups",
    "images",
    "texts",
    "collections",
    "cameras",
    "lights",
    "worlds",
    "fonts",
)


def counts():
    return {kind: len(getattr(bpy.data, kind)) for kind in KINDS}


def user_scene():
    bpy.ops.mesh.primitive_cube_add(location=(1.0, 2.0, 3.0))
    cube = bpy.context.active_object
    cube.name = "UserCube"
    mat = bpy.data.materials.new("UserMaterial")
    cube.data.materials.append(mat)
    return cube


def test_build_rebuild_remove_leave_no_orphans(mlp):
    user_scene()
    scene = bpy.context.scene
    before = counts()
    network.build_network(mlp, "net", edges="topk:3")
    studio.setup("net", scene, resolution=(64, 48), samples=1)
    built = counts()
    assert built["objects"] > before["objects"]
    network.build_network(mlp, "net", edges="topk:3", theme="light", layout="flat")
    studio.setup("net", scene, resolution=(64, 48), samples=1)
    assert counts() == built  # rebuilding replaces, never accumulates
    assert network.remove_network("net")
    assert counts() == before
    assert studio.EDGE_LAYER not in scene.view_layers
    assert not network.remove_network("net")
    cube = bpy.data.objects["UserCube"]
    assert tuple(cube.location) == (1.0, 2.0, 3.0)
    assert cube.data.materials[0].name == "UserMaterial"
    assert cube.name in scene.collection.objects


def test_a_user_collection_with_the_same_name_is_left_alone(mlp):
    user = bpy.data.collections.new("mlp")
    bpy.context.scene.collection.children.link(user)
    name = network.build_network(mlp, "mlp", edges="none")
    assert name != "mlp" and name in bpy.data.collections
    assert util.find("objects", name, "nodes") is not None
    network.remove_network(name)
    assert "mlp" in bpy.data.collections and bpy.data.collections["mlp"] == user


def test_two_networks_are_independent(mlp):
    network.build_network(mlp, "a", edges="topk:2")
    network.build_network(mlp, "b", edges="none")
    assert set(network.list_networks()) == {"a", "b"}
    network.remove_network("a")
    assert network.list_networks() == ["b"]
    assert util.find("objects", "b", "nodes") is not None
    network.apply_activations("b", mlp, forward(mlp, digit(mlp)))


def test_bad_model_file_builds_nothing_and_says_why(tmp_path, capsys):
    from nnviz_blender.cli import main

    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelError, match="not an .npz model file"):
        load_model(bad)
    before = counts()
    out = tmp_path / "fig.png"
    assert main(["render", "--model", str(bad), "--input", "sample:3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "not an .npz model file" in err
    assert counts() == before
    assert not out.exists()


def test_bad_options_build_nothing(mlp):
    before = counts()
    for kwargs in (
        {"layout": "round"},
        {"theme": "neon"},
        {"node_shape": "cone"},
        {"edges": "best"},
        {"colormap": "jet"},
    ):
        with pytest.raises(NetworkError):
            network.build_network(mlp, "net", **kwargs)
    assert counts() == before


# --- rendering --------------------------------------------------------------------------------


def node_pixels(name, nodes, w, h):
    """Pixel (row, col) of each node index, projected with the scene camera."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    obj = util.find("objects", name, "nodes")
    out = []
    for i in nodes:
        co = obj.matrix_world @ Vector(obj.data.vertices[int(i)].co)
        p = world_to_camera_view(scene, scene.camera, co)
        out.append((int((1.0 - p.y) * h), int(p.x * w)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("theme", ["dark", "light"])
def test_render_follows_the_input_and_the_winner_glows(tmp_path, theme):
    model = tiny_model()
    name = network.build_network(model, "tiny", edges="all", theme=theme, layout="flat")
    w, h = 96, 72
    studio.setup(name, bpy.context.scene, camera_preset="front", samples=4, resolution=(w, h))
    out = core_graph.build_graph(model).stages[-1]
    images, winners = [], []
    for c in (0, 2):
        acts = forward(model, tiny_input(c))
        network.apply_activations(name, model, acts)
        px = render_png(tmp_path / f"{theme}{c}.png")
        images.append(px)
        probs = acts[-1].reshape(-1)
        spots = node_pixels(name, range(out.start, out.stop), w, h)
        brightness = [px[r, c, :3].sum() for r, c in spots]
        winners.append(int(np.argmax(probs)))
        assert int(np.argmax(brightness)) == int(np.argmax(probs)), (brightness, probs)
    assert winners == [0, 2]
    assert np.abs(images[0] - images[1]).max() > 0.05


@pytest.mark.slow
def test_cnn_render_and_transparent_background(tmp_path, cnn):
    name = network.build_network(cnn, "cnn", edges="all")
    network.apply_activations(name, cnn, forward(cnn, digit(cnn)))
    network.set_edge_fade(name, 0.2)
    studio.setup(name, bpy.context.scene, samples=2, resolution=(64, 48), transparent=True)
    px = render_png(tmp_path / "cnn.png")
    assert px.shape == (48, 64, 4)
    assert px[0, 0, 3] < 0.01  # corner: background is transparent
    assert px[..., 3].max() > 0.9  # the network is opaque
    assert os.path.getsize(tmp_path / "cnn.png") > 0

"""Bundles in the real Blender: the stages with the most connections are drawn as one curve
per (source block -> destination block), each glowing with the sum of its members' weight x
source value, written per update; shipped networks are drawn as always."""

import os

import numpy as np
import pytest
from conftest import CNN_SPEC, MODELS, digit, random_arrays

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.usefixtures("empty_blend")]

from nnviz_blender.core import bundles as core_bundles  # noqa: E402
from nnviz_blender.core import edgeplan  # noqa: E402
from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core import layout as core_layout  # noqa: E402
from nnviz_blender.core import values as core_values  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import build_model, load_model  # noqa: E402
from nnviz_blender.scene import (  # noqa: E402
    attributes,
    bundles,
    network,
    studio,
    util,
    visibility,
)
from nnviz_blender.scene.handle import Network  # noqa: E402


@pytest.fixture(scope="module")
def cnn(random_cnn):
    return random_cnn


@pytest.fixture
def small_budgets(monkeypatch):
    """Budgets that make the test CNN bundle its two biggest stages."""
    monkeypatch.setattr(edgeplan, "EDGE_BUDGET", 1000)
    graph = core_graph.build_graph(build_model(CNN_SPEC, random_arrays(CNN_SPEC)))
    stages = sorted(graph.stages, key=lambda s: s.edge_count)
    rest = sum(s.edge_count for s in stages[:-2])
    # and leave room for the strongest 2 connections into every node of those two
    monkeypatch.setattr(edgeplan, "BUNDLED_BUDGET", rest + 2 * sum(s.size for s in stages[-2:]))


def test_bundled_stages_glow_with_their_members_sums(cnn, small_budgets):
    graph = core_graph.build_graph(cnn)
    name = network.build_network(cnn, "net")
    net = Network(name)
    biggest = sorted(range(len(graph.stages)), key=lambda i: graph.stages[i].edge_count)[-2:]
    assert sorted(net.bundled) == sorted(biggest)
    b = core_bundles.bundles(cnn, graph, map_blocks=network.DRAWN_MAP_BLOCKS)
    drawn = np.isin(b.stage, biggest)
    obj = util.find("objects", name, bundles.ROLE)
    assert len(obj.data.curves) == drawn.sum() > 0
    np.testing.assert_array_equal(attributes.read(obj.data, "src_block"), b.src[drawn])

    x = np.random.default_rng(3).random(cnn.input_shape, dtype=np.float32)
    acts = forward(cnn, x)
    network.apply_activations(name, cnn, acts)
    want = core_values.bundle_signed(b.bundle_start, core_bundles.bundle_glow(b, acts))[drawn]
    got = bundles.read_glow(name)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.abs(got).max() == pytest.approx(1.0)

    # a bundle runs from the centre of its source block to the centre of its destination block
    pos = net.positions()
    centres = bundles.block_centres(pos, b.node_blocks(graph), b.block_count)
    points = attributes.read_positions(obj.data)
    sizes = attributes.read_curve_sizes(obj.data)
    first = np.cumsum(sizes) - sizes
    np.testing.assert_allclose(points[first], centres[b.src[drawn]], atol=1e-5)
    np.testing.assert_allclose(points[first + sizes - 1], centres[b.dst[drawn]], atol=1e-5)

    # the strongest connections of the bundled stages are still drawn one by one
    edges = net.edges.data
    dst_stage = graph.node_stage[attributes.read(edges, "dst")]
    for i in biggest:
        assert (dst_stage == i).sum() == 2 * graph.stages[i].size

    # hiding a layer deletes the bundles into and out of it
    visibility.set_hidden_stages(name, [biggest[0]])
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    block_stage = np.repeat(np.arange(len(graph.stages)), np.diff(b.block_start))
    touches = (block_stage[b.src[drawn]] == biggest[0]) | (block_stage[b.dst[drawn]] == biggest[0])
    assert len(ev.curves) == (~touches).sum() < drawn.sum()
    visibility.set_hidden_stages(name, [])
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    assert len(ev.curves) == drawn.sum()

    network.apply_values(name, np.zeros(graph.node_count, np.float32))  # Clear
    assert not bundles.read_glow(name).any()
    network.remove_network(name)
    assert not util.owned(name)


def test_shipped_networks_have_no_bundles():
    for model_name in ("cnn", "mlp"):
        model = load_model(os.path.join(MODELS, f"{model_name}.npz"))
        name = network.build_network(model, model_name)
        assert Network(name).bundled == []
        assert util.find("objects", name, bundles.ROLE) is None
        radius = attributes.read(Network(name).edges.data, "radius")
        assert (radius == np.float32(core_layout.EDGE_RADIUS)).all()  # as thin as ever
        graph = core_graph.build_graph(model)
        assert len(Network(name).edges.data.curves) == graph.edge_count


def test_baked_bundles_follow_the_frames_and_the_wave(cnn, small_budgets):
    from nnviz_blender.animation import bake
    from nnviz_blender.animation import schedule as sched

    graph = core_graph.build_graph(cnn)
    name = network.build_network(cnn, "net")
    rng = np.random.default_rng(5)
    xs = [rng.random(cnn.input_shape, dtype=np.float32) for _ in range(2)]
    kv, glow = network.key_values_and_glow(name, cnn, graph, xs)
    assert np.array_equal(
        kv, np.stack([core_graph.node_values(graph, forward(cnn, x)) for x in xs])
    )
    for k, x in enumerate(xs):  # what the live view shows for that input
        network.apply_activations(name, cnn, forward(cnn, x))
        np.testing.assert_array_equal(glow[k], bundles.read_glow(name))
    s = sched.sequence(2, fps=12, hold=0.5, transition=1.0)
    bake.bake(name, graph, kv, s, wave=0.7, bundle_glow=glow)
    network.apply_values(name, np.zeros(graph.node_count, np.float32))  # baked glow wins
    obj = util.find("objects", name, bundles.ROLE)

    def evaluated():
        data = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
        return attributes.read(data, "glow")

    for k in range(2):
        bpy.context.scene.frame_set(int(s.hold_frames(k)[0]))
        np.testing.assert_allclose(evaluated(), glow[k], rtol=1e-6, atol=1e-7)
    # mid-transition the wave has reached the early stages before the late ones
    start, end = s.hold_frames(0)[-1], s.hold_frames(1)[0]
    bpy.context.scene.frame_set(int((start + end) // 2))
    mid = evaluated()
    stage = attributes.read(obj.data, "dst_stage")
    share = np.abs(mid - glow[0]) / np.maximum(np.abs(glow[1] - glow[0]), 1e-6)
    early, late = stage.min(), stage.max()
    changed = np.abs(glow[1] - glow[0]) > 1e-3
    assert share[(stage == early) & changed].mean() > share[(stage == late) & changed].mean()

    bake.remove(name)  # the live value comes back
    assert not any(a.name.startswith("nnviz_glow_") for a in obj.data.attributes)
    np.testing.assert_array_equal(evaluated(), bundles.read_glow(name))


def test_a_big_networks_connections_are_as_wide_as_its_size_asks(big_onnx):
    """The PyTorch MNIST example (48 long): edges and bundles thicker than the shipped
    networks' by its length over theirs, bundles 1-3 times an edge; a render sets both from
    the pixel size, bundles keeping their widths."""
    model = load_model(big_onnx("ptex"))
    name = network.build_network(model, "ptex", edges="topk:8")
    net = Network(name)
    radius = core_layout.edge_radius(net.positions())
    assert radius == pytest.approx(core_layout.EDGE_RADIUS * 47.5 / 32.0, rel=0.01)
    np.testing.assert_allclose(attributes.read(net.edges.data, "radius"), radius, rtol=1e-6)
    data = util.find("objects", name, bundles.ROLE).data
    width = attributes.read(data, "width")
    assert 1.0 <= width.min() < width.max() == pytest.approx(3.0)
    points = attributes.read_curve_sizes(data)
    want = np.repeat(width * np.float32(radius), points)
    np.testing.assert_allclose(attributes.read(data, "radius"), want, rtol=1e-6)

    studio.setup(name, camera_preset="iso", resolution=(320, 180), samples=1)
    edge = attributes.read(net.edges.data, "radius")
    assert edge.max() == edge.min() != pytest.approx(radius)
    want = np.repeat(width * edge[0], points)
    np.testing.assert_allclose(attributes.read(data, "radius"), want, rtol=1e-6)


def test_solid_shows_bundles_in_the_edges_colour(big_onnx):
    """Solid viewports draw a Curves object in its first material's viewport colour (one per
    object: the real window's Blender 4.3 ignores a material index on curves there): the
    bundles', evaluated, is the edge material, so they show as the edges do."""
    model = load_model(big_onnx("ptex"))
    name = network.build_network(model, "ptex", edges="topk:8")
    network.show_input(name, model, digit(model))  # its viewport draws the edges that show
    depsgraph = bpy.context.evaluated_depsgraph_get()
    edge_mat = util.find("materials", name, "edges_material")
    for role in ("edges", bundles.ROLE):
        data = util.find("objects", name, role).evaluated_get(depsgraph).data
        assert data.materials[0].original == edge_mat, role
    r, g, b, a = edge_mat.diffuse_color
    assert b > r and 0 < a < 1  # the theme's cyan, faint


def test_nothing_a_network_draws_casts_shadows(cnn, small_budgets):
    """Every material a network makes is emission, which shadows cannot darken; casting them
    would make EEVEE re-render its shadow maps on every update (util.new_object)."""
    from nnviz_blender import live
    from nnviz_blender.scene import highlight, legend

    name = network.build_network(cnn, "net", lod={"conv1": "maps", "pool1": "slab"})
    live.ensure_canvas(name)
    legend.add(name)
    highlight.show(name, np.array([0]), np.array([800]), np.array([1.0]), 0.1)
    studio.setup(name, engine="cycles", samples=1, resolution=(64, 36), layered=False)
    shown = [o for kind, o in util.owned(name) if kind == "objects" and o.type != "EMPTY"]
    roles = {str(o.get(util.ROLE)).split(" ")[0] for o in shown}
    assert {"nodes", "edges", "bundles", "maps", "canvas", "highlight", "bars"} <= roles
    drawn = [o for o in shown if o.type not in ("CAMERA", "LIGHT")]
    assert [o.name for o in drawn if o.visible_shadow] == []
    assert util.find("objects", name, "light").visible_shadow  # the user's materials may want it


def test_a_bundled_network_draws_only_the_connections_that_show_in_viewports(cnn, small_budgets):
    """Too big to draw every connection, its viewports always draw the light version (the one
    shipped networks draw while painting): before any input none, after one only those that
    show clearly; live drawing stopping does not bring the invisible ones back."""
    from conftest import evaluated_edges

    from nnviz_blender.scene import edges, materials

    name = network.build_network(cnn, "net")
    net = Network(name)
    assert net.bundled
    all_edges = len(net.edges.data.curves)
    assert len(evaluated_edges(name).curves) == 0  # nothing shows yet
    network.show_input(name, cnn, digit(cnn))
    glow = np.abs(attributes.read(evaluated_edges(name), "glow"))
    mat = util.find("materials", name, "edges_material")
    level = edges.painting_threshold(*materials.edge_look(mat))
    assert 0 < len(glow) < all_edges and glow.min() >= level
    network.set_painting(name, True)  # live drawing starts
    network.set_painting(name, False)  # and stops
    assert len(evaluated_edges(name).curves) == len(glow)

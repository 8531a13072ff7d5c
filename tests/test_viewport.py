"""The live viewport (bpy wheel): a light version of the edges while painting, the full one in
renders, and the render's look (world, colour management, fade) in the viewport."""

import numpy as np
import pytest
from blender_scripts.render_probe import render_sizes
from conftest import MLP_SPEC, digit, evaluated_edges, random_arrays

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

from nnviz_blender import live  # noqa: E402
from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import build_model, load_model  # noqa: E402
from nnviz_blender.core.values import DEFAULT_FADE  # noqa: E402
from nnviz_blender.paths import shipped_model  # noqa: E402
from nnviz_blender.scene import (  # noqa: E402
    attributes,
    edges,
    materials,
    network,
    trees,
    util,
    viewport,
)


@pytest.fixture(autouse=True)
def clean_file():
    bpy.ops.wm.read_homefile(use_empty=True)
    network.forget_cache()
    yield
    live.stop_all()


@pytest.fixture(scope="module")
def cnn(random_cnn):
    return random_cnn


def edges_name(name):
    return util.find("objects", name, "edges").name


def glow_expected(model, name, acts):
    graph = core_graph.build_graph(model)
    gain = edges.stage_gains(graph)[graph.node_stage[graph.dst]]
    values = core_graph.node_values(graph, acts)
    return graph.weight * values[graph.src] * gain


@pytest.mark.parametrize("fade", [0.0, DEFAULT_FADE])
def test_painting_draws_the_strong_edges_as_single_segments(cnn, fade):
    name = network.build_network(cnn, "cnn", edges="all")
    network.set_edge_fade(name, fade)
    data = util.find("objects", name, "edges").data
    assert len(data.points) == 2 * len(data.curves)  # a chain's edges: one segment each
    acts = forward(cnn, digit(cnn))
    network.apply_activations(name, cnn, acts)
    before = evaluated_edges(name)
    shown = (len(before.curves), len(before.points))

    network.set_painting(name, True)
    for seed in (0, 1):
        acts = forward(cnn, digit(cnn, seed))
        network.apply_activations(name, cnn, acts)
        light = evaluated_edges(name)
        curves, points = len(light.curves), len(light.points)
        assert 0 < curves < shown[0] and points == 2 * curves  # one straight segment each
        src = attributes.read(light, "src")
        dst = attributes.read(light, "dst")
        glow = attributes.read(light, "glow")
        expected = glow_expected(cnn, name, acts)
        graph = core_graph.build_graph(cnn)
        # the kept edges are exactly those at or above the painting threshold, values unchanged
        strength, fade_now = materials.edge_look(util.find("materials", name, "edges_material"))
        level = max(edges.painting_threshold(strength, fade_now), fade_now)
        keep = np.abs(expected) >= level
        assert curves == int(keep.sum())
        np.testing.assert_array_equal(src, graph.src[keep])
        np.testing.assert_array_equal(dst, graph.dst[keep])
        np.testing.assert_allclose(glow, expected[keep], rtol=1e-5, atol=1e-6)
        # the segment runs from the source node to the destination node
        pos = network.Network(name).positions()
        ends = attributes.read_positions(light).reshape(-1, 2, 3)
        np.testing.assert_allclose(ends[:, 0], pos[src], atol=1e-5)
        np.testing.assert_allclose(ends[:, 1], pos[dst], atol=1e-5)

    network.set_painting(name, False)
    network.apply_activations(name, cnn, forward(cnn, digit(cnn)))
    after = evaluated_edges(name)
    assert (len(after.curves), len(after.points)) == shown  # the full version is back


def test_renders_draw_the_full_edges_while_painting(cnn):
    name = network.build_network(cnn, "cnn", edges="all")
    network.set_edge_fade(name, DEFAULT_FADE)
    acts = forward(cnn, digit(cnn))
    network.apply_activations(name, cnn, acts)
    obj = edges_name(name)
    idle = render_sizes(bpy.context.scene, [obj])[obj]
    idle_viewport = evaluated_edges(name)
    # a render splits the long edges for Cycles (edges.build: `cuts`), a viewport does not
    mod = network.Network(name).modifier("edges", edges.MODIFIER)
    kept = np.abs(glow_expected(cnn, name, acts)) >= trees.get_modifier_input(mod, "Threshold")
    cuts = attributes.read(util.find("objects", name, "edges").data, "cuts")
    assert idle[0] == len(idle_viewport.curves) == int(kept.sum())
    assert len(idle_viewport.points) == 2 * idle[0]
    assert idle[1] == int((cuts[kept] + 2).sum()) > 3 * idle[0]
    network.set_painting(name, True)
    painting_viewport = evaluated_edges(name)
    assert len(painting_viewport.points) * 5 < idle[1]
    assert render_sizes(bpy.context.scene, [obj])[obj] == idle


def test_live_drawing_switches_the_light_version_on_and_off():
    model = load_model(shipped_model("mlp"))
    name = network.build_network(model, "mlp", edges="all")
    mod = network.Network(name).modifier("edges", edges.MODIFIER)
    live.start(name)
    assert trees.get_modifier_input(mod, "Painting")
    live.stop(name)
    assert not trees.get_modifier_input(mod, "Painting")


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_viewport_shows_the_render_look(theme):
    model = build_model(MLP_SPEC, random_arrays(MLP_SPEC))
    name = network.build_network(model, "mlp", edges="all", theme=theme)
    scene = bpy.context.scene
    viewport.show_like_render(name, scene)
    assert scene.world.get(util.TAG) == name
    assert scene.view_settings.view_transform == "Standard"
    mat = util.find("materials", name, "edges_material")
    assert materials.edge_look(mat)[1] == pytest.approx(DEFAULT_FADE)
    assert mat.surface_render_method == "BLENDED"
    shading = scene.display.shading  # a View3DShading, as a 3D viewport's is
    shading.type = "SOLID"
    viewport.use_scene_look(shading)
    assert shading.type == "MATERIAL"
    assert shading.use_scene_world and shading.use_scene_lights
    assert shading.use_scene_world_render and shading.use_scene_lights_render


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_solid_viewports_colour_nodes_by_material(theme):
    """In a viewport each node instances the palette copy of the node material for its colour
    bin (what Solid shows); the copies keep the node material's shader (Material Preview)."""
    model = build_model(MLP_SPEC, random_arrays(MLP_SPEC))
    name = network.build_network(model, "mlp", edges="none", theme=theme)
    network.apply_activations(name, model, forward(model, digit(model)))
    nodes = util.find("objects", name, "nodes")
    level = attributes.read(nodes.data, "level")
    pos = network.Network(name).positions()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    found = []
    for inst in depsgraph.object_instances:
        if (
            inst.is_instance
            and inst.parent is not None
            and inst.parent.original == nodes
            and inst.object.type == "MESH"  # not the point cloud of every node beside them
        ):
            mat = inst.object.data.materials[-1]
            found.append((np.array(inst.matrix_world.translation), mat.original))
    assert len(found) == len(pos)
    k = materials.PALETTE_SIZE
    node_mat = util.find("materials", name, "nodes_material")
    colors = set()
    for where, mat in found:
        i = int(np.argmin(np.linalg.norm(pos - where, axis=1)))
        b = min(k - 1, int(level[i] * (k - 1e-3)))
        assert mat == util.find("materials", name, f"nodes_material_{b}")
        colors.add(tuple(mat.diffuse_color))
    assert len(colors) > 3  # the colours really differ
    copy = util.find("materials", name, "nodes_material_0")
    assert [n.bl_idname for n in copy.node_tree.nodes] == [
        n.bl_idname for n in node_mat.node_tree.nodes
    ]


@pytest.mark.parametrize("seed", range(4))
def test_an_off_centre_window_holds_every_point_exactly(seed):
    """studio.eye_in_window: seen through a perspective view, every point falls inside an
    off-centre window (a viewport's part beside its sidebar), and the window is filled: the
    points reach both of its sides on one axis, with about as much room either side on the
    other."""
    from mathutils import Euler

    from nnviz_blender.scene import studio

    rng = np.random.default_rng(seed)
    points = rng.normal(size=(50, 3)) * rng.uniform(1, 30, 3)
    rotation = np.array(Euler(rng.uniform(-3, 3, 3)).to_matrix())
    window = (-0.3, 0.1, -0.12, 0.25)
    eye = studio.eye_in_window(points, rotation, window, margin=1.0)
    p = points @ rotation - eye
    assert (p[:, 2] < 0).all()  # every point in front
    tx, ty = p[:, 0] / -p[:, 2], p[:, 1] / -p[:, 2]
    lo = np.array([tx.min(), ty.min()])
    hi = np.array([tx.max(), ty.max()])
    assert (lo >= np.array(window[0::2]) - 1e-9).all() and (
        hi <= np.array(window[1::2]) + 1e-9
    ).all()
    room_lo, room_hi = lo - window[0::2], np.array(window[1::2]) - hi
    full = np.isclose(room_lo, 0, atol=1e-9) & np.isclose(room_hi, 0, atol=1e-9)
    assert full.sum() >= 1
    other = ~full  # room on both of its sides, about as much
    assert (
        np.minimum(room_lo, room_hi)[other].min() > 0.5 * np.maximum(room_lo, room_hi)[other].max()
    )

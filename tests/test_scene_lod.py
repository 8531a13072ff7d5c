"""Levels of detail in the real Blender: maps and slabs show every neuron's value, nodes stay
one point per neuron (edges, labels, bakes unchanged), hidden layers hide their maps."""

import numpy as np
import pytest
from conftest import digit, render_png

bpy = pytest.importorskip("bpy")
pytestmark = [pytest.mark.blender, pytest.mark.usefixtures("empty_blend")]

from nnviz_blender.animation import bake  # noqa: E402
from nnviz_blender.animation import schedule as sched  # noqa: E402
from nnviz_blender.core import graph as core_graph  # noqa: E402
from nnviz_blender.core import lod as core_lod  # noqa: E402
from nnviz_blender.core import values as core_values  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.scene import edges, maps, network, util, visibility  # noqa: E402
from nnviz_blender.scene.handle import Network, NetworkError  # noqa: E402

STAGES = ("input", "conv1", "pool1", "conv2", "pool2", "dense1", "dense2", "output")
# input maps, conv1 maps, pool1 slab (a channel each), conv2 maps, dense1 slab (chunks)
LODS = {"input": "maps", "conv1": "maps", "pool1": "slab", "conv2": "maps", "dense1": "slab"}


@pytest.fixture(scope="module")
def cnn(random_cnn):
    return random_cnn


@pytest.fixture(scope="module")
def graph(cnn):
    return core_graph.build_graph(cnn)


def instance_count(name):
    depsgraph = bpy.context.evaluated_depsgraph_get()
    nodes = util.find("objects", name, "nodes").evaluated_get(depsgraph)
    return sum(
        1
        for i in depsgraph.object_instances
        if i.is_instance and i.parent == nodes and i.object.type == "MESH"
    )  # not the point cloud of every node beside them


def face_centres(name, k):
    obj = util.find("objects", name, maps.role(k))
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    out = np.empty(3 * len(mesh.polygons), np.float32)
    mesh.polygons.foreach_get("center", out)
    return out.reshape(-1, 3)


def drawn_values(graph, k: int, signed: bool) -> set[str]:
    """What the faces of stage k carry (maps.OPTIONAL): the value the colour shows, an input's
    raw values, the output's level."""
    stage = graph.stages[k]
    extra = {"act"} if stage.kind == "input" else set()
    return (
        {"signed" if signed else "level"}
        | extra
        | ({"level"} if k == len(graph.stages) - 1 else set())
    )


@pytest.mark.parametrize("layout, colormap", [("3d", None), ("flat", "diverging")])
def test_maps_and_slabs_show_the_forward_pass(cnn, graph, layout, colormap):
    from nnviz_blender.scene import materials

    name = network.build_network(
        cnn, "cnn", edges="none", layout=layout, lod=LODS, colormap=colormap
    )
    _, signed = materials.node_colormap(materials.get_theme("dark"), colormap)
    assert signed == (colormap == "diverging")
    lods = Network(name).stage_lods()
    assert lods == [LODS.get(s.name, "neurons") for s in graph.stages]
    positions = Network(name).positions()
    blocks = core_lod.blocks(graph)
    groups = core_values.groups(graph, "map")
    for seed in (0, 1):
        values = core_graph.node_values(graph, forward(cnn, digit(cnn, seed)))
        network.apply_values(name, values)
        shown = core_values.display(groups, values)
        for k, stage in enumerate(graph.stages):
            got = maps.read_values(name, k)
            if lods[k] == "neurons":
                assert got == {}
                continue
            if lods[k] == "maps":  # one face per neuron, in node order, its exact values
                assert np.array_equal(got["node"], np.arange(stage.start, stage.stop))
                assert set(got) - {"node"} == drawn_values(graph, k, signed)
                for attr in drawn_values(graph, k, signed):
                    assert np.array_equal(got[attr], getattr(shown, attr)[got["node"]]), attr
                if seed == 0:  # quads centred on the neurons (where edges end)
                    np.testing.assert_allclose(
                        face_centres(name, k), positions[stage.start : stage.stop], atol=1e-5
                    )
            else:  # six faces per block, each the block's mean
                member = blocks[stage.start : stage.stop]
                n_blocks = len(np.unique(member))
                assert len(got["node"]) == 6 * n_blocks
                assert set(got) - {"node"} == drawn_values(graph, k, signed)
                for attr in drawn_values(graph, k, signed):
                    v = getattr(shown, attr)[stage.start : stage.stop]
                    mean = np.bincount(member - member[0], v) / np.bincount(member - member[0])
                    np.testing.assert_allclose(got[attr], np.repeat(mean, 6), atol=1e-6)
    # every neuron is still a point of the nodes object, only "neurons" stages are instanced
    neurons = sum(s.size for s, lod in zip(graph.stages, lods, strict=True) if lod == "neurons")
    assert instance_count(name) == neurons


def test_edges_still_follow_every_node(cnn, graph):
    name = network.build_network(cnn, "cnn", edges="topk:4", lod=LODS)
    pick = core_graph.select_edges(graph, "topk", 4)
    gain = edges.stage_gains(graph)[graph.node_stage[graph.dst]][pick]
    values = core_graph.node_values(graph, forward(cnn, digit(cnn)))
    network.apply_values(name, values)
    expected = graph.weight[pick] * values[graph.src[pick]] * gain
    np.testing.assert_allclose(network.read_glow(name), expected, rtol=1e-5, atol=1e-6)


def test_hidden_layers_hide_their_maps_and_slabs(cnn):
    name = network.build_network(cnn, "cnn", edges="none", lod=LODS)
    visibility.set_hidden_stages(name, [1, 2])
    for k, hidden in ((1, True), (2, True), (3, False)):
        obj = util.find("objects", name, maps.role(k))
        assert obj.hide_render is hidden and obj.hide_viewport is hidden
    maps.set_lods(
        name, ["neurons", "slab", "maps", "maps", "neurons", "neurons", "neurons", "neurons"]
    )
    assert util.find("objects", name, maps.role(1)).hide_render  # a switch keeps what is hidden
    assert util.find("objects", name, maps.role(0)) is None
    assert not util.find("objects", name, maps.role(3)).hide_render


def test_switching_levels_keeps_one_owner(cnn, graph):
    name = network.build_network(cnn, "cnn", edges="none")
    assert Network(name).stage_lods() == ["neurons"] * len(graph.stages)
    assert instance_count(name) == graph.node_count
    lods = ["maps"] * 5 + ["neurons"] * 3
    maps.set_lods(name, lods)
    assert Network(name).lods == lods
    assert instance_count(name) == 120 + 100 + 10
    with pytest.raises(NetworkError, match="use one of neurons, maps, slab"):
        maps.set_lods(name, ["cubes"] * 8)
    with pytest.raises(NetworkError, match="3 levels of detail for 8 layers"):
        maps.set_lods(name, ["maps"] * 3)
    maps.set_lods(name, ["neurons"] * 8)
    assert not [o for o in bpy.data.objects if str(o.get(util.ROLE, "")).startswith("maps ")]
    assert not [m for m in bpy.data.meshes if str(m.get(util.ROLE, "")).startswith("maps ")]


def test_bad_levels_build_nothing(cnn):
    before = len(bpy.data.objects)
    with pytest.raises(NetworkError, match="no layer named 'conv9'"):
        network.build_network(cnn, "cnn", lod={"conv9": "maps"})
    with pytest.raises(NetworkError, match="bad level of detail"):
        network.build_network(cnn, "cnn", lod="conv1")
    assert len(bpy.data.objects) == before


def test_baked_values_reach_the_maps(cnn, graph):
    name = network.build_network(cnn, "cnn", edges="none", lod=LODS)
    xs = [digit(cnn, s) for s in (0, 1)]
    kv = np.stack([core_graph.node_values(graph, forward(cnn, x)) for x in xs])
    s = sched.sequence(2, fps=12, hold=0.5, transition=0.5)
    bake.bake(name, graph, kv, s)
    conv1 = graph.stage_named("conv1")
    for k in range(2):
        bpy.context.scene.frame_set(int(s.hold_frames(k)[0]))
        got = maps.read_values(name, 1)  # the baked level, as live drawing shows it
        shown = core_values.display(core_values.groups(graph, "map"), kv[k])
        assert np.array_equal(got["level"], shown.level[conv1.start : conv1.stop])
        assert np.array_equal(bake.read_values(name)["act"], kv[k])


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["CYCLES", "BLENDER_WORKBENCH"])
def test_the_nodes_points_render_nothing(tmp_path, cnn, engine):
    """Every stage as maps (no instance left): the nodes object, which still holds a point per
    neuron, adds nothing to a render (its points are a point cloud of radius 0)."""
    name = network.build_network(cnn, "cnn", edges="none", lod=dict.fromkeys(STAGES, "maps"))
    network.show_input(name, cnn, digit(cnn))
    for obj in bpy.data.objects:
        if obj.get(util.TAG) == name and obj.get(util.ROLE) != "nodes":
            obj.hide_render = True  # maps and labels
    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    centre = Network(name).positions().mean(axis=0)
    cam.location = (float(centre[0]), float(centre[1]), 30.0)  # above the planes (3d layout)
    cam.data.type, cam.data.ortho_scale = "ORTHO", 30.0
    scene.camera = cam
    scene.render.engine = engine
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    if engine == "CYCLES":
        scene.cycles.samples = 2
    with_points = render_png(tmp_path / "points.png")
    util.find("objects", name, "nodes").hide_render = True
    assert np.array_equal(render_png(tmp_path / "none.png"), with_points)


@pytest.mark.slow
def test_a_map_texel_shows_its_neurons_colour(tmp_path, cnn, graph):
    """Flat layout, front camera: conv1 drawn as tiles (one per neuron) and as maps gives the
    same colour at every neuron's centre."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from nnviz_blender.scene import studio

    name = network.build_network(cnn, "cnn", edges="none", layout="flat", node_shape="tile")
    network.show_input(name, cnn, digit(cnn))
    w, h = 480, 360
    studio.setup(name, bpy.context.scene, camera_preset="front", samples=8, resolution=(w, h))
    # a camera on conv1 alone, so each neuron covers a few pixels
    scene = bpy.context.scene
    conv1 = graph.stage_named("conv1")
    pos = Network(name).positions()[conv1.start : conv1.start + 784]  # its first map
    centre = (pos.min(0) + pos.max(0)) / 2
    scene.camera.location = (float(centre[0]), -8.0, float(centre[2]))
    scene.camera.rotation_euler = (np.pi / 2, 0.0, 0.0)
    scene.camera.data.type = "ORTHO"
    scene.camera.data.ortho_scale = 4.0
    tiles = render_png(tmp_path / "tiles.png")
    maps.set_lods(name, ["neurons", "maps"] + ["neurons"] * 6)
    texels = render_png(tmp_path / "maps.png")
    spots = []
    for p in pos[::7]:
        q = world_to_camera_view(scene, scene.camera, Vector(p.tolist()))
        spots.append((int((1.0 - q.y) * h), int(q.x * w)))
    a = np.array([tiles[r, c, :3] for r, c in spots])
    b = np.array([texels[r, c, :3] for r, c in spots])
    assert a.std() > 0.05  # the map is not one flat colour
    np.testing.assert_allclose(b, a, atol=0.02)


@pytest.mark.parametrize("shape", ["cube", "sphere", "tile"])
def test_every_node_shape_instances_every_neuron(cnn, graph, shape):
    name = network.build_network(cnn, "cnn", edges="none", layout="flat", node_shape=shape)
    assert instance_count(name) == graph.node_count


def test_a_network_built_before_levels_of_detail_asks_for_a_rebuild(cnn):
    name = network.build_network(cnn, "cnn", edges="none")
    tree = util.find("node_groups", name, "nodes_tree")
    tree.nodes.remove(tree.nodes["Keep Points"])  # what such a tree lacks
    with pytest.raises(NetworkError, match="older version: rebuild it"):
        maps.set_lods(name, ["maps"] * 8)


def test_solid_viewports_colour_texels_by_material(tmp_path, cnn, graph):
    """Solid and Workbench colour by material: each face's material slot is 1 + its colour bin,
    a copy of the maps material whose viewport colour is the colormap there."""
    from nnviz_blender.scene import materials

    name = network.build_network(cnn, "cnn", edges="none", lod={"conv1": "maps"})
    network.show_input(name, cnn, digit(cnn))
    obj = util.find("objects", name, maps.role(1))
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    index = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", index)
    k = materials.PALETTE_SIZE
    level = maps.read_values(name, 1)["level"]
    assert np.array_equal(index, 1 + np.floor(level * (k - 1e-3)).astype(np.int32))
    assert len(set(index.tolist())) > 4
    slots = obj.data.materials
    assert len(slots) == k + 1
    stops = materials.COLORMAPS["original"]
    for i in (0, k - 1):
        want = materials.linear(materials.sample_colormap(stops, (i + 0.5) / k))
        np.testing.assert_allclose(tuple(slots[1 + i].diffuse_color), want, atol=1e-6)


def test_workbench_colours_keep_every_node_index(cnn, graph):
    """Solid Colors (Workbench renders) realize the instances into a mesh: maps and edges still
    read node i from the points."""
    from nnviz_blender.scene import solid

    name = network.build_network(cnn, "cnn", edges="topk:2", lod={"conv1": "maps"})
    values = core_graph.node_values(graph, forward(cnn, digit(cnn)))
    network.apply_values(name, values)
    solid.set_solid_colors(name, True)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    cubes = util.find("objects", name, "nodes").evaluated_get(depsgraph).data
    assert len(cubes.polygons) > 0  # the instances realized as a mesh, beside the points
    conv1 = graph.stage_named("conv1")
    shown = core_values.display(core_values.groups(graph, "map"), values)
    assert np.array_equal(maps.read_values(name, 1)["level"], shown.level[conv1.start : conv1.stop])
    pick = core_graph.select_edges(graph, "topk", 2)
    gain = edges.stage_gains(graph)[graph.node_stage[graph.dst]][pick]
    expected = graph.weight[pick] * values[graph.src[pick]] * gain
    np.testing.assert_allclose(network.read_glow(name), expected, rtol=1e-5, atol=1e-6)


def test_a_rebuild_keeps_the_levels_chosen(cnn):
    lods = ["neurons", "slab"] + ["neurons"] * 6
    name = network.build_network(cnn, "cnn", edges="none", lod={"conv1": "slab"})
    assert Network(name).lods == lods
    name = network.build_network(cnn, "cnn", edges="none", layout="flat")  # e.g. the panel
    assert Network(name).lods == lods
    assert util.find("objects", name, maps.role(1)) is not None
    name = network.build_network(cnn, "cnn", edges="none", lod={})  # automatic again
    assert Network(name).lods == ["neurons"] * 8

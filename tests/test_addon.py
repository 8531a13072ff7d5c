"""The add-on in the real Blender (bpy wheel): operators, live painting, robustness."""

import os

import numpy as np
import pytest
from conftest import MODELS

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

import nnviz_blender  # noqa: E402
from nnviz_blender import live  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.graph import build_graph, node_values  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402
from nnviz_blender.core.preprocess import prepare  # noqa: E402
from nnviz_blender.inputs import sample_digit  # noqa: E402
from nnviz_blender.scene import attributes, util  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def addon():
    nnviz_blender.register()
    yield
    nnviz_blender.unregister()


@pytest.fixture(autouse=True)
def clean_file():
    bpy.ops.wm.read_homefile(use_empty=True)
    yield
    live.stop_all()


def build(model="cnn", edges="topk", k=4, layout="3d"):
    s = bpy.context.scene.nnviz
    s.model, s.edges, s.edges_k, s.layout = model, edges, k, layout
    assert bpy.ops.nnviz.build() == {"FINISHED"}
    return s.network


def node_attr(name, attr="act"):
    return attributes.read(util.find("objects", name, "nodes").data, attr)


def paint_stroke(name, rows, cols):
    image = live.canvas_image(name)
    w, h = image.size
    px = np.zeros((h, w, 4), np.float32)
    px[..., 3] = 1.0
    px[h - rows.stop : h - rows.start, cols, :3] = 1.0  # rows counted from the top
    image.pixels.foreach_set(px.ravel())


def test_build_counts_and_settings():
    name = build("cnn", "topk", 4)
    assert name == "cnn"
    graph = build_graph(load_model(os.path.join(MODELS, "cnn.npz")))
    assert len(util.find("objects", name, "nodes").data.vertices) == graph.node_count == 9134
    fan_in = np.bincount(graph.dst, minlength=graph.node_count)
    edges = util.find("objects", name, "edges").data
    assert len(edges.curves) == int(np.minimum(fan_in, 4).sum())


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_live_digits_are_recognised(model):
    """Real MNIST test digits, scaled up on the canvas as a user would draw them."""
    name = build(model, "none")
    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    m = load_model(os.path.join(MODELS, f"{model}.npz"))
    graph = build_graph(m)
    for digit in range(10):
        image = sample_digit(digit, 1)
        live.paint_image(name, image)
        assert live.tick() == live.TICK_SECONDS
        assert live.prediction(name)[0][0] == str(digit)
        canvas = np.empty(256 * 256 * 4, np.float32)
        live.canvas_image(name).pixels.foreach_get(canvas)
        expected = node_values(graph, forward(m, prepare(m, canvas.reshape(256, 256, 4)[::-1])))
        np.testing.assert_allclose(node_attr(name), expected, atol=1e-6)


def test_idle_tick_changes_nothing():
    name = build("cnn", "none")
    bpy.ops.nnviz.live_start()
    live.paint_image(name, sample_digit(3))
    live.tick()
    updates = live._sessions[name].updates
    live.tick()
    live.tick()
    assert live._sessions[name].updates == updates


def test_empty_canvas_shows_no_answer():
    """Before any ink the network is idle (every node zero, no output label lit) and the panel
    says nothing is drawn; ink gives a prediction; Clear returns to the idle state."""
    from panel_stub import draw_panel

    from nnviz_blender.ui.panel import NNVIZ_PT_live

    name = build("cnn", "none")
    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    assert live.prediction(name) == []
    for attr in ("act", "level", "signed"):
        assert not node_attr(name, attr).any(), attr
    labels = [text for kind, text in draw_panel(NNVIZ_PT_live, bpy.context) if kind == "label"]
    assert "Nothing drawn: no prediction" in labels
    assert not any(text.startswith("Prediction") for text in labels)
    with pytest.raises(RuntimeError, match="Nothing is drawn"):  # nothing to explain yet
        bpy.ops.nnviz.inspect(source="INDEX")
    live.paint_image(name, sample_digit(5))
    live.tick()
    assert node_attr(name)[:1024].max() > 0.5
    assert live.prediction(name)[0][0] == "5"
    assert node_attr(name, "level")[-10:].argmax() == 5  # the "5" label lights up
    assert bpy.ops.nnviz.clear_canvas() == {"FINISHED"}
    assert live.prediction(name) == []
    assert not node_attr(name).any() and not node_attr(name, "level").any()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_vertical_stroke_is_a_one(model):
    name = build(model, "none")
    bpy.ops.nnviz.live_start()
    paint_stroke(name, slice(40, 216), slice(120, 140))
    live.tick()
    assert live.prediction(name)[0][0] == "1"


def test_load_sample_without_live():
    name = build("mlp", "none")
    assert bpy.ops.nnviz.load_sample(digit=8) == {"FINISHED"}
    assert live.prediction(name)[0][0] == "8"
    assert not live.is_live(name)


def test_deleting_canvas_or_network_stops_cleanly():
    name = build("cnn", "none")
    bpy.ops.nnviz.live_start()
    bpy.data.images.remove(live.canvas_image(name))
    assert live.tick() is None
    assert not live.is_live(name)
    assert "canvas was deleted" in live.take_messages()[0]

    bpy.ops.nnviz.live_start()  # makes a new canvas
    bpy.data.objects.remove(util.find("objects", name, "nodes"))
    live.tick()
    assert not live.is_live(name)
    assert "network was deleted" in live.take_messages()[0]


def test_remove_while_live():
    name = build("cnn", "topk", 2)
    bpy.ops.nnviz.live_start()
    assert bpy.ops.nnviz.remove() == {"FINISHED"}
    assert not live.is_live(name)
    assert not util.owned(name)


def test_save_reload_and_live_again(tmp_path):
    name = build("cnn", "topk", 2)
    bpy.ops.nnviz.live_start()
    live.paint_image(name, sample_digit(4))
    live.tick()
    path = str(tmp_path / "live.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    assert not live.is_live(name)  # load_pre ended the session
    assert util.find("objects", name, "nodes") is not None
    assert live.prediction(name)[0][0] == "4"
    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    assert live.prediction(name)[0][0] == "4"  # the packed canvas came back with the file
    live.paint_image(name, sample_digit(9))
    live.tick()
    assert live.prediction(name)[0][0] == "9"


def test_undo_and_redo_while_live():
    name = build("cnn", "none")
    bpy.ops.nnviz.live_start()
    bpy.ops.ed.undo_push(message="before sample")
    bpy.ops.nnviz.load_sample(digit=2)
    bpy.ops.ed.undo_push(message="after sample")
    for step in (bpy.ops.ed.undo, bpy.ops.ed.redo, bpy.ops.ed.undo):
        step()
        live.tick()  # must not crash or keep a stale reference
    assert util.find("objects", name, "nodes") is not None


def test_bad_model_file_builds_nothing(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    s = bpy.context.scene.nnviz
    s.model, s.model_path = "FILE", str(bad)
    before = {k: len(getattr(bpy.data, k)) for k in util.DATA_KINDS}
    with pytest.raises(RuntimeError, match="not an .npz model file"):
        bpy.ops.nnviz.build()
    assert {k: len(getattr(bpy.data, k)) for k in util.DATA_KINDS} == before


@pytest.mark.parametrize("stored", [True, False], ids=["stored", "on-demand"])
def test_inspect_and_trace_highlight(stored, monkeypatch):
    """The chosen node's connections at full detail, also where a big network computes them
    on demand instead of storing them (here the CNN made to behave as one)."""
    if not stored:
        from nnviz_blender.core import graph as core_graph

        monkeypatch.setattr(core_graph, "MATERIALISE_EDGES", 1000)
        assert core_graph.build_graph(load_model(os.path.join(MODELS, "cnn.npz"))).lazy
    name = build("cnn", "none")
    bpy.ops.nnviz.load_sample(digit=7)
    s = bpy.context.scene.nnviz
    s.inspect_stage, s.inspect_index = 3, 57  # conv2, 150 inputs
    assert bpy.ops.nnviz.inspect(source="INDEX") == {"FINISHED"}
    hl = util.find("objects", name, "highlight")
    assert len(hl.data.curves) == 150
    # Solid shows a curves object in its first material's viewport colour: warm, not grey
    r, g, b, a = hl.data.materials[0].diffuse_color
    assert r > g > b and a == 1.0
    s.inspect_stage, s.inspect_index = 7, 7
    assert bpy.ops.nnviz.trace() == {"FINISHED"}
    assert len(util.find("objects", name, "highlight").data.curves) > 3
    bpy.context.scene.cursor.location = util.find("objects", name, "nodes").data.vertices[5].co
    assert bpy.ops.nnviz.inspect(source="CURSOR") == {"FINISHED"}
    assert (s.inspect_stage, s.inspect_index) == (0, 5)
    with pytest.raises(RuntimeError, match="does not exist"):
        s.inspect_stage = 42
        bpy.ops.nnviz.inspect()


def test_layer_visibility_toggles():
    name = build("cnn", "all")
    graph = build_graph(load_model(os.path.join(MODELS, "cnn.npz")))
    bpy.ops.nnviz.load_sample(digit=3)
    from nnviz_blender.scene import network, visibility

    total = len(network.read_glow(name))
    assert total == len(graph.src)
    assert bpy.ops.nnviz.toggle_layer(stage=1) == {"FINISHED"}  # conv1
    assert visibility.hidden_stages(name) == [1]
    stage = graph.node_stage
    touching = int(((stage[graph.src] == 1) | (stage[graph.dst] == 1)).sum())
    assert len(network.read_glow(name)) == total - touching
    assert util.find("objects", name, "stage 1").hide_render

    depsgraph = bpy.context.evaluated_depsgraph_get()
    nodes = util.find("objects", name, "nodes")
    scales = [
        inst.matrix_world.to_scale().length
        for inst in depsgraph.object_instances
        if inst.is_instance
        and inst.parent
        and inst.parent.original == nodes
        and inst.object.type == "MESH"  # not the point cloud of every node beside them
    ]
    assert len(scales) == graph.node_count
    assert sum(s == 0 for s in scales) == graph.stages[1].size

    bpy.ops.nnviz.toggle_layer(stage=1)
    assert visibility.hidden_stages(name) == []
    assert len(network.read_glow(name)) == total
    assert not util.find("objects", name, "stage 1").hide_render


def test_panels_draw_every_state():
    from panel_stub import draw_panel

    from nnviz_blender.ui.panel import (
        NNVIZ_PT_inspect,
        NNVIZ_PT_layers,
        NNVIZ_PT_live,
        NNVIZ_PT_network,
    )

    ctx = bpy.context
    assert ("operator", "nnviz.build") in draw_panel(NNVIZ_PT_network, ctx)
    for panel in (NNVIZ_PT_live, NNVIZ_PT_inspect, NNVIZ_PT_layers):
        assert ("label", "Build a network first") in draw_panel(panel, ctx)
    name = build("cnn", "none")
    assert ("operator", "nnviz.live_start") in draw_panel(NNVIZ_PT_live, ctx)
    bpy.ops.nnviz.live_start()
    live.paint_image(name, sample_digit(6))
    live.tick()
    log = draw_panel(NNVIZ_PT_live, ctx)
    assert ("operator", "nnviz.live_stop") in log
    assert any(kind == "label" and text.startswith("Prediction: 6") for kind, text in log)
    s = bpy.context.scene.nnviz
    s.inspect_stage, s.inspect_index = 3, 57
    bpy.ops.nnviz.inspect(source="INDEX")
    log = draw_panel(NNVIZ_PT_inspect, ctx)
    assert any(kind == "label" and text.startswith("conv2 [57]") for kind, text in log)
    assert len([value for kind, value in log if kind == "icon"]) == 2  # patch and filter
    from nnviz_blender.ui import state

    patch = state._previews[f"{name}/patch"]  # 6 input maps of 5x5 side by side, 8x scale
    assert tuple(patch.image_size) == ((6 * 5 + 5) * 8, 5 * 8)
    assert max(patch.image_pixels_float) > 0.5
    layers = [text for kind, text in draw_panel(NNVIZ_PT_layers, ctx) if kind == "operator"]
    assert layers.count("nnviz.toggle_layer") == 8
    assert layers.count("nnviz.set_lod") == 8 * 3  # neurons, maps, slab per layer


def test_layer_level_of_detail_switches():
    from nnviz_blender.scene import maps
    from nnviz_blender.scene.handle import Network

    name = build("cnn", "topk")
    bpy.ops.nnviz.load_sample(digit=3)
    assert Network(name).stage_lods() == ["neurons"] * 8
    assert bpy.ops.nnviz.set_lod(stage=1, lod="maps") == {"FINISHED"}
    assert bpy.ops.nnviz.set_lod(stage=2, lod="slab") == {"FINISHED"}
    assert Network(name).lods == ["neurons", "maps", "slab"] + ["neurons"] * 5
    got = maps.read_values(name, 1)
    level = attributes.read(util.find("objects", name, "nodes").data, "level")
    assert np.array_equal(got["level"], level[got["node"]]) and got["level"].max() > 0
    assert bpy.ops.nnviz.toggle_layer(stage=1) == {"FINISHED"}
    assert util.find("objects", name, maps.role(1)).hide_render
    assert bpy.ops.nnviz.set_lod(stage=1, lod="neurons") == {"FINISHED"}
    assert util.find("objects", name, maps.role(1)) is None
    with pytest.raises(RuntimeError, match="layer 9 does not exist"):
        bpy.ops.nnviz.set_lod(stage=9, lod="maps")


def test_canvas_in_an_image_editor_in_paint_mode():
    """The pieces of Start's layout change that run without a window (area_split needs one;
    the real window is checked by the GUI check): which area is split, how an area becomes
    the canvas editor, and that Start in background mode changes no screen."""
    from nnviz_blender.ui import canvas_area

    name = build("mlp", "none")
    screen = bpy.data.screens["Layout"]
    types = [a.type for a in screen.areas]
    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    assert [a.type for a in screen.areas] == types  # no window: nothing was split
    assert canvas_area.close(name) is False  # nothing was opened, nothing is closed
    view = canvas_area.pick_view3d(screen.areas)
    assert view.type == "VIEW_3D"
    image = live.canvas_image(name)
    assert canvas_area.showing(screen.areas, image.name) is None
    canvas_area.show_canvas_in(view, image)
    space = view.spaces.active
    assert (view.type, space.ui_mode, space.image) == ("IMAGE_EDITOR", "PAINT", image)
    assert canvas_area.showing(screen.areas, image.name) == view
    # strokes in that editor change the very image the live tick reads
    paint_stroke(name, slice(40, 216), slice(120, 140))
    live.tick()
    assert live.prediction(name)[0][0] == "1"


def test_missing_brush_is_said_and_long_lines_wrap():
    from types import SimpleNamespace

    from panel_stub import draw_panel

    from nnviz_blender.ui.ops import NO_BRUSH, paint_brush
    from nnviz_blender.ui.panel import NNVIZ_PT_live, line_width, wrap

    build("mlp", "none")
    bpy.ops.nnviz.live_start()
    text = " ".join(t for kind, t in draw_panel(NNVIZ_PT_live, bpy.context) if kind == "label")
    # the bpy 4.2 wheel has its brushes in the file; 4.5 and 5.0 take them from asset
    # libraries the wheel does not ship: exactly the case of a Blender without brush assets
    assert (NO_BRUSH in text) == (paint_brush(bpy.context) is None)

    prefs = bpy.context.preferences
    narrow = SimpleNamespace(region=SimpleNamespace(width=220), preferences=prefs)
    wide = SimpleNamespace(region=SimpleNamespace(width=600), preferences=prefs)
    assert 16 <= line_width(narrow) < line_width(wide)
    lines = wrap(NO_BRUSH, line_width(narrow))
    assert len(lines) > 3 and all(len(line) <= line_width(narrow) for line in lines)
    assert " ".join(lines) == NO_BRUSH


def test_a_second_network_goes_beside_the_first():
    """CNN then MLP (each with its canvas): their world boxes (edges, labels, canvas) do not
    overlap; rebuilding a network keeps its place; the panel's network list offers both."""
    from nnviz_blender.scene import network

    cnn = build("cnn", "topk", 2)
    bpy.ops.nnviz.live_start()
    s = bpy.context.scene.nnviz
    mlp = build("mlp", "topk", 2)
    s.network = mlp
    bpy.ops.nnviz.live_start()
    assert sorted(network.list_networks()) == ["cnn", "mlp"]
    (lo_a, hi_a), (lo_b, hi_b) = network.bounds(cnn), network.bounds(mlp)
    overlap = np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)
    assert overlap.min() < 0, (lo_a, hi_a, lo_b, hi_b)
    assert hi_a[0] < lo_b[0]  # the MLP to the right of the CNN, canvas included
    before = attributes.read_positions(util.find("objects", mlp, "nodes").data)
    build("mlp", "topk", 2)
    after = attributes.read_positions(util.find("objects", mlp, "nodes").data)
    np.testing.assert_array_equal(before, after)


def seen_by_the_view(area, points):
    """For each point: between the 3D viewport's clip start and end, and inside the part of
    its region no header, toolbar or sidebar covers (viewport.visible_rect), through its lens on
    the viewport's sensor (which spans the region's longer side)."""
    from mathutils import Vector

    from nnviz_blender.scene.viewport import VIEWPORT_SENSOR, visible_rect

    space = area.spaces.active
    r3d = space.region_3d
    region = next(r for r in area.regions if r.type == "WINDOW")
    x0, y0, x1, y1 = visible_rect(area)
    rot = r3d.view_rotation.to_matrix()
    eye = r3d.view_location + rot @ Vector((0.0, 0.0, r3d.view_distance))
    scale = max(region.width, region.height) / 2 / (VIEWPORT_SENSOR / (2 * space.lens))
    seen = []
    for p in points:
        local = rot.transposed() @ (Vector(p) - eye)  # the view looks along -z
        depth = -local.z
        px = region.width / 2 + local.x / depth * scale
        py = region.height / 2 + local.y / depth * scale
        seen.append(space.clip_start < depth < space.clip_end and x0 <= px <= x1 and y0 <= py <= y1)
    return np.array(seen)


def test_the_visible_part_of_a_viewport_leaves_out_its_headers_and_toolbar():
    """Whatever regions a Blender line draws over the view (the toolbar; the headers where they
    are transparent), the visible part meets none of them and leaves out nothing else."""
    from nnviz_blender.scene.viewport import visible_rect

    bpy.ops.wm.read_homefile(app_template="")
    area = next(a for a in bpy.data.screens["Layout"].areas if a.type == "VIEW_3D")
    main = next(r for r in area.regions if r.type == "WINDOW")
    x0, y0, x1, y1 = visible_rect(area)
    over = []  # the other regions' rectangles within the view, in its own pixels
    for r in area.regions:
        left, bottom = r.x - main.x, r.y - main.y
        box = (max(left, 0), max(bottom, 0), min(left + r.width, main.width))
        box += (min(bottom + r.height, main.height),)
        if (
            r.type != "WINDOW"
            and r.width > 1
            and r.height > 1
            and box[0] < box[2]
            and box[1] < box[3]
        ):
            over.append((r.type, box))
    assert "TOOLS" in {kind for kind, _ in over}  # the default layout's toolbar is drawn over it
    for _, (a0, b0, a1, b1) in over:
        assert a1 <= x0 or a0 >= x1 or b1 <= y0 or b0 >= y1  # none reaches into the part
    boxes = [b for _, b in over]
    for edge, full, covered in (
        (x0, 0, [b[2] for b in boxes]),
        (y0, 0, [b[3] for b in boxes]),
        (x1, main.width, [b[0] for b in boxes]),
        (y1, main.height, [b[1] for b in boxes]),
    ):
        assert edge in [full, *covered]  # each side is the view's own or a region's edge


def box_corners(box):
    lo, hi = box
    return [[(lo, hi)[i >> k & 1][k] for k in range(3)] for i in range(8)]


def test_build_frames_the_network_in_the_viewport():
    """A user builds with the default Cube in the middle: the 3D viewport turns to the
    network's three-quarter view with all of it in sight, and the Cube stays."""
    from nnviz_blender.scene import network

    bpy.ops.wm.read_homefile(app_template="")  # the default scene: Cube, Camera, Light
    area = next(a for a in bpy.data.screens["Layout"].areas if a.type == "VIEW_3D")
    r3d = area.spaces.active.region_3d
    cube = bpy.data.objects["Cube"].location.copy()
    name = build("cnn", "topk", 4)
    corners = box_corners(network.bounds(name))
    assert seen_by_the_view(area, corners).all()
    lo, hi = network.bounds(name)
    assert np.allclose(r3d.view_location, (lo + hi) / 2, atol=0.2 * np.linalg.norm(hi - lo))
    assert "Cube" in bpy.data.objects and bpy.data.objects["Cube"].location == cube


@pytest.mark.slow
def test_build_frames_a_resnet18_whole(big_onnx):
    """ResNet-18 at 64x64 (about 100 units tall): Build frames all of it, clip end included."""
    from nnviz_blender.scene import network

    bpy.ops.wm.read_homefile(app_template="")
    s = bpy.context.scene.nnviz
    s.model, s.model_path = "FILE", big_onnx("r18_64")
    area = next(a for a in bpy.data.screens["Layout"].areas if a.type == "VIEW_3D")
    r3d = area.spaces.active.region_3d
    before = r3d.view_location.copy(), r3d.view_rotation.copy(), r3d.view_distance
    name = build("FILE", "topk", 8)
    lo, hi = network.bounds(name)
    assert np.linalg.norm(hi - lo) > 100
    assert seen_by_the_view(area, box_corners((lo, hi))).all()
    r3d.view_location, r3d.view_rotation, r3d.view_distance = before
    assert not seen_by_the_view(area, box_corners((lo, hi))).all()  # the view Blender opens with


def test_start_frames_the_view_only_once_the_split_area_is_laid_out():
    """A split changes an area at once and its regions at the next redraw (a second or two for a
    big network on software GL): framing before that fits the old, wider size."""
    from types import SimpleNamespace

    from nnviz_blender.ui import canvas_area

    bpy.ops.wm.read_homefile(app_template="")
    area = canvas_area.pick_view3d(bpy.data.screens["Layout"].areas)
    assert canvas_area.has_its_size(area)  # a laid-out area: its region fills it
    region = canvas_area.window_region(area)
    stale = SimpleNamespace(type="WINDOW", width=region.width, height=region.height)
    split = SimpleNamespace(width=int(area.width * (1 - canvas_area.SHARE)), height=area.height)
    split.regions = [stale]  # the view's half of a split, its region still the old size
    assert not canvas_area.has_its_size(split)
    stale.width = split.width
    assert canvas_area.has_its_size(split)

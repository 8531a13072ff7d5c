"""Baked animations in the real Blender: farm-safe files, size, recording, camera, figures, CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import MODELS
from panel_stub import draw_panel

bpy = pytest.importorskip("bpy")
pytestmark = pytest.mark.blender

import nnviz_blender  # noqa: E402
from nnviz_blender import live  # noqa: E402
from nnviz_blender.animation import bake, camera, passes, record, strokes  # noqa: E402
from nnviz_blender.animation import schedule as sched  # noqa: E402
from nnviz_blender.cli import main  # noqa: E402
from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.graph import build_graph, node_values  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402
from nnviz_blender.core.preprocess import prepare  # noqa: E402
from nnviz_blender.core.values import key_values  # noqa: E402
from nnviz_blender.inputs import sample_digit  # noqa: E402
from nnviz_blender.scene import attributes, legend, network, studio, trees, util  # noqa: E402

CNN = os.path.join(MODELS, "cnn.npz")


@pytest.fixture(scope="module")
def cnn():
    return load_model(CNN)


@pytest.fixture(scope="module")
def graph(cnn):
    return build_graph(cnn)


@pytest.fixture(autouse=True)
def clean_file():
    bpy.ops.wm.read_homefile(use_empty=True)
    network.forget_cache()
    record.forget_all()
    yield
    live.stop_all()


def build(model, edges="none"):
    return network.build_network(model, "cnn", edges=edges)


def digits_values(model, graph, digits):
    xs = np.stack([prepare(model, sample_digit(d)) for d in digits])
    return xs, key_values(model, graph, xs)


def live_values(name, model, x):
    """What the live path (no bake) writes for input x: act, level, signed from the mesh."""
    network.show_input(name, model, x)
    mesh = util.find("objects", name, "nodes").data
    return {a: attributes.read(mesh, a).copy() for a in ("act", "level", "signed")}


# --- baking -----------------------------------------------------------------------------------


def test_baked_frames_equal_the_live_view(cnn, graph):
    name = build(cnn)
    xs, kv = digits_values(cnn, graph, [3, 8, 1])
    live_states = [live_values(name, cnn, x) for x in xs]
    s = sched.sequence(3, fps=12, hold=0.5, transition=0.5)
    info = bake.bake(name, graph, kv, s, wave=0.6)
    values = util.find("objects", name, "node_values")  # what everything reads
    assert [m.name for m in values.modifiers] == [bake.MODIFIER]
    assert not values.visible_get() and values.hide_render
    assert (info.frame_start, info.frame_end) == (s.frame_start, s.frame_end)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (s.frame_start, s.frame_end)
    for k in range(3):
        for f in (s.hold_frames(k)[0], s.hold_frames(k)[-1]):
            scene.frame_set(int(f))
            got = bake.read_values(name)
            for a in ("act", "level", "signed"):
                assert np.array_equal(got[a], live_states[k][a]), (k, f, a)
    for f in range(s.hold_frames(0)[-1] + 1, s.hold_frames(1)[0]):  # a transition, with wave
        scene.frame_set(f)
        want = sched.frame_values(s, kv, graph.node_stage, f, wave=0.6)
        assert np.allclose(bake.read_values(name)["act"], want, atol=2e-6)
    # the wave: halfway through, the input has arrived and the output has not started
    mid = (s.hold_frames(0)[-1] + s.hold_frames(1)[0]) // 2
    scene.frame_set(int(mid))
    act = bake.read_values(name)["act"]
    first, last = graph.stages[0], graph.stages[-1]
    assert not np.array_equal(act[first.start : first.stop], kv[0][first.start : first.stop])
    assert np.array_equal(act[last.start : last.stop], kv[0][last.start : last.stop])


def test_bake_follows_retimed_keyframes_and_can_be_switched_off(cnn, graph):
    name = build(cnn)
    xs, kv = digits_values(cnn, graph, [2, 5])
    s = sched.sequence(2, fps=10, hold=1.0, transition=0.0)
    bake.bake(name, graph, kv, s)
    scene = bpy.context.scene
    scene.frame_set(15)
    assert np.array_equal(bake.read_values(name)["act"], kv[1])
    assert bake.set_enabled(name, False) and not bake.is_enabled(name)
    network.apply_values(name, kv[0])
    assert np.array_equal(bake.read_values(name)["act"], kv[0])  # live values show again
    bake.set_enabled(name, True)
    assert bake.info(name) == {"keys": 2, "frame_start": 1, "frame_end": 20, "wave": 0.0}


def test_bake_checks_its_input(cnn, graph):
    name = build(cnn)
    s = sched.sequence(2)
    with pytest.raises(bake.BakeError, match="shape"):
        bake.bake(name, graph, np.zeros((2, 5), np.float32), s)
    with pytest.raises(bake.BakeError, match="key states"):
        bake.bake(name, graph, np.zeros((3, graph.node_count), np.float32), s)
    bad = np.zeros((2, graph.node_count), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(bake.BakeError, match="NaN"):
        bake.bake(name, graph, bad, s)
    with pytest.raises(bake.BakeError, match="no network"):
        bake.bake("nope", graph, np.zeros((2, graph.node_count), np.float32), s)
    assert bake.info(name) is None  # a failed bake leaves nothing behind


def test_rebake_remove_and_remove_network_leave_nothing(cnn, graph):
    name = build(cnn)
    _, kv = digits_values(cnn, graph, [0, 1, 2])
    bake.bake(name, graph, kv[:2], sched.sequence(2))
    bake.bake(name, graph, kv, sched.sequence(3))  # replaces
    nodes = util.find("objects", name, "node_values")
    assert [m.name for m in nodes.modifiers].count(bake.MODIFIER) == 1
    assert len([o for o in bpy.data.objects if o.get(util.ROLE) == "bake_table"]) == 1
    assert bake.remove(name) and not bake.remove(name)
    assert nodes.modifiers.get(bake.MODIFIER) is None
    assert nodes.animation_data is None or nodes.animation_data.action is None
    assert not [a for a in bpy.data.actions if a.get(util.TAG) == name]
    roles = {"bake_table", "bake_constants", "bake_tree"}
    assert not [b for b in bpy.data.meshes if b.get(util.ROLE) in roles]
    bake.bake(name, graph, kv, sched.sequence(3))
    network.remove_network(name)
    for kind in ("objects", "meshes", "node_groups"):
        assert not [b for b in getattr(bpy.data, kind) if b.get(util.TAG) == name], kind


# --- the render farm: a fresh Blender without the add-on ----------------------------------------

FARM = r"""
import importlib.util, json, sys
import numpy as np
import bpy

blend, frames, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
values = next(o for o in bpy.data.objects if o.get("nnviz_role") == "node_values")
edges = next(o for o in bpy.data.objects if o.get("nnviz_role") == "edges")

def read(data, name, dtype=np.float32):
    attr = data.attributes[name]
    buf = np.empty(len(attr.data), dtype)
    attr.data.foreach_get("value", buf)
    return buf

result = {}
for f in frames:
    scene.frame_set(f)
    e = edges.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    result[f"glow_{f}"] = read(e, "glow")
    result[f"src_{f}"] = read(e, "src", np.int32)
    d = values.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    for name in ("act", "level", "signed"):
        result[f"{name}_{f}"] = read(d, name)
np.savez(out, **result)
addon = importlib.util.find_spec("nnviz_blender") is not None
loaded = sorted(m for m in sys.modules if "nnviz" in m)
print(json.dumps({"addon_importable": addon, "loaded": loaded}))
"""

RENDER = r"""
import sys
import bpy

blend, out = sys.argv[1], sys.argv[2]
bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
scene.render.resolution_x, scene.render.resolution_y = 64, 36
scene.cycles.samples = 1
for f in map(int, sys.argv[3:]):
    scene.frame_set(f)
    scene.render.filepath = f"{out}_{f}.png"
    bpy.ops.render.render(write_still=True)
"""


def run_fresh(script, *args):
    """Run `script` in a new Python with bpy but neither the add-on nor the repo on its path."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(sys.executable),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_farm_file_plays_without_the_addon(cnn, graph, tmp_path):
    name = build(cnn, edges="topk:2")
    xs, kv = digits_values(cnn, graph, [4, 9])
    s = sched.sequence(2, fps=12, hold=0.5, transition=0.5)
    bake.bake(name, graph, kv, s, wave=0.5)
    live_states = []
    for x in xs:
        bake.set_enabled(name, False)
        live_states.append(live_values(name, cnn, x))
        bake.set_enabled(name, True)
    blend = tmp_path / "farm.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    hold0, hold1 = int(s.hold_frames(0)[2]), int(s.hold_frames(1)[-1])
    between = int(s.hold_frames(0)[-1]) + 3
    frames = [hold0, between, hold1]
    out = tmp_path / "farm.npz"
    stdout = run_fresh(FARM, blend, json.dumps(frames), out)
    report = json.loads(next(ln for ln in stdout.splitlines() if ln.startswith('{"addon')))
    assert report == {"addon_importable": False, "loaded": []}
    got = np.load(out)
    for f, k in ((hold0, 0), (hold1, 1)):
        for a in ("act", "level", "signed"):
            assert np.array_equal(got[f"{a}_{f}"], live_states[k][a]), (f, a)
    want = sched.frame_values(s, kv, graph.node_stage, between, wave=0.5)
    assert 0 < s.state(between)[2] < 1
    assert np.allclose(got[f"act_{between}"], want, atol=2e-6)
    # the edges follow the baked values: glow = weight x act[src] x gain
    curves = util.find("objects", name, "edges").data
    weight = attributes.read(curves, "weight")
    gain = attributes.read(curves, "gain")
    for f in frames:
        act = got[f"act_{f}"]
        src = got[f"src_{f}"]
        expected = (act[src] * weight).astype(np.float32) * gain
        assert np.allclose(got[f"glow_{f}"], expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(got[f"glow_{hold0}"], got[f"glow_{hold1}"])


@pytest.mark.slow
def test_farm_renders_two_different_frames(cnn, graph, tmp_path):
    name = build(cnn)
    _, kv = digits_values(cnn, graph, [1, 0])
    s = sched.sequence(2, fps=4, hold=0.5, transition=0.0)
    bake.bake(name, graph, kv, s)
    studio.setup(name, engine="cycles", samples=1, resolution=(64, 36), layered=False)
    blend = tmp_path / "render.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    run_fresh(RENDER, blend, tmp_path / "frame", 1, s.frame_end)
    pixels = []
    for f in (1, s.frame_end):
        image = bpy.data.images.load(str(tmp_path / f"frame_{f}.png"))
        buf = np.empty(64 * 36 * 4, np.float32)
        image.pixels.foreach_get(buf)
        pixels.append(buf)
    assert np.abs(pixels[0] - pixels[1]).mean() > 1e-3


def test_250_cnn_frames_add_less_than_20_mb(cnn, graph, tmp_path):
    name = build(cnn)
    plain = tmp_path / "plain.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(plain))
    rng = np.random.default_rng(0)
    x = (rng.random((250, 1, 32, 32)) * (rng.random((250, 1, 32, 32)) > 0.6)).astype(np.float32)
    kv = node_values(graph, forward(cnn, x))
    s = sched.sequence(250, fps=24, hold=1 / 24, transition=0)  # every frame its own state
    assert s.frame_count == 250
    info = bake.bake(name, graph, kv, s)
    assert info.seconds < 5.0
    baked = tmp_path / "baked.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(baked))
    growth = os.path.getsize(baked) - os.path.getsize(plain)
    assert 0 < growth < 20e6, growth
    bpy.context.scene.frame_set(137)
    assert np.array_equal(bake.read_values(name)["act"], kv[136])


# --- recording --------------------------------------------------------------------------------


def _seven(steps):
    """A hand-drawn-looking '7' (28x28) revealed stroke by stroke."""
    img = np.zeros((28, 28), np.float32)
    img[5:8, 6:22] = 1.0
    for r in range(7, 24):
        c = 21 - (r - 7) * 8 // 16
        img[r, c - 1 : c + 2] = 1.0
    return strokes.reveal(img, steps)


def test_record_captures_strokes_and_bakes_them(cnn, graph):
    name = network.build_network(cnn, "cnn", edges="none")
    live.start(name)
    rec = record.start(name, rate=10, now=100.0)
    assert rec.count == 1  # the empty canvas
    drawing = _seven(6)
    t = 100.0
    image = live.canvas_image(name)
    w, h = image.size
    for step in drawing:
        t += 0.25
        live.paint_image(name, step)
        assert record.capture(name, now=t)
        pixels = attributes.read_pixels(image)
        # what is kept is the network input, exactly what live drawing feeds the network
        assert np.array_equal(rec.inputs[-1], prepare(cnn, pixels.reshape(h, w, 4)[::-1]))
        t += 0.1
        assert not record.capture(name, now=t)  # nothing changed: nothing stored
    rec = record.stop(name, now=t + 0.5)
    assert not record.is_recording(name) and rec.count == 1 + 6 + 1
    assert np.array_equal(rec.inputs[-2], rec.inputs[-1])  # held until Stop
    info = record.bake_recording(name, fps=24, end_hold=1.0)
    times, inputs = record.trimmed(rec)
    assert len(inputs) == rec.count - 1  # the hold until Stop is the bake's end hold
    s, kept = sched.timed(times, fps=24, end_hold=1.0)
    assert info.keys == s.n_keys and (info.frame_start, info.frame_end) == (1, s.frame_end)
    ink = []
    scene = bpy.context.scene
    for j, i in enumerate(kept):
        scene.frame_set(s.key_frame(j))
        if j == 0:  # the empty canvas: the idle state, as live drawing shows it
            want = np.zeros(graph.node_count, np.float32)
        else:
            want = node_values(graph, forward(cnn, inputs[i]))
        got = bake.read_values(name)["act"]
        assert np.array_equal(got, want), j
        ink.append(float(got[: graph.stages[0].size].sum()))
    # the frames follow the strokes: empty canvas first, then a new drawing state at every
    # capture (each exactly the live view of what was on the canvas), the finished 7 last
    assert ink[0] == 0 and np.all(np.diff(ink) != 0) and ink[-1] > 0
    probs = got[graph.stages[-1].start :]
    assert cnn.labels[int(np.argmax(probs))] == "7"


def test_bake_trims_idle_time_and_cuts_pauses(cnn, graph):
    """5 s idle before the first stroke, a 4 s pause, 6 s before Stop: the bake starts the
    strokes after LEAD s, the pause lasts max_pause s, and the end hold follows the last stroke."""
    name = network.build_network(cnn, "cnn", edges="none")
    live.start(name)
    record.start(name, rate=10, now=0.0)
    drawing = _seven(4)
    at = [5.0, 5.25, 9.25, 9.5]  # two strokes, a 4 s pause between them
    for t, step in zip(at, drawing, strict=True):
        live.paint_image(name, step)
        assert record.capture(name, now=t)
    rec = record.stop(name, now=15.5)
    assert rec.duration == 15.5
    times, inputs = record.trimmed(rec, max_pause=1.0)
    lead = sched.LEAD
    np.testing.assert_allclose(times, [0, lead, lead + 0.25, lead + 1.25, lead + 1.5])
    assert len(inputs) == 5
    info = record.bake_recording(name, fps=24, end_hold=1.0, max_pause=1.0)
    assert info.frame_end - info.frame_start == round((lead + 1.5) * 24) + 24
    np.testing.assert_allclose(sched.compact([0, 1, 2], max_pause=0.5, lead=0.1), [0, 0.1, 0.6])
    with pytest.raises(sched.ScheduleError):
        sched.compact([0, 1], max_pause=0)


def test_recording_is_saved_with_the_file(cnn, tmp_path):
    name = network.build_network(cnn, "cnn", edges="none")
    live.ensure_canvas(name)
    record.start(name, now=0.0)
    live.paint_image(name, _seven(2)[0])
    record.capture(name, now=0.5)
    rec = record.stop(name, now=1.0)
    path = tmp_path / "rec.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    record.forget_all()
    again = record.recording(name)
    assert again is not None and again.times == rec.times
    assert all(np.array_equal(a, b) for a, b in zip(again.inputs, rec.inputs, strict=True))
    with pytest.raises(record.RecordError, match="not recording"):
        record.capture(name)


# --- camera, figure, passes -------------------------------------------------------------------


def test_camera_orbit_and_dolly(cnn):
    name = build(cnn)
    legend.add(name)
    studio.setup(name, engine="workbench", resolution=(320, 180))
    scene = bpy.context.scene
    title = util.find("objects", name, "legend title")
    scene.frame_set(1)
    title_home = np.array(title.matrix_world)
    camera.animate(name, "orbit", 1, 48)
    scene.frame_set(1)
    np.testing.assert_allclose(np.array(title.matrix_world), title_home, atol=1e-5)
    cam = scene.camera
    pivot = util.find("objects", name, "camera_pivot")
    spots = []
    for f in (1, 13, 25, 49):
        scene.frame_set(f)
        spots.append(np.array(cam.matrix_world.translation))
    radius = [np.linalg.norm((p - np.array(pivot.location))[:2]) for p in spots]
    assert np.allclose(radius, radius[0], rtol=1e-4)
    assert np.linalg.norm(spots[0] - spots[1]) > 1.0
    assert np.allclose(spots[0], spots[3], atol=1e-4)  # frame end + 1 closes the loop
    opposite = (spots[0] + spots[2])[:2] / 2  # half a turn: the other side of the pivot
    assert np.allclose(opposite, np.array(pivot.location)[:2], atol=1e-3)
    scene.frame_set(25)  # half-way round, the legend keeps its place in the camera's view
    to_cam = np.array(cam.matrix_world.inverted() @ title.matrix_world)
    scene.frame_set(1)
    np.testing.assert_allclose(
        np.array(cam.matrix_world.inverted() @ title.matrix_world), to_cam, atol=1e-4
    )
    camera.animate(name, "dolly", 1, 48)
    assert util.find("objects", name, "camera_pivot") is None and cam.parent is None
    assert title.parent is None
    np.testing.assert_allclose(np.array(title.matrix_world), title_home, atol=1e-5)
    scene.frame_set(1)
    near0 = np.array(cam.matrix_world.translation)
    scene.frame_set(48)
    near1 = np.array(cam.matrix_world.translation)
    centre = studio.scene_points(name).mean(axis=0)
    assert np.linalg.norm(near1 - centre) < np.linalg.norm(near0 - centre)
    with pytest.raises(camera.CameraError):
        camera.animate(name, "spin", 1, 48)


def test_probability_bars_follow_the_baked_output(cnn, graph):
    name = build(cnn)
    _, kv = digits_values(cnn, graph, [1, 7])
    made = legend.add(name)
    assert any("bars" in n for n in made) and any("legend" in n for n in made)
    assert util.find("objects", name, "size 1").data.body == "6 × 28 × 28"
    s = sched.sequence(2, fps=4, hold=0.5, transition=0)
    bake.bake(name, graph, kv, s)
    bars = util.find("objects", name, "bars")
    height = trees.get_modifier_input(bars.modifiers[legend.BARS_MODIFIER], "Height")
    scene = bpy.context.scene
    out = graph.stages[-1]
    for f, k in ((1, 0), (s.frame_end, 1)):
        scene.frame_set(f)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        found = [
            (*inst.matrix_world.translation[:2], inst.matrix_world.to_scale().z)
            for inst in depsgraph.object_instances
            if inst.is_instance and inst.parent and inst.parent.original == bars
        ]
        assert len(found) == 2 * out.size  # a bar and a track (just behind it) per class
        front = min(y for _, y, _ in found)
        bar = sorted((x, z) for x, y, z in found if y == front)
        track = [z for x, y, z in found if y != front]
        assert np.allclose(track, height)
        probs = kv[k][out.start :]
        assert np.allclose([z for _, z in bar], height * probs, atol=1e-6)
    assert legend.remove(name) > 0
    assert util.find("objects", name, "bars") is None
    assert util.find("collections", name, "figure_collection") is None


def test_compositing_layers(cnn):
    name = build(cnn, edges="topk:1")
    legend.add(name, bars=False)
    studio.setup(name, engine="cycles", samples=1, resolution=(64, 36))
    scene = bpy.context.scene
    layers = passes.split_layers(name, scene)
    assert layers == list(passes.LAYERS)
    assert scene.render.film_transparent and not scene.render.use_compositing
    assert scene.render.image_settings.file_format == "OPEN_EXR_MULTILAYER"
    fig = util.find("collections", name, "figure_collection")
    assert any(o.get(util.ROLE) == "stage 0" for o in fig.objects)  # labels gathered
    edges_layer = scene.view_layers["NNViz Edges"]
    nodes_coll = util.find("collections", name, "nodes_collection")
    lc = util.layer_collection(edges_layer.layer_collection, nodes_coll)
    assert lc.holdout and not lc.exclude
    passes.remove_layers(name, scene)
    assert len(scene.view_layers) == 1


# --- the command line -------------------------------------------------------------------------


def animate(*argv):
    return main(["animate", *map(str, argv)])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--inputs", "sample:1,,sample:2"], "comma-separated"),
        (["--inputs", "nope.npy"], "not found"),
        (["--frames", "1-999"], "outside the animation"),
        (["--frames", "x"], "bad frame range"),
        (["--out", "clip.gif"], "directory"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    base = ["--model", CNN, "--inputs", "sample:1", "--out", tmp_path / "f", "--no-render"]
    assert animate(*base, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_cli_saves_a_farm_ready_blend(tmp_path, capsys):
    blend = tmp_path / "a.blend"
    code = animate(
        "--model", CNN, "--inputs", "sample:2,sample:6", "--out", tmp_path / "f",
        "--hold", "0.25", "--transition", "0.25", "--fps", "8", "--wave", "--draw", "0.5",
        "--camera", "orbit", "--edges", "none", "--legend", "--bars",
        "--save-blend", blend, "--no-render",
    )  # fmt: skip
    assert code == 0 and blend.is_file()
    out = capsys.readouterr().out
    assert "predictions sample:2: 2, sample:6: 6" in out
    bake_info = bake.info("cnn")
    assert bake_info["keys"] == 2 * 2 and bake_info["wave"] == pytest.approx(0.7)


@pytest.mark.slow
def test_cli_renders_frames_and_video(tmp_path, capsys):
    code = animate(
        "--model", CNN, "--inputs", "sample:3,sample:5", "--out", tmp_path / "frames",
        "--hold", "0.25", "--transition", "0.25", "--fps", "8", "--frames", "2-3",
        "--resolution", "64x36", "--samples", "1", "--edges", "none",
    )  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(tmp_path / "frames")) == ["frame_0002.png", "frame_0003.png"]
    out = capsys.readouterr().out
    assert "frame 3 done (2/2" in out and "left)" in out
    video = tmp_path / "clip.mp4"
    code = animate(
        "--model", CNN, "--inputs", "sample:3", "--out", video, "--hold", "0.5", "--fps", "8",
        "--resolution", "64x36", "--samples", "1", "--edges", "none", "--engine", "cycles",
    )  # fmt: skip
    assert code == 0 and video.stat().st_size > 1000


# --- the add-on's operators -------------------------------------------------------------------


@pytest.fixture
def addon():
    nnviz_blender.register()
    from nnviz_blender.ui import anim_ops, anim_panel

    own = not hasattr(bpy.types.Scene, "nnviz_anim")  # until ui/__init__ lists them
    if own:
        anim_ops.register()
        anim_panel.register()
    yield
    if own:
        anim_panel.unregister()
        anim_ops.unregister()
    nnviz_blender.unregister()


def test_operators_record_bake_and_render(addon, cnn, graph, tmp_path):
    name = network.build_network(cnn, "cnn", edges="none")
    scene = bpy.context.scene
    scene.nnviz.network = name
    s = scene.nnviz_anim
    s.source, s.inputs, s.hold, s.transition = "INPUTS", "sample:1,sample:4", 0.25, 0.25
    s.camera = "orbit"
    assert bpy.ops.nnviz.bake_sequence() == {"FINISHED"}
    assert bake.info(name)["keys"] == 2 and util.find("objects", name, "camera_pivot")
    s.inputs = "sample:1,,"
    with pytest.raises(RuntimeError):
        bpy.ops.nnviz.bake_sequence()

    assert bpy.ops.nnviz.record_start() == {"FINISHED"}
    assert record.is_recording(name) and live.is_live(name) and not bake.is_enabled(name)
    live.paint_image(name, _seven(1)[0])
    record.capture(name)
    assert bpy.ops.nnviz.record_stop() == {"FINISHED"}
    with pytest.raises(RuntimeError):
        bpy.ops.nnviz.record_stop()
    s.source, s.camera = "RECORDING", "fixed"
    assert bpy.ops.nnviz.bake_sequence() == {"FINISHED"}
    assert bake.is_enabled(name)
    assert bpy.ops.nnviz.figure() == {"FINISHED"}
    assert util.find("objects", name, "bars") is not None
    assert bpy.ops.nnviz.figure(remove=True) == {"FINISHED"}

    scene.render.resolution_x, scene.render.resolution_y = 32, 18
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.frame_end = scene.frame_start + 1
    s.output = str(tmp_path / "out") + os.sep
    assert bpy.ops.nnviz.render_animation() == {"FINISHED"}
    assert len(os.listdir(tmp_path / "out")) == 2
    assert bpy.ops.nnviz.remove_bake() == {"FINISHED"}
    assert bake.info(name) is None


def test_panel_draws_every_state(addon, cnn, graph):
    from nnviz_blender.ui.anim_panel import NNVIZ_PT_animation

    def draw():
        return draw_panel(NNVIZ_PT_animation, bpy.context)

    assert ("label", "Build a network first") in draw()
    name = network.build_network(cnn, "cnn", edges="none")
    bpy.context.scene.nnviz.network = name
    assert ("operator", "nnviz.record_start") in draw()
    record.start(name, now=0.0)
    assert ("operator", "nnviz.record_stop") in draw()
    record.stop(name, now=1.0)
    bpy.context.scene.nnviz_anim.source = "INPUTS"
    _, kv = digits_values(cnn, graph, [1])
    bake.bake(name, graph, kv, sched.sequence(1))
    log = draw()
    assert ("operator", "nnviz.remove_bake") in log and ("prop", "inputs") in log
    assert any(t == "label" and text.startswith("Baked: 1 states") for t, text in log)


def test_remove_network_leaves_no_orphan_data(cnn, graph):
    """An animated network (bake + camera move) removed: bpy.data counts are as before."""
    kinds = sorted(set(util.DATA_KINDS) | {"actions", "meshes", "objects", "node_groups"})
    before = {k: len(getattr(bpy.data, k)) for k in kinds}
    name = build(cnn)
    _, kv = digits_values(cnn, graph, [0, 1])
    bake.bake(name, graph, kv, sched.sequence(2))
    studio.setup(name, engine="workbench", resolution=(320, 180))
    camera.animate(name, "orbit", 1, 48)
    assert len([a for a in bpy.data.actions if a.get(util.TAG) == name]) == 2
    network.remove_network(name)
    assert {k: len(getattr(bpy.data, k)) for k in kinds} == before


def test_live_stroke_takes_the_viewport_over_from_the_bake(addon, cnn, graph):
    """Play Bake in Viewport on while live: the panel says the viewport plays the bake; the
    next stroke turns it off (renders keep the bake) and the panel says live drawing shows."""
    from nnviz_blender.ui.ops import live_takes_over
    from nnviz_blender.ui.panel import NNVIZ_PT_live

    name = network.build_network(cnn, "cnn", edges="none")
    bpy.context.scene.nnviz.network = name
    _, kv = digits_values(cnn, graph, [1, 4])
    bake.bake(name, graph, kv, sched.sequence(2))
    assert bpy.ops.nnviz.live_start() == {"FINISHED"}
    assert not bake.shows_in_viewport(name)  # Start shows live values
    bake.set_enabled(name, True)  # the user ticks Play Bake in Viewport (and Render)
    text = " ".join(t for kind, t in draw_panel(NNVIZ_PT_live, bpy.context) if kind == "label")
    assert "The viewport plays the bake" in text
    live.tick()
    assert live_takes_over(live.take_updated()) == []  # no stroke: the bake keeps playing
    live.paint_image(name, _seven(1)[0])
    live.tick()
    messages = live_takes_over(live.take_updated())
    assert len(messages) == 1 and "took over" in messages[0]
    assert not bake.shows_in_viewport(name)
    mod = util.find("objects", name, "node_values").modifiers[bake.MODIFIER]
    assert mod.show_render  # the render still plays the bake
    text = " ".join(t for kind, t in draw_panel(NNVIZ_PT_live, bpy.context) if kind == "label")
    assert "The viewport plays the bake" not in text

"""Node positions: the original's coordinates for the shipped networks, sane ones for any other."""

from __future__ import annotations

import numpy as np
import pytest

from nnviz_blender.core.graph import build_graph
from nnviz_blender.core.layout import (
    ARC_GAP,
    EDGE_RADIUS,
    arc_bounds,
    arc_points,
    arcs,
    edge_radius,
    layout,
    output_label_positions,
    stage_anchor,
)
from nnviz_blender.core.modelfile import build_model


def model_of(input_shape, layers):
    """A model with zero weights (positions never depend on weights)."""
    arrays = {}
    for i, layer in enumerate(layers):
        if layer["type"] == "dense":
            arrays[f"layers.{i}.weight"] = np.zeros((layer["out_features"], layer["in_features"]))
        elif layer["type"] == "conv2d":
            k = layer["kernel_size"]
            shape = (layer["out_channels"], layer["in_channels"], k, k)
            arrays[f"layers.{i}.weight"] = np.zeros(shape)
        else:
            continue
        arrays[f"layers.{i}.bias"] = np.zeros(arrays[f"layers.{i}.weight"].shape[0])
    return build_model({"input_shape": list(input_shape), "layers": layers}, arrays)


def dense(n_in, n_out):
    return {"type": "dense", "in_features": n_in, "out_features": n_out}


def conv(c_in, c_out, k, **kw):
    return {"type": "conv2d", "in_channels": c_in, "out_channels": c_out, "kernel_size": k, **kw}


FLAT, TANH = {"type": "flatten"}, {"type": "tanh"}
POOL = {"type": "maxpool2d", "kernel_size": 2}

MLP = ([1, 28, 28], [FLAT, dense(784, 300), TANH, dense(300, 100), TANH, dense(100, 10)])
CNN = (
    [1, 32, 32],
    [conv(1, 6, 5), TANH, POOL, conv(6, 16, 5), TANH, POOL, FLAT]
    + [dense(400, 120), TANH, dense(120, 100), TANH, dense(100, 10), {"type": "softmax"}],
)
OTHERS = {
    "long_vectors": ([5000], [dense(5000, 301), TANH, dense(301, 1200), dense(1200, 10)]),
    "many_maps": (
        [3, 16, 16],
        [conv(3, 40, 3, padding=1), POOL, conv(40, 8, 3), {"type": "avgpool2d", "kernel_size": 6}]
        + [FLAT, dense(8, 4)],
    ),
    "same_channels": (
        [2, 12, 7],
        [conv(2, 2, 3, padding=1), conv(2, 2, 3, stride=2), POOL, FLAT, dense(4, 3)],
    ),
    "mlp_2d_input": ([6, 5], [FLAT, dense(30, 8), dense(8, 3)]),
}
ALL = {"mlp": MLP, "cnn": CNN, **OTHERS}


@pytest.fixture(scope="module")
def mlp():
    return build_graph(model_of(*MLP))


@pytest.fixture(scope="module")
def cnn():
    return build_graph(model_of(*CNN))


def stage_block(graph, positions, name):
    stage = graph.stage_named(name)
    return positions[stage.start : stage.stop]


def map_centres(graph, positions, name):
    stage = graph.stage_named(name)
    return stage_block(graph, positions, name).reshape(stage.shape[0], -1, 3).mean(axis=1)


# --- the original's coordinates (1 Blender unit = 100 original units) -------------------------


def test_mlp_3d_exact(mlp):
    p = layout(mlp, "3d")
    assert p.dtype == np.float32 and p.flags.c_contiguous and p.shape == (1194, 3)
    np.testing.assert_allclose(p[0], [-1.35, 1.35, -1.5], atol=1e-6)  # pixel row 0, col 0
    np.testing.assert_allclose(p[27], [1.35, 1.35, -1.5], atol=1e-6)  # row 0, col 27
    np.testing.assert_allclose(p[783], [1.35, -1.35, -1.5], atol=1e-6)  # row 27, col 27
    np.testing.assert_allclose(p[784], [-14.95, 0, -0.5], atol=1e-5)  # hidden unit 0
    np.testing.assert_allclose(p[784 + 299], [14.95, 0, -0.5], atol=1e-5)
    np.testing.assert_allclose(p[1084], [-4.95, 0, 0.5], atol=1e-6)
    np.testing.assert_allclose(p[1184], [-0.45, 0, 1.5], atol=1e-6)  # output "0" on the left
    np.testing.assert_allclose(p[1193], [0.45, 0, 1.5], atol=1e-6)


def test_mlp_flat_exact(mlp):
    p = layout(mlp, "flat")
    np.testing.assert_allclose(p[0], [-1.35, 0, -0.65], atol=1e-6)
    np.testing.assert_allclose(p[783], [1.35, 0, -3.35], atol=1e-6)
    np.testing.assert_allclose(p[784], [-14.95, 0, 0], atol=1e-5)
    np.testing.assert_allclose(p[1084 + 99], [4.95, 0, 1.0], atol=1e-6)
    np.testing.assert_allclose(p[1193], [0.45, 0, 2.0], atol=1e-6)


def test_cnn_3d_exact(cnn):
    p = layout(cnn, "3d")
    heights = {"input": -3.5, "conv1": -2.5, "pool1": -1.5, "conv2": -0.5, "pool2": 0.5}
    heights |= {"dense1": 1.5, "dense2": 2.5, "output": 3.5}
    for name, z in heights.items():
        np.testing.assert_allclose(stage_block(cnn, p, name)[:, 2], z, atol=1e-6)
    np.testing.assert_allclose(p[0], [-1.55, 1.55, -3.5], atol=1e-6)
    np.testing.assert_allclose(p[1023], [1.55, -1.55, -3.5], atol=1e-6)
    conv1_x = np.array([8.0, 4.8, 1.6, -1.6, -4.8, -8.0])
    conv2_x = 10.5 - 1.4 * np.arange(16)
    for name, xs in [
        ("conv1", conv1_x),
        ("pool1", conv1_x),
        ("conv2", conv2_x),
        ("pool2", conv2_x),
    ]:
        np.testing.assert_allclose(map_centres(cnn, p, name)[:, 0], xs, atol=1e-5)
        np.testing.assert_allclose(map_centres(cnn, p, name)[:, 1], 0, atol=1e-6)
    np.testing.assert_allclose(stage_block(cnn, p, "conv1")[0], [8.0 - 1.35, 1.35, -2.5], atol=1e-5)
    np.testing.assert_allclose(
        stage_block(cnn, p, "pool2")[-1], [-10.5 + 0.2, -0.2, 0.5], atol=1e-5
    )
    for name, half in [("dense1", 5.95), ("dense2", 4.95), ("output", 0.45)]:
        block = stage_block(cnn, p, name)
        np.testing.assert_allclose([block[0, 0], block[-1, 0]], [-half, half], atol=1e-5)


def test_cnn_flat_exact(cnn):
    p = layout(cnn, "flat")
    ranges = {
        "input": (-7.25, -4.15),
        "conv1": (-3.65, -0.95),
        "pool1": (-0.65, 0.65),
        "conv2": (1.15, 2.05),
        "pool2": (2.4, 2.8),
        "dense1": (3.5, 3.5),
        "dense2": (4.5, 4.5),
        "output": (5.5, 5.5),
    }
    for name, (lo, hi) in ranges.items():
        z = stage_block(cnn, p, name)[:, 2]
        np.testing.assert_allclose([z.min(), z.max()], [lo, hi], atol=1e-5, err_msg=name)
    np.testing.assert_allclose(p[0], [-1.55, 0, -4.15], atol=1e-6)  # top-left pixel on top
    np.testing.assert_allclose(
        map_centres(cnn, p, "pool1")[:, 0], 8.0 - 3.2 * np.arange(6), atol=1e-5
    )
    np.testing.assert_allclose(
        map_centres(cnn, p, "conv2")[:, 0], 10.5 - 1.4 * np.arange(16), atol=1e-5
    )


def test_flat_keeps_the_3d_x(cnn, mlp):
    for g in (cnn, mlp):
        np.testing.assert_array_equal(layout(g, "flat")[:, 0], layout(g, "3d")[:, 0])


# --- any model --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(ALL))
def any_graph(request):
    return build_graph(model_of(*ALL[request.param]))


@pytest.mark.parametrize("style", ["3d", "flat"])
def test_no_two_nodes_coincide(any_graph, style):
    p = layout(any_graph, style)
    assert np.unique(np.round(p, 3), axis=0).shape[0] == any_graph.node_count
    # maps of one stage never overlap: their boxes are disjoint along x or along the plane's v
    v_axis = 1 if style == "3d" else 2
    for stage in any_graph.stages:
        if len(stage.shape) != 3 or stage.shape[1] * stage.shape[2] == 1:
            continue
        maps = p[stage.start : stage.stop].reshape(stage.shape[0], -1, 3)
        lo, hi = maps.min(axis=1), maps.max(axis=1)
        for a in range(len(maps)):
            for b in range(a + 1, len(maps)):
                apart = [hi[a, i] < lo[b, i] or hi[b, i] < lo[a, i] for i in (0, v_axis)]
                assert any(apart), (stage.name, a, b)


def test_stages_bottom_to_top_and_centred(any_graph):
    p3, pf = layout(any_graph, "3d"), layout(any_graph, "flat")
    assert np.all(pf[:, 1] == 0.0)
    last_top = -np.inf
    for i, stage in enumerate(any_graph.stages):
        z3 = p3[stage.start : stage.stop, 2]
        assert np.all(z3 == z3[0])  # a horizontal plane
        zf = pf[stage.start : stage.stop, 2]
        assert zf.min() > last_top  # strictly above the stage below, no overlap
        last_top = zf.max()
        if i:
            assert z3[0] >= p3[any_graph.stages[i - 1].start, 2] + 1.0 - 1e-6
        for p in (p3, pf):
            centre, _ = stage_anchor(any_graph, p, i)
            assert abs(centre[0]) < 1e-5
    z3 = p3[:, 2]
    assert abs(z3.min() + z3.max()) < 1e-5  # 3d stack centred on z = 0


def test_long_vectors_fold(any_graph):
    p = layout(any_graph, "3d")
    for i, stage in enumerate(any_graph.stages):
        _, size = stage_anchor(any_graph, p, i)
        if len(stage.shape) == 1 and stage.size <= 300:
            assert size[1] == 0.0  # one row
        elif len(stage.shape) == 1:
            assert size[1] > 0.0 and size[0] < 30.0  # folded into a rectangle
            assert size[0] >= size[1]


def test_pooled_maps_sit_above_their_maps():
    g = build_graph(model_of(*OTHERS["many_maps"]))
    p = layout(g, "3d")
    conv, pool = g.stages[1], g.stages[2]
    cs = p[conv.start : conv.stop].reshape(40, -1, 3).mean(axis=1)
    ps = p[pool.start : pool.stop].reshape(40, -1, 3).mean(axis=1)
    np.testing.assert_allclose(cs[:, :2], ps[:, :2], atol=1e-5)
    assert np.unique(np.round(cs[:, 1], 4)).size > 1  # 40 maps wrap into rows of maps


def test_input_image_is_upright(any_graph):
    stage = any_graph.stages[0]
    if len(stage.shape) != 3:
        pytest.skip("vector input")
    _, h, w = stage.shape
    for style, v in (("3d", 1), ("flat", 2)):
        img = layout(any_graph, style)[: h * w].reshape(h, w, 3)
        assert np.all(np.diff(img[:, :, 0], axis=1) > 0)  # columns left to right
        assert np.all(np.diff(img[:, :, v], axis=0) < 0)  # row 0 at the back / top


@pytest.mark.parametrize("style", ["3d", "flat"])
def test_spacing_scales_only_the_gaps(any_graph, style):
    one, two = layout(any_graph, style, 1.0), layout(any_graph, style, 2.0)
    assert np.array_equal(one[:, :2], two[:, :2])  # x (and y) untouched
    lows, highs = [], []
    for stage in any_graph.stages:
        a, b = one[stage.start : stage.stop, 2], two[stage.start : stage.stop, 2]
        np.testing.assert_allclose(b - b.mean(), a - a.mean(), atol=1e-5)  # shape kept
        lows.append((a.min(), b.min()))
        highs.append((a.max(), b.max()))
    for i in range(1, len(lows)):
        gap1 = lows[i][0] - highs[i - 1][0]
        gap2 = lows[i][1] - highs[i - 1][1]
        assert gap2 == pytest.approx(2 * gap1, abs=1e-5)
    half = layout(any_graph, style, 0.5)
    assert np.unique(np.round(half, 3), axis=0).shape[0] == any_graph.node_count


def test_bad_arguments(mlp):
    with pytest.raises(ValueError, match="style"):
        layout(mlp, "2d")
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="spacing"):
            layout(mlp, "3d", bad)


# --- anchors and labels -----------------------------------------------------------------------


def test_stage_anchor(cnn):
    p = layout(cnn, "3d")
    centre, size = stage_anchor(cnn, p, 1)
    np.testing.assert_allclose(centre, [0, 0, -2.5], atol=1e-6)
    np.testing.assert_allclose(size, [18.7, 2.7, 0], atol=1e-5)
    centre, size = stage_anchor(cnn, layout(cnn, "flat"), 0)
    np.testing.assert_allclose(centre, [0, 0, -5.7], atol=1e-5)
    np.testing.assert_allclose(size, [3.1, 0, 3.1], atol=1e-5)


@pytest.mark.parametrize("style", ["3d", "flat"])
def test_output_labels_above_output_nodes(cnn, style):
    p = layout(cnn, style)
    labels = output_label_positions(cnn, p)
    out = p[-10:]
    assert labels.shape == (10, 3) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels[:, :2], out[:, :2])
    assert np.all(labels[:, 2] > out[:, 2])
    assert np.all(np.diff(labels[:, 0]) > 0)  # "0" .. "9" left to right


# --- graph models -----------------------------------------------------------------------------


def named(name, layer, *inputs):
    return {**layer, "name": name, **({"inputs": list(inputs)} if inputs else {})}


def residual(c1: int = 4, c2: int = 8, size: int = 12):
    """A residual network: an identity skip over two convs, then a downsampling block whose
    1x1-conv skip is a branch of its own."""
    return (
        [1, size, size],
        [
            named("stem", conv(1, c1, 3, padding=1)),
            named("stem_act", {"type": "relu"}),
            named("a", conv(c1, c1, 3, padding=1)),
            named("a_act", {"type": "relu"}),
            named("b", conv(c1, c1, 3, padding=1)),
            named("add1", {"type": "add"}, "b", "stem_act"),  # identity skip over a and b
            named("down", conv(c1, c2, 3, padding=1, stride=2), "add1"),
            named("down2", conv(c2, c2, 3, padding=1)),
            named("skip", conv(c1, c2, 1, stride=2), "add1"),  # downsampling skip
            named("add2", {"type": "add"}, "down2", "skip"),
            named("gap", {"type": "global_avgpool"}),
            named("flat", FLAT),
            named("fc", dense(c2, 3)),
        ],
    )


RESIDUAL = residual()


def model_of_v2(input_shape, layers):
    arrays = {}
    for i, layer in enumerate(layers):
        if layer["type"] in ("dense", "conv2d"):
            k = layer.get("kernel_size", 1)
            shape = (
                (layer["out_features"], layer["in_features"])
                if layer["type"] == "dense"
                else (layer["out_channels"], layer["in_channels"], k, k)
            )
            arrays[f"layers.{i}.weight"] = np.zeros(shape)
            arrays[f"layers.{i}.bias"] = np.zeros(shape[0])
    spec = {"version": 2, "input_shape": list(input_shape), "layers": layers}
    return build_model(spec, arrays)


def x_range(graph, positions, name):
    block = stage_block(graph, positions, name)
    return float(block[:, 0].min()), float(block[:, 0].max())


@pytest.mark.parametrize("style", ["3d", "flat"])
def test_branches_side_by_side_main_path_centred(style):
    g = build_graph(model_of_v2(*RESIDUAL))
    names = [s.name for s in g.stages]
    assert names == [
        "input",
        "conv1",
        "conv2",
        "conv3",
        "add1",
        "conv4",
        "conv5",
        "conv6",
        "add2",
        "pool1",
        "output",
    ]
    p = layout(g, style)
    assert np.unique(np.round(p, 3), axis=0).shape[0] == g.node_count
    # the trunk and the main path (the branch of most levels) stand centred, one above another
    for centred in ("input", "conv1", "conv2", "conv3", "add1", "conv4", "conv5", "add2"):
        lo, hi = x_range(g, p, centred)
        assert abs(lo + hi) < 1e-5, centred
    # the downsampling skip (conv6, a 1x1 conv) shares conv4's level, beside it
    mid = [stage_block(g, p, n)[:, 2].mean() for n in ("conv4", "conv6")]
    assert mid[0] == pytest.approx(mid[1])
    a, b = x_range(g, p, "conv4"), x_range(g, p, "conv6")
    assert a[1] < b[0] or b[1] < a[0]
    # levels go up: every stage lies above every stage it reads
    for stage in g.stages[1:]:
        for k in stage.sources:
            src = g.stages[k]
            assert p[stage.start : stage.stop, 2].min() > p[src.start : src.stop, 2].max()


def stage_pairs(graph, src, dst):
    return {
        (graph.stages[a].name, graph.stages[b].name)
        for a, b in zip(graph.node_stage[src], graph.node_stage[dst], strict=True)
    }


@pytest.mark.parametrize("style", ["3d", "flat"])
def test_skip_edges_arch_around_the_stages_they_skip(style):
    g = build_graph(model_of_v2(*residual(6, 10)))
    p = layout(g, style)
    arc = arcs(g, p, g.src, g.dst, style)
    # exactly the connections that skip levels arch: the identity into add1, the 1x1 conv's
    # output into add2
    assert stage_pairs(g, g.src[arc.edges], g.dst[arc.edges]) == {
        ("conv1", "add1"),
        ("conv6", "add2"),
    }
    assert len(arc.edges) == g.stage_named("add1").size + g.stage_named("add2").size
    skipped = {"add1": ("conv2", "conv3"), "add2": ("conv5",)}
    passing = []
    for e, side, reach in zip(arc.edges, arc.side, arc.reach, strict=True):
        p0, p1 = p[g.src[e]], p[g.dst[e]]

        def path(t, p0=p0, p1=p1, side=side, reach=reach):
            n = len(t)
            return arc_points(
                np.repeat([p0], n, 0),
                np.repeat([p1], n, 0),
                t,
                np.repeat([side], n, 0),
                np.full(n, reach),
                arc.axes,
            )

        np.testing.assert_allclose(path(np.array([0.0, 1.0])), [p0, p1], atol=1e-5)  # its nodes
        for name in skipped[g.stage_of(int(g.dst[e])).name]:
            block = stage_block(g, p, name)
            lo, hi = block.min(axis=0), block.max(axis=0)
            # every point of the path at the skipped stage's heights is beside it, with room
            t = np.linspace(*((np.array([lo[2], hi[2]]) - p0[2]) / (p1[2] - p0[2])), 21)
            x = path(t)[:, 0]
            assert np.all((x < lo[0] - ARC_GAP / 2) | (x > hi[0] + ARC_GAP / 2)), name
            passing.append(x)
    # the bounds a camera frames hold every arc's path at the skipped heights
    bounds, passing = arc_bounds(g, p, style), np.concatenate(passing)
    assert bounds[:, 0].min() - 1e-5 <= passing.min() and passing.max() <= bounds[:, 0].max() + 1e-5


def test_chains_have_no_arcs(cnn, mlp):
    for g in (cnn, mlp):
        for style in ("3d", "flat"):
            p = layout(g, style)
            assert len(arcs(g, p, g.src, g.dst, style).edges) == 0
            assert len(arc_bounds(g, p, style)) == 0


def test_graph_model_maps_fold_into_a_compact_block():
    # 16 maps of 28x28 and 32 of 7x7 (the shipped ResNet's shapes): in 3d each stage is a block
    # about twice as wide as deep (a chain lays 16 maps in one row, 16 times as wide as deep)
    g = build_graph(model_of_v2(*residual(16, 32, 28)))
    p = layout(g, "3d")
    for name in ("conv1", "add1", "conv4", "add2"):
        size = np.ptp(stage_block(g, p, name), axis=0)
        assert 1.0 <= size[0] / size[1] <= 4.5, (name, size)
    # flat: rows of at most 16 maps, filled evenly (32 maps: two rows of 16)
    flat = layout(g, "flat")
    rows = np.unique(np.round(map_centres(g, flat, "conv4")[:, 2], 3))
    assert len(rows) == 2


def test_beside_moves_right_of_every_box():
    from nnviz_blender.core.layout import BESIDE_GAP, beside

    lo = np.array([-2.0, -1.0, 0.0])
    assert not beside([], lo).any()
    boxes = [(np.array([-5.0, 0, 0]), np.array([3.0, 1, 1])), (np.zeros(3), np.array([7.5, 2, 2]))]
    offset = beside(boxes, lo)
    assert offset[0] + lo[0] == pytest.approx(7.5 + BESIDE_GAP) and not offset[1:].any()


def test_connections_thicken_only_beyond_the_shipped_networks_size(shipped, big_onnx):
    """The shipped networks keep their connections' radius; a ResNet-18 at 64x64 (105 long)
    gets one in proportion to its length, so its whole view shows them as wide on screen."""
    from nnviz_blender.core.modelfile import load_model

    for name, model in shipped.items():
        styles = ("3d", "flat") if name != "resnet" else ("3d",)
        for style in styles:
            assert edge_radius(layout(build_graph(model), style)) == EDGE_RADIUS, (name, style)
    graph = build_graph(load_model(big_onnx("r18_64")))
    for spacing in (1.0, 2.0):
        p = layout(graph, "3d", spacing)
        extent = float(np.ptp(p, axis=0).max())
        assert extent > 100 * spacing
        assert edge_radius(p) == pytest.approx(EDGE_RADIUS * extent / 32.0)
    assert edge_radius(np.zeros((0, 3), np.float32)) == EDGE_RADIUS

"""The info box: weighted input, formula and conv patch agree with the forward pass."""

import numpy as np
import pytest
from conftest import CNN_SPEC, MLP_SPEC, random_arrays

from nnviz_blender.core.forward import forward
from nnviz_blender.core.graph import build_graph
from nnviz_blender.core.inspect import describe, nearest_node, place
from nnviz_blender.core.modelfile import build_model


@pytest.fixture(scope="module")
def cnn():
    model = build_model(CNN_SPEC, random_arrays(CNN_SPEC, 3))
    x = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    return model, build_graph(model), forward(model, x)


def test_conv_node(cnn):
    model, graph, acts = cnn
    stage = graph.stage_named("conv2")
    node = stage.start + 2 * 100 + 3 * 10 + 4  # map 2, y 3, x 4
    info = describe(model, graph, acts, node)
    assert (info.stage, info.kind, info.map, info.position) == ("conv2", "conv", 2, (2, 3, 4))
    assert place(info) == "map 2, row 3, column 4"
    assert info.n_inputs == 150 and info.function == "tanh"
    z = float((info.patch * info.kernel).sum()) + info.bias
    assert info.weighted_input == pytest.approx(z, abs=1e-4)
    assert info.activation == pytest.approx(np.tanh(z), abs=1e-5)
    np.testing.assert_array_equal(info.patch, acts[3][:, 3:8, 4:9])  # pool1 output window
    np.testing.assert_array_equal(info.kernel, model.layers[3].weight[2])
    assert f"{info.activation:.3f}" in info.formula and info.formula.startswith("tanh(Σ150")
    products = [abs(t.product) for t in info.terms]
    assert products == sorted(products, reverse=True) and len(products) == 8


def test_pool_output_and_input_nodes(cnn):
    model, graph, acts = cnn
    pool = graph.stage_named("pool1")
    info = describe(model, graph, acts, pool.start + 5)
    assert info.function == "max" and info.n_inputs == 4
    assert info.activation == pytest.approx(max(t.value for t in info.terms))
    out = graph.stage_named("output")
    winner = int(np.argmax(acts[-1]))
    infos = [describe(model, graph, acts, out.start + i) for i in range(10)]
    assert [i.is_winner for i in infos] == [i == winner for i in range(10)]
    assert "softmax" in infos[0].formula
    pixel = describe(model, graph, acts, 33)
    assert pixel.function == "pixel" and pixel.position == (0, 1, 1) and pixel.n_inputs == 0
    assert place(pixel) == "row 1, column 1"
    labels = [f"digit {i}" for i in range(10)]
    assert [place(i, labels) for i in infos[6:8]] == ["class digit 6", "class digit 7"]
    assert place(infos[7]) == "class 7"  # no labels: the index
    assert place(describe(model, graph, acts, graph.stage_named("dense1").start + 3)) == ""


def test_mlp_hidden_node_uses_its_own_weight_row():
    model = build_model(MLP_SPEC, random_arrays(MLP_SPEC, 1))
    graph = build_graph(model)
    x = np.random.default_rng(2).random((28, 28), dtype=np.float32)
    acts = forward(model, x)
    info = describe(model, graph, acts, 784 + 17)
    np.testing.assert_allclose(np.sort(info.weights), np.sort(model.layers[1].weight[17]))
    assert info.weighted_input == pytest.approx(
        float(model.layers[1].weight[17] @ x.ravel() + model.layers[1].bias[17]), abs=1e-4
    )


def test_nearest_node():
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0]], np.float32)
    assert nearest_node(pos, (0.9, 0.1, 0)) == 1
    assert nearest_node(pos, (0.9, 0.1, 0), visible=np.array([True, False, True])) == 0


ODD_SPEC = {
    "version": 2,
    "input_shape": [1, 6, 6],
    "layers": [
        {
            "type": "conv2d",
            "name": "c",
            "in_channels": 1,
            "out_channels": 2,
            "kernel_size": 3,
            "padding": 1,
            "bias": False,
        },
        {"type": "relu", "name": "r"},  # the add reads c too: the relu gets a stage of its own
        {"type": "affine", "name": "bn"},
        {"type": "mul", "name": "half", "factor": 0.5},
        {"type": "add", "name": "sum", "inputs": ["half", "c"]},
        {"type": "concat", "name": "cat", "inputs": ["sum", "r"]},
        {
            "type": "avgpool2d",
            "name": "avg",
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "count_include_pad": False,
        },
        {"type": "global_avgpool", "name": "gap"},
        {"type": "flatten", "name": "flat"},
        {"type": "dense", "name": "fc", "in_features": 4, "out_features": 3},
    ],
}


@pytest.fixture(scope="module")
def odd():
    model = build_model(ODD_SPEC, random_arrays(ODD_SPEC, 5))
    x = np.random.default_rng(4).random((1, 6, 6), dtype=np.float32)
    return model, build_graph(model), forward(model, x)


def test_formulas_say_how_each_kind_of_stage_computes_its_value(odd):
    """Every formula ends in the node's value and repeats no number: sums with and without
    a bias, a scale and shift, a scale, an add, a copy (concat, an activation's own stage),
    windowed and global means; identity stages end at the sum."""
    model, graph, acts = odd
    kinds = [(s.name, s.op) for s in graph.stages]
    assert kinds == [
        ("input", ""),
        ("conv1", "conv2d"),
        ("act1", "relu"),
        ("affine1", "affine"),
        ("affine2", "mul"),
        ("add1", "add"),
        ("concat1", "concat"),
        ("pool1", "avgpool2d"),
        ("pool2", "global_avgpool"),
        ("output", "dense"),
    ]
    formulas = {}
    for stage in graph.stages:
        info = describe(model, graph, acts, stage.start + stage.size - 1)
        f = formulas[stage.name] = info.formula
        assert f.endswith(f"= {info.activation:.3f}"), f
        assert f"= {info.activation:.3f} = " not in f, f  # never "= 0.31 = 0.31"
    c, r = graph.stage_named("conv1"), graph.stage_named("act1")
    x_c = float(acts[c.act_index].ravel()[-1])
    assert formulas["conv1"] == f"Σ4 w·x = {x_c:.3f}"  # a corner: 4 taps; no bias
    assert formulas["act1"] == f"relu(conv1[{c.size - 1}] = {x_c:.3f}) = {max(x_c, 0):.3f}"
    bn = model.layers[2]
    relu = max(x_c, 0.0)
    scaled = float(bn.weight[-1]) * relu + float(bn.bias[-1])
    sign = "+" if bn.bias[-1] >= 0 else "-"
    assert formulas["affine1"] == (
        f"w·x + b = {bn.weight[-1]:.3f} × {relu:.3f} {sign} {abs(bn.bias[-1]):.3f} = {scaled:.3f}"
    )
    assert formulas["affine2"] == f"0.5 × {scaled:.3f} = {0.5 * scaled:.3f}"
    assert formulas["add1"].count(" = ") == 1 and formulas["add1"].startswith(f"{0.5 * scaled:.3f}")
    assert formulas["concat1"] == f"act1[{r.size - 1}] = {relu:.3f}"
    assert formulas["pool1"].startswith("mean of 9 = Σx / 9 = ")  # 9 inputs, 8 terms shown
    corner = describe(model, graph, acts, graph.stage_named("pool1").start)  # 4 inputs
    assert corner.formula.startswith("mean(") and corner.formula.count(",") == 3
    assert formulas["pool2"].startswith("mean of 9 = Σx / 9 = ")
    out = describe(model, graph, acts, graph.stage_named("output").start)
    assert out.formula == (
        f"Σ4 w·x + b = {out.weighted_input - out.bias:.3f} "
        f"{'+' if out.bias >= 0 else '-'} {abs(out.bias):.3f} = {out.weighted_input:.3f}"
    )

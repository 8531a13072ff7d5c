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

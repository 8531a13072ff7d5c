"""The large test networks of scripts/big_models.py load and compute what onnxruntime computes."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_check import assert_matches_onnxruntime

from nnviz_blender.core.graph import stage_sizes
from nnviz_blender.core.modelfile import load_model

pytest.importorskip("onnxruntime")


def test_ptex_is_the_pytorch_example(big_onnx):
    path = big_onnx("ptex")
    model = load_model(path)
    assert model.input_shape == (1, 28, 28)
    assert [layer.type for layer in model.layers if layer.weight is not None] == [
        "conv2d",
        "conv2d",
        "dense",
        "dense",
    ]
    assert sum(stage_sizes(model)) == 1 * 28 * 28 + 32 * 26 * 26 + 64 * 24 * 24 + 9216 + 128 + 10
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    assert_matches_onnxruntime(model, path, x)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["r18_64", "r18_224"])
def test_resnet18_loads_and_matches_onnxruntime(big_onnx, name):
    path = big_onnx(name)
    model = load_model(path)  # within the raised limits
    side = int(name.split("_")[1])
    assert model.input_shape == (3, side, side)
    assert 11_600_000 < model.parameter_count < 11_800_000  # ResNet-18's 11.7M
    assert sum(layer.type == "conv2d" for layer in model.layers) == 20  # batch norms folded
    assert model.output_shape == (1000,)
    if side == 64:
        x = np.random.default_rng(1).random((1, 3, side, side), dtype=np.float32)
        assert_matches_onnxruntime(model, path, x)

"""Training script: loss falls, and the networks ship through ONNX (torch.onnx.export, then the
add-on's import) into model files that compute what PyTorch computes."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_mnist  # noqa: E402

from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402

pytestmark = pytest.mark.torch

MNIST_DIR = os.path.join(ROOT, "..", "shared", "data", "mnist")


@pytest.fixture(scope="module")
def train_slice() -> tuple[torch.Tensor, torch.Tensor]:
    if not os.path.exists(os.path.join(MNIST_DIR, "train-images-idx3-ubyte.gz")):
        pytest.skip(f"MNIST not found in {MNIST_DIR}")
    x, y = train_mnist.load_split(MNIST_DIR, "train")
    return x[:2000], y[:2000]


@pytest.fixture(scope="module")
def trained_mlp(train_slice) -> nn.Sequential:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine one thread is several times faster
    try:
        cfg = train_mnist.TrainConfig("mlp", epochs=20, steps=300, seed=0)
        model, losses = train_mnist.train(*train_slice, cfg, train_mnist.Augment())
    finally:
        torch.set_num_threads(threads)
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert len(losses) == 300
    assert last < 0.5 * first, (first, last)
    return model


def test_augment_keeps_shape_and_identity_when_disabled(train_slice):
    x = train_slice[0][:64]
    gen = torch.Generator().manual_seed(0)
    moved = train_mnist.augment(x, train_mnist.Augment(p=1.0), gen)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    kept = train_mnist.augment(x, train_mnist.Augment(p=0.0), gen)
    torch.testing.assert_close(kept, x, atol=1e-5, rtol=0)


def test_cnn_input_is_padded_to_32():
    x = torch.ones(2, 1, 28, 28)
    padded = train_mnist.to_input(x, "cnn")
    assert padded.shape == (2, 1, 32, 32) and padded.sum() == x.sum()
    assert train_mnist.build_model("cnn")(padded).shape == (2, 10)


def test_loss_falls_and_the_onnx_export_matches_torch(trained_mlp, train_slice, tmp_path):
    onnx_path, path = tmp_path / "mlp.onnx", tmp_path / "mlp.npz"
    train_mnist.export_onnx(trained_mlp, "mlp", str(onnx_path))
    accuracy = train_mnist.onnx_to_model_file(
        str(onnx_path), str(path), "mlp", {"seed": 0}, MNIST_DIR
    )
    model = load_model(path)
    assert [layer.type for layer in model.layers] == [
        "flatten", "dense", "tanh", "dense", "tanh", "dense", "softmax"
    ]  # fmt: skip
    assert model.labels == [str(i) for i in range(10)] and model.name == "mlp"
    assert model.preprocess == {"kind": "mnist", "field": 28, "box": 20}
    assert model.metadata["seed"] == 0 and model.metadata["arch"] == "mlp"
    assert model.metadata["test_accuracy"] == accuracy > 0.5
    x = train_slice[0][:50]
    ours = forward(model, x.numpy())[-1]
    with torch.no_grad():
        theirs = torch.softmax(trained_mlp(x), dim=1).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_train_and_export_command_lines(train_slice, tmp_path):
    ckpt, onnx_path, out = tmp_path / "cnn.pt", tmp_path / "cnn.onnx", tmp_path / "cnn.npz"
    threads = torch.get_num_threads()
    try:
        argv = ["--arch", "cnn", "--data", MNIST_DIR, "--steps", "5", "--threads", "1"]
        argv += ["--out", str(ckpt), "--onnx", str(onnx_path), "--npz", str(out)]
        assert train_mnist.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    model = load_model(out)
    assert model.input_shape == (1, 32, 32) and model.metadata["training"]["steps"] == 5
    assert model.layers[-1].type == "softmax" and model.output_kind == "probabilities"
    assert 0.0 <= model.metadata["test_accuracy"] <= 1.0


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_shipped_networks_reproduce_exactly_through_onnx(name, shipped, tmp_path):
    """Why export_torch.py could go: the shipped files' networks, exported by torch.onnx.export
    and imported, are the same layers with bit-identical weights and the same drawn graph."""
    import warnings

    from test_forward import to_torch

    from nnviz_blender.core.graph import build_graph

    model, path = shipped[name], tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(to_torch(model).eval(), (torch.zeros(1, *model.input_shape),), path)
    imported = load_model(path)
    assert [layer.type for layer in imported.layers] == [layer.type for layer in model.layers]
    for a, b in zip(model.layers, imported.layers, strict=True):
        for x, y in ((a.weight, b.weight), (a.bias, b.bias)):
            assert (x is None and y is None) or np.array_equal(x, y)
    g, h = build_graph(model), build_graph(imported)
    assert [s.name for s in g.stages] == [s.name for s in h.stages]
    for key in ("src", "dst", "weight"):
        np.testing.assert_array_equal(getattr(g, key), getattr(h, key))
    x = np.random.default_rng(0).random((5, *model.input_shape), dtype=np.float32)
    np.testing.assert_array_equal(forward(imported, x)[-1], forward(model, x)[-1])


@pytest.mark.slow
def test_resnet_trains_and_ships_through_onnx(train_slice, tmp_path):
    """A few steps of the ResNet, exported to ONNX and converted to a version-2 model file whose
    NumPy forward equals PyTorch."""
    ckpt, onnx_path, out = tmp_path / "r.pt", tmp_path / "r.onnx", tmp_path / "r.npz"
    threads = torch.get_num_threads()
    try:
        argv = ["--arch", "resnet", "--data", MNIST_DIR, "--steps", "3", "--threads", "1"]
        argv += ["--no-augment", "--out", str(ckpt), "--onnx", str(onnx_path), "--npz", str(out)]
        assert train_mnist.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    model = load_model(out)
    assert model.spec["version"] == 2 and not model.is_sequential and model.labels[9] == "9"
    assert model.metadata["source"] == "onnx" and 0.0 <= model.metadata["test_accuracy"] <= 1
    net = train_mnist.build_model("resnet")
    net.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
    x = train_slice[0][:4]
    with torch.no_grad():
        want = torch.softmax(net.eval()(x), 1).numpy()
    from nnviz_blender.core.forward import predict

    np.testing.assert_allclose(predict(model, x.numpy()), want, rtol=1e-4, atol=1e-6)

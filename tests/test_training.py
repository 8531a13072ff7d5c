"""Training script and PyTorch exporter: loss falls, exports load and match torch layer by layer."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import export_torch  # noqa: E402
import train_mnist  # noqa: E402

from nnviz_blender.core.forward import forward  # noqa: E402
from nnviz_blender.core.modelfile import load_model, save_model  # noqa: E402

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


def torch_activations(model: nn.Sequential, x: torch.Tensor) -> list[np.ndarray]:
    """The input and every leaf module's output, plus a softmax if the model lacks one."""
    acts = [x]
    with torch.no_grad():
        for module in export_torch._leaves(model):
            acts.append(module(acts[-1]))
        if not isinstance(module, nn.Softmax):
            acts.append(torch.softmax(acts[-1], dim=1))
    return [a.numpy() for a in acts]


def roundtrip(model: nn.Sequential, shape: tuple[int, ...], path) -> tuple[list, list]:
    spec, arrays = export_torch.sequential_to_spec(model.eval(), shape, "t", metadata={"k": 1})
    save_model(path, spec, arrays)
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(1))
    return forward(load_model(path), x.numpy()), torch_activations(model, x)


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


def test_loss_falls_and_export_matches_torch(trained_mlp, train_slice, tmp_path):
    path = tmp_path / "mlp.npz"
    spec, arrays = export_torch.sequential_to_spec(
        trained_mlp, (1, 28, 28), "mlp", export_torch.MNIST_LABELS, {"seed": 0}
    )
    assert [layer["type"] for layer in spec["layers"]][-2:] == ["dense", "softmax"]
    save_model(path, spec, arrays)
    model = load_model(path)
    assert model.labels == export_torch.MNIST_LABELS and model.metadata == {"seed": 0}
    x = train_slice[0][:50]
    ours = forward(model, x.numpy())[-1]
    with torch.no_grad():
        theirs = torch.softmax(trained_mlp(x), dim=1).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_export_checkpoint_cli(trained_mlp, tmp_path):
    ckpt, out = tmp_path / "mlp.pt", tmp_path / "mlp.npz"
    train_mnist.save_checkpoint(str(ckpt), trained_mlp, "mlp", {"seed": 0})
    argv = ["--checkpoint", str(ckpt), "--out", str(out), "--name", "mlp", "--accuracy", "0.5"]
    assert export_torch.main(argv) == 0
    model = load_model(out)
    assert model.name == "mlp" and model.input_shape == (1, 28, 28)
    assert model.preprocess == {"kind": "mnist", "field": 28, "box": 20}
    assert model.metadata["test_accuracy"] == 0.5 and model.metadata["arch"] == "mlp"


RANDOM_ARCHITECTURES = {
    "conv-stride-padding-relu": (
        (3, 17, 15),
        lambda: nn.Sequential(
            nn.Conv2d(3, 5, (3, 4), stride=(2, 1), padding=(1, 2)),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(5, 4, 2, bias=False),
            nn.Flatten(),
            nn.Linear(4 * 4 * 7, 6),
            nn.Sigmoid(),
        ),
    ),
    "avgpool-nested-softmax": (
        (2, 12, 12),
        lambda: nn.Sequential(
            nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh()),
            nn.AvgPool2d(2),
            nn.AvgPool2d(3, stride=2, padding=1),
            nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(27, 8, bias=False), nn.ReLU())),
            nn.Linear(8, 4),
            nn.Softmax(dim=1),
        ),
    ),
    "flat-mlp": (
        (20,),
        lambda: nn.Sequential(nn.Linear(20, 7), nn.Sigmoid(), nn.Linear(7, 3)),
    ),
}


@pytest.mark.parametrize("name", sorted(RANDOM_ARCHITECTURES))
def test_random_architectures_round_trip(name, tmp_path):
    shape, make = RANDOM_ARCHITECTURES[name]
    torch.manual_seed(0)
    ours, theirs = roundtrip(make(), shape, tmp_path / f"{name}.npz")
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5, err_msg=f"activation {i}")


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (nn.Conv2d(2, 4, 3, groups=2), "groups=2"),
        (nn.Conv2d(1, 4, 3, dilation=2), "dilation"),
        (nn.Conv2d(1, 4, 3, padding="same"), "padding='same'"),
        (nn.BatchNorm2d(4), "BatchNorm2d is not supported"),
        (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
        (nn.AvgPool2d(3, padding=1, count_include_pad=False), "count_include_pad"),
        (nn.Flatten(0), "Flatten"),
    ],
)
def test_unsupported_modules_are_rejected(module, message):
    with pytest.raises(export_torch.ExportError, match=message.replace("(", r"\(")):
        export_torch.sequential_to_spec(nn.Sequential(module), (1, 8, 8), "x")


def test_rejection_names_the_module():
    model = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 4), nn.Dropout()))
    with pytest.raises(export_torch.ExportError, match=r"module 2 \(Dropout\)"):
        export_torch.sequential_to_spec(model, (4,), "x")


def test_train_and_export_command_lines(train_slice, tmp_path):
    ckpt, out = tmp_path / "cnn.pt", tmp_path / "cnn.npz"
    threads = torch.get_num_threads()
    try:
        argv = ["--arch", "cnn", "--data", MNIST_DIR, "--steps", "5", "--threads", "1"]
        assert train_mnist.main([*argv, "--out", str(ckpt)]) == 0
    finally:
        torch.set_num_threads(threads)
    argv = ["--checkpoint", str(ckpt), "--out", str(out), "--name", "cnn", "--test-data", MNIST_DIR]
    assert export_torch.main(argv) == 0
    model = load_model(out)
    assert model.input_shape == (1, 32, 32) and model.metadata["training"]["steps"] == 5
    assert 0.0 <= model.metadata["test_accuracy"] <= 1.0


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

"""The user's path with their own model: a PyTorch RGB classifier exported to ONNX in the test,
then `predict` / `convert` on the command line, raw inputs, colour preprocessing from the model's
metadata, and probabilities whatever the model ends in."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT

from nnviz_blender.core.forward import forward, probabilities, softmax
from nnviz_blender.core.modelfile import load_model
from nnviz_blender.core.preprocess import (
    InputError,
    fit_image,
    is_image_input,
    prepare,
    prepare_image,
)

MEAN, STD = [0.5, 0.4, 0.3], [0.25, 0.2, 0.3]


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "nnviz_blender", *args], cwd=ROOT, capture_output=True, text=True
    )


def export_rgb(path, ending: str = "logits"):
    """A small colour classifier as people write it, exported by torch.onnx.export."""
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4 * 8 * 8, 5)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
            x = self.fc(torch.flatten(x, 1))
            if ending == "log_softmax":
                return F.log_softmax(x, dim=1)
            return F.softmax(x, dim=1) if ending == "softmax" else x

    torch.manual_seed(0)
    net = Net().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 16, 16),), str(path), dynamo=False)
    return net


def onnxruntime_output(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name  # exported with batch 1: one input at a time
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


# --- preprocessing from the model's metadata --------------------------------------------------


def test_colour_image_is_resized_scaled_and_normalised():
    spec_like = type("M", (), {"input_shape": (3, 4, 4), "preprocess": {"mean": MEAN, "std": STD}})
    assert is_image_input(spec_like)
    rgb = np.random.default_rng(0).integers(0, 256, (4, 4, 3)).astype(np.uint8)
    big = np.kron(rgb, np.ones((8, 8, 1), np.uint8))  # 32x32: every pixel an 8x8 block
    x = prepare(spec_like, big)
    want = (rgb.transpose(2, 0, 1) / 255.0 - np.reshape(MEAN, (3, 1, 1))) / np.reshape(
        STD, (3, 1, 1)
    )
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-5)
    assert x.dtype == np.float32


def test_image_is_centre_cropped_to_the_input_aspect_and_alpha_goes_over_black():
    wide = np.zeros((10, 30, 4), np.float32)
    wide[:, 10:20] = (1.0, 0.5, 0.0, 1.0)  # the middle third, fully opaque
    wide[:, :10] = (1.0, 1.0, 1.0, 0.0)  # transparent white at the left: black
    np.testing.assert_allclose(fit_image(wide[..., :3] * wide[..., 3:], 2, 2)[..., 0], 1.0)
    x = prepare_image((3, 5, 5), wide)
    np.testing.assert_allclose(x[:, 2, 2], [1.0, 0.5, 0.0], atol=1e-6)
    gray = prepare_image((1, 5, 5), wide)  # an image model with one channel: luma
    assert gray.shape == (1, 5, 5) and gray[0, 2, 2] == pytest.approx(0.2126 + 0.7152 * 0.5)


def test_digit_models_keep_the_drawing_path_and_apply_their_normalisation(shipped):
    assert not is_image_input(shipped["cnn"]) and not is_image_input((1, 28, 28))
    canvas = np.zeros((100, 100), np.float32)
    canvas[30:70, 45:55] = 1.0
    plain = prepare((1, 28, 28), canvas)
    model = type("M", (), {"input_shape": (1, 28, 28), "preprocess": {"mean": 0.1, "std": 0.3}})
    np.testing.assert_allclose(prepare(model, canvas), (plain - 0.1) / 0.3, rtol=1e-6)
    with pytest.raises(InputError, match="channel"):
        prepare_image((2, 8, 8), canvas)


# --- the command line -------------------------------------------------------------------------


@pytest.mark.torch
def test_convert_round_trip_gives_the_same_predictions(tmp_path):
    onnx_path, npz = tmp_path / "net.onnx", tmp_path / "net.npz"
    export_rgb(onnx_path)
    labels = "cat,dog,bird,fish,frog"
    r = run("convert", str(onnx_path), "--out", str(npz), "--labels", labels, "--name", "pets",
            "--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD)))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "pets" in r.stdout and "logits" in r.stdout
    converted, original = load_model(npz), load_model(onnx_path)
    assert converted.spec["layers"] == original.spec["layers"]
    assert converted.labels == labels.split(",") and converted.name == "pets"
    assert converted.preprocess == {"kind": "image", "mean": MEAN, "std": STD}
    xs = np.random.default_rng(1).standard_normal((6, 3, 16, 16)).astype(np.float32)
    raw = tmp_path / "xs.npy"
    np.save(raw, xs)
    outs = []
    for model in (onnx_path, npz):
        r = run("predict", "--model", str(model), "--raw", str(raw), "--json")
        assert r.returncode == 0, r.stderr
        outs.append([json.loads(line) for line in r.stdout.splitlines()])
    assert [o["input"] for o in outs[1]] == [f"{raw}[{i}]" for i in range(6)]
    for a, b in zip(*outs, strict=True):
        assert a["probabilities"] == b["probabilities"]
        assert b["prediction"] == labels.split(",")[int(np.argmax(b["probabilities"]))]
    want = softmax(onnxruntime_output(onnx_path, xs))
    got = np.array([o["probabilities"] for o in outs[1]])
    np.testing.assert_allclose(got, want, atol=2e-6)
    # A colour image goes through the model's own preprocessing (mean/std from convert).
    image = tmp_path / "image.npy"
    np.save(image, np.random.default_rng(2).random((40, 40, 3), dtype=np.float32))
    r = run("predict", "--model", str(npz), "--input", str(image), "--json")
    assert r.returncode == 0, r.stderr
    x = prepare(converted, np.load(image))
    want = softmax(onnxruntime_output(onnx_path, x[None]))[0]
    np.testing.assert_allclose(json.loads(r.stdout)["probabilities"], want, atol=2e-6)


@pytest.mark.torch
@pytest.mark.parametrize("ending", ["logits", "softmax", "log_softmax"])
def test_probabilities_whatever_the_model_ends_in(tmp_path, ending):
    path = tmp_path / f"{ending}.onnx"
    export_rgb(path, ending)
    model = load_model(path)
    x = np.random.default_rng(3).random((3, 16, 16), dtype=np.float32)
    out = onnxruntime_output(path, x[None])[0]
    want = {"logits": softmax(out), "softmax": out, "log_softmax": np.exp(out)}[ending]
    np.testing.assert_allclose(probabilities(model, forward(model, x)[-1]), want, atol=2e-6)
    raw = tmp_path / "x.npy"
    np.save(raw, x)
    r = run("predict", "--model", str(path), "--raw", str(raw), "--json")
    assert r.returncode == 0, r.stderr
    probs = json.loads(r.stdout)["probabilities"]
    np.testing.assert_allclose(probs, want, atol=2e-6)
    assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    r = run("predict", "--model", str(path), "--raw", str(raw))
    assert r.returncode == 0 and f"{int(np.argmax(want))}: {want.max():.1%}" in r.stdout


def test_raw_and_convert_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3, 28, 28), np.float32))
    cases = [
        (("predict", "--model", "cnn", "--raw", str(bad)), "neither one input [1, 32, 32]"),
        (("predict", "--model", "cnn", "--raw", str(tmp_path / "no.npy")), "not found"),
        (
            ("render", "--model", "cnn", "--raw", str(bad), "--out", str(tmp_path / "f.png")),
            "neither one input",
        ),  # fmt: skip
        (
            ("convert", "mlp", "--out", str(tmp_path / "x.npz"), "--labels", "a,b"),
            "2 labels for 10 outputs",
        ),  # fmt: skip
        (("convert", "mlp", "--out", str(tmp_path / "x.onnx")), "must be a .npz"),
        (("convert", "mlp", "--out", str(tmp_path / "x.npz"), "--std", "0"), "std"),
        (
            ("convert", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "x.npz")),
            "missing.onnx",
        ),  # fmt: skip
    ]
    for args, message in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.npz").exists()
    r = run("predict", "--model", "cnn", "--raw", str(bad), "--input", "sample:1")
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_convert_keeps_a_digit_model_and_its_raw_inputs(tmp_path, shipped):
    out = tmp_path / "mlp.npz"
    r = run("convert", "mlp", "--out", str(out), "--name", "digits")
    assert r.returncode == 0, r.stderr
    model = load_model(out)
    assert model.name == "digits" and model.spec["layers"] == shipped["mlp"].spec["layers"]
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(forward(model, x)[-1], forward(shipped["mlp"], x)[-1])


@pytest.mark.torch
def test_evaluate_refuses_a_colour_model_in_one_line(tmp_path):
    from conftest import MNIST_DIR

    export_rgb(tmp_path / "rgb.onnx")
    r = run("evaluate", "--model", str(tmp_path / "rgb.onnx"), "--mnist", MNIST_DIR)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "grey 28x28" in r.stderr and "[3, 16, 16]" in r.stderr

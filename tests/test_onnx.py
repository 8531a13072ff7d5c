"""PyTorch models written the way people write them, exported with torch.onnx.export, opened as
ONNX: every intermediate equals onnxruntime's, every node's incoming edges reproduce it, and the
probabilities are right whatever the model ends in."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import torch.nn.functional as F  # noqa: E402
from onnx_check import assert_edges_reproduce_forward, assert_matches_onnxruntime  # noqa: E402
from torch import nn  # noqa: E402

from nnviz_blender.core.forward import predict  # noqa: E402
from nnviz_blender.core.graph import build_graph  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import train_mnist  # noqa: E402

pytestmark = pytest.mark.torch


class ClassicMNIST(nn.Module):
    """The network of the PyTorch MNIST example, as written there."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class DepthwiseRGB(nn.Module):
    """MobileNet-style on a 3x32x32 colour input: strided stem, dilated depthwise, grouped conv."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8), nn.BatchNorm2d(8), nn.Hardswish()
        )
        self.pw = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pw(self.dw(self.stem(x)))
        x = F.leaky_relu(self.grouped(x), 0.1)
        x = self.pool(x).mean((2, 3))
        return self.head(x)  # logits


class Branches(nn.Module):
    """Inception-style: three branches concatenated on channels, then batch norm (unfoldable)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.c = nn.Conv2d(1, 4, 1)
        self.bn = nn.BatchNorm2d(12)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        c = self.c(F.max_pool2d(x, 3, 1, 1))
        x = torch.cat([self.a(x), torch.sigmoid(self.b(x)), c], dim=1)
        x = F.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return F.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class PreActResidual(nn.Module):
    """Batch norm after the add (an affine layer), a scaled skip, tanh, view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Sequential(nn.Linear(6 * 7 * 7, 20), nn.BatchNorm1d(20), nn.Tanh())
        self.out = nn.Linear(20, 10)

    def forward(self, x):
        x = torch.tanh(self.conv1(x))
        y = self.bn(self.conv2(x) + 0.5 * x)
        y = self.pool(F.hardsigmoid(y))
        y = F.max_pool2d(y, 2, ceil_mode=False)
        return self.out(self.fc(y.view(y.size(0), -1)))


class SamePadding(nn.Module):
    """padding="same" with an even kernel, and an explicit F.pad: asymmetric padding."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 4, padding="same")
        self.b = nn.Conv2d(4, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 8 * 9, 10)

    def forward(self, x):
        x = F.relu(self.a(x))
        x = F.relu(self.b(F.pad(x, (1, 2, 0, 1))))
        return self.fc(torch.flatten(x, 1))


def randomise_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm non-trivial statistics, so folding it is really tested."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)
    return model.eval()


def export(model, shape, path, dynamo=False, batch=1, dynamic=False):
    torch.manual_seed(0)
    x = torch.rand(batch, *shape)
    kwargs = {"dynamic_axes": {"x": {0: "batch"}}} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=dynamo, input_names=["x"], verbose=False, **kwargs
        )
    return x.numpy()


MODELS = {
    "classic_mnist": (ClassicMNIST, (1, 28, 28)),
    "resnet": (train_mnist.ResNet, (1, 28, 28)),
    "depthwise_rgb": (DepthwiseRGB, (3, 32, 32)),
    "branches": (Branches, (1, 16, 16)),
    "preact_residual": (PreActResidual, (1, 28, 28)),
    "same_padding": (SamePadding, (1, 16, 16)),
}
CASES = [(name, False) for name in MODELS] + [
    pytest.param("classic_mnist", True, marks=pytest.mark.slow),
    pytest.param("resnet", True, marks=pytest.mark.slow),
]
IDS = [f"{n}-legacy" for n in MODELS] + ["classic_mnist-dynamo", "resnet-dynamo"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name,dynamo", CASES, ids=IDS)
def test_torch_model_matches_onnxruntime_everywhere(tmp_path, name, dynamo):
    cls, shape = MODELS[name]
    net = randomise_batch_norms(cls())
    dynamic = name == "preact_residual"
    path = tmp_path / f"{name}.onnx"
    x = export(net, shape, path, dynamo=dynamo, batch=3 if dynamic else 1, dynamic=dynamic)
    model = load_model(path)
    assert model.input_shape == shape and model.name == name
    assert model.preprocess == ({"kind": "image"} if shape[0] == 3 else {})
    assert_matches_onnxruntime(model, path, x)
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    probs = predict(model, x)
    want = {"log_probabilities": np.exp(out), "probabilities": out}.get(
        model.output_kind, torch.softmax(torch.from_numpy(out), 1).numpy()
    )
    np.testing.assert_allclose(probs, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert_edges_reproduce_forward(model, x[0])


def test_what_the_import_makes_of_a_resnet(tmp_path):
    """Batch norms folded into the convs, two adds, a downsampling 1x1 conv, global pooling."""
    path = tmp_path / "resnet.onnx"
    export(randomise_batch_norms(train_mnist.ResNet()), (1, 28, 28), path)
    model = load_model(path)
    kinds = [layer.type for layer in model.layers]
    assert kinds.count("conv2d") == 6 and "affine" not in kinds  # 5 convs + the 1x1 skip
    assert kinds.count("add") == 2 and kinds.count("global_avgpool") == 1
    assert model.output_kind == "logits" and not model.is_sequential
    graph = build_graph(model)
    adds = [s for s in graph.stages if s.op == "add"]
    assert [s.edge_count for s in adds] == [2 * s.size for s in adds]
    assert all(len(s.sources) == 2 for s in adds)
    block2 = adds[1]
    skip = graph.stages[block2.sources[1]]
    assert skip.op == "conv2d" and skip.shape == (
        train_mnist.ResNet().fc.in_features,
        7,
        7,
    )  # downsampling skip
    assert model.layers[skip.layer].params["kernel_size"] == [1, 1]
    gap = next(s for s in graph.stages if s.op == "global_avgpool")
    assert np.allclose(graph.weight[gap.edge_slice], 1 / 49)


def test_classic_example_counts(tmp_path):
    path = tmp_path / "classic.onnx"
    export(ClassicMNIST().eval(), (1, 28, 28), path)
    graph = build_graph(load_model(path))
    assert [s.name for s in graph.stages] == [
        "input",
        "conv1",
        "conv2",
        "pool1",
        "dense1",
        "output",
    ]
    assert [s.size for s in graph.stages] == [784, 32 * 26 * 26, 64 * 24 * 24, 9216, 128, 10]
    assert (
        graph.edge_count == 32 * 26 * 26 * 9 + 64 * 24 * 24 * 32 * 9 + 9216 * 4 + 9216 * 128 + 1280
    )
    assert graph.stages[-1].activations == ("log_softmax",)


def test_depthwise_connects_within_its_group(tmp_path):
    path = tmp_path / "dw.onnx"
    export(randomise_batch_norms(DepthwiseRGB()), (3, 32, 32), path)
    model = load_model(path)
    graph = build_graph(model)
    convs = [s for s in graph.stages if s.op == "conv2d"]
    for stage in convs:
        layer = model.layers[stage.layer]
        groups = layer.params["groups"]
        src_stage = graph.stages[stage.sources[0]]
        cut = stage.edge_slice
        out_map = graph.node_map[graph.dst[cut]]
        in_map = graph.node_map[graph.src[cut]]
        per_out, per_in = stage.shape[0] // groups, src_stage.shape[0] // groups
        assert np.array_equal(out_map // per_out, in_map // per_in), stage.name
    depthwise = model.layers[convs[1].layer]
    assert depthwise.params["groups"] == 8 and depthwise.params["dilation"] == [2, 2]

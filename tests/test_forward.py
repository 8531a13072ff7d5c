"""The NumPy forward pass equals PyTorch on the same weights, layer by layer, within 1e-5."""

import time

import numpy as np
import pytest
from conftest import CNN_SPEC, MLP_SPEC, random_arrays

from nnviz_blender.core.forward import forward, predict
from nnviz_blender.core.modelfile import build_model

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def to_torch(model):
    """The same network as a torch.nn.Sequential (the model format read back, to compare)."""
    nn = torch.nn
    mods = []
    for layer in model.layers:
        p = layer.params
        if layer.type == "dense":
            m = nn.Linear(*layer.weight.shape[::-1], bias=layer.bias is not None)
        elif layer.type == "conv2d":
            m = nn.Conv2d(
                layer.in_shape[0],
                layer.weight.shape[0],
                tuple(p["kernel_size"]),
                stride=tuple(p["stride"]),
                padding=tuple(p["padding"]),
                dilation=tuple(p["dilation"]),
                groups=p.get("groups", 1),
                bias=layer.bias is not None,
            )
        elif layer.type == "maxpool2d":
            m = nn.MaxPool2d(tuple(p["kernel_size"]), tuple(p["stride"]), tuple(p["padding"]))
        elif layer.type == "avgpool2d":
            m = nn.AvgPool2d(tuple(p["kernel_size"]), tuple(p["stride"]), tuple(p["padding"]))
        elif layer.type == "flatten":
            m = nn.Flatten()
        elif layer.type == "softmax":
            m = nn.Softmax(dim=-1)
        else:
            m = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[layer.type]()
        with torch.no_grad():
            if layer.weight is not None:
                m.weight.copy_(torch.from_numpy(layer.weight))
            if layer.bias is not None:
                m.bias.copy_(torch.from_numpy(layer.bias))
        mods.append(m)
    return nn.Sequential(*mods).eval()


def assert_matches_torch(model, x, tol=1e-5):
    """Every layer within `tol`, scaled by the layer's magnitude where that exceeds 1.

    Pre-activation sums of the shipped MLP reach |z| ~ 40, where one float32 step is 3.8e-6:
    there ours and PyTorch are each ~1e-5 from the exact (float64) sum, so an absolute 1e-5 would
    test rounding, not correctness. Activations (tanh, softmax: |a| <= 1) are held to 1e-5.
    """
    acts = forward(model, x)
    assert len(acts) == len(model.layers) + 1
    t = torch.from_numpy(x)
    with torch.no_grad():
        for i, module in enumerate(to_torch(model)):
            t = module(t)
            ours = acts[i + 1]
            assert ours.dtype == np.float32
            assert ours.shape == tuple(t.shape), model.layers[i].type
            err = float(np.abs(ours - t.numpy()).max())
            scale = max(1.0, float(np.abs(t.numpy()).max()))
            assert err <= tol * scale, f"layer {i} ({model.layers[i].type}): max error {err}"


RANDOM_SPECS = [
    {  # stride 2, padding 1, avgpool, relu
        "input_shape": [1, 20, 20],
        "layers": [
            {
                "type": "conv2d",
                "in_channels": 1,
                "out_channels": 4,
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
            },
            {"type": "relu"},
            {"type": "avgpool2d", "kernel_size": 2},
            {
                "type": "conv2d",
                "in_channels": 4,
                "out_channels": 5,
                "kernel_size": [3, 2],
                "padding": [1, 0],
            },
            {"type": "sigmoid"},
            {"type": "flatten"},
            {"type": "dense", "in_features": 5 * 5 * 4, "out_features": 7},
            {"type": "softmax"},
        ],
    },
    {  # padded max pool with stride 1, 3 input channels, no bias
        "input_shape": [3, 9, 11],
        "layers": [
            {"type": "maxpool2d", "kernel_size": 3, "stride": 1, "padding": 1},
            {
                "type": "conv2d",
                "in_channels": 3,
                "out_channels": 2,
                "kernel_size": 3,
                "bias": False,
            },
            {"type": "tanh"},
            {"type": "avgpool2d", "kernel_size": 3, "stride": 2, "padding": 1},
            {"type": "flatten"},
            {"type": "dense", "in_features": 2 * 4 * 5, "out_features": 3, "bias": False},
        ],
    },
    {
        "input_shape": [12],
        "layers": [{"type": "dense", "in_features": 12, "out_features": 5}, {"type": "relu"}],
    },
    {  # 3x3 stride 1 on many channels: Winograd F(2x2, 3x3), even and odd map sizes
        "input_shape": [48, 9, 12],
        "layers": [
            {
                "type": "conv2d",
                "in_channels": 48,
                "out_channels": 50,
                "kernel_size": 3,
                "padding": 1,
            },
            {"type": "relu"},
            {
                "type": "conv2d",
                "in_channels": 50,
                "out_channels": 3,
                "kernel_size": 3,
                "padding": [2, 1],
                "bias": False,
            },
            {"type": "flatten"},
            {"type": "dense", "in_features": 3 * 11 * 12, "out_features": 4},
        ],
    },
    {  # more channels than taps: im2col slice by slice (stride, dilation, padding)
        "input_shape": [10, 9, 8],
        "layers": [
            {
                "type": "conv2d",
                "in_channels": 10,
                "out_channels": 12,
                "kernel_size": 3,
                "stride": [2, 1],
                "padding": [1, 2],
                "dilation": [1, 2],
            },
            {"type": "relu"},
            {
                "type": "conv2d",
                "in_channels": 12,
                "out_channels": 12,
                "kernel_size": [3, 2],
                "padding": 2,
                "groups": 3,
            },
            {"type": "conv2d", "in_channels": 12, "out_channels": 4, "kernel_size": 1, "stride": 2},
            {"type": "flatten"},
            {"type": "dense", "in_features": 4 * 4 * 6, "out_features": 3},
        ],
    },
]


@pytest.mark.parametrize("spec", [MLP_SPEC, CNN_SPEC, *RANDOM_SPECS])
def test_random_architectures_match_torch(spec):
    for seed in range(3):
        model = build_model(spec, random_arrays(spec, seed))
        x = np.random.default_rng(seed).random((5, *model.input_shape), dtype=np.float32)
        assert_matches_torch(model, x)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_shipped_models_match_torch(shipped, mnist_test, name):
    model = shipped[name]
    images = mnist_test[0][:64].astype(np.float32) / 255.0
    h = model.input_shape[1]
    pad = (h - 28) // 2
    x = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))[:, None]
    assert_matches_torch(model, x)


def test_the_shipped_resnet_scores_what_its_card_says(shipped, mnist_test):
    """The graph model: its NumPy forward pass reads the 10,000 test digits as the accuracy in
    its metadata (and the model card) says, at least 99.3 %."""
    model = shipped["resnet"]
    assert sum(len(layer.inputs) == 2 for layer in model.layers) == 2  # two residual adds
    x = mnist_test[0].astype(np.float32)[:, None] / 255.0
    accuracy = float((predict(model, x).argmax(axis=1) == mnist_test[1]).mean())
    assert accuracy == pytest.approx(model.metadata["test_accuracy"], abs=1e-4)
    assert accuracy >= 0.993


def test_single_input_has_no_batch_axis():
    model = build_model(CNN_SPEC, random_arrays(CNN_SPEC))
    x = np.random.default_rng(1).random((32, 32), dtype=np.float32)
    acts = forward(model, x)
    assert acts[0].shape == (1, 32, 32)
    assert acts[-1].shape == (10,)
    assert abs(float(acts[-1].sum()) - 1.0) < 1e-5
    batch = forward(model, np.stack([x, x]))
    np.testing.assert_allclose(batch[-1][1], acts[-1], atol=1e-6)


def test_batch_of_ten_thousand_runs_in_seconds(shipped, mnist_test):
    x = mnist_test[0].astype(np.float32) / 255.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    start = time.perf_counter()
    probs = predict(shipped["cnn"], x)
    elapsed = time.perf_counter() - start
    assert probs.shape == (10000, 10)
    assert elapsed < 30  # generous on a loaded 2-core machine; measured ~1-2 s


@pytest.mark.parametrize("end", ["none", "softmax", "log_softmax"])
def test_predict_gives_probabilities_whatever_the_model_ends_in(end):
    from nnviz_blender.core.forward import predict, probabilities

    layers = [{"type": "dense", "in_features": 6, "out_features": 4}]
    layers += [] if end == "none" else [{"type": end}]
    rng = np.random.default_rng(0)
    arrays = {"layers.0.weight": rng.normal(size=(4, 6)), "layers.0.bias": rng.normal(size=4)}
    model = build_model({"version": 2, "input_shape": [6], "layers": layers}, arrays)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    logits = x @ arrays["layers.0.weight"].T + arrays["layers.0.bias"]
    want = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(predict(model, x), want, rtol=1e-5)
    np.testing.assert_allclose(probabilities(model, forward(model, x)[-1]), want, rtol=1e-5)
    assert model.output_kind == {"none": "logits", "softmax": "probabilities"}.get(
        end, "log_probabilities"
    )


def test_winograd_equals_im2col_with_any_padding_and_batch():
    from nnviz_blender.core import conv as fw

    rng = np.random.default_rng(0)
    for _ in range(12):
        n, c, o = int(rng.integers(1, 4)), int(rng.integers(48, 70)), int(rng.integers(1, 9))
        h, w = (int(v) for v in rng.integers(8, 17, 2))
        pads = tuple(int(v) for v in rng.integers(0, 3, 4))
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        weight = (rng.standard_normal((o, c, 3, 3)) / np.sqrt(c * 9)).astype(np.float32)
        got = fw._winograd_conv(x, weight, pads)
        cols = fw._im2col(x, (3, 3), (1, 1), pads, (1, 1)).astype(np.float64)
        want = np.matmul(weight.reshape(o, -1), cols.reshape(n, c * 9, -1)).reshape(got.shape)
        np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())


def conv_reference(x, weight, stride, pads, dilation=(1, 1), groups=1):
    """PyTorch's conv2d in float64 on explicitly zero-padded input ((top, left, bottom, right))."""
    top, left, bottom, right = pads
    t = torch.nn.functional.pad(torch.from_numpy(x).double(), (left, right, top, bottom))
    w = torch.from_numpy(weight).double()
    return torch.nn.functional.conv2d(t, w, None, stride, 0, dilation, groups).numpy()


def test_few_columns_equals_one_matmul_whatever_the_row_count():
    from nnviz_blender.core import conv as fw

    rng = np.random.default_rng(0)
    for o in (1, 5, fw._GEMV_ROWS, fw._GEMV_ROWS + 1, 3 * fw._GEMV_ROWS + 7):
        for n in range(1, fw._GEMV_MAX_COLUMNS + 1):
            k = int(rng.integers(1, 300))
            a = rng.standard_normal((o, k)).astype(np.float32)
            xt = rng.standard_normal((n, k)).astype(np.float32)
            want = a.astype(np.float64) @ xt.T.astype(np.float64)
            got = fw._few_columns(a, xt)
            assert got.shape == (o, n) and got.dtype == np.float32
            np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())


# (batch, channels in, out, height, width, kernel, stride, (top, left, bottom, right)): maps no
# bigger than the kernel, so every output's window holds the whole input (ResNet's last stage)
WHOLE_INPUT_CASES = [
    (1, 64, 70, 2, 2, (3, 3), (1, 1), (1, 1, 1, 1)),
    (2, 9, 33, 2, 3, (3, 3), (1, 1), (1, 0, 1, 0)),
    (3, 5, 4, 1, 1, (3, 3), (1, 1), (1, 1, 1, 1)),
    (1, 7, 6, 3, 2, (5, 3), (2, 1), (2, 1, 2, 1)),
    (1, 6, 3, 2, 2, (3, 4), (1, 1), (1, 2, 0, 0)),
    (6, 4, 40, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("case", WHOLE_INPUT_CASES)
def test_conv_on_a_map_no_bigger_than_the_kernel_matches_torch(case):
    from nnviz_blender.core import conv as fw

    n, c, o, h, w, k, s, pads = case
    assert fw._covers_input(h, k[0], s[0], pads[0], pads[2])
    assert fw._covers_input(w, k[1], s[1], pads[1], pads[3])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = (rng.standard_normal((o, c, *k)) / np.sqrt(c * k[0] * k[1])).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    want = conv_reference(x, weight, s, pads) + bias[:, None, None]
    assert n * want.shape[2] * want.shape[3] <= fw._GEMV_MAX_COLUMNS
    got = fw._whole_input_conv(x, weight, s, pads) + bias[:, None, None]
    np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())
    got = fw.conv2d(x, weight, bias, s, pads)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())
    got = fw.conv2d(x, weight, bias, s, pads)  # again: the channels-last weight from the cache
    np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())


# few output columns, but some windows miss part of the input: im2col, then _few_columns
FEW_COLUMNS_CASES = [
    (1, 40, 70, 4, 4, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    (2, 12, 9, 5, 3, (3, 3), (3, 2), (0, 0, 0, 0), (1, 1)),
    (1, 30, 33, 4, 4, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),
    (3, 6, 5, 5, 5, (3, 3), (1, 1), (0, 0, 0, 0), (2, 2)),
    (1, 2, 8, 7, 7, (5, 5), (3, 3), (1, 2, 0, 1), (1, 1)),
]


@pytest.mark.parametrize("case", FEW_COLUMNS_CASES)
def test_conv_with_few_output_columns_matches_torch(case):
    from nnviz_blender.core import conv as fw

    n, c, o, h, w, k, s, pads, d = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = (rng.standard_normal((o, c, *k)) / np.sqrt(c * k[0] * k[1])).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    want = conv_reference(x, weight, s, pads, d) + bias[:, None, None]
    assert n * want.shape[2] * want.shape[3] <= fw._GEMV_MAX_COLUMNS
    got = fw.conv2d(x, weight, bias, s, pads, d)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())
    groups = fw.conv2d(x[:, :2], weight[:4, :1], bias[:4], s, pads, d, groups=2)  # not this path
    want = conv_reference(x[:, :2], weight[:4, :1], s, pads, d, 2) + bias[:4, None, None]
    np.testing.assert_allclose(groups, want, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize(
    "kernel, stride, pads",
    [
        ((3, 3), (2, 2), (1, 1)),
        ((2, 2), (2, 2), (0, 0)),
        ((3, 2), (1, 3), (1, 0)),
        ((1, 3), (2, 1), (0, 1)),
    ],
)
def test_maxpool_matches_torch_whatever_kernel_stride_and_padding(kernel, stride, pads):
    from nnviz_blender.core.conv import maxpool2d

    x = np.random.default_rng(3).standard_normal((2, 3, 9, 11)).astype(np.float32)
    got = maxpool2d(x, kernel, stride, pads)
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride, pads).numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "c, o, h, w, pads",
    [(32, 64, 26, 26, (0, 0, 0, 0)), (24, 16, 17, 20, (1, 1, 1, 1)), (48, 5, 8, 9, (1, 0, 1, 2))],
)
def test_conv_by_winograd_on_fewer_channels_and_larger_maps_matches_torch(c, o, h, w, pads):
    """The PyTorch example's second conv (32 -> 64 on 26x26) and its like run by Winograd."""
    from nnviz_blender.core import conv as fw

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    weight = (rng.standard_normal((o, c, 3, 3)) / np.sqrt(c * 9)).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    want = conv_reference(x, weight, (1, 1), pads) + bias[:, None, None]
    assert fw._winograd_pays(c, o, *want.shape[2:])
    got = fw.conv2d(x, weight, bias, (1, 1), pads)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-6 * np.abs(want).max())

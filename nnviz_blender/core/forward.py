"""The forward pass in plain NumPy, float32 throughout.

Each layer is a small function of a batch `x` of shape (N, ...); `forward` runs them in order and
keeps every layer's output, because the visualisation shows all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .modelfile import Layer, Model, ModelError

CHUNK = 512  # images per slice of a large batch: bounds the im2col memory


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = x @ weight.T
    return y + bias if bias is not None else y


def _windows(
    x: np.ndarray, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], fill: float
) -> np.ndarray:
    """(N, C, H, W) -> (N, C, Ho, Wo, kh, kw) view of every window (after padding with `fill`)."""
    if p != (0, 0):
        x = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    return sliding_window_view(x, k, axis=(2, 3))[:, :, :: s[0], :: s[1]]  # type: ignore[call-overload]


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride, padding
) -> np.ndarray:
    kh, kw = weight.shape[2:]
    win = _windows(x, (kh, kw), tuple(stride), tuple(padding), 0.0)
    y = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, O)
    if bias is not None:
        y += bias
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


def maxpool2d(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    win = _windows(x, tuple(kernel_size), tuple(stride), tuple(padding), -np.inf)
    return win.max(axis=(4, 5))


def avgpool2d(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """Average over the window, zero padding included (PyTorch's count_include_pad=True)."""
    win = _windows(x, tuple(kernel_size), tuple(stride), tuple(padding), 0.0)
    return win.mean(axis=(4, 5), dtype=np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # tanh form: no overflow for large |x|


_ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "softmax": softmax,
}


def apply_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer on a batch (N, *layer.in_shape) -> (N, *layer.out_shape), float32."""
    p = layer.params
    if layer.type == "dense":
        y = dense(x, layer.w, layer.bias)
    elif layer.type == "conv2d":
        y = conv2d(x, layer.w, layer.bias, p["stride"], p["padding"])
    elif layer.type == "maxpool2d":
        y = maxpool2d(x, p["kernel_size"], p["stride"], p["padding"])
    elif layer.type == "avgpool2d":
        y = avgpool2d(x, p["kernel_size"], p["stride"], p["padding"])
    elif layer.type == "flatten":
        y = x.reshape(len(x), -1)
    else:
        y = _ELEMENTWISE[layer.type](x)
    return y.astype(np.float32, copy=False)


def _as_batch(model: Model, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """Accept one input or a batch; also accept (H, W) images for single-channel models."""
    want = model.input_shape
    x = np.asarray(x, dtype=np.float32)
    if x.shape == want:
        return x[None], True
    if len(want) == 3 and want[0] == 1 and x.shape == want[1:]:
        return x[None, None], True
    if x.shape[1:] == want:
        return x, False
    if len(want) == 3 and want[0] == 1 and x.shape[1:] == want[1:]:
        return x[:, None], False
    raise ModelError(f"input of shape {list(x.shape)} does not fit the model's input {list(want)}")


def forward(model: Model, x: np.ndarray) -> list[np.ndarray]:
    """Activations of every layer, the input first and the model's output last.

    `x` is one input (shape `model.input_shape`, or (H, W) for one channel) or a batch of them;
    the result has a leading batch axis exactly when `x` is a batch.
    """
    batch, single = _as_batch(model, x)
    parts = [_run(model, batch[i : i + CHUNK], keep=True) for i in range(0, len(batch), CHUNK)]
    acts = parts[0] if len(parts) == 1 else [np.concatenate(a) for a in zip(*parts, strict=True)]
    return [a[0] for a in acts] if single else acts


def predict(model: Model, x: np.ndarray) -> np.ndarray:
    """The model's output only (class probabilities for our networks); lighter than forward."""
    batch, single = _as_batch(model, x)
    out = np.concatenate(
        [_run(model, batch[i : i + CHUNK], keep=False)[-1] for i in range(0, len(batch), CHUNK)]
    )
    return out[0] if single else out


def _run(model: Model, batch: np.ndarray, keep: bool) -> list[np.ndarray]:
    acts = [batch]
    for layer in model.layers:
        y = apply_layer(layer, acts[-1])
        acts = [*acts, y] if keep else [y]
    return acts

"""The forward pass in plain NumPy, float32 throughout.

Each layer is a small function of a batch `x` of shape (N, ...); `forward` runs them in order and
keeps every layer's output, because the visualisation shows all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .modelfile import Layer, Model, ModelError

CHUNK = 512  # images per slice of a large batch: bounds the im2col memory


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = x @ weight.T
    return y + bias if bias is not None else y


def _taps(x: np.ndarray, k, s, p, fill: float) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The kh*kw shifted views of (N, C, H, W) that a window layer combines, (i, j) row-major.

    Tap (i, j) holds, for every output position (y, x), the input at (y*sh - ph + i,
    x*sw - pw + j); padding reads `fill`. Slicing keeps this a handful of fast NumPy views.
    """
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    ho = (x.shape[2] - kh) // sh + 1
    wo = (x.shape[3] - kw) // sw + 1
    views = [
        x[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    return views, (ho, wo)


def conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride, padding
) -> np.ndarray:
    """Cross-correlation as PyTorch's Conv2d: im2col from the taps, then one matmul."""
    n, c = x.shape[:2]
    o, _, kh, kw = weight.shape
    views, (ho, wo) = _taps(x, (kh, kw), tuple(stride), tuple(padding), 0.0)
    cols = np.stack(views, axis=2).reshape(n, c * kh * kw, ho * wo)  # (c, i, j) like the weight
    y = np.matmul(weight.reshape(o, c * kh * kw), cols)
    if bias is not None:
        y += bias[:, None]
    return y.reshape(n, o, ho, wo)


def maxpool2d(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    views, _ = _taps(x, tuple(kernel_size), tuple(stride), tuple(padding), -np.inf)
    out = views[0].copy()
    for v in views[1:]:
        np.maximum(out, v, out=out)
    return out


def avgpool2d(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """Average over the window, zero padding included (PyTorch's count_include_pad=True)."""
    views, _ = _taps(x, tuple(kernel_size), tuple(stride), tuple(padding), 0.0)
    out = views[0].copy()
    for v in views[1:]:
        out += v
    out *= np.float32(1.0 / len(views))
    return out


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


def top_k(probs: np.ndarray, labels: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable (label, probability), most probable first (ties: lower index)."""
    probs = np.asarray(probs).reshape(-1)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]

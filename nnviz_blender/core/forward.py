"""The forward pass in plain NumPy, float32 throughout.

Each layer is a small function of a batch `x` of shape (N, ...); `forward` runs them in the
file's order (every layer's inputs come before it) and keeps every layer's output, because the
visualisation shows all of them: activation 0 is the input, activation i + 1 the output of layer i.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .conv import avgpool2d, conv2d, maxpool2d
from .modelfile import Layer, Model, ModelError

CHUNK = 512  # images per slice of a large batch: bounds the im2col memory
_FREED = np.empty(0, dtype=np.float32)  # stands in for an activation no later layer reads


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = x @ weight.T
    return y + bias if bias is not None else y


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0); against an array of zeros, which NumPy 1.26 runs several times faster than
    against the scalar on large arrays."""
    return np.maximum(x, np.zeros_like(x) if x.size >= 4096 else np.float32(0.0))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # tanh form: no overflow for large |x|


def hardsigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(np.float32(alpha) * x + np.float32(beta), 0.0, 1.0)


def _per_channel(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A per-channel vector (C,) shaped to broadcast over a batch (N, C, ...)."""
    return a.reshape(a.shape[0], *([1] * (x.ndim - 2)))


_PLAIN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu,
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def apply_layer(layer: Layer, *xs: np.ndarray) -> np.ndarray:
    """One layer on batches of its inputs (N, *in_shape) -> (N, *layer.out_shape), float32."""
    p, t, x = layer.params, layer.type, xs[0]
    if t in _PLAIN:
        y = _PLAIN[t](x)
    elif t == "dense":
        y = dense(x, layer.w, layer.bias)
    elif t == "conv2d":
        y = conv2d(
            x, layer.w, layer.bias, p["stride"], p["pads"], p["dilation"], p.get("groups", 1)
        )
    elif t == "maxpool2d":
        y = maxpool2d(x, p["kernel_size"], p["stride"], p["pads"])
    elif t == "avgpool2d":
        y = avgpool2d(x, p["kernel_size"], p["stride"], p["pads"], p["count_include_pad"])
    elif t == "flatten":
        y = x.reshape(len(x), -1)
    elif t == "global_avgpool":
        y = x.mean(axis=(2, 3), keepdims=True, dtype=np.float32)
    elif t == "affine":
        y = x * _per_channel(layer.w, x) + _per_channel(layer.bias, x)  # type: ignore[arg-type]
    elif t == "mul":
        y = x * np.float32(p["factor"])
    elif t == "add":
        y = xs[0] + xs[1]
        for other in xs[2:]:
            y += other
    elif t == "concat":
        y = np.concatenate(xs, axis=1)
    elif t == "leaky_relu":
        y = np.where(x >= 0, x, x * np.float32(p["alpha"]))
    elif t == "clip":
        y = np.clip(x, np.float32(p["min"]), np.float32(p["max"]))
    elif t == "hardsigmoid":
        y = hardsigmoid(x, p["alpha"], p["beta"])
    elif t == "hardswish":
        y = x * hardsigmoid(x, p["alpha"], p["beta"])
    else:
        raise ModelError(f"layer {layer.index}: no forward rule for {t!r}")
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
    the result has a leading batch axis exactly when `x` is a batch. acts[i + 1] is the output
    of model.layers[i] whatever the graph's shape.
    """
    batch, single = _as_batch(model, x)
    parts = [_run(model, batch[i : i + CHUNK], keep=True) for i in range(0, len(batch), CHUNK)]
    acts = parts[0] if len(parts) == 1 else [np.concatenate(a) for a in zip(*parts, strict=True)]
    return [a[0] for a in acts] if single else acts


def probabilities(model: Model, output: np.ndarray) -> np.ndarray:
    """Class probabilities from the model's output, whatever it ends in.

    Softmax of logits, exp of a log_softmax, a softmax output as it is (along the last axis).
    """
    output = np.asarray(output, dtype=np.float32)
    kind = model.output_kind
    if kind == "log_probabilities":
        return np.exp(output)
    if kind == "logits" and len(model.output_shape) == 1:
        return softmax(output)
    return output


def predict(model: Model, x: np.ndarray) -> np.ndarray:
    """Class probabilities for one input or a batch (see `probabilities`); lighter than forward."""
    batch, single = _as_batch(model, x)
    out = np.concatenate(
        [_run(model, batch[i : i + CHUNK], keep=False)[-1] for i in range(0, len(batch), CHUNK)]
    )
    out = probabilities(model, out)
    return out[0] if single else out


def _last_uses(model: Model) -> list[int]:
    """For each activation, the index of the last layer that reads it (-1 if none does)."""
    last = [-1] * (len(model.layers) + 1)
    for layer in model.layers:
        for j in layer.inputs:
            last[j] = layer.index
    return last


def _run(model: Model, batch: np.ndarray, keep: bool) -> list[np.ndarray]:
    """Every activation (keep) or the output alone, dropping each activation after its last use."""
    acts: list[np.ndarray] = [batch]
    last = None if keep else _last_uses(model)
    for layer in model.layers:
        ins = layer.inputs
        if len(ins) == 1:
            acts.append(apply_layer(layer, acts[ins[0]]))
        else:
            acts.append(apply_layer(layer, *[acts[j] for j in ins]))
        if last is not None:
            for j in layer.inputs:
                if last[j] == layer.index:
                    acts[j] = _FREED  # no later layer reads it
    return acts if keep else [acts[-1]]


def top_k(probs: np.ndarray, labels: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable (label, probability), most probable first (ties: lower index)."""
    probs = np.asarray(probs).reshape(-1)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]

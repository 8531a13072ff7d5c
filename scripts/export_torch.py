"""Convert a PyTorch nn.Sequential into an nnviz model file (.npz).

Supported modules: Linear, Conv2d (dilation 1, groups 1, zero padding), MaxPool2d, AvgPool2d,
Flatten, ReLU, Tanh, Sigmoid, Softmax; nested nn.Sequential containers are flattened. A softmax
layer is appended when the model does not end in one.

As a script it converts a checkpoint written by train_mnist.py:

    python scripts/export_torch.py --checkpoint scratch/mlp.pt --out models/mlp.npz --name mlp
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from train_mnist import build_model as build_network  # noqa: E402
from train_mnist import input_shape  # noqa: E402

from nnviz_blender.core import mnist  # noqa: E402
from nnviz_blender.core.forward import predict  # noqa: E402
from nnviz_blender.core.modelfile import Model, build_model, save_model  # noqa: E402

MNIST_LABELS = [str(i) for i in range(10)]
MNIST_PREPROCESS = {"kind": "mnist", "field": 28, "box": 20}

Arrays = dict[str, np.ndarray]


class ExportError(ValueError):
    """A module or setting that the nnviz model format cannot represent."""


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def _leaves(model: nn.Module) -> Iterator[nn.Module]:
    for module in model.children() if isinstance(model, nn.Sequential) else [model]:
        if isinstance(module, nn.Sequential):
            yield from _leaves(module)
        else:
            yield module


def _param(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _linear(m: nn.Linear) -> tuple[dict, Arrays]:
    layer = {
        "type": "dense",
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
    }
    return layer, _weights(m)


def _conv2d(m: nn.Conv2d, where: str) -> tuple[dict, Arrays]:
    if m.groups != 1:
        raise ExportError(f"{where}: Conv2d with groups={m.groups} is not supported (only 1)")
    if _pair(m.dilation) != [1, 1]:
        raise ExportError(f"{where}: Conv2d with dilation={m.dilation} is not supported (only 1)")
    if m.padding_mode != "zeros":
        raise ExportError(f"{where}: Conv2d padding_mode={m.padding_mode!r} is not supported")
    if isinstance(m.padding, str):
        raise ExportError(f"{where}: Conv2d padding={m.padding!r} is not supported; use integers")
    layer = {
        "type": "conv2d",
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": _pair(m.kernel_size),
        "stride": _pair(m.stride),
        "padding": _pair(m.padding),
        "bias": m.bias is not None,
    }
    return layer, _weights(m)


def _pool(m: nn.MaxPool2d | nn.AvgPool2d, where: str) -> dict:
    name = type(m).__name__
    if m.ceil_mode:
        raise ExportError(f"{where}: {name} with ceil_mode=True is not supported")
    if isinstance(m, nn.MaxPool2d) and (_pair(m.dilation) != [1, 1] or m.return_indices):
        raise ExportError(f"{where}: MaxPool2d with dilation or return_indices is not supported")
    if isinstance(m, nn.AvgPool2d):
        if m.divisor_override is not None:
            raise ExportError(f"{where}: AvgPool2d with divisor_override is not supported")
        if not m.count_include_pad and _pair(m.padding) != [0, 0]:
            raise ExportError(f"{where}: AvgPool2d with padding needs count_include_pad=True")
    return {
        "type": "maxpool2d" if isinstance(m, nn.MaxPool2d) else "avgpool2d",
        "kernel_size": _pair(m.kernel_size),
        "stride": _pair(m.kernel_size if m.stride is None else m.stride),
        "padding": _pair(m.padding),
    }


def _weights(m: nn.Linear | nn.Conv2d) -> Arrays:
    arrays = {"weight": _param(m.weight)}
    if m.bias is not None:
        arrays["bias"] = _param(m.bias)
    return arrays


_ELEMENTWISE = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


def module_to_layer(module: nn.Module, where: str) -> tuple[dict, Arrays]:
    """One module as (layer dict, {"weight": ..., "bias": ...}); ExportError if unsupported."""
    if type(module) in _ELEMENTWISE:
        return {"type": _ELEMENTWISE[type(module)]}, {}
    if isinstance(module, nn.Linear):
        return _linear(module)
    if isinstance(module, nn.Conv2d):
        return _conv2d(module, where)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(module, where), {}
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise ExportError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
        return {"type": "flatten"}, {}
    if isinstance(module, nn.Softmax):
        if module.dim not in (1, -1):
            raise ExportError(f"{where}: Softmax must act on the feature axis (dim=1 or -1)")
        return {"type": "softmax"}, {}
    raise ExportError(
        f"{where}: {type(module).__name__} is not supported (supported: Linear, Conv2d, "
        "MaxPool2d, AvgPool2d, Flatten, ReLU, Tanh, Sigmoid, Softmax, Sequential)"
    )


def sequential_to_spec(
    model: nn.Sequential,
    input_shape: tuple[int, ...] | list[int],
    name: str,
    labels: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    preprocess: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Arrays]:
    """The model spec and its arrays (`layers.<i>.weight` / `.bias`) for `model`.

    Appends a softmax layer when the model does not already end in one.
    """
    layers: list[dict] = []
    arrays: Arrays = {}
    for j, module in enumerate(_leaves(model)):
        layer, params = module_to_layer(module, f"module {j} ({type(module).__name__})")
        arrays.update({f"layers.{len(layers)}.{key}": a for key, a in params.items()})
        layers.append(layer)
    if not layers or layers[-1]["type"] != "softmax":
        layers.append({"type": "softmax"})
    spec: dict[str, Any] = {
        "format": "nnviz-model",
        "version": 1,
        "name": name,
        "input_shape": [int(v) for v in input_shape],
        "layers": layers,
        "metadata": dict(metadata or {}),
    }
    if labels is not None:
        spec["labels"] = [str(label) for label in labels]
    if preprocess is not None:
        spec["preprocess"] = dict(preprocess)
    return spec, arrays


def mnist_accuracy(model: Model, directory: str) -> float:
    """Accuracy of `model` on the official 10,000 MNIST test images, with the NumPy forward."""
    images, labels = mnist.load(directory, "test")
    x = images.astype(np.float32) / 255.0
    pad = (model.input_shape[1] - x.shape[1]) // 2
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    return float((predict(model, x).argmax(axis=1) == labels).mean())


def export_checkpoint(
    checkpoint: str,
    out: str,
    name: str,
    accuracy: float | None = None,
    test_data: str | None = None,
) -> dict[str, Any]:
    """Convert a train_mnist.py checkpoint to a model file; returns the spec written.

    The test accuracy recorded is `accuracy`, or else measured with the NumPy forward on the
    MNIST test split in `test_data`.
    """
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    network = build_network(saved["arch"])
    network.load_state_dict(saved["state_dict"])
    metadata = {"arch": saved["arch"], **saved.get("metadata", {})}
    spec, arrays = sequential_to_spec(
        network, input_shape(saved["arch"]), name, MNIST_LABELS, metadata, MNIST_PREPROCESS
    )
    if accuracy is None and test_data is not None:
        accuracy = mnist_accuracy(build_model(spec, arrays), test_data)
    if accuracy is not None:
        spec["metadata"]["test_accuracy"] = accuracy
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    return save_model(out, spec, arrays).spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", required=True, help=".pt file written by train_mnist.py")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--name", required=True)
    p.add_argument("--accuracy", type=float, help="test accuracy to record in the metadata")
    p.add_argument("--test-data", help="MNIST directory: measure the test accuracy with NumPy")
    args = p.parse_args(argv)
    spec = export_checkpoint(args.checkpoint, args.out, args.name, args.accuracy, args.test_data)
    acc = spec["metadata"].get("test_accuracy")
    print(f"wrote {args.out}: {len(spec['layers'])} layers, test accuracy {acc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

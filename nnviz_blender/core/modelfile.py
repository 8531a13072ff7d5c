"""The nnviz model format: one `.npz` holding a JSON `spec` and the weights in PyTorch layout.

Loading never unpickles (`allow_pickle=False`) and every way a file can be wrong raises a
`ModelError` whose message says exactly what is wrong, so the UI can show it as one line.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import NNVizError

FORMAT = "nnviz-model"
VERSION = 1
MAX_PARAMETERS = 50_000_000
MAX_ACTIVATIONS = 2_000_000

ELEMENTWISE = ("relu", "tanh", "sigmoid")
POOLS = ("maxpool2d", "avgpool2d")
LAYER_TYPES = ("dense", "conv2d", *POOLS, "flatten", *ELEMENTWISE, "softmax")

Shape = tuple[int, ...]


class ModelError(NNVizError, ValueError):
    """A model file or spec that cannot be used; the message is meant for the user."""


@dataclass(frozen=True)
class Layer:
    """One layer with its parameters resolved and its input/output shapes known."""

    index: int
    type: str
    params: dict[str, Any]
    in_shape: Shape
    out_shape: Shape
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None

    @property
    def name(self) -> str:
        return str(self.params.get("name") or f"{self.type}{self.index}")

    @property
    def w(self) -> np.ndarray:
        """The weights of a dense or conv layer (asking a weightless layer is a bug)."""
        if self.weight is None:
            raise ModelError(f"layer {self.index} ({self.type}) has no weights")
        return self.weight


@dataclass(frozen=True)
class Model:
    spec: dict[str, Any]
    layers: tuple[Layer, ...]
    path: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", "model"))

    @property
    def input_shape(self) -> Shape:
        return tuple(self.spec["input_shape"])

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    @property
    def labels(self) -> list[str]:
        labels = self.spec.get("labels")
        n = int(np.prod(self.output_shape))
        return [str(x) for x in labels] if labels else [str(i) for i in range(n)]

    @property
    def preprocess(self) -> dict[str, Any]:
        return dict(self.spec.get("preprocess") or {})

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.spec.get("metadata") or {})

    @property
    def parameter_count(self) -> int:
        return sum(
            a.size for layer in self.layers for a in (layer.weight, layer.bias) if a is not None
        )


# --- shape rules ------------------------------------------------------------------------------


def _pair(layer: dict[str, Any], key: str, default: int | None, where: str) -> tuple[int, int]:
    value = layer.get(key, default)
    if value is None:
        raise ModelError(f"{where}: missing '{key}'")
    if isinstance(value, bool):
        raise ModelError(f"{where}: '{key}' must be an integer or a pair of integers")
    if isinstance(value, int):
        value = [value, value]
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ModelError(f"{where}: '{key}' must be an integer or a pair of integers")
    return int(value[0]), int(value[1])


def _positive_int(layer: dict[str, Any], key: str, where: str) -> int:
    value = layer.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelError(f"{where}: '{key}' must be a positive integer")
    return value


def _window_out(size: int, k: int, s: int, p: int, where: str) -> int:
    out = (size + 2 * p - k) // s + 1
    if k <= 0 or s <= 0 or p < 0 or out <= 0:
        raise ModelError(
            f"{where}: window {k} / stride {s} / padding {p} does not fit an input of size {size}"
        )
    return out


def _resolve(index: int, raw: Any, in_shape: Shape) -> tuple[dict[str, Any], Shape, dict]:
    """Check one layer's parameters against its input shape.

    Returns the normalised parameters, the output shape and the expected array shapes.
    """
    where = f"layer {index}"
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: must be an object, not {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in LAYER_TYPES:
        raise ModelError(
            f"{where}: unknown layer type {kind!r} (supported: {', '.join(LAYER_TYPES)})"
        )
    where = f"layer {index} ({kind})"
    params: dict[str, Any] = {k: v for k, v in raw.items() if k != "type"}
    arrays: dict[str, Shape] = {}

    if kind == "dense":
        n_in = _positive_int(raw, "in_features", where)
        n_out = _positive_int(raw, "out_features", where)
        if len(in_shape) != 1:
            raise ModelError(
                f"{where}: needs a flat input but gets shape {list(in_shape)} (add a flatten layer)"
            )
        if in_shape[0] != n_in:
            raise ModelError(
                f"{where}: expects {n_in} inputs but the previous layer gives {in_shape[0]}"
            )
        arrays["weight"] = (n_out, n_in)
        if raw.get("bias", True):
            arrays["bias"] = (n_out,)
        return params, (n_out,), arrays

    if kind == "conv2d":
        c_in = _positive_int(raw, "in_channels", where)
        c_out = _positive_int(raw, "out_channels", where)
        kh, kw = _pair(raw, "kernel_size", None, where)
        sh, sw = _pair(raw, "stride", 1, where)
        ph, pw = _pair(raw, "padding", 0, where)
        if len(in_shape) != 3:
            raise ModelError(f"{where}: needs a (C, H, W) input but gets shape {list(in_shape)}")
        if in_shape[0] != c_in:
            raise ModelError(f"{where}: expects {c_in} input channels but gets {in_shape[0]}")
        h = _window_out(in_shape[1], kh, sh, ph, where)
        w = _window_out(in_shape[2], kw, sw, pw, where)
        params.update(kernel_size=[kh, kw], stride=[sh, sw], padding=[ph, pw])
        arrays["weight"] = (c_out, c_in, kh, kw)
        if raw.get("bias", True):
            arrays["bias"] = (c_out,)
        return params, (c_out, h, w), arrays

    if kind in POOLS:
        kh, kw = _pair(raw, "kernel_size", None, where)
        sh, sw = _pair(raw, "stride", raw.get("kernel_size"), where)
        ph, pw = _pair(raw, "padding", 0, where)
        if len(in_shape) != 3:
            raise ModelError(f"{where}: needs a (C, H, W) input but gets shape {list(in_shape)}")
        if 2 * ph > kh or 2 * pw > kw:
            raise ModelError(f"{where}: padding must be at most half the window")
        h = _window_out(in_shape[1], kh, sh, ph, where)
        w = _window_out(in_shape[2], kw, sw, pw, where)
        params.update(kernel_size=[kh, kw], stride=[sh, sw], padding=[ph, pw])
        return params, (in_shape[0], h, w), arrays

    if kind == "flatten":
        return params, (int(np.prod(in_shape)),), arrays

    if kind == "softmax" and len(in_shape) != 1:
        raise ModelError(f"{where}: needs a flat input but gets shape {list(in_shape)}")
    return params, in_shape, arrays  # elementwise and softmax keep the shape


# --- building and checking --------------------------------------------------------------------


def _check_shape_list(value: Any) -> Shape:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ModelError(
            "spec: 'input_shape' must be a list of 1 to 3 positive integers, e.g. [1, 28, 28]"
        )
    return tuple(value)


def array_shapes(spec: dict) -> dict[str, Shape]:
    """The arrays a valid spec needs, by name, with their shapes, in layer order."""
    shape = _check_shape_list(spec.get("input_shape"))
    out: dict[str, Shape] = {}
    for i, raw in enumerate(spec.get("layers") or []):
        _, shape, expected = _resolve(i, raw, shape)
        out.update({f"layers.{i}.{key}": want for key, want in expected.items()})
    return out


def build_model(
    spec: Any, arrays: dict[str, np.ndarray], path: str | None = None, *, strict: bool = True
) -> Model:
    """Validate a spec and its arrays and return a Model (arrays become float32, C-contiguous)."""
    if not isinstance(spec, dict):
        raise ModelError("spec: must be a JSON object")
    if spec.get("format", FORMAT) != FORMAT:
        raise ModelError(f"spec: 'format' is {spec.get('format')!r}, expected {FORMAT!r}")
    version = spec.get("version", VERSION)
    if not isinstance(version, int) or version > VERSION:
        raise ModelError(
            f"spec: format version {version!r} is newer than this add-on understands ({VERSION})"
        )
    shape = _check_shape_list(spec.get("input_shape"))
    raw_layers = spec.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ModelError("spec: 'layers' must be a non-empty list")
    labels = spec.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise ModelError("spec: 'labels' must be a list of strings")

    layers: list[Layer] = []
    used: set[str] = set()
    total_params = 0
    total_acts = int(np.prod(shape))
    for i, raw in enumerate(raw_layers):
        params, out_shape, expected = _resolve(i, raw, shape)
        loaded: dict[str, np.ndarray] = {}
        for key, want in expected.items():
            name = f"layers.{i}.{key}"
            if name not in arrays:
                raise ModelError(f"layer {i} ({raw['type']}): missing array '{name}'")
            arr = arrays[name]
            if arr.dtype.kind not in "fiu":
                raise ModelError(f"array '{name}': must be numeric, not {arr.dtype}")
            if tuple(arr.shape) != want:
                raise ModelError(f"array '{name}': shape {list(arr.shape)}, expected {list(want)}")
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if not np.isfinite(arr).all():
                raise ModelError(f"array '{name}': contains NaN or Inf")
            loaded[key] = arr
            used.add(name)
            total_params += arr.size
        total_acts += int(np.prod(out_shape))
        layers.append(
            Layer(
                i, raw["type"], params, shape, out_shape, loaded.get("weight"), loaded.get("bias")
            )
        )
        shape = out_shape

    if total_params > MAX_PARAMETERS:
        raise ModelError(
            f"network too large: {total_params:,} parameters (limit {MAX_PARAMETERS:,})"
        )
    if total_acts > MAX_ACTIVATIONS:
        raise ModelError(f"network too large: {total_acts:,} neurons (limit {MAX_ACTIVATIONS:,})")
    if labels is not None and len(labels) != int(np.prod(shape)):
        raise ModelError(f"spec: {len(labels)} labels for {int(np.prod(shape))} outputs")
    extra = sorted(set(arrays) - used)
    if strict and extra:
        raise ModelError(f"unexpected arrays in file: {', '.join(extra[:5])}")
    clean = json.loads(json.dumps(spec))
    clean.setdefault("format", FORMAT)
    clean.setdefault("version", VERSION)
    return Model(clean, tuple(layers), path)


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load and validate a model file; raises ModelError with a clear message on any problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{os.path.basename(path)}: not an .npz model file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if "spec" not in names:
                raise ModelError(f"{os.path.basename(path)}: no 'spec' entry (not an nnviz model)")
            arrays = {name: npz[name] for name in names}
    except ModelError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelError(
                f"{os.path.basename(path)}: contains a pickled object array; refusing to load it"
            ) from None
        raise ModelError(f"{os.path.basename(path)}: corrupt model file ({exc})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ModelError(
            f"{os.path.basename(path)}: corrupt or truncated model file ({exc})"
        ) from None
    try:
        spec = json.loads(str(arrays.pop("spec")[()]))
    except (json.JSONDecodeError, TypeError, IndexError, ValueError) as exc:
        raise ModelError(f"{os.path.basename(path)}: 'spec' is not valid JSON ({exc})") from None
    try:
        return build_model(spec, arrays, path)
    except ModelError as exc:
        raise ModelError(f"{os.path.basename(path)}: {exc}") from None


def save_model(
    path: str | os.PathLike[str], spec: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Model:
    """Validate `spec` + `arrays` and write them as a compressed model file."""
    model = build_model(spec, arrays)
    out = {
        f"layers.{layer.index}.{key}": arr
        for layer in model.layers
        for key, arr in (("weight", layer.weight), ("bias", layer.bias))
        if arr is not None
    }
    np.savez_compressed(os.fspath(path), spec=np.array(json.dumps(model.spec)), **out)
    return model

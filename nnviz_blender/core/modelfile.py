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

from .errors import ModelError

FORMAT = "nnviz-model"
VERSION = 2
MAX_PARAMETERS = 50_000_000
MAX_ACTIVATIONS = 16_000_000  # every layer's output summed: a ResNet-18 at 224x224 has 5.9M
MAX_LAYERS = 2_000

ELEMENTWISE = ("relu", "tanh", "sigmoid", "leaky_relu", "clip", "hardsigmoid", "hardswish")
SOFTMAXES = ("softmax", "log_softmax")
POOLS = ("maxpool2d", "avgpool2d")
MERGES = ("add", "concat")
LAYER_TYPES = (
    "dense",
    "conv2d",
    *POOLS,
    "global_avgpool",
    "affine",
    "mul",
    *MERGES,
    "flatten",
    *ELEMENTWISE,
    *SOFTMAXES,
)
OUTPUT_KINDS = ("logits", "probabilities", "log_probabilities")
INPUT = "input"  # the name layers use for the model's input

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """One layer with its parameters resolved and its input/output shapes known.

    `inputs` are indices into forward()'s activation list: 0 is the model input, i + 1 the output
    of layer i (a sequential model's layer i reads activation i).
    """

    index: int
    type: str
    params: dict[str, Any]
    in_shape: Shape
    out_shape: Shape
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    inputs: tuple[int, ...] = ()
    in_shapes: tuple[Shape, ...] = ()

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
    def output_kind(self) -> str:
        """What the last layer gives: "logits", "probabilities" or "log_probabilities"."""
        return str(self.spec.get("output") or _default_output(self.layers))

    @property
    def channels(self) -> int:
        """Colour channels of an image input (1 grey, 3 RGB); 1 for flat inputs."""
        return self.input_shape[0] if len(self.input_shape) == 3 else 1

    @property
    def is_sequential(self) -> bool:
        """True when every layer reads the previous one only (a version-1 style chain)."""
        return all(layer.inputs == (layer.index,) for layer in self.layers)

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


def _default_output(layers: tuple[Layer, ...]) -> str:
    last = layers[-1].type if layers else ""
    return {"softmax": "probabilities", "log_softmax": "log_probabilities"}.get(last, "logits")


# --- shape rules ------------------------------------------------------------------------------


def _ints(value: Any, n: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _pair(layer: dict[str, Any], key: str, default: Any, where: str) -> tuple[int, int]:
    value = layer.get(key, default)
    if value is None:
        raise ModelError(f"{where}: missing '{key}'")
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not _ints(value, 2):
        raise ModelError(f"{where}: '{key}' must be an integer or a pair of integers")
    return int(value[0]), int(value[1])


def _pads(layer: dict[str, Any], where: str) -> tuple[int, int, int, int]:
    """'padding' as (top, left, bottom, right): an integer, [h, w] or [top, left, bottom, right]."""
    value = layer.get("padding", 0)
    if _ints(value, 4):
        pads = tuple(int(v) for v in value)
    else:
        try:
            ph, pw = _pair(layer, "padding", 0, where)
        except ModelError:
            raise ModelError(
                f"{where}: 'padding' must be an integer, [h, w] or [top, left, bottom, right]"
            ) from None
        pads = (ph, pw, ph, pw)
    if min(pads) < 0:
        raise ModelError(f"{where}: 'padding' must not be negative")
    return pads  # type: ignore[return-value]


def _positive_int(layer: dict[str, Any], key: str, where: str, default: Any = None) -> int:
    value = layer.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelError(f"{where}: '{key}' must be a positive integer")
    return value


def _number(layer: dict[str, Any], key: str, default: float, where: str) -> float:
    value = layer.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ModelError(f"{where}: '{key}' must be a finite number")
    return float(value)


def _window_out(size: int, k: int, s: int, p0: int, p1: int, d: int, where: str) -> int:
    span = d * (k - 1) + 1
    out = (size + p0 + p1 - span) // s + 1 if s > 0 else 0
    if k <= 0 or s <= 0 or d <= 0 or out <= 0:
        raise ModelError(
            f"{where}: window {k} / stride {s} / padding {p0}+{p1} / dilation {d} "
            f"does not fit an input of size {size}"
        )
    return out


def _window(raw: dict[str, Any], in_shape: Shape, where: str, pool: bool) -> tuple[dict, Shape]:
    """Normalised window parameters (kernel, stride, pads, dilation) and the output (H', W')."""
    kh, kw = _pair(raw, "kernel_size", None, where)
    sh, sw = _pair(raw, "stride", raw.get("kernel_size") if pool else 1, where)
    dh, dw = _pair(raw, "dilation", 1, where)
    top, left, bottom, right = _pads(raw, where)
    if len(in_shape) != 3:
        raise ModelError(f"{where}: needs a (C, H, W) input but gets shape {list(in_shape)}")
    if pool and (dh, dw) != (1, 1):
        raise ModelError(f"{where}: dilated pooling is not supported")
    if pool and (2 * max(top, bottom) > kh or 2 * max(left, right) > kw):
        raise ModelError(f"{where}: padding must be at most half the window")
    h = _window_out(in_shape[1], kh, sh, top, bottom, dh, where)
    w = _window_out(in_shape[2], kw, sw, left, right, dw, where)
    params = dict(
        kernel_size=[kh, kw],
        stride=[sh, sw],
        padding=[top, left] if (top, left) == (bottom, right) else [top, left, bottom, right],
        pads=[top, left, bottom, right],
        dilation=[dh, dw],
    )
    return params, (h, w)


def _flat(in_shape: Shape, where: str) -> None:
    if len(in_shape) != 1:
        raise ModelError(
            f"{where}: needs a flat input but gets shape {list(in_shape)} (add a flatten layer)"
        )


def _resolve(
    where: str, raw: dict[str, Any], in_shapes: list[Shape]
) -> tuple[dict[str, Any], Shape, dict[str, Shape]]:
    """Check one layer's parameters against its input shapes.

    Returns the normalised parameters, the output shape and the expected array shapes.
    """
    kind = raw["type"]
    params: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("type", "inputs")}
    arrays: dict[str, Shape] = {}
    in_shape = in_shapes[0]
    if kind not in MERGES and len(in_shapes) != 1:
        raise ModelError(f"{where}: takes one input, not {len(in_shapes)}")

    if kind == "dense":
        n_in = _positive_int(raw, "in_features", where)
        n_out = _positive_int(raw, "out_features", where)
        _flat(in_shape, where)
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
        groups = _positive_int(raw, "groups", where, 1)
        window, (h, w) = _window(raw, in_shape, where, pool=False)
        if in_shape[0] != c_in:
            raise ModelError(f"{where}: expects {c_in} input channels but gets {in_shape[0]}")
        if c_in % groups or c_out % groups:
            raise ModelError(
                f"{where}: {groups} groups must divide {c_in} input and {c_out} output channels"
            )
        params.update(window, groups=groups)
        kh, kw = window["kernel_size"]
        arrays["weight"] = (c_out, c_in // groups, kh, kw)
        if raw.get("bias", True):
            arrays["bias"] = (c_out,)
        return params, (c_out, h, w), arrays

    if kind in POOLS:
        window, (h, w) = _window(raw, in_shape, where, pool=True)
        params.update(window)
        if kind == "avgpool2d":
            include = raw.get("count_include_pad", True)
            if not isinstance(include, bool):
                raise ModelError(f"{where}: 'count_include_pad' must be true or false")
            params["count_include_pad"] = include
        return params, (in_shape[0], h, w), arrays

    if kind == "global_avgpool":
        if len(in_shape) != 3:
            raise ModelError(f"{where}: needs a (C, H, W) input but gets shape {list(in_shape)}")
        return params, (in_shape[0], 1, 1), arrays

    if kind == "affine":  # y = x * weight[c] + bias[c], per channel (an unfolded batch norm)
        arrays["weight"] = arrays["bias"] = (in_shape[0],)
        return params, in_shape, arrays

    if kind == "mul":
        params["factor"] = _number(raw, "factor", float("nan"), where)
        return params, in_shape, arrays

    if kind == "add":
        if len(in_shapes) < 2 or any(s != in_shape for s in in_shapes):
            raise ModelError(
                f"{where}: needs two or more inputs of one shape, gets "
                + ", ".join(str(list(s)) for s in in_shapes)
            )
        return params, in_shape, arrays

    if kind == "concat":  # along channels (or features, for flat inputs)
        if len(in_shapes) < 2 or any(
            s[1:] != in_shape[1:] or len(s) != len(in_shape) for s in in_shapes
        ):
            raise ModelError(
                f"{where}: needs two or more inputs that differ only in channels, gets "
                + ", ".join(str(list(s)) for s in in_shapes)
            )
        return params, (sum(s[0] for s in in_shapes), *in_shape[1:]), arrays

    if kind == "flatten":
        return params, (int(np.prod(in_shape)),), arrays

    if kind == "leaky_relu":
        params["alpha"] = _number(raw, "alpha", 0.01, where)
    elif kind == "clip":
        lo, hi = _number(raw, "min", 0.0, where), _number(raw, "max", 6.0, where)
        if lo > hi:
            raise ModelError(f"{where}: 'min' {lo} is larger than 'max' {hi}")
        params.update(min=lo, max=hi)
    elif kind in ("hardsigmoid", "hardswish"):
        params.update(
            alpha=_number(raw, "alpha", 1 / 6, where), beta=_number(raw, "beta", 0.5, where)
        )
    elif kind in SOFTMAXES:
        _flat(in_shape, where)
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
    if int(np.prod(value)) > MAX_ACTIVATIONS:
        raise ModelError(f"network too large: an input of {int(np.prod(value)):,} values")
    return tuple(value)


def _check_preprocess(spec: dict[str, Any], shape: Shape) -> None:
    pre = spec.get("preprocess")
    if pre is None:
        return
    if not isinstance(pre, dict):
        raise ModelError("spec: 'preprocess' must be an object")
    channels = shape[0] if len(shape) == 3 else 1
    if pre.get("kind") == "image" and channels not in (1, 3):
        raise ModelError(f"spec: an image input has 1 or 3 channels, not {channels}")
    for key in ("mean", "std"):
        value = pre.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if len(values) not in (1, channels) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            for v in values
        ):
            raise ModelError(f"spec: preprocess '{key}' must be one number or one per channel")
        if key == "std" and min(values) <= 0:
            raise ModelError("spec: preprocess 'std' must be positive")


def _layer_inputs(
    i: int, raw: dict[str, Any], version: int, names: dict[str, int], where: str
) -> tuple[int, ...]:
    """The activation indices a layer reads (the previous layer unless it names its inputs)."""
    if "inputs" not in raw:
        return (i,)
    if version < 2:
        raise ModelError(f"{where}: 'inputs' needs format version 2")
    value = raw["inputs"]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ModelError(f"{where}: 'inputs' must be a non-empty list of layer names")
    missing = [v for v in value if v not in names]
    if missing:
        raise ModelError(
            f"{where}: input {missing[0]!r} is not the model input or an earlier layer"
        )
    return tuple(names[v] for v in value)


@dataclass(frozen=True)
class _Plan:
    """One layer checked against its input shapes, before its arrays are looked at."""

    index: int
    kind: str
    params: dict[str, Any]
    inputs: tuple[int, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    expected: dict[str, Shape]
    where: str


def _plan(spec: Any) -> list[_Plan]:
    """Check everything in a spec that does not need the arrays; limits come first.

    Layers come in an order where every layer's inputs come before it (so a cycle cannot be
    written); size limits are checked from the shapes before any array is converted.
    """
    if not isinstance(spec, dict):
        raise ModelError("spec: must be a JSON object")
    if spec.get("format", FORMAT) != FORMAT:
        raise ModelError(f"spec: 'format' is {spec.get('format')!r}, expected {FORMAT!r}")
    version = spec.get("version", VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelError(f"spec: 'version' must be a positive integer, not {version!r}")
    if version > VERSION:
        raise ModelError(
            f"spec: format version {version} is newer than this add-on understands ({VERSION})"
        )
    shape = _check_shape_list(spec.get("input_shape"))
    raw_layers = spec.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ModelError("spec: 'layers' must be a non-empty list")
    if len(raw_layers) > MAX_LAYERS:
        raise ModelError(f"network too large: {len(raw_layers):,} layers (limit {MAX_LAYERS:,})")
    labels = spec.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise ModelError("spec: 'labels' must be a list of strings")
    output = spec.get("output")
    if output is not None and output not in OUTPUT_KINDS:
        raise ModelError(f"spec: 'output' must be one of {', '.join(OUTPUT_KINDS)}")
    _check_preprocess(spec, shape)

    shapes: list[Shape] = [shape]  # of every activation: the input, then each layer's output
    names = {INPUT: 0}
    plans: list[_Plan] = []
    total_params = 0
    total_acts = int(np.prod(shape))
    for i, raw in enumerate(raw_layers):
        where = f"layer {i}"
        if not isinstance(raw, dict):
            raise ModelError(f"{where}: must be an object, not {type(raw).__name__}")
        kind = raw.get("type")
        if kind not in LAYER_TYPES:
            raise ModelError(
                f"{where}: unknown layer type {kind!r} (supported: {', '.join(LAYER_TYPES)})"
            )
        name = raw.get("name")
        where = f"layer {i} ({kind})" if name is None else f"layer {i} {name!r} ({kind})"
        if name is not None and (not isinstance(name, str) or not name or name in names):
            raise ModelError(f"{where}: 'name' must be a unique non-empty string, not 'input'")
        inputs = _layer_inputs(i, raw, version, names, where)
        in_shapes = [shapes[j] for j in inputs]
        params, out_shape, expected = _resolve(where, raw, in_shapes)
        total_params += sum(int(np.prod(s)) for s in expected.values())
        total_acts += int(np.prod(out_shape))
        if total_params > MAX_PARAMETERS:
            raise ModelError(f"network too large: over {MAX_PARAMETERS:,} parameters at {where}")
        if total_acts > MAX_ACTIVATIONS:
            raise ModelError(f"network too large: over {MAX_ACTIVATIONS:,} neurons at {where}")
        names[name if name is not None else f"{kind}{i}"] = i + 1
        shapes.append(out_shape)
        plans.append(_Plan(i, kind, params, inputs, tuple(in_shapes), out_shape, expected, where))

    n_out = int(np.prod(shapes[-1]))
    if labels is not None and len(labels) != n_out:
        raise ModelError(f"spec: {len(labels)} labels for {n_out} outputs")
    if output in ("probabilities", "log_probabilities") and len(shapes[-1]) != 1:
        raise ModelError(f"spec: output {output!r} needs a flat output, not {list(shapes[-1])}")
    return plans


def array_shapes(spec: dict) -> dict[str, Shape]:
    """The arrays a valid spec needs, by name, with their shapes, in layer order."""
    return {
        f"layers.{p.index}.{key}": want for p in _plan(spec) for key, want in p.expected.items()
    }


def build_model(
    spec: Any, arrays: dict[str, np.ndarray], path: str | None = None, *, strict: bool = True
) -> Model:
    """Validate a spec and its arrays and return a Model (arrays become float32, C-contiguous)."""
    plans = _plan(spec)
    layers: list[Layer] = []
    used: set[str] = set()
    for p in plans:
        loaded: dict[str, np.ndarray] = {}
        for key, want in p.expected.items():
            array_name = f"layers.{p.index}.{key}"
            if array_name not in arrays:
                raise ModelError(f"{p.where}: missing array '{array_name}'")
            arr = arrays[array_name]
            if arr.dtype.kind not in "fiu":
                raise ModelError(f"array '{array_name}': must be numeric, not {arr.dtype}")
            if tuple(arr.shape) != want:
                raise ModelError(
                    f"array '{array_name}': shape {list(arr.shape)}, expected {list(want)}"
                )
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if not np.isfinite(arr).all():
                raise ModelError(f"array '{array_name}': contains NaN or Inf")
            loaded[key] = arr
            used.add(array_name)
        layers.append(
            Layer(
                p.index,
                p.kind,
                p.params,
                p.in_shapes[0],
                p.out_shape,
                loaded.get("weight"),
                loaded.get("bias"),
                p.inputs,
                p.in_shapes,
            )
        )

    extra = sorted(set(arrays) - used)
    if strict and extra:
        raise ModelError(f"unexpected arrays in file: {', '.join(extra[:5])}")
    clean = json.loads(json.dumps(spec))
    clean.setdefault("format", FORMAT)
    clean.setdefault("version", VERSION)
    return Model(clean, tuple(layers), path)


def load_model(path: str | os.PathLike[str]) -> Model:
    """Load and validate a model file (.npz, or .onnx through core.onnx_import).

    Raises ModelError with a clear one-line message on any problem.
    """
    path = os.fspath(path)
    if path.lower().endswith(".onnx"):
        from .onnx_import import read_onnx

        spec, arrays = read_onnx(
            path, input_name=INPUT, max_values=MAX_PARAMETERS, max_neurons=MAX_ACTIVATIONS
        )
        try:
            return build_model({"format": FORMAT, "version": VERSION, **spec}, arrays, path)
        except (ModelError, TypeError, ValueError, OverflowError) as exc:  # values from the file
            raise ModelError(f"{os.path.basename(path)}: {exc}") from None
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

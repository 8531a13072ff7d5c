"""Read an ONNX classifier as the spec and arrays of a version-2 nnviz model.

`modelfile.load_model` calls `read_onnx` for `.onnx` files and validates the result like any
model file. The file is parsed by the `onnx` package (imported here only, so the rest of core
works without it) and never executed: its nodes are read one by one and mapped onto our layer
kinds. Shape arithmetic that exporters write around a flatten (Shape -> Gather -> Unsqueeze ->
Concat -> Reshape) is evaluated on constants with the batch size taken as 1, so a symbolic batch
is fine. A batch norm is folded into the conv or dense layer before it when that layer's output
feeds only the batch norm (the result is then exactly what the pair computes); otherwise it
becomes an `affine` layer. Dropout and Identity disappear.

Every problem is one ModelError line naming the node and its op. Each layer records the ONNX
tensor it reproduces as `source`, so tests can compare every intermediate with onnxruntime.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError

MIN_OPSET = 13
MAX_NODES = 20_000
FLOAT_MAX = float(np.finfo(np.float32).max)
_DROPPED = ("Identity", "Dropout")
_SAME = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}


@dataclass
class _Act:
    """A tensor computed from the input: the layer (or input) that makes it, per-sample shape.

    `pads` (top, left, bottom, right) are zeros a Pad node put around the layer's output, still
    to be taken in by the Conv that reads it; `shape` includes them.
    """

    layer: str
    shape: tuple[int, ...]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class _Import:
    """The state of one conversion: what each ONNX tensor is, and the layers made so far."""

    input_name: str  # what layers call the model's input
    max_values: int  # the most numbers all weights together may hold
    max_neurons: int  # the most numbers an activation (or a constant made from a shape) may hold

    env: dict[str, Any] = field(default_factory=dict)  # name -> np.ndarray (constant) | _Act
    layers: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # layer -> arrays
    consumers: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)


def _fail(node: Any, message: str) -> ModelError:
    name = node.name or (node.output[0] if node.output else "?")
    return ModelError(f"node {name!r} ({node.op_type}): {message}")


# --- reading the file -------------------------------------------------------------------------


def _read(path: str, max_values: int) -> Any:
    try:
        import onnx
    except ImportError:
        raise ModelError(
            "reading .onnx files needs the 'onnx' package (pip install onnx)"
        ) from None
    from google.protobuf.message import DecodeError

    base = os.path.basename(path)
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    size = os.path.getsize(path)
    if size > 4 * max_values + (64 << 20):
        raise ModelError(f"{base}: {size:,} bytes is more than a model within the limits can be")
    with open(path, "rb") as f:
        data = f.read()
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, TypeError) as exc:
        raise ModelError(f"{base}: not a valid ONNX file ({type(exc).__name__})") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise ModelError(f"{base}: not an ONNX model (no graph nodes)")
    return proto


def _opset(proto: Any) -> int:
    import onnx.defs

    versions = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    version = versions.get("ai.onnx")
    newest = onnx.defs.onnx_opset_version()
    if version is None:
        raise ModelError("no ONNX opset declared")
    if not MIN_OPSET <= version <= newest:
        raise ModelError(
            f"opset {version} is outside the supported range {MIN_OPSET} to {newest} "
            "(re-export with a newer exporter / opset_version)"
        )
    return int(version)


def _external(tensor: Any, what: str, directory: str | None, n: int) -> None:
    """Read a tensor's external data (torch.onnx.export writes `net.onnx.data` by default).

    Only a plain file name next to the model is followed (no directories, no links out), and
    only the byte range the tensor's shape needs.
    """
    from onnx import TensorProto, helper

    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    where = f"{what} {tensor.name!r}"
    if directory is None or not location or os.path.basename(location) != location:
        raise ModelError(f"{where}: external data {location!r} must be a file next to the model")
    file = os.path.join(directory, location)
    if not os.path.isfile(file) or os.path.islink(file):
        raise ModelError(f"{where}: external data file {location!r} not found next to the model")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (ValueError, TypeError, KeyError):
        raise ModelError(f"{where}: unreadable external data description") from None
    need = n * itemsize
    if length not in (-1, need) or offset < 0 or offset + need > os.path.getsize(file):
        raise ModelError(f"{where}: external data range does not fit the file {location!r}")
    with open(file, "rb") as f:
        f.seek(offset)
        tensor.raw_data = f.read(need)
    tensor.data_location = TensorProto.DEFAULT
    del tensor.external_data[:]


def _tensor(tensor: Any, what: str, max_values: int, directory: str | None = None) -> np.ndarray:
    from onnx import TensorProto, numpy_helper

    n = int(np.prod(tensor.dims, dtype=np.float64)) if len(tensor.dims) else 1
    if n > max_values:
        raise ModelError(f"{what} {tensor.name!r}: {n:,} values is more than the size limits")
    if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
        _external(tensor, what, directory, n)
    try:
        arr = numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - any decoding failure of hostile data
        raise ModelError(f"{what} {tensor.name!r}: unreadable tensor data ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise ModelError(f"{what} {tensor.name!r}: unsupported data type {arr.dtype}")
    return arr


def _attrs(st: _Import, node: Any) -> dict[str, Any]:
    from onnx import AttributeProto, helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == AttributeProto.TENSOR:
            out[a.name] = _tensor(a.t, f"node {node.name!r} attribute", st.max_values)
        elif a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            raise _fail(node, "subgraphs (If/Loop) are not supported")
        else:
            value = helper.get_attribute_value(a)
            out[a.name] = value.decode() if isinstance(value, bytes) else value
    return out


def _order(graph: Any, known: set[str]) -> list[Any]:
    """The nodes in an order where each runs after the nodes making its inputs; cycles refused."""
    if len(graph.node) > MAX_NODES:
        raise ModelError(f"{len(graph.node):,} nodes is more than the limit {MAX_NODES:,}")
    maker: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if out in maker or out in known:
                raise _fail(node, f"tensor {out!r} is produced twice")
            if out:
                maker[out] = i
    waiting = [0] * len(graph.node)
    users: dict[int, list[int]] = {}
    for i, node in enumerate(graph.node):
        for name in node.input:
            if not name:
                continue
            if name in maker:
                waiting[i] += 1
                users.setdefault(maker[name], []).append(i)
            elif name not in known:
                raise _fail(
                    node, f"input {name!r} is neither computed, an initializer nor a graph input"
                )
    ready = [i for i, n in enumerate(waiting) if n == 0]
    order = []
    while ready:
        i = ready.pop(0)
        order.append(graph.node[i])
        for j in users.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(graph.node):
        stuck = next(graph.node[i] for i, n in enumerate(waiting) if n > 0)
        raise _fail(stuck, "the graph has a cycle through this node")
    return order


def _input_shape(value_info: Any) -> tuple[int, ...]:
    from onnx import TensorProto

    t = value_info.type.tensor_type
    if t.elem_type not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
        raise ModelError(f"input {value_info.name!r}: must be a float tensor")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if len(dims) not in (2, 3, 4):
        raise ModelError(
            f"input {value_info.name!r}: shape of rank {len(dims)}; expected (N, C, H, W) or (N, F)"
        )
    if dims[0] not in (None, 0, 1):
        raise ModelError(
            f"input {value_info.name!r}: batch size {dims[0]} (use 1 or a symbolic batch)"
        )
    rest = dims[1:]
    if any(d is None or d <= 0 for d in rest):
        raise ModelError(
            f"input {value_info.name!r}: dynamic size {['?' if d is None else d for d in rest]} "
            "(only the batch may be symbolic; export with a fixed image size)"
        )
    return tuple(int(d) for d in rest)  # type: ignore[arg-type]


# --- constants ---------------------------------------------------------------------------------


def _const_value(node: Any, attrs: dict[str, Any]) -> np.ndarray:
    for key, dtype in (
        ("value", None),
        ("value_float", np.float32),
        ("value_floats", np.float32),
        ("value_int", np.int64),
        ("value_ints", np.int64),
    ):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise _fail(node, "a Constant without a numeric value")


def _axes(node: Any, attrs: dict[str, Any], consts: list[Any], index: int) -> list[int] | None:
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(consts) > index and consts[index] is not None:
        return [int(a) for a in np.asarray(consts[index]).reshape(-1)]
    return None


def _fold(st: _Import, node: Any, attrs: dict[str, Any], c: list[Any]) -> np.ndarray:
    """Evaluate a node whose inputs are all constants (shape arithmetic, mostly)."""
    op = node.op_type
    x: Any = c[0] if c else None
    if op in _DROPPED:
        return x
    if op == "Cast":
        from onnx import helper

        return x.astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if op in ("Add", "Sub", "Mul", "Div"):
        fn: Any = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        if op == "Div" and c[0].dtype.kind in "iu":
            return np.floor_divide(c[0], c[1])
        return fn(c[0], c[1])
    if op == "Transpose":
        perm = attrs.get("perm")
        return np.transpose(x, None if perm is None else [int(v) for v in perm])
    if op == "Gather":
        return np.take(x, c[1], axis=int(attrs.get("axis", 0)))
    if op == "Unsqueeze":
        out = x
        for a in sorted(_axes(node, attrs, c, 1) or []):
            out = np.expand_dims(out, a if a >= 0 else a + out.ndim + 1)
        return out
    if op == "Squeeze":
        squeezed = _axes(node, attrs, c, 1)
        return np.squeeze(x, axis=tuple(squeezed)) if squeezed else np.squeeze(x)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in c], axis=int(attrs["axis"]))
    if op == "Reshape":
        return x.reshape(_reshape_target(node, x.shape, c[1], attrs))
    if op == "Slice":
        starts, ends = c[1].reshape(-1), c[2].reshape(-1)
        on: Any = c[3].reshape(-1) if len(c) > 3 and c[3] is not None else range(len(starts))
        steps: Any = c[4].reshape(-1) if len(c) > 4 and c[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for s, e, a, step in zip(starts, ends, on, steps, strict=False):
            index[int(a)] = slice(int(s), int(e), int(step))
        return x[tuple(index)]
    if op == "ConstantOfShape":
        shape = [int(v) for v in x.reshape(-1)]
        if np.prod(shape, dtype=np.float64) > st.max_neurons:
            raise _fail(node, f"constant of shape {shape} is more than the size limits")
        value = attrs.get("value", np.zeros(1, np.float32))
        return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)
    raise _fail(node, "unsupported operator on constants")


def _reshape_target(node: Any, shape: tuple[int, ...], target: Any, attrs: dict) -> tuple:
    """The shape Reshape makes of `shape` (0 copies a dimension unless allowzero, -1 infers)."""
    target = [int(v) for v in np.asarray(target).reshape(-1)]
    if not attrs.get("allowzero", 0):
        target = [shape[i] if v == 0 and i < len(shape) else v for i, v in enumerate(target)]
    total = int(np.prod(shape, dtype=np.int64))
    if target.count(-1) > 1 or any(v < -1 for v in target):
        raise _fail(node, f"invalid reshape target {target}")
    if -1 in target:
        known = int(np.prod([v for v in target if v != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise _fail(node, f"cannot reshape {list(shape)} to {target}")
        target[target.index(-1)] = total // known
    if int(np.prod(target, dtype=np.int64)) != total:
        raise _fail(node, f"cannot reshape {list(shape)} to {target}")
    return tuple(target)


# --- layers ------------------------------------------------------------------------------------


def _unique(st: _Import, base: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.:/-]+", "_", base).strip("/") or "layer"
    name = name if name != st.input_name else f"{name}_"
    candidate, k = name, 1
    while candidate in st.by_name:
        k += 1
        candidate = f"{name}_{k}"
    return candidate


def _add_layer(
    st: _Import,
    node: Any,
    layer: dict[str, Any],
    inputs: list[_Act],
    shape: tuple[int, ...],
    arrays: dict[str, np.ndarray] | None = None,
    output: str | None = None,
) -> _Act:
    out = output or node.output[0]
    name = _unique(st, node.name or out)
    layer = {**layer, "name": name, "inputs": [a.layer for a in inputs], "source": out}
    st.layers.append(layer)
    st.by_name[name] = layer
    st.arrays[name] = arrays or {}
    act = _Act(name, shape)
    st.env[out] = act
    return act


def _window_attrs(node: Any, attrs: dict[str, Any], shape: tuple[int, ...], kernel) -> dict:
    """kernel/stride/padding/dilation of a Conv or pool node, auto_pad resolved."""
    if len(shape) != 3 or len(kernel) != 2:
        raise _fail(node, f"only 2-D windows on (C, H, W) inputs are supported, got {list(shape)}")
    strides = [int(v) for v in attrs.get("strides", [1, 1])]
    dilations = [int(v) for v in attrs.get("dilations", [1, 1])]
    pads = [int(v) for v in attrs.get("pads", [0, 0, 0, 0])]
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for axis in range(2):
            size, k, s, d = shape[1 + axis], kernel[axis], strides[axis], dilations[axis]
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads[axis], pads[axis + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto != "NOTSET":
        raise _fail(node, f"auto_pad {auto!r} is not supported")
    if attrs.get("ceil_mode", 0):
        for axis in range(2):
            size = shape[1 + axis] + pads[axis] + pads[axis + 2]
            span = dilations[axis] * (kernel[axis] - 1) + 1
            if (size - span) % strides[axis]:
                raise _fail(
                    node, "ceil_mode changes the output size here; export with ceil_mode=False"
                )
    return dict(
        kernel_size=[int(k) for k in kernel], stride=strides, padding=pads, dilation=dilations
    )


def _per_channel(node: Any, const: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A constant that broadcasts over one sample as one value per channel -> (C,), else None."""
    c = np.asarray(const, dtype=np.float64)
    channels = shape[0]
    squeezed = c.reshape(-1) if c.size in (1, channels) else None
    if squeezed is None:
        return None
    rank = len(shape)
    if c.ndim > rank + 1:
        return None
    full = (1,) * (rank + 1 - c.ndim) + c.shape  # align to (N, *shape)
    if full[0] != 1 or any(d != 1 for d in full[2:]) or full[1] not in (1, channels):
        return None
    return np.broadcast_to(squeezed, (channels,)).astype(np.float64)


def _only_user(st: _Import, act: _Act, tensor: str) -> dict[str, Any] | None:
    """The layer making `tensor` if it is a conv/dense read by nothing else, else None."""
    layer = st.by_name.get(act.layer)
    if layer is None or layer["type"] not in ("conv2d", "dense"):
        return None
    if layer["source"] != tensor or st.consumers.get(tensor, 0) != 1:
        return None
    return layer


def _affine(st, node, x: _Act, scale, shift, out: str | None = None) -> _Act:
    arrays = {"weight": np.asarray(scale, np.float32), "bias": np.asarray(shift, np.float32)}
    return _add_layer(st, node, {"type": "affine"}, [x], x.shape, arrays, out)


def _batch_norm(st: _Import, node: Any, attrs: dict, x: _Act, c: list[Any]) -> _Act:
    if attrs.get("training_mode", 0):
        raise _fail(node, "a batch norm in training mode (export the model in eval() mode)")
    if any(v is None for v in c[1:5]):
        raise _fail(node, "scale, bias, mean and variance must be initializers")
    gamma, beta, mean, var = (np.asarray(v, np.float64).reshape(-1) for v in c[1:5])
    if not all(v.size == x.shape[0] for v in (gamma, beta, mean, var)):
        raise _fail(node, f"parameters do not match {x.shape[0]} channels")
    scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
    shift = beta - mean * scale
    layer = _only_user(st, x, node.input[0])
    if layer is None:
        return _affine(st, node, x, scale, shift)
    arrays = st.arrays[layer["name"]]  # fold: w' = w * s (per output), b' = b * s + t
    w = arrays["weight"].astype(np.float64)
    arrays["weight"] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
    b = arrays.get("bias")
    bias = (np.zeros_like(scale) if b is None else b.astype(np.float64)) * scale + shift
    arrays["bias"] = bias.astype(np.float32)
    layer["bias"] = True
    layer["source"] = node.output[0]
    st.env[node.output[0]] = x
    return x


def _gemm(st: _Import, node: Any, attrs: dict, x: _Act, c: list[Any]) -> _Act:
    if attrs.get("transA", 0):
        raise _fail(node, "transA is not supported")
    if c[1] is None or c[1].ndim != 2:
        raise _fail(node, "B must be a 2-D initializer")
    if len(x.shape) != 1:
        raise _fail(node, f"needs a flat input but gets shape {list(x.shape)}")
    w = c[1] if attrs.get("transB", 0) else c[1].T
    w = w.astype(np.float64) * float(attrs.get("alpha", 1.0))
    n_out, n_in = w.shape
    if n_in != x.shape[0]:
        raise _fail(node, f"expects {n_in} inputs but gets {x.shape[0]}")
    arrays = {"weight": w.astype(np.float32)}
    bias = None
    if len(c) > 2 and node.input[2]:
        if c[2] is None:
            raise _fail(node, "C must be an initializer")
        try:
            bias = np.broadcast_to(np.asarray(c[2], np.float64).reshape(-1), (n_out,))
        except ValueError:
            raise _fail(
                node, f"C of shape {list(c[2].shape)} does not match {n_out} outputs"
            ) from None
        arrays["bias"] = (bias * float(attrs.get("beta", 1.0))).astype(np.float32)
    layer: dict[str, Any] = {
        "type": "dense",
        "in_features": n_in,
        "out_features": n_out,
        "bias": bias is not None,
    }
    return _add_layer(st, node, layer, [x], (n_out,), arrays)


def _binary(st: _Import, node: Any, x: list[Any], c: list[Any]) -> _Act:
    """Add / Sub / Mul / Div with at least one computed operand."""
    op = node.op_type
    if all(isinstance(v, _Act) for v in x):
        if op != "Add":
            raise _fail(node, f"{op} of two computed tensors is not supported")
        if x[0].shape != x[1].shape:
            raise _fail(
                node, f"adds shapes {list(x[0].shape)} and {list(x[1].shape)} (no broadcasting)"
            )
        return _add_layer(st, node, {"type": "add"}, x, x[0].shape)
    act_first = isinstance(x[0], _Act)
    act, const = (x[0], c[1]) if act_first else (x[1], c[0])
    if op in ("Sub", "Div") and not act_first:
        raise _fail(node, f"a constant {op.lower()} a computed tensor is not supported")
    per = _per_channel(node, const, act.shape)
    if per is None:
        raise _fail(
            node, f"constant of shape {list(np.shape(const))} is not one value or one per channel"
        )
    if op in ("Add", "Sub"):
        shift = per if op == "Add" else -per
        layer = _only_user(st, act, node.input[0] if act_first else node.input[1])
        if layer is not None and layer["type"] == "dense" and not layer["bias"]:
            st.arrays[layer["name"]]["bias"] = shift.astype(np.float32)  # MatMul + Add
            layer["bias"] = True
            layer["source"] = node.output[0]
            st.env[node.output[0]] = act
            return act
        return _affine(st, node, act, np.ones_like(shift), shift)
    factor = per if op == "Mul" else 1.0 / per
    if np.all(factor == factor[0]):
        return _add_layer(st, node, {"type": "mul", "factor": float(factor[0])}, [act], act.shape)
    return _affine(st, node, act, factor, np.zeros_like(factor))


def _flatten_like(st: _Import, node: Any, x: _Act, out_shape: tuple[int, ...]) -> _Act:
    """A Flatten/Reshape/Squeeze/Unsqueeze on a computed tensor: only flattening is allowed."""
    if out_shape[:1] != (1,):
        raise _fail(node, "changes the batch axis (only flattening to (N, features) is supported)")
    rest = out_shape[1:]
    if rest == x.shape:
        st.env[node.output[0]] = x
        return x
    if rest == (int(np.prod(x.shape)),):
        if len(x.shape) == 1:
            st.env[node.output[0]] = x
            return x
        return _add_layer(st, node, {"type": "flatten"}, [x], rest)
    raise _fail(node, f"reshapes {list(x.shape)} to {list(rest)}; only flattening is supported")


def _squeeze_shape(node, attrs, c, shape: tuple[int, ...], squeeze: bool) -> tuple[int, ...]:
    axes = _axes(node, attrs, c, 1)
    full = list(shape)
    rank = len(full)
    if squeeze:
        axes = [
            a + rank if a < 0 else a for a in (axes or [i for i, d in enumerate(full) if d == 1])
        ]
        if any(full[a] != 1 for a in axes):
            raise _fail(node, "squeezes an axis that is not 1")
        return tuple(d for i, d in enumerate(full) if i not in axes)
    for a in sorted(axes or []):
        full.insert(a if a >= 0 else a + len(full) + 1, 1)
    return tuple(full)


def _node(st: _Import, node: Any, opset: int) -> None:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        raise _fail(node, f"operator domain {node.domain!r} is not supported")
    attrs = _attrs(st, node)
    if op == "Constant":
        st.env[node.output[0]] = _const_value(node, attrs)
        return
    x = [st.env.get(name) if name else None for name in node.input]
    c = [v if isinstance(v, np.ndarray) else None for v in x]
    acts = [v for v in x if isinstance(v, _Act)]
    if op == "Shape":
        if not x or x[0] is None:
            raise _fail(node, "no input")
        shape = (1, *x[0].shape) if isinstance(x[0], _Act) else np.shape(x[0])
        start, end = int(attrs.get("start", 0)), attrs.get("end")
        st.env[node.output[0]] = np.asarray(shape, np.int64)[
            start : None if end is None else int(end)
        ]
        return
    if not acts:
        st.env[node.output[0]] = np.asarray(_fold(st, node, attrs, c))
        return
    a = acts[0]
    if op not in ("Conv", "Pad") and any(v.pads != (0, 0, 0, 0) for v in acts):
        raise _fail(node, "reads a zero-padded tensor; a Pad is supported only before a Conv")
    if op == "Pad":
        _pad(st, node, attrs, a, c)
    elif op in _DROPPED:
        if op == "Dropout" and len(c) > 2 and c[2] is not None and bool(np.asarray(c[2]).any()):
            raise _fail(node, "dropout in training mode (export the model in eval() mode)")
        st.env[node.output[0]] = a
    elif op in _SAME:
        _add_layer(st, node, {"type": _SAME[op]}, [a], a.shape)
    elif op == "LeakyRelu":
        layer = {"type": "leaky_relu", "alpha": float(attrs.get("alpha", 0.01))}
        _add_layer(st, node, layer, [a], a.shape)
    elif op == "Clip":
        lo = float(c[1]) if len(c) > 1 and c[1] is not None else -FLOAT_MAX
        hi = float(c[2]) if len(c) > 2 and c[2] is not None else FLOAT_MAX
        if any(len(x) > i and node.input[i] and c[i] is None for i in (1, 2)):
            raise _fail(node, "min and max must be constants")
        layer = (
            {"type": "relu"}
            if (lo, hi) == (0.0, FLOAT_MAX)
            else {"type": "clip", "min": lo, "max": hi}
        )
        _add_layer(st, node, layer, [a], a.shape)
    elif op in ("HardSigmoid", "HardSwish"):
        alpha = float(attrs.get("alpha", 0.2)) if op == "HardSigmoid" else 1 / 6
        beta = float(attrs.get("beta", 0.5))
        layer = {"type": op.lower(), "alpha": alpha, "beta": beta}
        _add_layer(st, node, layer, [a], a.shape)
    elif op in ("Softmax", "LogSoftmax"):
        axis = int(attrs.get("axis", -1))
        if len(a.shape) != 1 or axis not in (-1, 1):
            raise _fail(
                node, f"only over the features of a flat input (axis {axis}, shape {list(a.shape)})"
            )
        _add_layer(
            st, node, {"type": "softmax" if op == "Softmax" else "log_softmax"}, [a], a.shape
        )
    elif op == "Conv":
        _conv(st, node, attrs, a, c)
    elif op in ("Gemm", "MatMul"):
        if op == "MatMul":
            if c[1] is None or c[1].ndim != 2 or not isinstance(x[0], _Act):
                raise _fail(node, "only a computed input times a 2-D initializer is supported")
            attrs = {"transB": 0}
        _gemm(st, node, attrs, a, c if op == "Gemm" else [None, c[1]])
    elif op == "BatchNormalization":
        _batch_norm(st, node, attrs, a, c)
    elif op in ("MaxPool", "AveragePool"):
        if len(node.output) > 1 and node.output[1]:
            raise _fail(node, "the indices output is not supported")
        window = _window_attrs(node, attrs, a.shape, attrs.get("kernel_shape", []))
        if window["dilation"] != [1, 1]:
            raise _fail(node, "dilated pooling is not supported")
        del window["dilation"]
        pool: dict[str, Any] = {"type": "maxpool2d" if op == "MaxPool" else "avgpool2d", **window}
        if op == "AveragePool":
            pool["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
        _add_layer(st, node, pool, [a], (a.shape[0], *_pool_out(node, a.shape, window)))
    elif op in ("GlobalAveragePool", "ReduceMean"):
        _global_pool(st, node, attrs, a, c, opset)
    elif op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
        full = (1, *a.shape)
        if op == "Flatten":
            axis = int(attrs.get("axis", 1))
            axis = axis + len(full) if axis < 0 else axis
            out: tuple[int, ...] = (int(np.prod(full[:axis])), int(np.prod(full[axis:])))
        elif op == "Reshape":
            if c[1] is None:
                raise _fail(node, "the target shape must be computable without running the model")
            out = _reshape_target(node, full, c[1], attrs)
        else:
            out = _squeeze_shape(node, attrs, c, full, op == "Squeeze")
        _flatten_like(st, node, a, out)
    elif op in ("Add", "Sub", "Mul", "Div"):
        if len(x) != 2 or any(v is None for v in x):
            raise _fail(node, "needs two inputs")
        _binary(st, node, x, c)
    elif op == "Concat":
        if len(acts) != len(x):
            raise _fail(node, "concatenates a computed tensor with a constant")
        axis = int(attrs.get("axis", 1))
        rank = len(a.shape) + 1
        if axis not in (1, 1 - rank):
            raise _fail(node, f"only along channels (axis 1), not axis {axis}")
        if any(v.shape[1:] != a.shape[1:] for v in acts):
            raise _fail(node, "inputs differ in more than their channels")
        shape = (sum(v.shape[0] for v in acts), *a.shape[1:])
        _add_layer(st, node, {"type": "concat"}, acts, shape)
    else:
        raise _fail(node, "unsupported operator")


def _pad(st: _Import, node: Any, attrs: dict[str, Any], x: _Act, c: list[Any]) -> None:
    """A constant zero Pad of the spatial axes: kept on the tensor for the Conv that reads it."""
    if attrs.get("mode", "constant") != "constant":
        raise _fail(node, f"only constant padding is supported, not {attrs.get('mode')!r}")
    if len(c) < 2 or c[1] is None or (len(c) > 2 and node.input[2] and c[2] is None):
        raise _fail(node, "the pads and the value must be constants")
    if len(c) > 2 and c[2] is not None and float(np.asarray(c[2]).reshape(-1)[0]) != 0.0:
        raise _fail(node, "only zero padding is supported")
    rank = len(x.shape) + 1
    pads = [int(v) for v in np.asarray(c[1]).reshape(-1)]
    if len(c) > 3 and c[3] is not None:  # opset 18: pads for the listed axes only
        full = [0] * (2 * rank)
        axes = [int(a) % rank for a in np.asarray(c[3]).reshape(-1)]
        for i, axis in enumerate(axes):
            full[axis], full[axis + rank] = pads[i], pads[i + len(axes)]
        pads = full
    if rank != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise _fail(node, f"only non-negative padding of the image axes is supported, not {pads}")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    t0, l0, b0, r0 = x.pads
    shape = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right)
    st.env[node.output[0]] = _Act(x.layer, shape, (t0 + top, l0 + left, b0 + bottom, r0 + right))


def _pool_out(node, shape, window) -> tuple[int, int]:
    out = []
    for axis in range(2):
        k, s = window["kernel_size"][axis], window["stride"][axis]
        p = window["padding"][axis] + window["padding"][axis + 2]
        n = (shape[1 + axis] + p - k) // s + 1
        if n <= 0:
            raise _fail(node, "the window does not fit the input")
        out.append(n)
    return out[0], out[1]


def _conv(st: _Import, node: Any, attrs: dict, x: _Act, c: list[Any]) -> None:
    w = c[1] if len(c) > 1 else None
    if w is None or w.ndim != 4:
        raise _fail(node, "the weight must be a 4-D initializer (2-D convolution)")
    groups = int(attrs.get("group", 1))
    window = _window_attrs(node, attrs, x.shape, attrs.get("kernel_shape", w.shape[2:]))
    if x.pads != (0, 0, 0, 0):  # take in the zeros a Pad node put around the input
        top, left, bottom, right = x.pads
        p = window["padding"]
        window["padding"] = [p[0] + top, p[1] + left, p[2] + bottom, p[3] + right]
        x = _Act(x.layer, (x.shape[0], x.shape[1] - top - bottom, x.shape[2] - left - right))
    if list(w.shape[2:]) != window["kernel_size"]:
        raise _fail(node, "kernel_shape does not match the weight")
    if groups <= 0 or x.shape[0] % groups or w.shape[1] * groups != x.shape[0]:
        raise _fail(
            node, f"weight {list(w.shape)} with {groups} groups does not fit {x.shape[0]} channels"
        )
    arrays = {"weight": w.astype(np.float32)}
    has_bias = len(c) > 2 and bool(node.input[2])
    if has_bias:
        if c[2] is None:
            raise _fail(node, "the bias must be an initializer")
        arrays["bias"] = np.asarray(c[2], np.float32).reshape(-1)
    out = []
    for axis in range(2):
        k, s, d = window["kernel_size"][axis], window["stride"][axis], window["dilation"][axis]
        p = window["padding"][axis] + window["padding"][axis + 2]
        n = (x.shape[1 + axis] + p - d * (k - 1) - 1) // s + 1
        if n <= 0:
            raise _fail(node, "the kernel does not fit the input")
        out.append(n)
    layer = {
        "type": "conv2d",
        "in_channels": x.shape[0],
        "out_channels": int(w.shape[0]),
        "groups": groups,
        "bias": has_bias,
        **window,
    }
    _add_layer(st, node, layer, [x], (int(w.shape[0]), out[0], out[1]), arrays)


def _global_pool(st: _Import, node: Any, attrs: dict, x: _Act, c: list, opset: int) -> None:
    if len(x.shape) != 3:
        raise _fail(node, f"needs a (C, H, W) input but gets shape {list(x.shape)}")
    keep = True
    if node.op_type == "ReduceMean":
        axes = _axes(node, attrs, c, 1)
        axes = sorted(a + 4 if a < 0 else a for a in axes or [])
        if axes != [2, 3]:
            raise _fail(node, f"only a mean over the spatial axes [2, 3] is supported, not {axes}")
        keep = bool(attrs.get("keepdims", 1))
    if not keep:
        tensor = node.output[0] + ":pooled"
        pooled = _add_layer(
            st, node, {"type": "global_avgpool"}, [x], (x.shape[0], 1, 1), None, tensor
        )
        st.consumers[tensor] = 1
        st.by_name[pooled.layer]["source"] = node.output[0]  # same values, kept dims
        _add_layer(st, node, {"type": "flatten"}, [pooled], (x.shape[0],))
        return
    _add_layer(st, node, {"type": "global_avgpool"}, [x], (x.shape[0], 1, 1))


def _prune(st: _Import, output: str) -> list[dict[str, Any]]:
    """The layers the output depends on, in order."""
    act = st.env[output]
    needed = {act.layer}
    for layer in reversed(st.layers):
        if layer["name"] in needed:
            needed.update(layer["inputs"])
    return [layer for layer in st.layers if layer["name"] in needed]


_MALFORMED = (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError)


def _line(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_onnx(
    path: str | os.PathLike[str], *, input_name: str, max_values: int, max_neurons: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The spec (without format and version) and arrays of the model in an ONNX file.

    Layers name their inputs, the model's input being `input_name`; weights of more than
    `max_values` numbers in all are refused before they are decoded. Raises ModelError with a
    one-line message, prefixed with the file name, on any problem.
    """
    path = os.fspath(path)
    base = os.path.basename(path)
    st = _Import(input_name, max_values, max_neurons)
    try:
        return _convert(st, _read(path, max_values), path)
    except ModelError as exc:
        message = str(exc)
        raise ModelError(message if message.startswith(base) else f"{base}: {message}") from None
    except RecursionError:
        raise ModelError(f"{base}: the graph is nested too deeply") from None
    except _MALFORMED as exc:  # outside any node: the graph's inputs, outputs, initializers
        raise ModelError(
            f"{base}: malformed ONNX model ({type(exc).__name__}: {_line(exc)})"
        ) from None


def _convert(st: _Import, proto: Any, path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    opset = _opset(proto)
    graph = proto.graph
    directory = os.path.dirname(os.path.abspath(path))
    total = 0
    for tensor in graph.initializer:
        st.env[tensor.name] = _tensor(tensor, "initializer", st.max_values, directory)
        total += st.env[tensor.name].size
        if total > st.max_values:
            raise ModelError(f"network too large: over {st.max_values:,} parameters")
    for tensor in graph.sparse_initializer:
        raise ModelError(f"sparse initializer {tensor.values.name!r} is not supported")
    inputs = [v for v in graph.input if v.name not in st.env]
    if len(inputs) != 1:
        raise ModelError(f"the model has {len(inputs)} inputs; one image or vector input is needed")
    shape = _input_shape(inputs[0])
    if int(np.prod(shape)) > st.max_neurons:
        raise ModelError(f"network too large: an input of {int(np.prod(shape)):,} values")
    st.env[inputs[0].name] = _Act(st.input_name, shape)
    for node in graph.node:
        for name in node.input:
            st.consumers[name] = st.consumers.get(name, 0) + 1
    for out in graph.output:
        st.consumers[out.name] = st.consumers.get(out.name, 0) + 1
    for node in _order(graph, set(st.env)):
        try:
            _node(st, node, opset)
        except ModelError:
            raise
        except _MALFORMED as exc:  # a hostile or corrupt node: wrong attribute types, ...
            raise _fail(node, f"malformed node ({type(exc).__name__}: {_line(exc)})") from None
    if len(graph.output) != 1:
        raise ModelError(f"the model has {len(graph.output)} outputs; one output is needed")
    result = st.env.get(graph.output[0].name)
    if not isinstance(result, _Act) or result.layer == st.input_name:
        raise ModelError("the output is not computed from the input by any layer")
    layers = _prune(st, graph.output[0].name)
    arrays = {
        f"layers.{i}.{key}": value
        for i, layer in enumerate(layers)
        for key, value in st.arrays[layer["name"]].items()
    }
    spec: dict[str, Any] = {
        "name": os.path.splitext(os.path.basename(path))[0],
        "input_shape": list(shape),
        "layers": layers,
        "metadata": {
            "source": "onnx",
            "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
            "opset": opset,
        },
    }
    if len(shape) == 3 and shape[0] == 3:
        spec["preprocess"] = {"kind": "image"}  # colour: no digit-drawing path
    return spec, arrays

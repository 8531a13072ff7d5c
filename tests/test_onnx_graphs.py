"""ONNX graphs made with onnx.helper: random graphs (ops, shapes, branches) equal onnxruntime on
every intermediate; broken and hostile files give one clear ModelError naming the node and op."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402
from onnx_builder import Builder  # noqa: E402
from onnx_check import assert_edges_reproduce_forward, assert_matches_onnxruntime  # noqa: E402

from nnviz_blender.core.forward import predict  # noqa: E402
from nnviz_blender.core.graph import build_graph  # noqa: E402
from nnviz_blender.core.modelfile import ModelError, load_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _out(size, k, s, p0, p1, d=1):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def random_graph(seed):
    """A random graph of convs (strided, dilated, grouped, asymmetric padding), batch norms,
    activations, pools, residual adds, concatenations and constant scalings, then a head."""
    rng = np.random.default_rng(seed)
    opset = int(rng.choice([14, 17, 18, 20]))  # HardSwish needs 14
    b = Builder(rng, opset)
    c, h = int(rng.choice([1, 3])), int(rng.integers(9, 15))
    shape = in_shape = (c, h, h)
    x = "x"
    for _ in range(int(rng.integers(3, 7))):
        c, h = shape[0], shape[1]
        op = rng.choice(["conv", "bn", "act", "pool", "add", "concat", "scale"])
        if op == "conv":
            groups = int(rng.choice([g for g in (1, 2, 3, c) if c % g == 0]))
            c_out = groups * int(rng.integers(1, 4))
            k, s, d = int(rng.choice([1, 2, 3])), int(rng.integers(1, 3)), int(rng.integers(1, 3))
            pads = [int(v) for v in rng.integers(0, 3, 4)]
            ho, wo = _out(h, k, s, pads[0], pads[2], d), _out(h, k, s, pads[1], pads[3], d)
            if min(ho, wo) < 2:
                continue
            x = b.conv(x, c, c_out, k, s, d, pads, groups)
            shape = (c_out, ho, wo)
        elif op == "bn":
            params = [rng.random(c) + 0.5, rng.normal(0, 0.2, c), rng.normal(0, 0.2, c)]
            params.append(rng.random(c) + 0.5)
            names = [b.const(p.astype(np.float32)) for p in params]
            x = b.node("BatchNormalization", [x, *names], epsilon=1e-3)
        elif op == "act":
            kind = rng.choice(
                ["Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish"]
            )
            if kind == "Clip":
                lo, hi = np.float32(-0.5), np.float32(rng.random() + 0.2)
                x = b.node("Clip", [x, b.const(lo), b.const(hi)])
            elif kind == "LeakyRelu":
                x = b.node("LeakyRelu", [x], alpha=0.2)
            elif kind == "HardSigmoid":
                x = b.node("HardSigmoid", [x], alpha=0.3, beta=0.4)
            else:
                x = b.node(str(kind), [x])
        elif op == "pool":
            k, s = int(rng.integers(2, 4)), int(rng.integers(1, 3))
            pads = [int(v) for v in rng.integers(0, k // 2 + 1, 4)]
            ho, wo = _out(shape[1], k, s, pads[0], pads[2]), _out(shape[2], k, s, pads[1], pads[3])
            if min(ho, wo) < 2:
                continue
            attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=pads)
            if rng.random() < 0.5:
                x = b.node("MaxPool", [x], **attrs)
            else:
                x = b.node("AveragePool", [x], count_include_pad=int(rng.integers(0, 2)), **attrs)
            shape = (c, ho, wo)
        elif op == "add":  # a residual branch: conv (+ relu) added back
            branch = b.node("Relu", [b.conv(x, c, c, 3)])
            x = b.node("Add", [x, branch] if rng.random() < 0.5 else [branch, x])
        elif op == "concat":
            extra = int(rng.integers(1, 4))
            branch = b.conv(x, c, extra, int(rng.choice([1, 3])))
            x = b.node("Concat", [branch, x] if rng.random() < 0.5 else [x, branch], axis=1)
            shape = (c + extra, *shape[1:])
        else:
            kind = rng.choice(["Mul", "Add", "Sub", "Div"])
            value = rng.random((c, 1, 1)) + 0.5 if rng.random() < 0.5 else rng.random() + 0.5
            x = b.node(str(kind), [x, b.const(np.asarray(value, np.float32))])
    head = rng.choice(["gap", "reduce", "flatten"])
    if head == "gap":
        x = b.node("Flatten", [b.node("GlobalAveragePool", [x])])
        n = shape[0]
    elif head == "reduce":
        if opset >= 18:
            x = b.node("ReduceMean", [x, b.const(np.array([2, 3]))], keepdims=0)
        else:
            x = b.node("ReduceMean", [x], axes=[-2, -1], keepdims=0)
        n = shape[0]
    else:
        x = b.node("Flatten", [x])
        n = int(np.prod(shape))
    w = rng.normal(0, 1 / np.sqrt(n), (n, 10)).astype(np.float32)
    if rng.random() < 0.5:
        x = b.node("Gemm", [x, b.const(w.T.copy()), b.const(np.zeros(10, np.float32))], transB=1)
    else:
        x = b.node(
            "Add", [b.node("MatMul", [x, b.const(w)]), b.const(rng.random(10).astype(np.float32))]
        )
    end = rng.choice(["Softmax", "LogSoftmax", "none"])
    if end != "none":
        x = b.node(str(end), [x], axis=-1)
    return b.model(in_shape, x)


@pytest.mark.parametrize("seed", range(30))
def test_random_graph_matches_onnxruntime(tmp_path, seed):
    proto = random_graph(seed)
    onnx.checker.check_model(proto)
    path = tmp_path / f"random{seed}.onnx"
    onnx.save(proto, str(path))
    model = load_model(path)
    x = np.random.default_rng(seed).random((2, *model.input_shape), dtype=np.float32)
    assert_matches_onnxruntime(model, path, x)
    assert_edges_reproduce_forward(model, x[0])
    probs = predict(model, x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# --- broken and hostile files -----------------------------------------------------------------


def small(opset=13, batch="N"):
    """A valid little classifier: conv -> relu -> flatten -> gemm."""
    b = Builder(np.random.default_rng(0), opset)
    x = b.node("Relu", [b.conv("x", 1, 2, 3)])
    x = b.node("Flatten", [x])
    w = np.ones((3, 2 * 6 * 6), np.float32)
    return b, b.node("Gemm", [x, b.const(w), b.const(np.zeros(3, np.float32))], transB=1)


def save(tmp_path, proto, name="bad.onnx"):
    path = tmp_path / name
    onnx.save(proto, str(path))
    return path


def expect(path, *fragments):
    with pytest.raises(ModelError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(os.path.basename(path)), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_small_model_loads(tmp_path):
    b, out = small()
    model = load_model(save(tmp_path, b.model((1, 6, 6), out), "ok.onnx"))
    assert [layer.type for layer in model.layers] == ["conv2d", "relu", "flatten", "dense"]
    assert model.input_shape == (1, 6, 6) and model.output_kind == "logits"


def test_garbage_truncated_and_empty_files(tmp_path):
    b, out = small()
    data = b.model((1, 6, 6), out).SerializeToString()
    for name, content in [
        ("cut.onnx", data[: len(data) // 2]),
        ("garbage.onnx", np.random.default_rng(0).bytes(3000)),
        ("empty.onnx", b""),
        ("text.onnx", b"hello, I am not a network"),
    ]:
        (tmp_path / name).write_bytes(content)
        expect(tmp_path / name)  # one line, names the file


def test_unsupported_operator_names_the_node(tmp_path):
    b, out = small()
    out = b.node("Einsum", [out], equation="ni->ni")
    expect(save(tmp_path, b.model((1, 6, 6), out)), "Einsum", "unsupported operator", "n_einsum")


def test_cycle(tmp_path):
    b = Builder(np.random.default_rng(0), 17)
    b.nodes.append(helper.make_node("Relu", ["x2"], ["x1"], name="first"))
    b.nodes.append(helper.make_node("Add", ["x", "x1"], ["x2"], name="second"))
    expect(save(tmp_path, b.model((4,), "x2")), "cycle")


def test_missing_initializer(tmp_path):
    b, out = small()
    b.inits.pop(0)  # the conv weight
    expect(save(tmp_path, b.model((1, 6, 6), out)), "(Conv)", "neither computed")


def test_huge_initializer_is_refused_before_allocating(tmp_path):
    b, out = small()
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[200_000, 100_000])
    b.inits.append(huge)
    out = b.node("Add", [out, "huge"])
    expect(save(tmp_path, b.model((1, 6, 6), out)), "huge", "size limits")


def test_huge_activations(tmp_path):
    b = Builder(np.random.default_rng(0), 17)
    out = b.conv("x", 1, 64, 3)
    expect(save(tmp_path, b.model((1, 600, 600), out)), "network too large")


def test_dynamic_spatial_size(tmp_path):
    b, out = small()
    proto = b.model((1, 6, 6), out)
    proto.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    expect(save(tmp_path, proto), "dynamic size", "only the batch")


def test_opset_out_of_range(tmp_path):
    b, out = small(opset=11)
    expect(save(tmp_path, b.model((1, 6, 6), out)), "opset 11")


def test_external_data_outside_the_folder_and_missing(tmp_path):
    b, out = small()
    proto = b.model((1, 6, 6), out)
    weight = proto.graph.initializer[0]
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    expect(save(tmp_path, proto), "must be a file next to the model")
    entry.value = "weights.bin"
    expect(save(tmp_path, proto), "not found next to the model")
    (tmp_path / "weights.bin").write_bytes(b"1234")
    expect(save(tmp_path, proto), "does not fit")


def test_two_computed_tensors_multiplied(tmp_path):
    b, out = small()
    out = b.node("Mul", [out, out])
    expect(save(tmp_path, b.model((1, 6, 6), out)), "(Mul)", "two computed tensors")


def test_reshape_that_does_not_flatten(tmp_path):
    b = Builder(np.random.default_rng(0), 17)
    x = b.node("Reshape", [b.conv("x", 1, 2, 3), b.const(np.array([1, 4, 18]))])
    expect(save(tmp_path, b.model((1, 6, 6), x)), "(Reshape)", "only flattening")


def test_batch_norm_folded_only_where_exact(tmp_path):
    """A conv read only by its batch norm takes it in; one also read by a skip keeps an affine."""
    b = Builder(np.random.default_rng(1), 17)
    rng = np.random.default_rng(2)

    def bn(x, c):
        p = [rng.random(c) + 0.5, rng.normal(0, 0.2, c), rng.normal(0, 0.2, c), rng.random(c) + 0.5]
        return b.node("BatchNormalization", [x, *[b.const(v.astype(np.float32)) for v in p]])

    conv1 = b.conv("x", 1, 3, 3)
    x = bn(conv1, 3)  # folded
    conv2 = b.conv(x, 3, 3, 3)
    y = b.node("Add", [bn(conv2, 3), conv2])  # conv2 is read twice: affine
    out = b.node("Flatten", [b.node("GlobalAveragePool", [y])])
    path = save(tmp_path, b.model((1, 8, 8), out), "bn.onnx")
    model = load_model(path)
    kinds = [layer.type for layer in model.layers]
    assert kinds == ["conv2d", "conv2d", "affine", "add", "global_avgpool", "flatten"]
    x_in = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    assert_matches_onnxruntime(model, path, x_in)
    graph = build_graph(model)
    add = next(s for s in graph.stages if s.op == "add")
    assert add.edge_count == 2 * add.size and np.all(graph.weight[add.edge_slice] == 1)


def test_core_works_without_onnx(tmp_path):
    """core imports and loads .npz without the onnx package; .onnx then says what is missing."""
    b, out = small()
    path = save(tmp_path, b.model((1, 6, 6), out), "net.onnx")
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from nnviz_blender.core import forward, graph, inspect, modelfile, onnx_import\n"
        f"modelfile.load_model({os.path.join(ROOT, 'models', 'cnn.npz')!r})\n"
        "try:\n"
        f"    modelfile.load_model({str(path)!r})\n"
        "except modelfile.ModelError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "needs the 'onnx' package" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("seed", range(0, 30, 3))
def test_inspect_is_exact_on_every_kind_of_stage(tmp_path, seed):
    """describe(): weighted input = the forward's pre-activation, the conv patch x kernel adds up
    to it (groups, dilation, asymmetric padding), the formula shows the node's value."""
    from nnviz_blender.core.forward import forward
    from nnviz_blender.core.inspect import describe
    from nnviz_blender.core.modelfile import ELEMENTWISE, SOFTMAXES

    path = tmp_path / "r.onnx"
    onnx.save(random_graph(seed), str(path))
    model = load_model(path)
    graph = build_graph(model)
    x = np.random.default_rng(seed).random(model.input_shape, dtype=np.float32)
    acts = forward(model, x)
    rng = np.random.default_rng(seed)
    for stage in graph.stages[1:]:
        layer = model.layers[stage.layer]
        elementwise = stage.op in (*ELEMENTWISE, *SOFTMAXES)
        pre = np.asarray(acts[layer.inputs[0] if elementwise else stage.layer + 1]).ravel()
        for node in rng.integers(stage.start, stage.stop, 3):
            info = describe(model, graph, acts, int(node))
            want = float(pre[node - stage.start])
            assert info.weighted_input == pytest.approx(want, rel=1e-4, abs=1e-4), stage.name
            assert f"{info.activation:.3f}" in info.formula
            if stage.op == "conv2d":
                total = float((info.patch * info.kernel).sum()) + info.bias
                assert total == pytest.approx(want, rel=1e-4, abs=1e-4), stage.name


def test_pad_before_anything_but_a_conv_is_refused(tmp_path):
    b = Builder(np.random.default_rng(0), 17)
    x = b.node("Pad", ["x", b.const(np.array([0, 0, 1, 1, 0, 0, 1, 1]))])
    out = b.node("Relu", [x])
    expect(
        save(tmp_path, b.model((1, 6, 6), out)), "(Relu)", "a Pad is supported only before a Conv"
    )
    b = Builder(np.random.default_rng(0), 17)
    x = b.node("Pad", ["x", b.const(np.array([0, 0, 1, 1, 0, 0, 1, 1]))], mode="reflect")
    expect(save(tmp_path, b.model((1, 6, 6), b.conv(x, 1, 2, 3))), "(Pad)", "only constant")


def test_corrupted_bytes_never_escape_as_anything_but_a_model_error(tmp_path):
    """Random byte flips and cuts of real models: each loads or gives one ModelError line."""
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzz.onnx"
    outcomes = {"loaded": 0, "refused": 0}
    for seed in range(4):
        data = random_graph(seed).SerializeToString()
        for _ in range(60):
            corrupt = bytearray(data)
            for _ in range(int(rng.integers(1, 6))):
                corrupt[int(rng.integers(0, len(corrupt)))] = int(rng.integers(0, 256))
            if rng.random() < 0.2:
                corrupt = corrupt[: int(rng.integers(1, len(corrupt)))]
            path.write_bytes(bytes(corrupt))
            try:
                load_model(path)
                outcomes["loaded"] += 1
            except ModelError as exc:
                assert "\n" not in str(exc) and str(exc).startswith("fuzz.onnx: ")
                outcomes["refused"] += 1
    assert outcomes["refused"] > 50

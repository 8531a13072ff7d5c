"""Small ONNX graphs built by hand with onnx.helper, for the import tests (needs onnx)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


class Builder:
    """A small ONNX graph under construction: nodes, initializers, fresh names."""

    def __init__(self, rng, opset):
        self.rng, self.opset = rng, opset
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, array):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"n_{out}", **attrs))
        return out

    def conv(self, x, c_in, c_out, k=3, stride=1, dilation=1, pads=None, groups=1):
        w = self.rng.normal(0, 1 / np.sqrt(c_in // groups * k * k), (c_out, c_in // groups, k, k))
        b = self.rng.normal(0, 0.1, c_out)
        pads = pads or [k // 2 * dilation] * 4
        inputs = [x, self.const(w.astype(np.float32)), self.const(b.astype(np.float32))]
        attrs = dict(kernel_shape=[k, k], strides=[stride] * 2, dilations=[dilation] * 2)
        return self.node("Conv", inputs, pads=pads, group=groups, **attrs)

    def model(self, x_shape, out, batch="N"):
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *x_shape])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, None])],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8  # what onnxruntime and every opset used here accept
        return model

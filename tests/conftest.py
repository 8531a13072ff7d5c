import os

import numpy as np
import pytest
from blender_scripts.bpy_exit import release_bpy_at_exit

release_bpy_at_exit()  # before any test imports bpy (see there)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
MNIST_DIR = os.environ.get("NNVIZ_MNIST", os.path.join(ROOT, "..", "shared", "data", "mnist"))


@pytest.fixture(scope="session")
def mnist_test():
    """The official MNIST test images (uint8) and labels."""
    from nnviz_blender.core import mnist

    return mnist.load(MNIST_DIR, "test")


@pytest.fixture(scope="session")
def shipped():
    """The shipped models by name."""
    from nnviz_blender.core.modelfile import load_model
    from nnviz_blender.paths import SHIPPED

    return {name: load_model(os.path.join(MODELS, f"{name}.npz")) for name in SHIPPED}


@pytest.fixture(scope="session")
def big_onnx():
    """The ONNX file of a large test network by name (scripts/big_models.py: ptex, r18_64,
    r18_224), written into out/big on first use and reused after."""
    pytest.importorskip("torch")
    import sys

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import big_models

    return big_models.ensure


def random_arrays(spec: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights of the right shapes for every layer of a spec (the validator's shapes)."""
    from nnviz_blender.core.modelfile import array_shapes

    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for name, shape in array_shapes(spec).items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        arrays[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return arrays


CNN_SPEC = {
    "name": "cnn-test",
    "input_shape": [1, 32, 32],
    "layers": [
        {"type": "conv2d", "in_channels": 1, "out_channels": 6, "kernel_size": 5},
        {"type": "tanh"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "conv2d", "in_channels": 6, "out_channels": 16, "kernel_size": 5},
        {"type": "tanh"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dense", "in_features": 400, "out_features": 120},
        {"type": "tanh"},
        {"type": "dense", "in_features": 120, "out_features": 100},
        {"type": "tanh"},
        {"type": "dense", "in_features": 100, "out_features": 10},
        {"type": "softmax"},
    ],
}
MLP_SPEC = {
    "name": "mlp-test",
    "input_shape": [1, 28, 28],
    "layers": [
        {"type": "flatten"},
        {"type": "dense", "in_features": 784, "out_features": 300},
        {"type": "tanh"},
        {"type": "dense", "in_features": 300, "out_features": 100},
        {"type": "tanh"},
        {"type": "dense", "in_features": 100, "out_features": 10},
        {"type": "softmax"},
    ],
}


def render_png(path, scene=None):
    """Render the scene to `path` and read it back: float RGBA (H, W, 4), top row first."""
    import bpy

    scene = scene or bpy.context.scene
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = image.size
        px = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(px)
        return px.reshape(h, w, 4)[::-1].copy()
    finally:
        bpy.data.images.remove(image)


@pytest.fixture
def empty_blend():
    """An empty Blender file and no cached network: what every scene test starts from."""
    import bpy

    from nnviz_blender.scene import network

    bpy.ops.wm.read_homefile(use_empty=True)
    network.forget_cache()


@pytest.fixture(scope="module")
def random_cnn():
    """The CNN of CNN_SPEC with random weights (seed 0)."""
    from nnviz_blender.core.modelfile import build_model

    return build_model(CNN_SPEC, random_arrays(CNN_SPEC))


def digit(model, seed=0):
    """A sparse random input of the model's shape with values in [0, 1] (like ink on black)."""
    rng = np.random.default_rng(seed)
    shape = model.input_shape
    return (rng.random(shape) * (rng.random(shape) > 0.6)).astype(np.float32)


def evaluated_edges(name):
    """The edges' data as the viewport's depsgraph evaluates it."""
    import bpy

    from nnviz_blender.scene import util

    obj = util.find("objects", name, "edges")
    return obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data

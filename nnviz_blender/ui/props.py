"""The add-on's settings: `scene.nnviz` (what to build, how to draw, what to inspect)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.errors import NNVizError
from ..core.graph import stage_sizes
from ..core.modelfile import load_model
from ..paths import shipped_model


def _shipped(name: str, title: str, what: str) -> tuple[str, str, str]:
    """An enum item for a shipped model, its sizes read from the model file itself."""
    try:
        sizes = stage_sizes(load_model(shipped_model(name)))
    except NNVizError:
        return (name, title, f"The shipped {what}")
    if name == "mlp":
        title = f"{title} {'-'.join(str(s) for s in sizes)}"
    return (name, title, f"The shipped {what}: {sizes[0]:,} inputs, {sum(sizes):,} neurons")


MODELS = [
    _shipped("cnn", "CNN (LeNet-like)", "convolutional network"),
    _shipped("mlp", "MLP", "multilayer perceptron"),
    _shipped("resnet", "ResNet", "residual network (skip connections)"),
    ("FILE", "Model File", "An ONNX file, or a .npz model file in the nnviz format"),
]
LAYOUTS = [
    ("3d", "3D", "Layers as horizontal planes stacked upward, feature maps side by side"),
    ("flat", "Flat", "Every node on one vertical plane, all visible at once"),
]
SHAPES = [
    ("THEME", "Theme Default", "The shape the theme prefers"),
    ("cube", "Cube", "Cubes, as in the original visualization"),
    ("sphere", "Sphere", "Smooth spheres"),
    ("tile", "Tile", "Flat square tiles facing the camera"),
]
EDGES = [
    ("all", "All", "Every connection of the network"),
    ("topk", "Strongest k", "The k strongest incoming connections of each node by |weight|"),
    ("contrib", "By Contribution", "Connections whose |weight x activation| exceeds a threshold"),
    ("none", "None", "Nodes only"),
]
THEMES = [
    ("dark", "Dark (original)", "The original's dark colormap, cubes and radial navy background"),
    ("light", "Light (paper)", "Light background and a perceptual colormap, for papers"),
]


class NNVizSettings(bpy.types.PropertyGroup):
    model: EnumProperty(name="Model", items=MODELS, default="cnn")  # type: ignore[valid-type]
    # No FILE_PATH subtype: its own browse button (no filter) stood beside the panel's
    # nnviz.choose_model, which shows only .onnx and .npz files (two folder icons in the window)
    model_path: StringProperty(  # type: ignore[valid-type]
        name="Model File", description="An .onnx file or an nnviz .npz model"
    )
    layout: EnumProperty(name="Layout", items=LAYOUTS, default="3d")  # type: ignore[valid-type]
    node_shape: EnumProperty(name="Nodes", items=SHAPES, default="THEME")  # type: ignore[valid-type]
    edges: EnumProperty(name="Edges", items=EDGES, default="topk")  # type: ignore[valid-type]
    edges_k: IntProperty(name="k", default=8, min=1, max=1000)  # type: ignore[valid-type]
    edges_threshold: FloatProperty(  # type: ignore[valid-type]
        name="Threshold", default=0.05, min=0.0, soft_max=1.0
    )
    theme: EnumProperty(name="Theme", items=THEMES, default="dark")  # type: ignore[valid-type]
    spacing: FloatProperty(  # type: ignore[valid-type]
        name="Spacing", default=1.0, min=0.2, soft_max=4.0, description="Gap between layers"
    )
    network: StringProperty(  # type: ignore[valid-type]
        name="Network", description="The network the buttons act on (its collection's name)"
    )
    sample: IntProperty(  # type: ignore[valid-type]
        name="Digit", default=7, min=0, max=9, description="Which digit's MNIST test sample"
    )
    sample_variant: IntProperty(name="Variant", default=0, min=0, max=4)  # type: ignore[valid-type]
    inspect_stage: IntProperty(name="Layer", default=1, min=0)  # type: ignore[valid-type]
    inspect_index: IntProperty(name="Index", default=0, min=0)  # type: ignore[valid-type]
    trace_k: IntProperty(  # type: ignore[valid-type]
        name="Paths per Node", default=3, min=1, max=20, description="Strongest inputs followed"
    )
    show_formula: BoolProperty(name="Formula", default=True)  # type: ignore[valid-type]

    def model_file(self) -> str:
        if self.model == "FILE":
            return bpy.path.abspath(self.model_path)
        return shipped_model(self.model)

    def edge_spec(self) -> str:
        if self.edges == "topk":
            return f"topk:{self.edges_k}"
        if self.edges == "contrib":
            return f"contrib:{self.edges_threshold:g}"
        return str(self.edges)


classes = (NNVizSettings,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.nnviz = PointerProperty(type=NNVizSettings)  # type: ignore[attr-defined]


def unregister() -> None:
    del bpy.types.Scene.nnviz  # type: ignore[attr-defined]
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)

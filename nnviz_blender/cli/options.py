"""What the commands share: option types, the model and input options, the scene options, and
building the scene.

Blender's `bpy` is imported only inside the functions that need it, so `predict`, `evaluate` and
`convert` work without it.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..core import lod as core_lod
from ..core.errors import NNVizError
from ..core.modelfile import Model
from ..core.preprocess import prepare
from ..core.values import DEFAULT_FADE
from ..inputs import load_inputs, load_raw

MODEL_HELP = "mlp, cnn, resnet or a path to a model file (.npz or .onnx)"
RAW_HELP = (
    "a .npy of exact network inputs, one (C, H, W) or a stack (N, C, H, W) of the model's "
    "input shape; no preprocessing"
)


class UsageError(NNVizError):
    """A command line that cannot be carried out (bad output path, no Blender module...)."""


def resolution_type(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad resolution {text!r}: use WxH, e.g. 1920x1080"
        ) from None
    if not (16 <= w <= 16384 and 16 <= h <= 16384):
        raise argparse.ArgumentTypeError(f"resolution {w}x{h} out of range (16 to 16384)")
    return w, h


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1): {value}")
    return value


def lod_type(text: str) -> dict[str, str]:
    """--lod conv1=maps,pool1=slab -> {"conv1": "maps", "pool1": "slab"} (layer names are
    checked against the model when the network is built)."""
    try:
        return core_lod.parse(text)
    except core_lod.LodError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def network_inputs(model: Model, args: argparse.Namespace) -> list[tuple[str, np.ndarray]]:
    """(name, network input) pairs from --input (preprocessed as the model says) or --raw."""
    if getattr(args, "raw", None):
        return load_raw(args.raw, model.input_shape)
    return [(name, prepare(model, image)) for name, image in load_inputs(args.input)]


def add_input_options(p: argparse.ArgumentParser, image_help: str) -> None:
    """--input (images, preprocessed) or --raw (exact network inputs): exactly one."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--input", help=image_help)
    group.add_argument("--raw", metavar="X.npy", help=RAW_HELP)


def add_scene_options(p: argparse.ArgumentParser, samples: int, resolution) -> None:
    """The options `render` and `animate` share: model, look, engine and output settings."""
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--layout", choices=("3d", "flat"), default="3d")
    p.add_argument("--theme", choices=("dark", "light"), default="dark")
    p.add_argument("--engine", choices=("cycles", "eevee", "workbench"), default="cycles")
    p.add_argument("--samples", type=positive_int, default=samples)
    p.add_argument("--resolution", type=resolution_type, default=resolution, metavar="WxH")
    p.add_argument(
        "--edges",
        default="all",
        help="all, none, topk:K (K strongest inputs per node by "
        "|weight|) or contrib:T (only |weight x activation| above T, follows the input)",
    )
    p.add_argument(
        "--lod",
        type=lod_type,
        default={},
        metavar="LAYER=LEVEL,...",
        help="level of detail of some layers: neurons (a cube each), maps (a picture per "
        "feature map) or slab (a block per channel), e.g. conv1=maps,pool1=slab; the others "
        f"are chosen by size (networks up to {core_lod.NEURON_BUDGET:,} neurons: all neurons)",
    )
    p.add_argument(
        "--edge-fade",
        type=fraction,
        default=DEFAULT_FADE,
        help=f"edges weaker than this share of full strength fade out (default {DEFAULT_FADE})",
    )
    p.add_argument("--transparent", action="store_true", help="transparent background (RGBA)")
    p.add_argument("--save-blend", metavar="FILE", help="also save the scene as a .blend")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def need_bpy(what: str) -> None:
    """UsageError unless Blender's Python module can be imported."""
    try:
        import bpy  # noqa: F401
    except ImportError:
        raise UsageError(
            f"{what} needs Blender's Python module: pip install bpy (or run inside Blender)"
        ) from None


def build_scene(model, args, shown, edge_strength: float | None = None, **build) -> str:
    """An empty file with the network built as the scene options say, showing `shown`: one
    input's activations (forward()'s list: node values and bundles) or raw node values (one
    per node); edges faded from --edge-fade; returns the network's name."""
    import bpy

    from ..scene import network

    mode = network.parse_edges(args.edges)
    bpy.ops.wm.read_homefile(use_empty=True)
    name = network.build_network(
        model,
        model.name,
        layout=args.layout,
        edges=mode,
        theme=args.theme,
        lod=getattr(args, "lod", None),
        scene=bpy.context.scene,
        **build,
    )
    if isinstance(shown, list):
        network.apply_activations(name, model, shown)
    else:
        network.apply_values(name, shown)
    network.set_edge_fade(name, max(args.edge_fade, mode.threshold), strength=edge_strength)
    return name


def setup_studio(name: str, args, camera_preset: str, layered: bool = True) -> None:
    """Camera, world, light and render settings from the scene options."""
    import bpy

    from ..scene import studio

    studio.setup(
        name,
        bpy.context.scene,
        camera_preset=camera_preset,
        layout=args.layout,
        theme=args.theme,
        engine=args.engine,
        samples=args.samples,
        resolution=args.resolution,
        transparent=args.transparent,
        layered=layered,
    )


def save_blend(path: str) -> str:
    """Save the open file as `path` (folders made); returns the absolute path."""
    import os

    import bpy

    blend = os.path.abspath(path)
    os.makedirs(os.path.dirname(blend) or ".", exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=blend, check_existing=False)
    return blend

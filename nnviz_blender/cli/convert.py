"""`python -m nnviz_blender convert`: an ONNX file (or a model file) as our own `.npz` format.

    python -m nnviz_blender convert net.onnx --out net.npz --labels cat,dog --name pets \\
        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225

The written file loads without the `onnx` package and faster; it can carry what ONNX does not
say: class labels, the input's mean/std normalisation and a display name. NumPy only.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ..core.modelfile import Model, load_model, save_model
from ..paths import shipped_model
from .options import MODEL_HELP, UsageError


def _numbers(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="write a model (e.g. .onnx) in the nnviz .npz format, with labels and metadata",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--out", required=True, help="the .npz file to write")
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--labels", help="class names, comma-separated, one per output")
    labels.add_argument("--labels-file", metavar="FILE", help="class names, one per line")
    p.add_argument("--mean", type=_numbers, metavar="R,G,B", help="input mean (one or per channel)")
    p.add_argument("--std", type=_numbers, metavar="R,G,B", help="input std (one or per channel)")
    p.add_argument("--name", help="display name of the network")
    p.set_defaults(run=run)
    return p


def _labels(args: argparse.Namespace) -> list[str] | None:
    if args.labels is not None:
        return [v.strip() for v in args.labels.split(",")]
    if args.labels_file is not None:
        try:
            with open(args.labels_file, encoding="utf-8") as f:
                return [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --labels-file: {exc}") from None
    return None


def converted_spec(model: Model, args: argparse.Namespace) -> dict:
    """The model's spec with the options applied (checked when the file is written)."""
    spec = dict(model.spec)
    labels = _labels(args)
    if labels is not None:
        spec["labels"] = labels
    if args.name:
        spec["name"] = args.name
    if args.mean is not None or args.std is not None:
        pre = dict(spec.get("preprocess") or {})
        pre.setdefault("kind", "image" if model.channels == 3 else "mnist")
        for key in ("mean", "std"):
            value = getattr(args, key)
            if value is not None:
                pre[key] = value[0] if len(value) == 1 else value
        spec["preprocess"] = pre
    return spec


def run(args: argparse.Namespace) -> int:
    out = os.path.abspath(args.out)
    if not out.lower().endswith(".npz"):
        raise UsageError(f"--out must be a .npz file, not {args.out!r}")
    if os.path.isdir(out):
        raise UsageError(f"--out is a directory: {args.out}")
    model = load_model(shipped_model(args.model))
    arrays: dict[str, np.ndarray] = {
        f"layers.{layer.index}.{key}": array
        for layer in model.layers
        for key, array in (("weight", layer.weight), ("bias", layer.bias))
        if array is not None
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    saved = save_model(out, converted_spec(model, args), arrays)
    print(
        f"wrote {out}: {saved.name}, {len(saved.layers)} layers, "
        f"{saved.parameter_count:,} weights, input {list(saved.input_shape)}, "
        f"output {saved.output_kind}"
    )
    return 0

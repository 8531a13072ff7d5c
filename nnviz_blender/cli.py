"""`python -m nnviz_blender <command>`: predict, evaluate (NumPy only) and render (needs bpy)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from .core import mnist
from .core.forward import forward, predict
from .core.graph import build_graph
from .core.modelfile import Model, ModelError, load_model
from .core.preprocess import InputError, prepare
from .inputs import load_inputs
from .paths import shipped_model

USER_ERRORS = (ModelError, InputError, mnist.MnistError)


def _model(name: str) -> Model:
    return load_model(shipped_model(name))


def top_k(probs: np.ndarray, labels: list[str], k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


def describe(model: Model, image: np.ndarray) -> dict:
    """Prediction, probabilities and every shown layer's activations for one canvas image."""
    acts = forward(model, prepare(model, image))
    probs = acts[-1].reshape(-1)
    graph = build_graph(model)
    layers = [
        {
            "name": stage.name,
            "kind": stage.kind,
            "shape": list(stage.shape),
            "activations": [round(float(v), 6) for v in acts[stage.act_index].reshape(-1)],
        }
        for stage in graph.stages
    ]
    return {
        "prediction": model.labels[int(np.argmax(probs))],
        "probabilities": [round(float(p), 6) for p in probs],
        "layers": layers,
    }


def cmd_predict(args: argparse.Namespace) -> int:
    model = _model(args.model)
    for name, image in load_inputs(args.input):
        result = describe(model, image)
        if args.json:
            print(json.dumps({"input": name, **result}))
        else:
            probs = np.asarray(result["probabilities"], dtype=np.float32)
            top = ", ".join(f"{label}: {p:.1%}" for label, p in top_k(probs, model.labels))
            print(f"{name}: {result['prediction']}  ({top})")
    return 0


def accuracy(model: Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy on MNIST-format images (already centred 28x28, fed as the network was trained)."""
    x = images.astype(np.float32) / 255.0
    h, w = model.input_shape[1:]
    pad_y, pad_x = (h - x.shape[1]) // 2, (w - x.shape[2]) // 2
    if pad_y or pad_x:
        x = np.pad(x, ((0, 0), (pad_y, h - x.shape[1] - pad_y), (pad_x, w - x.shape[2] - pad_x)))
    return float((predict(model, x).argmax(axis=1) == labels).mean())


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _model(args.model)
    images, labels = mnist.load(args.mnist, "test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    acc = accuracy(model, images, labels)
    if args.json:
        print(json.dumps({"accuracy": acc, "n": len(labels)}))
    else:
        print(f"{model.name}: accuracy {acc:.2%} on {len(labels)} MNIST test images")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nnviz_blender", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="classify drawings (NumPy only)")
    p.add_argument("--model", required=True, help="mlp, cnn or a path to a .npz model")
    p.add_argument("--input", required=True, help="sample:<digit>, a .npy image/stack or a .png")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy on the official MNIST test set")
    p.add_argument("--model", required=True)
    p.add_argument("--mnist", required=True, help="folder with the MNIST idx files")
    p.add_argument("--limit", type=int, default=0, help="use only the first N test images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_evaluate)

    from . import cli_animate, cli_render  # they import bpy only when run

    cli_render.add_parser(sub)
    cli_animate.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

"""`predict` and `evaluate`: classify drawings, measure accuracy (NumPy only, no Blender)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..core import mnist
from ..core.forward import forward, probabilities, top_k
from ..core.graph import build_graph
from ..core.modelfile import Model, load_model
from ..paths import shipped_model
from .options import MODEL_HELP, add_input_options, network_inputs


def _model(name: str) -> Model:
    return load_model(shipped_model(name))


def describe(model: Model, x: np.ndarray) -> dict:
    """Prediction, probabilities and every shown layer's activations for one network input."""
    acts = forward(model, x)
    probs = probabilities(model, acts[-1]).reshape(-1)
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
    for name, x in network_inputs(model, args):
        result = describe(model, x)
        if args.json:
            print(json.dumps({"input": name, **result}))
        else:
            probs = np.asarray(result["probabilities"], dtype=np.float32)
            top = ", ".join(f"{label}: {p:.1%}" for label, p in top_k(probs, model.labels))
            print(f"{name}: {result['prediction']}  ({top})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _model(args.model)
    images, labels = mnist.load(args.mnist, "test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    acc = mnist.accuracy(model, images, labels)
    if args.json:
        print(json.dumps({"accuracy": acc, "n": len(labels)}))
    else:
        print(f"{model.name}: accuracy {acc:.2%} on {len(labels)} MNIST test images")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("predict", help="classify drawings (NumPy only)")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    add_input_options(p, "sample:<digit>, a .npy image/stack, a .png or .jpg")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy on the official MNIST test set")
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--mnist", required=True, help="folder with the MNIST idx files")
    p.add_argument("--limit", type=int, default=0, help="use only the first N test images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_evaluate)

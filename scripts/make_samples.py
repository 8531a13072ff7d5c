"""Write models/samples.npz: per class, the first 5 official MNIST test digits (test-set order)
that every given model classifies correctly, both as raw pixels/255 and through prepare().

    python scripts/make_samples.py models/mlp.npz models/cnn.npz [--data ../shared/data/mnist]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from nnviz_blender.core import mnist  # noqa: E402
from nnviz_blender.core.forward import predict  # noqa: E402
from nnviz_blender.core.modelfile import load_model  # noqa: E402
from nnviz_blender.core.preprocess import prepare  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "samples.npz"))
    args = ap.parse_args(argv)
    images, labels = mnist.load(args.data, "test")
    x = images.astype(np.float32) / 255.0
    ok = np.ones(len(labels), bool)
    for path in args.models:
        model = load_model(path)
        pad = (model.input_shape[1] - 28) // 2
        raw = predict(model, np.pad(x, ((0, 0), (pad, pad), (pad, pad)))).argmax(1)
        prepped = predict(model, np.stack([prepare(model, im) for im in images])).argmax(1)
        print(path, "raw", (raw == labels).mean(), "prepare()", (prepped == labels).mean())
        ok &= (raw == labels) & (prepped == labels)
    indices = np.concatenate([np.flatnonzero(ok & (labels == c))[:5] for c in range(10)])
    np.savez_compressed(
        args.out, images=images[indices], labels=labels[indices], indices=indices.astype(np.int64)
    )
    print(indices.tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())

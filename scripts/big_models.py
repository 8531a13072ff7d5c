"""The large test networks of issue 9 as real ONNX files (random seeded weights), cached.

    python scripts/big_models.py [name ...] [--out out/big] [--force]

- `ptex`: the classic PyTorch MNIST example (conv 32 3x3, relu, conv 64 3x3, relu, max pool 2,
  flatten, dense 9216-128, relu, dense 128-10) on 1x28x28: about 68k neurons, 12M connections.
- `r18_64` / `r18_224`: a ResNet-18 (torchvision's shape, written here: 7x7/2 stem, batch norm,
  3x3/2 max pool, four stages of two basic blocks with 1x1 downsampling, global average pool,
  dense 512-1000) on 3x64x64 (about 150M connections) and 3x224x224 (1.8G connections).

Batch norms are in eval mode with random running statistics, so the importer really folds them.
`ensure(name)` writes a missing file and returns its path (tests and benches reuse it).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "out", "big")
MODELS = {"ptex": (1, 28), "r18_64": (3, 64), "r18_224": (3, 224)}


def _nets():
    """The torch modules (imported lazily: torch is only needed to write the files)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class PtEx(nn.Module):
        """pytorch/examples mnist/main.py without its dropout layers (eval mode drops nothing)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.down = None
            if stride != 1 or c_in != c_out:
                self.down = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x):
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(y + (x if self.down is None else self.down(x)))

    class ResNet18(nn.Module):
        def __init__(self, classes: int = 1000) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            blocks, c = [], 64
            for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                blocks += [Block(c, width, stride), Block(width, width, 1)]
                c = width
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
            x = self.blocks(x)
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return PtEx, ResNet18


def build(name: str):
    """The torch module `name` with seeded random weights and batch-norm statistics, eval mode."""
    import torch
    from torch import nn

    ptex, resnet18 = _nets()
    torch.manual_seed({"ptex": 1, "r18_64": 2, "r18_224": 3}[name])
    net = ptex() if name == "ptex" else resnet18()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.2)
                m.bias.normal_(0.0, 0.1)
    return net.eval()


def ensure(name: str, out: str = OUT, force: bool = False) -> str:
    """The ONNX file of network `name`, written first if missing (or `force`)."""
    if name not in MODELS:
        raise ValueError(f"unknown network {name!r} (known: {', '.join(MODELS)})")
    target = os.path.join(out, f"{name}.onnx")
    if os.path.isfile(target) and not force:
        return target
    import torch

    os.makedirs(out, exist_ok=True)
    channels, side = MODELS[name]
    tmp = target + ".tmp"
    torch.onnx.export(
        build(name),
        (torch.zeros(1, channels, side, side),),
        tmp,
        dynamo=False,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    os.replace(tmp, target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(MODELS), help=", ".join(MODELS))
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--force", action="store_true", help="write again even if cached")
    args = ap.parse_args(argv)
    for name in args.names:
        print(ensure(name, args.out, args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train the shipped MNIST networks (an MLP, a LeNet-style CNN, a small ResNet) with PyTorch.

Inputs are pixel values in [0, 1] (uint8 / 255), shape (N, 1, 28, 28); the CNN sees the digit
zero-padded by 2 pixels on each side (32 x 32). Every network ships through ONNX, the path a user's
own model takes: `--onnx` exports the trained network with `torch.onnx.export` (the MLP and the
CNN with a softmax appended, so their output layer shows probabilities; the ResNet gives logits),
`--npz` then opens that file with the add-on's ONNX import and writes it as a model file with the
labels, the drawing preprocessing, the training metadata and the NumPy-measured accuracy. The
ResNet (batch norm, an identity skip and a downsampling skip) is written as people write PyTorch
models, an nn.Module with a `forward`. Training uses on-the-fly random affine + elastic
augmentation (one sampling grid per batch, one grid_sample call) unless --no-augment. The test
split is only used to report accuracy.

    python scripts/train_mnist.py --arch mlp --epochs 40 --out scratch/mlp.pt \
        --onnx scratch/mlp.onnx --npz models/mlp.npz
    python scripts/train_mnist.py --arch resnet --epochs 8 --no-augment --out scratch/resnet.pt \
        --onnx scratch/resnet.onnx --npz models/resnet.npz
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from nnviz_blender.core import mnist  # noqa: E402

ARCHS = ("mlp", "cnn", "resnet")
CNN_PAD = 2


@dataclass(frozen=True)
class Augment:
    """Random affine + elastic distortion, applied to each sample with probability `p`."""

    p: float = 0.8
    rotate_deg: float = 12.0
    scale: tuple[float, float] = (0.85, 1.15)
    shear_deg: float = 10.0
    translate_px: float = 2.0
    elastic_alpha: float = 34.0
    elastic_sigma: float = 5.0


class ResidualBlock(nn.Module):
    """Two 3x3 conv + batch norm, added to the input (through a 1x1 conv where it downsamples)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))


class ResNet(nn.Module):
    """Stem conv, max pool, an identity residual block, a downsampling one, global average pool."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.block1 = ResidualBlock(width, width)
        self.block2 = ResidualBlock(width, 2 * width, stride=2)
        self.fc = nn.Linear(2 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn(self.stem(x))), 2)
        x = self.block2(self.block1(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_model(arch: str) -> nn.Module:
    """The architecture named `arch` (logits out, no softmax); mlp and cnn are nn.Sequential."""
    if arch == "resnet":
        return ResNet()
    if arch == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 300),
            nn.Tanh(),
            nn.Linear(300, 100),
            nn.Tanh(),
            nn.Linear(100, 10),
        )
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.Tanh(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.Tanh(),
            nn.Linear(120, 100),
            nn.Tanh(),
            nn.Linear(100, 10),
        )
    raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")


def input_shape(arch: str) -> tuple[int, int, int]:
    return (1, 32, 32) if arch == "cnn" else (1, 28, 28)


def load_split(directory: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST `split` as float images in [0, 1], shape (N, 1, 28, 28), and int64 labels."""
    images, labels = mnist.load(directory, split)
    x = torch.from_numpy(images.astype("float32") / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels)


def to_input(x: torch.Tensor, arch: str) -> torch.Tensor:
    """Turn (N, 1, 28, 28) digits into the network input (zero-padded to 32 x 32 for the CNN)."""
    return F.pad(x, (CNN_PAD,) * 4) if arch == "cnn" else x


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding."""
    k = gaussian_kernel(sigma)
    r = len(k) // 2
    n, c, h, w = field.shape
    flat = field.reshape(n * c, 1, h, w)
    flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def random_affine(n: int, aug: Augment, size: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 2, 3) affine_grid matrices mapping output to input coordinates (normalised units)."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    angle = torch.deg2rad(uniform(-aug.rotate_deg, aug.rotate_deg))
    shear = torch.tan(torch.deg2rad(uniform(-aug.shear_deg, aug.shear_deg)))
    zoom = uniform(*aug.scale)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Inverse map: output point -> rotate -> shear -> divide by zoom = where to sample the input.
    a = torch.stack([cos, -sin + shear * cos, sin, cos + shear * sin], dim=1).view(n, 2, 2)
    a = a / zoom.view(n, 1, 1)
    shift = (
        uniform(-aug.translate_px, aug.translate_px),
        uniform(-aug.translate_px, aug.translate_px),
    )
    t = torch.stack(shift, dim=1) * (2.0 / size)
    return torch.cat([a, t.unsqueeze(2)], dim=2)


def augment(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """Distort a random subset (probability aug.p) of an (N, 1, H, W) batch: one grid_sample."""
    n, _, h, w = x.shape
    chosen = (torch.rand(n, generator=gen) < aug.p).float()
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(n, 2, 3)
    theta = torch.lerp(identity, random_affine(n, aug, w, gen), chosen.view(n, 1, 1))
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    noise = torch.rand(n, 2, h, w, generator=gen) * 2 - 1
    pixels = smooth(noise, aug.elastic_sigma) * aug.elastic_alpha
    scale = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
    displacement = (pixels * scale * chosen.view(n, 1, 1, 1)).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid + displacement, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, arch: str) -> float:
    model.eval()
    correct = sum(
        int((model(to_input(xb, arch)).argmax(1) == yb).sum())
        for xb, yb in zip(x.split(1000), y.split(1000), strict=True)
    )
    return correct / len(y)


@dataclass(frozen=True)
class TrainConfig:
    arch: str
    epochs: int
    batch_size: int = 128
    max_lr: float = 3e-3
    seed: int = 0
    steps: int | None = None


def train(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    aug: Augment | None,
    on_epoch: Callable[[int, nn.Module, float], None] | None = None,
) -> tuple[nn.Module, list[float]]:
    """Train a fresh `cfg.arch` network; returns it and the loss of every step."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg.arch)
    per_epoch = math.ceil(len(y) / cfg.batch_size)
    total = per_epoch * cfg.epochs if cfg.steps is None else min(cfg.steps, per_epoch * cfg.epochs)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.max_lr, total_steps=total)
    losses: list[float] = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        epoch_losses = []
        for idx in order.split(cfg.batch_size):
            if len(losses) == total:
                break
            xb = x[idx] if aug is None else augment(x[idx], aug, gen)
            loss = F.cross_entropy(model(to_input(xb, cfg.arch)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            epoch_losses.append(losses[-1])
        if on_epoch is not None and epoch_losses:
            on_epoch(epoch + 1, model, sum(epoch_losses) / len(epoch_losses))
        if len(losses) == total:
            break
    model.eval()
    return model, losses


def save_checkpoint(path: str, model: nn.Module, arch: str, metadata: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"arch": arch, "state_dict": model.state_dict(), "metadata": metadata}, path)


def export_onnx(model: nn.Module, arch: str, path: str) -> None:
    """The trained network as one ONNX file (weights inside, symbolic batch), eval mode; the MLP
    and the CNN end in a softmax (their output layer shows probabilities, as it always has)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    example = torch.zeros(1, *input_shape(arch))
    net, output = model.eval(), "logits"
    if arch in ("mlp", "cnn"):
        net, output = nn.Sequential(net, nn.Softmax(dim=1)), "probabilities"
    torch.onnx.export(
        net,
        (example,),
        path,
        dynamo=False,
        input_names=["image"],
        output_names=[output],
        dynamic_axes={"image": {0: "batch"}, output: {0: "batch"}},
    )


def onnx_to_model_file(onnx_path: str, out: str, name: str, metadata: dict, data: str) -> float:
    """Open an ONNX export with the add-on's importer, measure its MNIST test accuracy with the
    NumPy forward pass and save it as a version-2 model file with labels and preprocessing."""
    from nnviz_blender.core.forward import predict
    from nnviz_blender.core.modelfile import load_model, save_model

    model = load_model(onnx_path)
    images, labels = mnist.load(data, "test")
    x = to_input(torch.from_numpy(images / np.float32(255)).unsqueeze(1), name).numpy()
    accuracy = float((predict(model, x).argmax(1) == labels).mean())
    spec = dict(model.spec, name=name, labels=[str(i) for i in range(10)])
    spec["preprocess"] = {"kind": "mnist", "field": 28, "box": 20}
    spec["metadata"] = {
        **model.spec["metadata"],
        "arch": name,
        **metadata,
        "test_accuracy": accuracy,
    }
    arrays = {
        f"layers.{layer.index}.{key}": value
        for layer in model.layers
        for key, value in (("weight", layer.weight), ("bias", layer.bias))
        if value is not None
    }
    save_model(out, spec, arrays)
    return accuracy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", choices=ARCHS, required=True)
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
    p.add_argument("--download", action="store_true", help="fetch the MNIST files into --data")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="OneCycle peak learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, help="checkpoint file (.pt)")
    p.add_argument("--onnx", help="also export the trained network to this ONNX file")
    p.add_argument("--npz", help="and convert that ONNX file to this model file (needs --onnx)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.download:
        mnist.download(args.data)
    mnist.verify(args.data)
    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "test")
    cfg = TrainConfig(
        args.arch, args.epochs, args.batch_size, args.lr, seed=args.seed, steps=args.steps
    )
    aug = None if args.no_augment else Augment()
    start = time.time()

    def report(epoch: int, model: nn.Module, loss: float) -> None:
        acc = accuracy(model, x_test, y_test, args.arch)
        elapsed = time.time() - start
        print(f"epoch {epoch:3d}  loss {loss:.4f}  test acc {acc:.4f}  {elapsed:7.1f}s", flush=True)

    model, losses = train(x_train, y_train, cfg, aug, report)
    seconds = time.time() - start
    acc = accuracy(model, x_test, y_test, args.arch)
    metadata = {
        "training": {
            "data": f"MNIST official train split ({len(y_train)} images)",
            "framework": f"PyTorch {torch.__version__} (CPU, {args.threads} threads)",
            "optimizer": "Adam",
            "schedule": "OneCycleLR",
            "max_lr": cfg.max_lr,
            "batch_size": cfg.batch_size,
            "steps": len(losses),
            "seconds": round(seconds, 1),
            "command": "python scripts/train_mnist.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
        },
        "epochs": cfg.epochs,
        "seed": cfg.seed,
        "augmentation": None if aug is None else asdict(aug),
        "torch_test_accuracy": acc,
    }
    save_checkpoint(args.out, model, args.arch, metadata)
    print(f"done: {len(losses)} steps in {seconds:.1f}s, test acc {acc:.4f} -> {args.out}")
    if args.onnx:
        export_onnx(model, args.arch, args.onnx)
        if args.npz:
            ours = onnx_to_model_file(args.onnx, args.npz, args.arch, metadata, args.data)
            print(f"{args.onnx} -> {args.npz}: NumPy test accuracy {ours:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Read the official MNIST idx files (optionally gzipped) and check their MD5."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request

import numpy as np

from .errors import NNVizError
from .forward import predict
from .modelfile import Model
from .preprocess import input_stats

FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"

_PREFIX = {"train": "train", "test": "t10k"}


class MnistError(NNVizError, ValueError):
    """A missing or malformed MNIST file."""


def md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(directory: str, mirror: str = MIRROR) -> None:
    """Fetch the four official files into `directory` (where the internet is reachable)."""
    os.makedirs(directory, exist_ok=True)
    for name, digest in FILES.items():
        path = os.path.join(directory, name)
        if not os.path.exists(path) or md5(path) != digest:
            urllib.request.urlretrieve(mirror + name, path)
        if md5(path) != digest:
            raise MnistError(f"{name}: MD5 mismatch after download")


def verify(directory: str) -> None:
    for name, digest in FILES.items():
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise MnistError(f"missing MNIST file: {path}")
        if md5(path) != digest:
            raise MnistError(f"{path}: MD5 mismatch (expected {digest})")


def read_idx(path: str) -> np.ndarray:
    """Read one idx file (plain or .gz) into a uint8 array."""
    if not os.path.exists(path):
        raise MnistError(f"missing MNIST file: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise MnistError(f"{path}: too short for an idx file")
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise MnistError(f"{path}: bad idx magic {magic:#x}")
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) != header + int(np.prod(dims)):
        raise MnistError(f"{path}: size does not match its header {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load(directory: str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, 28, 28), labels int64 (N,)) for split 'train' or 'test'."""
    if split not in _PREFIX:
        raise MnistError(f"split must be 'train' or 'test', not {split!r}")
    prefix = _PREFIX[split]

    def find(kind: str) -> str:
        base = os.path.join(directory, f"{prefix}-{kind}")
        for candidate in (base + ".gz", base):
            if os.path.exists(candidate):
                return candidate
        raise MnistError(f"missing MNIST file: {base}.gz (use --data DIR or download)")

    images = read_idx(find("images-idx3-ubyte"))
    labels = read_idx(find("labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise MnistError(f"{directory}: images and labels of the {split} split do not match")
    return images, labels


def accuracy(model: Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy on MNIST-format images (already centred 28x28, fed as the network was trained:
    zero-padded to its input size, normalised as its metadata says)."""
    shape = model.input_shape
    if len(shape) != 3 or shape[0] != 1 or min(shape[1:]) < images.shape[1]:
        raise MnistError(
            f"MNIST digits are grey 28x28 images; {model.name} takes inputs of shape {list(shape)}"
        )
    (mean,), (std,) = input_stats(model, 1)
    x = (images.astype(np.float32) / np.float32(255.0) - np.float32(mean)) / np.float32(std)
    h, w = shape[1:]
    pad_y, pad_x = (h - x.shape[1]) // 2, (w - x.shape[2]) // 2
    if pad_y or pad_x:
        x = np.pad(x, ((0, 0), (pad_y, h - x.shape[1] - pad_y), (pad_x, w - x.shape[2] - pad_x)))
    return float((predict(model, x).argmax(axis=1) == labels).mean())

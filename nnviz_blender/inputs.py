"""Input specs of the command line: `sample:<digit>[:<n>]`, `.npy` (one image or a stack), `.png`.

Each becomes a list of (label, canvas image) pairs; every image is later preprocessed as a drawing.
PNG files are read through bpy (no extra dependency); without bpy a clear error says so.
"""

from __future__ import annotations

import os

import numpy as np

from .core.preprocess import InputError
from .paths import samples_path
from .scene import attributes


def load_samples(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    path = path or samples_path()
    if not os.path.isfile(path):
        raise InputError(f"sample digits not found: {path}")
    with np.load(path, allow_pickle=False) as npz:
        return npz["images"], npz["labels"]


def sample_digit(digit: int, which: int = 0, path: str | None = None) -> np.ndarray:
    """A real MNIST test digit of class `digit` (the `which`-th shipped one), uint8 (28, 28)."""
    images, labels = load_samples(path)
    matches = np.flatnonzero(labels == digit)
    if matches.size == 0:
        raise InputError(f"no shipped sample of class {digit!r}")
    return images[matches[which % matches.size]]


def read_png(path: str) -> np.ndarray:
    """(H, W, 4) float32, top row first, read with Blender's image loader."""
    try:
        import bpy
    except ImportError:
        raise InputError(
            "reading .png needs Blender's bpy module; save the image as .npy"
        ) from None
    try:
        image = bpy.data.images.load(os.path.abspath(path), check_existing=False)
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None
    try:
        w, h = image.size
        buf = attributes.read_pixels(image)
        return buf.reshape(h, w, image.channels)[::-1].copy()  # Blender stores the bottom row first
    finally:
        bpy.data.images.remove(image)


def load_inputs(spec: str) -> list[tuple[str, np.ndarray]]:
    """Parse one --input value into (name, image) pairs."""
    if spec.startswith("sample:"):
        parts = spec.split(":")
        try:
            digit = int(parts[1])
            which = int(parts[2]) if len(parts) > 2 else 0
        except (ValueError, IndexError):
            raise InputError(
                f"bad sample spec {spec!r}: use sample:<digit> or sample:<digit>:<n>"
            ) from None
        return [(spec, sample_digit(digit, which))]
    if not os.path.isfile(spec):
        raise InputError(f"input file not found: {spec}")
    ext = os.path.splitext(spec)[1].lower()
    if ext == ".npy":
        try:
            arr = np.load(spec, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{spec}: not a plain .npy array ({exc})") from None
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.shape[0] > 4):
            return [(spec, arr)]
        if arr.ndim == 3:
            return [(f"{spec}[{i}]", a) for i, a in enumerate(arr)]
        raise InputError(
            f"{spec}: expected an image (H, W) or a stack (N, H, W), got {list(arr.shape)}"
        )
    if ext == ".png":
        return [(spec, read_png(spec))]
    raise InputError(f"{spec}: unsupported input (use sample:<digit>, .npy or .png)")

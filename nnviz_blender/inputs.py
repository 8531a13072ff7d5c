"""Input specs of the command line: `sample:<digit>[:<n>]`, `.npy` (one image or a stack),
`.png` / `.jpg`, and `--raw` `.npy` files of exact network inputs.

Each image spec becomes a list of (label, canvas image) pairs, later preprocessed as the model says
(core.preprocess.prepare). Image files are read through bpy (no extra dependency); without bpy a
clear error says so. Raw inputs skip preprocessing: only their shape is checked.
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


IMAGE_FILES = (".png", ".jpg", ".jpeg")


def read_image(path: str) -> np.ndarray:
    """(H, W, 4) float32 in [0, 1] as the file stores it (sRGB for 8-bit files), top row first,
    read with Blender's image loader."""
    try:
        import bpy
    except ImportError:
        raise InputError(
            "reading image files needs Blender's bpy module; save the image as .npy"
        ) from None
    if not os.path.isfile(path):
        raise InputError(f"image file not found: {path}")
    try:
        image = bpy.data.images.load(os.path.abspath(path), check_existing=False)
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read image ({' '.join(str(exc).split())})") from None
    try:
        w, h = image.size
        if w * h == 0:
            raise InputError(f"{path}: cannot read image (empty or not an image)")
        buf = attributes.read_pixels(image).reshape(h, w, image.channels)
        if image.is_float:  # 16-bit and HDR files are loaded scene-linear: back to sRGB
            buf[..., :3] = linear_to_srgb(buf[..., :3])
        if image.channels != 4:
            buf = np.concatenate([buf, np.ones((h, w, 4 - image.channels), np.float32)], axis=2)
        return buf[::-1].copy()  # Blender stores the bottom row first
    finally:
        bpy.data.images.remove(image)


def linear_to_srgb(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0.0, 1.0)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055).astype(np.float32)


def load_raw(path: str, input_shape: tuple[int, ...]) -> list[tuple[str, np.ndarray]]:
    """A `.npy` of exact network inputs: one of `input_shape` or a stack (N, *input_shape)."""
    if not os.path.isfile(path):
        raise InputError(f"raw input file not found: {path}")
    if not path.lower().endswith(".npy"):
        raise InputError(f"{path}: --raw takes a .npy array of network inputs")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a plain .npy array ({' '.join(str(exc).split())})") from None
    want = tuple(input_shape)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path}: must be numeric, not {arr.dtype}")
    if arr.shape == want:
        arr = arr[None]
    elif arr.shape[1:] != want or arr.shape[0] < 1:
        raise InputError(
            f"{path}: shape {list(arr.shape)} is neither one input {list(want)} "
            f"nor a stack [N, {', '.join(map(str, want))}]"
        )
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{path}: contains NaN or Inf")
    if len(arr) == 1:
        return [(path, arr[0])]
    return [(f"{path}[{i}]", a) for i, a in enumerate(arr)]


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
    if ext in IMAGE_FILES:
        return [(spec, read_image(spec))]
    raise InputError(f"{spec}: unsupported input (use sample:<digit>, .npy, .png or .jpg)")

"""Turn a canvas image of any size into a network input, as the model's metadata says.

Digit models (one channel, preprocess kind "mnist" or none), the way MNIST itself was made:
grayscale ink in [0, 1] -> crop to the ink -> fit the longest side into a 20x20 box with
anti-aliasing -> place by centre of mass in a 28x28 field -> zero-pad to the model's input size.

Image models (preprocess kind "image", and every 3-channel input): RGB in [0, 1] (alpha over
black) -> centre-crop to the input's aspect -> resize to the input size by area averaging ->
grey for one channel -> (x - mean) / std per channel when the model gives mean and std.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .errors import NNVizError

Ink = Literal["auto", "light", "dark"]
INK_THRESHOLD = 0.1  # ink below this (after normalisation) does not count for the crop box
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


class InputError(NNVizError, ValueError):
    """An image that cannot be turned into a network input; the message is for the user."""


def _unit(a: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] in place (np.clip's wrapper costs more than the work here)."""
    return np.minimum(np.maximum(a, 0.0, out=a), 1.0, out=a)


def _check_finite(a: np.ndarray) -> None:
    """InputError if `a` holds a NaN or an infinity: its minimum and maximum are finite
    otherwise (NaN propagates through both), and two reductions cost a fraction of
    np.isfinite's full-size mask."""
    if a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
        raise InputError("image contains NaN or Inf")


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4), float or uint8 -> float32 (H, W), 0..1 nominal.

    With a varying alpha channel the alpha itself is the ink (strokes on a transparent canvas).
    Values outside [0, 1] (e.g. over-bright paint) are clamped later, on the cropped digit only.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise InputError(f"expected an image of shape (H, W) or (H, W, 1/3/4), got {list(a.shape)}")
    if a.dtype.kind not in "fiub":
        raise InputError(f"expected a numeric image, got {a.dtype}")
    if a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
        _check_finite(a)
    else:
        a = a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max if a.dtype != bool else 1)
    if a.ndim == 2:
        return a
    if a.shape[2] == 4 and a[:, :, 3].min() < 0.99:
        return np.ascontiguousarray(a[:, :, 3])
    return a[:, :, :3] @ LUMA  # 4x faster than three scaled channel planes, the same sums


def ink_map(gray: np.ndarray, ink: Ink = "auto") -> np.ndarray:
    """Ink strength scaled so the strongest stroke is 1; background <= 0 (clamped on the crop).

    `auto` takes the border's median as the background: a light border means dark ink.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.partition(border, border.size // 2)[border.size // 2])
    if ink == "auto":
        ink = "dark" if background > 0.5 else "light"
    if ink == "dark":
        gray = 1.0 - gray
        background = 1.0 - background
    elif ink != "light":
        raise InputError(f"ink must be 'auto', 'light' or 'dark', not {ink!r}")
    strength = gray - np.float32(min(background, 0.5))
    top = float(strength.max())
    if top > 0:
        strength *= np.float32(1.0 / top)
    return strength


def _area_matrix(n_in: int, n_out: int, offset: float, scale: float) -> np.ndarray:
    """(n_out, n_in) box-filter resampling matrix: exact area averaging, so anti-aliased.

    Source pixel s covers [s, s + 1); output pixel o sees the source span
    [(o - offset) * scale, (o + 1 - offset) * scale), i.e. source 0 lands at output `offset`
    and one output pixel spans `scale` source pixels. Spans outside the source read zero.
    """
    a = ((np.arange(n_out) - offset) * scale)[:, None]
    s = np.arange(n_in)[None, :]
    overlap = np.minimum(a + scale, s + 1) - np.maximum(a, s)
    return (np.maximum(overlap, 0.0) / scale).astype(np.float32)


def center_of_mass(img: np.ndarray) -> tuple[float, float]:
    total = float(img.sum())
    if total <= 0:
        return (img.shape[0] / 2.0, img.shape[1] / 2.0)
    ys = np.arange(img.shape[0], dtype=np.float64) + 0.5
    xs = np.arange(img.shape[1], dtype=np.float64) + 0.5
    return float(img.sum(axis=1) @ ys / total), float(img.sum(axis=0) @ xs / total)


def mnist_field(ink: np.ndarray, field: int = 28, box: int = 20) -> np.ndarray:
    """Crop `ink` to its strokes, fit them in a box x box square, centre of mass in the field."""
    mask = ink >= INK_THRESHOLD
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros((field, field), dtype=np.float32)
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = _unit(ink[y0:y1, x0:x1].copy())
    h, w = crop.shape
    scale = max(h, w) / box  # source pixels per field pixel: the longest side fills the box
    # The centre of mass maps linearly, so it lands on the target in one resampling. MNIST puts
    # it on pixel centre 14 of 28, i.e. at 14.5 in these coordinates (pixel s spans [s, s + 1)).
    target = (field + 1) / 2.0
    cy, cx = center_of_mass(crop)
    ry = _area_matrix(h, field, target - cy / scale, scale)
    rx = _area_matrix(w, field, target - cx / scale, scale)
    return _unit(ry @ crop @ rx.T)


def is_image_input(model_or_shape: Any) -> bool:
    """True when inputs take the image path (not the digit-drawing one): the model's preprocess
    kind is "image", or its input has 3 channels (colour)."""
    shape = tuple(getattr(model_or_shape, "input_shape", model_or_shape))
    options = dict(getattr(model_or_shape, "preprocess", {}) or {})
    return len(shape) == 3 and (options.get("kind") == "image" or shape[0] == 3)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4), float or integer -> float32 (H, W, 3) in [0, 1].

    Alpha composites over black (the canvas's background); integers are scaled by their maximum.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or min(a.shape[:2]) < 1:
        raise InputError(f"expected an image of shape (H, W) or (H, W, 1/3/4), got {list(a.shape)}")
    if a.dtype.kind not in "fiub":
        raise InputError(f"expected a numeric image, got {a.dtype}")
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
        _check_finite(a)
    else:
        a = a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max if a.dtype != bool else 1)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3] * a[:, :, 3:]
    return _unit(np.ascontiguousarray(a))


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) -> (height, width, C): centre-crop to the target's aspect, then resize by area
    averaging (anti-aliased when shrinking, blocky when enlarging, exact for whole factors)."""
    h, w = image.shape[:2]
    if h * width > w * height:  # too tall: keep the middle rows
        keep = max(1, round(w * height / width))
        image = image[(h - keep) // 2 : (h - keep) // 2 + keep]
    elif h * width < w * height:  # too wide: keep the middle columns
        keep = max(1, round(h * width / height))
        image = image[:, (w - keep) // 2 : (w - keep) // 2 + keep]
    h, w = image.shape[:2]
    ry = _area_matrix(h, height, 0.0, h / height)
    rx = _area_matrix(w, width, 0.0, w / width)
    c = image.shape[2]  # two plain matrix products (einsum's path search costs more here)
    rows = (ry @ image.astype(np.float32, copy=False).reshape(h, w * c)).reshape(height, w, c)
    cols = rx @ rows.transpose(1, 0, 2).reshape(w, height * c)  # (width, height * c)
    return np.ascontiguousarray(cols.reshape(width, height, c).transpose(1, 0, 2))


def _stats(options: dict[str, Any], key: str, channels: int, default: float) -> np.ndarray:
    value = options.get(key)
    values = [default] if value is None else value if isinstance(value, list) else [value]
    return np.broadcast_to(np.asarray(values, np.float32), (channels,)).reshape(channels, 1, 1)


def input_stats(model_or_shape: Any, channels: int) -> tuple[list[float], list[float]]:
    """The model's per-channel (mean, std) of its input normalisation ((0, 1) without one)."""
    options = dict(getattr(model_or_shape, "preprocess", {}) or {})
    mean, std = _stats(options, "mean", channels, 0.0), _stats(options, "std", channels, 1.0)
    return [float(v) for v in mean.ravel()], [float(v) for v in std.ravel()]


def normalise(model_or_shape: Any, x: np.ndarray) -> np.ndarray:
    """(x - mean) / std per channel, as the model's preprocess says (unchanged without them)."""
    options = dict(getattr(model_or_shape, "preprocess", {}) or {})
    if options.get("mean") is None and options.get("std") is None:
        return x
    channels = x.shape[0]
    mean, std = _stats(options, "mean", channels, 0.0), _stats(options, "std", channels, 1.0)
    return ((x - mean) / std).astype(np.float32)


def prepare_image(model_or_shape: Any, image: np.ndarray) -> np.ndarray:
    """An image of any size -> an image model's input (float32, shape model.input_shape)."""
    shape = tuple(getattr(model_or_shape, "input_shape", model_or_shape))
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise InputError(f"images feed 1- or 3-channel image models, not input shape {list(shape)}")
    rgb = fit_image(to_rgb(image), shape[1], shape[2])
    x = (rgb @ LUMA)[None] if shape[0] == 1 else np.ascontiguousarray(rgb.transpose(2, 0, 1))
    return normalise(model_or_shape, _unit(x))


def is_blank(x: np.ndarray) -> bool:
    """True for a network input without ink (what `prepare` gives for an empty canvas)."""
    return not np.any(x)


def prepare(model_or_shape: Any, image: np.ndarray, ink: Ink = "auto") -> np.ndarray:
    """A canvas image of any size -> the model's input (float32, shape model.input_shape).

    `model_or_shape` is a Model (its spec's "preprocess" block is honoured) or an input shape.
    Image models take `prepare_image`; digit models the drawing path, where an empty canvas
    gives an all-zero input (before any mean/std normalisation the model asks for).
    """
    if is_image_input(model_or_shape):
        return prepare_image(model_or_shape, image)
    shape = tuple(getattr(model_or_shape, "input_shape", model_or_shape))
    options = dict(getattr(model_or_shape, "preprocess", {}) or {})
    if len(shape) != 3 or shape[0] != 1:
        raise InputError(
            f"drawings feed single-channel image models, not input shape {list(shape)}"
        )
    height, width = shape[1], shape[2]
    field = int(options.get("field", min(height, width, 28)))
    box = int(options.get("box", round(field * 20 / 28)))
    if field > min(height, width):
        raise InputError(f"preprocess field {field} is larger than the input {height}x{width}")
    digit = mnist_field(ink_map(to_gray(image), ink), field, box)
    out = np.zeros((1, height, width), dtype=np.float32)
    top, left = (height - field) // 2, (width - field) // 2
    out[0, top : top + field, left : left + field] = digit
    return normalise(model_or_shape, out)

"""Turn a drawing of any size into a network input, the way MNIST itself was made.

grayscale ink in [0, 1] -> crop to the ink -> fit the longest side into a 20x20 box with
anti-aliasing -> place by centre of mass in a 28x28 field -> zero-pad to the model's input size.
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
        if not np.isfinite(a).all():
            raise InputError("image contains NaN or Inf")
    else:
        a = a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max if a.dtype != bool else 1)
    if a.ndim == 2:
        return a
    if a.shape[2] == 4 and a[:, :, 3].min() < 0.99:
        return np.ascontiguousarray(a[:, :, 3])
    return a[:, :, 0] * LUMA[0] + a[:, :, 1] * LUMA[1] + a[:, :, 2] * LUMA[2]


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


def prepare(model_or_shape: Any, image: np.ndarray, ink: Ink = "auto") -> np.ndarray:
    """A canvas image of any size -> the model's input (float32, shape model.input_shape).

    `model_or_shape` is a Model (its spec's "preprocess" block is honoured) or an input shape.
    An empty canvas gives an all-zero input.
    """
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
    return out

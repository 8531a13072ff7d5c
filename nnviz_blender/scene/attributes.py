"""One small typed layer between NumPy arrays and Blender attributes.

Every module that moves arrays into or out of Blender (attributes, positions, mesh topology,
keyframes, image pixels) goes through here, so
the rules live in one place: the attribute kind fixes the dtype and the width, the domain fixes
the length, and `foreach_set` / `foreach_get` always see a C-contiguous float32 / int32 buffer
(a float64 array or a list is ~80x slower in `foreach_set`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Kind:
    """How one Blender attribute data type maps to NumPy."""

    data_type: str  # Blender's data_type, e.g. "FLOAT"
    dtype: type
    width: int  # values per element
    prop: str  # the property foreach_set / foreach_get move ("value", "vector", "color")


KINDS: dict[str, Kind] = {
    "FLOAT": Kind("FLOAT", np.float32, 1, "value"),
    "INT": Kind("INT", np.int32, 1, "value"),
    "FLOAT_VECTOR": Kind("FLOAT_VECTOR", np.float32, 3, "vector"),
    "FLOAT_COLOR": Kind("FLOAT_COLOR", np.float32, 4, "color"),
    "BOOLEAN": Kind("BOOLEAN", np.bool_, 1, "value"),
}

DOMAINS = ("POINT", "EDGE", "FACE", "CORNER", "CURVE", "INSTANCE")


class AttributeMismatch(ValueError):
    """An array that does not fit the attribute it is meant for (programming error)."""


# The collection whose length is the size of each domain, per data-block type. Counted from the
# data rather than with `AttributeGroup.domain_size`, which Blender 4.2 does not have.
_DOMAIN_ELEMENTS: dict[str, dict[str, str]] = {
    "Mesh": {"POINT": "vertices", "EDGE": "edges", "FACE": "polygons", "CORNER": "loops"},
    "Curves": {"POINT": "points", "CURVE": "curves"},
    "PointCloud": {"POINT": "points"},
}


def domain_size(data, domain: str) -> int:
    """Number of elements of `domain` in a mesh / curves / point cloud data-block."""
    if domain not in DOMAINS:
        raise AttributeMismatch(f"unknown attribute domain {domain!r}")
    kind = data.bl_rna.identifier
    elements = _DOMAIN_ELEMENTS.get(kind, {}).get(domain)
    if elements is None:
        raise AttributeMismatch(f"a {kind} data-block has no {domain} domain")
    return len(getattr(data, elements))


def _buffer(array, kind: Kind, count: int, name: str) -> np.ndarray:
    a = np.asarray(array)
    want = (count,) if kind.width == 1 else (count, kind.width)
    if a.shape != want and a.size != count * kind.width:
        raise AttributeMismatch(
            f"attribute {name!r}: got an array of shape {list(a.shape)}, expected {list(want)}"
        )
    return np.ascontiguousarray(a, dtype=kind.dtype).reshape(-1)


def ensure(data, name: str, data_type: str, domain: str):
    """The attribute `name` with exactly this type and domain (recreated if it differs)."""
    if data_type not in KINDS:
        raise AttributeMismatch(f"unsupported attribute type {data_type!r}")
    attr = data.attributes.get(name)
    if attr is not None and (attr.data_type != data_type or attr.domain != domain):
        data.attributes.remove(attr)
        attr = None
    if attr is None:
        attr = data.attributes.new(name, data_type, domain)
    return attr


def write(data, name: str, array, data_type: str = "FLOAT", domain: str = "POINT") -> None:
    """Write `array` into attribute `name` (created if missing); tags the data for update."""
    kind = KINDS.get(data_type)
    if kind is None:
        raise AttributeMismatch(f"unsupported attribute type {data_type!r}")
    count = domain_size(data, domain)
    buf = _buffer(array, kind, count, name)
    attr = ensure(data, name, data_type, domain)
    attr.data.foreach_set(kind.prop, buf)
    data.update_tag()


def write_existing(data, name: str, array: np.ndarray) -> None:
    """Fast path for per-update writes: `array` must already be the attribute's exact buffer type.

    No lookup of kind tables or recreation; the caller guarantees dtype and length (checked
    here only by size, which is cheap).
    """
    attr = data.attributes[name]
    kind = KINDS[attr.data_type]
    if array.dtype != kind.dtype or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=kind.dtype)
    if array.size != len(attr.data) * kind.width:
        raise AttributeMismatch(
            f"attribute {name!r}: {array.size} values for {len(attr.data)} elements"
        )
    attr.data.foreach_set(kind.prop, array.reshape(-1))


def read(data, name: str) -> np.ndarray:
    """Attribute `name` as a NumPy array ((n,) or (n, width)); KeyError if it is missing."""
    attr = data.attributes.get(name)
    if attr is None:
        raise KeyError(f"no attribute {name!r} on {data.name!r}")
    kind = KINDS.get(attr.data_type)
    if kind is None:
        raise AttributeMismatch(f"attribute {name!r} has unsupported type {attr.data_type}")
    n = len(attr.data)
    out: np.ndarray = np.empty(n * kind.width, dtype=kind.dtype)
    attr.data.foreach_get(kind.prop, out)
    return out if kind.width == 1 else out.reshape(n, kind.width)


# --- positions: just another attribute ----------------------------------------------------------


def read_positions(data) -> np.ndarray:
    """Point positions of a mesh or curves data-block, float32 (n, 3)."""
    return read(data, "position")


def read_curve_sizes(curves) -> np.ndarray:
    """Points per curve of a curves data-block, int32 (n,)."""
    offsets = np.empty(len(curves.curves) + 1, np.int32)
    curves.curve_offset_data.foreach_get("value", offsets)
    return np.diff(offsets)


def write_positions(data, positions) -> None:
    """Set every point's position from an (n, 3) array."""
    write(data, "position", positions, "FLOAT_VECTOR", "POINT")


# --- other per-item arrays (not attributes) ----------------------------------------------------


def set_items(items, prop: str, array, dtype=np.float32) -> None:
    """Set `prop` of every item of a bpy collection (mesh loops and faces, UVs, keyframe points)
    from one array, through the same contiguous-buffer rule."""
    items.foreach_set(prop, np.ascontiguousarray(array, dtype=dtype).reshape(-1))


def read_pixels(image, out: np.ndarray | None = None) -> np.ndarray:
    """An image's pixels as float32 RGBA, flat, bottom row first (into `out` if given)."""
    if out is None:
        out = np.empty(image.size[0] * image.size[1] * image.channels, np.float32)
    image.pixels.foreach_get(out)
    return out


def write_pixels(image, pixels) -> None:
    """Set all of an image's pixels from float32 RGBA (bottom row first)."""
    image.pixels.foreach_set(np.ascontiguousarray(pixels, np.float32).reshape(-1))

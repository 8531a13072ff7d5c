"""Python-side state of the UI, keyed by network name (never a bpy reference).

The graph of each network's model (built once, reused by inspect and trace), the info box of the
last inspected node, and small preview icons of a conv node's input patch and filter.
"""

from __future__ import annotations

import numpy as np

from ..core.graph import Graph, build_graph
from ..core.inspect import NodeInfo
from ..core.modelfile import Model

_graphs: dict[str, tuple[int, Graph]] = {}
_infos: dict[str, NodeInfo] = {}
_previews = None  # bpy.utils.previews collection, made on first use


def graph(name: str, model: Model) -> Graph:
    cached = _graphs.get(name)
    if cached is None or cached[0] != id(model):
        cached = (id(model), build_graph(model))
        _graphs[name] = cached
    return cached[1]


def set_info(name: str, info: NodeInfo) -> None:
    _infos[name] = info
    if info.patch is not None and info.kernel is not None:
        _icon(f"{name}/patch", info.patch, signed=False)
        _icon(f"{name}/kernel", info.kernel, signed=True)


def info(name: str) -> NodeInfo | None:
    return _infos.get(name)


def forget(name: str | None = None) -> None:
    """Drop cached state of one network (after rebuild/remove) or of all (file load)."""
    for table in (_graphs, _infos):
        if name is None:
            table.clear()
        else:
            table.pop(name, None)


def tile_image(maps: np.ndarray, signed: bool, scale: int = 8) -> np.ndarray:
    """(C, h, w) values -> RGBA float image (H, W, 4), maps side by side, each pixel scaled up.

    Signed values use blue (+) / red (-) on black; others gray. Top row first.
    """
    maps = np.asarray(maps, np.float32)
    c, h, w = maps.shape
    top = float(np.abs(maps).max()) or 1.0
    v = maps / top
    rgb = np.zeros((c, h, w, 3), np.float32)
    if signed:
        rgb[..., 0] = np.clip(-v, 0, 1)
        rgb[..., 2] = np.clip(v, 0, 1)
        rgb[..., 1] = 0.35 * np.abs(v)
    else:
        rgb[:] = np.clip(v, 0, 1)[..., None]
    gap = np.zeros((h, 1, 3), np.float32)
    row = np.concatenate([part for m in rgb for part in (m, gap)][:-1], axis=1)
    row = np.kron(row, np.ones((scale, scale, 1), np.float32))
    return np.concatenate([row, np.ones(row.shape[:2] + (1,), np.float32)], axis=2)


def _icon(key: str, maps: np.ndarray, signed: bool) -> None:
    global _previews
    import bpy.utils.previews

    if _previews is None:
        _previews = bpy.utils.previews.new()
    img = tile_image(maps, signed)
    if key not in _previews:
        _previews.new(key)
    preview = _previews[key]
    h, w = img.shape[:2]
    preview.image_size = (w, h)
    # previews store the bottom row first
    preview.image_pixels_float = img[::-1].ravel()  # type: ignore[assignment]


def icon_id(key: str) -> int:
    if _previews is None or key not in _previews:
        return 0
    return _previews[key].icon_id


def release() -> None:
    """On unregister: free the preview icons and all cached state."""
    global _previews
    forget()
    if _previews is not None:
        import bpy.utils.previews

        bpy.utils.previews.remove(_previews)
        _previews = None

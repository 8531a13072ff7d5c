"""Plain keyframes from NumPy arrays on Blender 4.2, 4.5 and 5.0.

`keyframe_insert` creates the action, its slot (4.4+) and the F-curve the same way on every
version; after that only the F-curve is touched. 4.2-4.5 reach it through `action.fcurves`,
5.0 through the slot's channelbag (`Action.fcurves` was removed).
"""

from __future__ import annotations

import numpy as np

from ..scene import attributes


def _fcurves(id_block):
    anim = id_block.animation_data
    if anim is None or anim.action is None:
        return None
    action = anim.action
    fcurves = getattr(action, "fcurves", None)
    if fcurves is not None:
        return fcurves
    from bpy_extras import anim_utils

    bag = anim_utils.action_get_channelbag_for_slot(action, anim.action_slot)
    return None if bag is None else bag.fcurves


def find(id_block, data_path: str, index: int = 0):
    fcurves = _fcurves(id_block)
    return None if fcurves is None else fcurves.find(data_path, index=index)


def set_keys(
    id_block,
    data_path: str,
    frames,
    values,
    index: int = 0,
    interpolation: str = "LINEAR",
    set_value=None,
):
    """Replace the F-curve of `data_path[index]` by keyframes (frames[i], values[i]).

    `set_value(v)` must assign the property (needed once so that keyframe_insert has a value);
    without it the property keeps its current value until the curve is evaluated.
    Returns the F-curve.
    """
    frames = np.asarray(frames, np.float64).reshape(-1)
    values = np.asarray(values, np.float64).reshape(-1)
    if frames.size == 0 or frames.size != values.size:
        raise ValueError("keyframes need as many values as frames (at least one)")
    remove(id_block, data_path, index)
    if set_value is not None:
        set_value(values[0])
    try:
        id_block.keyframe_insert(data_path, index=index, frame=float(frames[0]))
    except TypeError:  # not an array property: Blender wants index -1 (its F-curve has 0)
        id_block.keyframe_insert(data_path, index=-1, frame=float(frames[0]))
    fc = find(id_block, data_path, index)
    if fc is None:
        raise RuntimeError(f"keyframe_insert made no F-curve for {data_path!r}")
    points = fc.keyframe_points
    points.add(frames.size - 1)
    co = np.empty(frames.size * 2, np.float32)
    co[0::2], co[1::2] = frames, values
    attributes.set_items(points, "co", co)
    for p in points:
        p.interpolation = interpolation
        p.handle_left_type = p.handle_right_type = "AUTO_CLAMPED"
    fc.extrapolation = "CONSTANT"
    fc.update()
    return fc


def remove(id_block, data_path: str, index: int = 0) -> bool:
    """Remove the F-curve of `data_path[index]` (True if there was one)."""
    fcurves = _fcurves(id_block)
    fc = None if fcurves is None else fcurves.find(data_path, index=index)
    if fc is None:
        return False
    fcurves.remove(fc)
    return True


def evaluate(id_block, data_path: str, frame: float, index: int = 0) -> float:
    fc = find(id_block, data_path, index)
    if fc is None:
        raise KeyError(f"no F-curve for {data_path!r}")
    return float(fc.evaluate(frame))

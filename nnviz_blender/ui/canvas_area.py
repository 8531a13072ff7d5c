"""The canvas in an Image Editor beside the 3D viewport, the way texture painting is usually done.

Start Live Drawing splits the 3D viewport: the new area (left, `SHARE` of the width) becomes an
Image Editor in Paint mode showing the canvas image, zoomed to fit, so the user paints in 2D and
watches the network in 3D. Strokes there change the same image the 3D canvas plane shows, so they
drive the network the same way. Stop closes exactly that area, and only if it is still an Image
Editor: an area is remembered by its screen's name and its pointer (stable while it exists),
never as a bpy reference.

Area operators need a window; they are never called in background mode (where area_split does
not return), so `open_beside` is a no-op there and tests reach `show_canvas_in` and `pick_view3d`.
"""

from __future__ import annotations

import contextlib

import bpy

from ..scene import viewport

SHARE = 0.4  # of the 3D viewport's width for the canvas
FIT_DELAY = 0.2  # seconds between looks at whether the split areas' regions have their size
FIT_TRIES = 50  # looks before fitting anyway (a software-GL redraw of a big network takes 1-2 s)

_opened: dict[str, tuple[str, int]] = {}  # network -> (screen name, area pointer)


def pick_view3d(areas):
    """The 3D viewport to split: the largest one (None if there is none)."""
    views = [a for a in areas if a.type == "VIEW_3D"]
    return max(views, key=lambda a: a.width * a.height) if views else None


def showing(areas, image_name: str):
    """An Image Editor already showing the canvas, or None."""
    for area in areas:
        space = area.spaces.active if area.type == "IMAGE_EDITOR" else None
        if space is not None and space.image is not None and space.image.name == image_name:
            return area
    return None


def show_canvas_in(area, image) -> None:
    """Make `area` an Image Editor in Paint mode on `image`."""
    area.type = "IMAGE_EDITOR"
    space = area.spaces.active
    space.image = image
    space.ui_mode = "PAINT"
    space.show_region_toolbar = True


def window_region(area, kind: str = "WINDOW"):
    return next((r for r in area.regions if r.type == kind), None)


def _find(screen_name: str, pointer: int):
    """(window, screen, area) of a remembered area, or None if it is gone."""
    for window in bpy.context.window_manager.windows:
        screen = window.screen
        if screen is None or screen.name != screen_name:
            continue
        for area in screen.areas:
            if area.as_pointer() == pointer:
                return window, screen, area
    return None


def has_its_size(area) -> bool:
    """Whether `area`'s main region has been laid out in the area's present size: a split
    changes the area at once, its regions only at the next redraw of the window, and a view
    fitted to the old size would show the network at 3/5 of the size it should."""
    region = window_region(area)
    return region is not None and 1 < region.width <= area.width and region.height <= area.height


def fit(screen_name: str, pointer: int) -> None:
    """Zoom the Image Editor to show the whole canvas."""
    found = _find(screen_name, pointer)
    if found is None or found[2].type != "IMAGE_EDITOR":
        return
    window, screen, area = found
    region = window_region(area)
    with (
        contextlib.suppress(RuntimeError),
        bpy.context.temp_override(window=window, screen=screen, area=area, region=region),
    ):
        bpy.ops.image.view_all(fit_view=True)


def frame_network(screen_name: str, pointer: int, network: str) -> None:
    """Turn the 3D viewport to the network's three-quarter view, framing all of it (canvas and
    labels included), so the narrower viewport beside the canvas shows the whole network."""
    found = _find(screen_name, pointer)
    if found is not None:
        viewport.frame(found[2], network)


def when_laid_out(screen_name: str, pointer: int, then) -> None:
    """Call `then()` once the area (screen name, pointer) has its size (has_its_size), looking
    every FIT_DELAY seconds, FIT_TRIES times at most; nothing if the area is gone."""
    tries = [0]

    def look():
        found = _find(screen_name, pointer)
        if found is None:
            return None
        tries[0] += 1
        if not has_its_size(found[2]) and tries[0] < FIT_TRIES:
            return FIT_DELAY
        then()
        return None

    bpy.app.timers.register(look, first_interval=FIT_DELAY)


def open_beside(context, network: str, image_name: str) -> str:
    """Show the canvas in an Image Editor beside the 3D viewport; what was done, for the report:
    "opened", "shown" (an editor already showed it) or "" (no window or no 3D viewport)."""
    window, screen = getattr(context, "window", None), getattr(context, "screen", None)
    image = bpy.data.images.get(image_name)
    if bpy.app.background or window is None or screen is None or image is None:
        return ""
    area = showing(screen.areas, image_name)
    if area is not None:
        show_canvas_in(area, image)
        return "shown"
    if screen.show_fullscreen:  # a maximised area cannot be split: back to the layout first
        area = pick_view3d(screen.areas)
        with context.temp_override(window=window, screen=screen, area=area):
            bpy.ops.screen.back_to_previous()
        screen = window.screen
    view = pick_view3d(screen.areas)
    if view is None:
        return ""
    before = {a.as_pointer() for a in screen.areas}
    with context.temp_override(window=window, screen=screen, area=view, region=window_region(view)):
        if bpy.ops.screen.area_split(direction="VERTICAL", factor=SHARE) != {"FINISHED"}:
            return ""
    new = [a for a in screen.areas if a.as_pointer() not in before]
    if not new:
        return ""
    # The new area is the left part, SHARE of the width (measured in Blender 4.3): it becomes
    # the canvas; the original 3D viewport keeps its sidebar (the NNViz tab) on the right.
    left = new[0]
    show_canvas_in(left, image)
    key = (screen.name, left.as_pointer())
    _opened[network] = key
    when_laid_out(*key, lambda: fit(*key))
    view_key = (screen.name, view.as_pointer())
    when_laid_out(*view_key, lambda: frame_network(*view_key, network))
    return "opened"


def close(network: str) -> bool:
    """Close the Image Editor `open_beside` opened for `network` (only that one, and only if it
    is still an Image Editor); True if it was closed."""
    key = _opened.pop(network, None)
    if key is None or bpy.app.background:
        return False
    found = _find(*key)
    if found is None or found[2].type != "IMAGE_EDITOR":
        return False
    window, screen, area = found
    with bpy.context.temp_override(window=window, screen=screen, area=area):
        return bpy.ops.screen.area_close() == {"FINISHED"}


def forget() -> None:
    """After a file load the screens are new: nothing opened before may be closed."""
    _opened.clear()

"""What the 3D viewports show while the user paints: the network as the renders show it.

Material Preview and Rendered normally light the scene with Blender's grey studio HDRI and the
Filmic / AgX view transform; the renders use the network's theme world (studio.world), no lights
and the Standard view transform, and fade weak edges. `show_like_render` gives the viewports the
same: the scene's world and lights, the render's colour management and edge fade, and Material
Preview instead of Solid (where attribute colours and glow do not show).

`frame` turns a 3D viewport to a network's three-quarter view, the whole network in sight (Build
and Start call it).
"""

from __future__ import annotations

import numpy as np

from ..core.values import DEFAULT_FADE
from . import materials, network, studio, util
from .handle import Network


def show_like_render(name: str, scene, screen=None) -> None:
    """Theme world, colour management and edge fade of a render; 3D viewports of `screen` use
    the scene's world and lights (Solid ones switch to Material Preview)."""
    net = Network(name)
    if scene.world is None or scene.world.get(util.TAG) != name:
        scene.world = studio.world(name, materials.get_theme(net.theme))
    studio.colour_management(scene)
    mat = util.find("materials", name, "edges_material")
    if mat is not None and materials.edge_look(mat)[1] == 0.0:
        network.set_edge_fade(name, DEFAULT_FADE)
    for area in screen.areas if screen is not None else ():
        if area.type == "VIEW_3D":
            use_scene_look(area.spaces.active.shading)


def use_scene_look(shading) -> None:
    """Material Preview and Rendered with the scene's world and lights, not the studio HDRI."""
    if shading.type == "SOLID":
        shading.type = "MATERIAL"
    shading.background_type = "WORLD"  # Solid: the theme's background colour (world.color)
    shading.use_scene_world = True
    shading.use_scene_lights = True
    shading.use_scene_world_render = True
    shading.use_scene_lights_render = True


VIEWPORT_SENSOR = 72.0  # mm: a 3D viewport's lens acts on twice the camera's default sensor
CLIP_DEPTH = 2.0  # a framed viewport sees at least this many times as deep as its farthest point


def visible_rect(area) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the 3D viewport's drawing region, in its own pixels, that no other
    region covers: with region overlap (Blender's default) the headers, the toolbar and the
    sidebar are drawn over the view, as Blender's own View All allows for."""
    region = next((r for r in area.regions if r.type == "WINDOW"), None)
    if region is None or region.width < 2 or region.height < 2:
        return None
    x0, y0, x1, y1 = 0, 0, region.width, region.height
    for r in area.regions:
        if r.type == "WINDOW" or r.width < 2 or r.height < 2:
            continue
        left, bottom = r.x - region.x, r.y - region.y
        right, top = left + r.width, bottom + r.height
        if right <= 0 or left >= region.width or top <= 0 or bottom >= region.height:
            continue  # beside the view, not over it
        if r.alignment == "LEFT":
            x0 = max(x0, right)
        elif r.alignment == "RIGHT":
            x1 = min(x1, left)
        elif r.alignment == "TOP":
            y1 = min(y1, bottom)
        elif r.alignment == "BOTTOM":
            y0 = max(y0, top)
    if x1 - x0 < region.width // 4 or y1 - y0 < region.height // 4:
        return 0, 0, region.width, region.height  # too little left: use all of it
    return x0, y0, x1, y1


def frame(area, network_name: str) -> bool:
    """Turn the 3D viewport `area` to the network's three-quarter view (the camera's iso preset,
    studio.view_rotation), framing all of it (evaluated edges, labels and canvas included) in
    the part no header, toolbar or sidebar covers (visible_rect), and push its clip end out so
    nothing of it is cut off; False if there is nothing to frame."""
    space = area.spaces.active if area.type == "VIEW_3D" else None
    region = next((r for r in area.regions if r.type == "WINDOW"), None)
    box = network.bounds(network_name) if space is not None else None
    rect = visible_rect(area) if region is not None else None
    if space is None or rect is None or space.region_3d is None or box is None:
        return False
    lo, hi = box
    corners = np.array([[(lo, hi)[i >> k & 1][k] for k in range(3)] for i in range(8)])
    x0, y0, x1, y1 = rect
    turn = studio.view_rotation("iso", Network(network_name).layout)
    rotation = np.array(turn)
    # the lens spans the region's longer side; the window is the visible rect in tangents
    per_pixel = VIEWPORT_SENSOR / space.lens / max(region.width, region.height)
    cx, cy = region.width / 2, region.height / 2
    window = (
        (x0 - cx) * per_pixel,
        (x1 - cx) * per_pixel,
        (y0 - cy) * per_pixel,
        (y1 - cy) * per_pixel,
    )
    eye = studio.eye_in_window(corners, rotation, window)
    depth = corners @ rotation[:, 2]
    centre = (depth.min() + depth.max()) / 2  # orbit about the network's middle
    r3d = space.region_3d
    r3d.view_perspective = "PERSP"
    r3d.view_rotation = turn.to_quaternion()
    r3d.view_location = rotation @ np.array([eye[0], eye[1], centre])
    r3d.view_distance = eye[2] - centre
    space.clip_end = max(space.clip_end, (eye[2] - depth.min()) * CLIP_DEPTH)
    return True

"""Camera moves as plain keyframes: a turntable orbit, a swing (flat layouts) and a slow dolly.

Nothing here needs Python at render time. The orbit parents the network's camera (made by
scene.stage) to a pivot empty on the network's vertical axis and turns the pivot linearly; the
camera is framed first on the network turned to every angle the move reaches, so nothing
leaves the frame. The dolly moves the camera (or narrows an orthographic camera) towards the
target with an ease in and out.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..core.errors import NNVizError
from ..scene import studio, util
from ..scene.handle import Network
from . import keys

MOVES = ("fixed", "orbit", "dolly")


class CameraError(NNVizError, ValueError):
    """A camera move that cannot be made; the message is for users."""


def _turned(points: np.ndarray, centre: np.ndarray, angles) -> np.ndarray:
    out = []
    for a in angles:
        c, s = math.cos(a), math.sin(a)
        rel = points[:, :2] - centre[:2]
        xy = np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], axis=1)
        out.append(np.concatenate([xy + centre[:2], points[:, 2:3]], axis=1))
    return np.concatenate(out).astype(np.float32)


def framing_points(network: str) -> np.ndarray:
    """What the camera has to fit: nodes, label anchors and the corners of figure objects
    (legend strips, bars, captions), which scene_points knows only by their origins."""
    pts = [studio.scene_points(network)]
    fig = util.find("collections", network, "figure_collection")
    if fig is not None:
        depsgraph = bpy.context.evaluated_depsgraph_get()
        for obj in fig.objects:
            ev = obj.evaluated_get(depsgraph)
            corners = [ev.matrix_world @ Vector(c) for c in ev.bound_box]
            pts.append(np.array([c[:] for c in corners], np.float32))
    return np.concatenate(pts)


def fit(cam, points: np.ndarray, scene, margin: float = 1.05) -> None:
    """Fill the frame with `points`, perspective included: zoom (lens or ortho scale) and
    centre with the lens shift, so the view direction stays what the preset chose.

    studio.frame centres the projected box orthographically, which leaves a perspective view
    of a tall network off-centre; this measures where the points really land and corrects.
    """
    from bpy_extras.object_utils import world_to_camera_view

    data = cam.data
    w, h = scene.render.resolution_x, scene.render.resolution_y
    big = max(w, h)
    sample = points[:: max(1, len(points) // 4000)]

    def box():
        bpy.context.view_layer.update()
        uv = np.array(
            [world_to_camera_view(scene, cam, Vector(p))[:2] for p in sample.tolist()], float
        )
        return uv.min(axis=0), uv.max(axis=0)

    for _ in range(3):
        lo, hi = box()
        size = max(hi[0] - lo[0], hi[1] - lo[1])
        if size > 0:
            zoom = (1.0 / margin) / size  # > 1: closer
            if data.type == "ORTHO":
                data.ortho_scale /= zoom
            else:
                data.lens *= zoom
        lo, hi = box()
        centre = (lo + hi) / 2
        data.shift_x += float(centre[0] - 0.5) * w / big
        data.shift_y += float(centre[1] - 0.5) * h / big


HUD_ROLES = ("legend", "bar")  # colour legend and probability bars: they turn with the camera


def _hud_objects(network: str) -> list:
    return [
        o
        for o in bpy.data.objects
        if o.get(util.TAG) == network and str(o.get(util.ROLE, "")).startswith(HUD_ROLES)
    ]


def clear(network: str) -> None:
    """Remove a previous move: the pivot, the camera's parent and its keyframes.

    Objects that rode on the pivot (legend, bars) fall back to their own transform, which is
    where they stood before the orbit (the parent inverse cancelled the pivot at angle 0).
    """
    for obj in _hud_objects(network):
        if obj.parent is not None and obj.parent.get(util.ROLE) == "camera_pivot":
            obj.parent = None
    cam = util.find("objects", network, "camera")
    if cam is not None:
        world = cam.matrix_world.copy()
        cam.parent = None
        cam.matrix_world = world
        for block in (cam, cam.data):
            if block.animation_data is not None:
                action = block.animation_data.action
                block.animation_data_clear()
                if action is not None and action.users == 0 and action.get(util.TAG) == network:
                    bpy.data.actions.remove(action)
    pivot = util.find("objects", network, "camera_pivot")
    if pivot is not None:
        bpy.data.objects.remove(pivot)


def animate(
    network: str,
    move: str,
    frame_start: int,
    frame_end: int,
    *,
    view: str = "front",
    scene=None,
    turns: float = 1.0,
    swing_degrees: float = 35.0,
    dolly: float = 0.8,
) -> str:
    """Give the network's camera a move over frames [start, end]; returns the camera's name.

    "orbit": one full turn (3D layouts; `turns` of them) or a swing of +-`swing_degrees` and
    back (flat layouts, which are planes and look empty edge-on); "dolly": from the framed
    view to `dolly` x the distance; "fixed": no move.
    """
    if move not in MOVES:
        raise CameraError(f"camera move must be one of {', '.join(MOVES)}, not {move!r}")
    if frame_end < frame_start:
        raise CameraError("the animation has no frames")
    scene = scene or bpy.context.scene
    cam = util.find("objects", network, "camera")
    net = Network(network)
    if cam is None or not net.exists:
        raise CameraError(f"network {network!r} has no camera: set up the stage first")
    coll = net.collection
    clear(network)
    style = net.layout
    aspect = scene.render.resolution_x / scene.render.resolution_y
    points = framing_points(network)
    if move == "orbit":
        _orbit(
            scene,
            network,
            coll,
            cam,
            points,
            style,
            view,
            aspect,
            frame_start,
            frame_end,
            turns,
            math.radians(swing_degrees),
        )
    else:
        studio.frame(cam, points, view, style, aspect)
        cam.data.shift_x = cam.data.shift_y = 0.0
        fit(cam, points, scene)
        if move == "dolly":
            _dolly(network, cam, points, frame_start, frame_end, dolly)
    return cam.name


def _orbit(scene, network, coll, cam, points, style, view, aspect, start, end, turns, swing):
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2
    if style == "flat":
        angles = np.linspace(-swing, swing, 9)
        frames = [start, (3 * start + end) / 4, (start + end) / 2, (start + 3 * end) / 4, end]
        values = [0.0, swing, 0.0, -swing, 0.0]
        interpolation = "BEZIER"
    else:
        angles = np.linspace(0, 2 * math.pi, 12, endpoint=False)
        frames = [start, end + 1]  # frame end + 1 = start again: a seamless loop
        values = [0.0, 2 * math.pi * turns]
        interpolation = "LINEAR"
    everywhere = _turned(points, centre, angles)
    studio.frame(cam, everywhere, view, style, aspect)
    cam.data.shift_x = cam.data.shift_y = 0.0
    fit(cam, everywhere, scene)
    pivot = util.tag(bpy.data.objects.new(f"{network} camera pivot", None), network, "camera_pivot")
    pivot.empty_display_type = "SPHERE"
    pivot.empty_display_size = 0.2
    pivot.location = (float(centre[0]), float(centre[1]), float(cam.location.z))
    coll.objects.link(pivot)
    # parent x inverse = identity at angle 0: the camera keeps its framed transform as it is
    # (no matrix_world round trip: the new pivot's matrix_world is not evaluated yet)
    # The legend and the probability bars ride along too: an overlay that always faces the
    # camera instead of text seen mirrored from behind half-way round.
    for obj in [cam, *_hud_objects(network)]:
        obj.parent = pivot
        obj.matrix_parent_inverse = Matrix.Translation(pivot.location).inverted()

    def set_angle(v):
        pivot.rotation_euler[2] = v

    keys.set_keys(
        pivot,
        "rotation_euler",
        frames,
        values,
        index=2,
        interpolation=interpolation,
        set_value=set_angle,
    )
    _tag_action(pivot, network)


def _dolly(network, cam, points, start, end, factor):
    if cam.data.type == "ORTHO":
        scale = cam.data.ortho_scale

        def set_scale(v):
            cam.data.ortho_scale = v

        keys.set_keys(
            cam.data,
            "ortho_scale",
            [start, end],
            [scale, scale * factor],
            interpolation="BEZIER",
            set_value=set_scale,
        )
        _tag_action(cam.data, network)
        return
    lo, hi = points.min(axis=0), points.max(axis=0)
    target = (lo + hi) / 2
    forward = -np.array(cam.matrix_world.to_3x3().col[2])  # cameras look along -Z
    here = np.array(cam.location)
    # stop `factor` of the way along the view axis, measured at the network's centre
    depth = float(np.dot(target - here, forward))
    there = here + forward * depth * (1.0 - factor)
    for i in range(3):

        def set_coord(v, i=i):
            cam.location[i] = v

        keys.set_keys(
            cam,
            "location",
            [start, end],
            [here[i], there[i]],
            index=i,
            interpolation="BEZIER",
            set_value=set_coord,
        )
    _tag_action(cam, network)


def _tag_action(block, network: str) -> None:
    anim = block.animation_data
    if anim is not None and anim.action is not None and anim.action.get(util.TAG) is None:
        util.tag(anim.action, network, "camera_action")

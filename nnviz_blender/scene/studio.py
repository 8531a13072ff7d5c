"""The studio around a network: camera (front / iso / top), world background, a key light,
render settings and the layered render.

The scene is emission-only, so the world colour and the light only matter for materials a user
swaps in; renders need no bounces. The camera is framed from the node positions, so every preset
fits any network without tweaking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..core import graph as core_graph
from ..core import layout as core_layout
from . import bundles, compat, edges, materials, solid, trees, util
from .handle import Network

CAMERAS = ("front", "iso", "top")
ADAPTIVE_THRESHOLD = 0.05
EDGE_WIDTH_PX = 0.7  # rendered strand width in pixels
LENS = 70.0  # mm: long enough that the front layers do not dwarf the back ones
ENGINES = ("cycles", "eevee", "workbench")


def engine_id(engine: str) -> str:
    if engine == "cycles":
        return "CYCLES"
    if engine == "eevee":
        return compat.eevee_engine_id()
    if engine == "workbench":
        return "BLENDER_WORKBENCH"
    raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")


# --- camera -----------------------------------------------------------------------------------


def _view(preset: str, style: str) -> tuple[Vector, Vector, bool]:
    """(direction from target to camera, camera up hint, orthographic) for a preset."""
    if preset not in CAMERAS:
        raise ValueError(f"unknown camera {preset!r} (choose from {', '.join(CAMERAS)})")
    if style == "flat":
        if preset == "iso":
            az, el = math.radians(-28), math.radians(12)
            d = Vector((math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)))
            return d, Vector((0, 0, 1)), False
        return Vector((0, -1, 0)), Vector((0, 0, 1)), True  # front / top: head-on, orthographic
    if preset == "front":  # the original's view: from the front and above
        el = math.radians(27)
        return Vector((0, -math.cos(el), math.sin(el))), Vector((0, 0, 1)), False
    if preset == "iso":
        az, el = math.radians(-35), math.radians(26)
        d = Vector((math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)))
        return d, Vector((0, 0, 1)), False
    return Vector((0, 0, 1)), Vector((0, 1, 0)), True  # top: straight down on the planes


def _basis(direction: Vector, up_hint: Vector) -> tuple[Vector, Vector, Vector]:
    back = direction.normalized()  # camera looks along -back
    right = up_hint.cross(back).normalized()
    up = back.cross(right).normalized()
    return right, up, back


@dataclass(frozen=True)
class Pose:
    """Where a view of some points stands: the point it looks at, its rotation (x right, y up,
    z back: it looks along -z), its distance from the target and, for orthographic views, the
    width it shows."""

    target: Vector
    rotation: Matrix
    distance: float
    ortho_scale: float | None


def view_rotation(preset: str, style: str) -> Matrix:
    """The rotation of `preset`'s view (columns: right, up, back; it looks along -back)."""
    d, up_hint, _ortho = _view(preset, style)
    right, up, back = _basis(d, up_hint)
    return Matrix((right[:], up[:], back[:])).transposed()


def pose(
    points: np.ndarray,
    preset: str,
    style: str,
    aspect: float,
    lens: float = LENS,
    sensor: float = 36.0,
    margin: float = 1.06,
) -> Pose:
    """The view of `preset` that shows every point (with a small margin) in a frame of `aspect`
    (width / height), through a lens of `lens` mm on a `sensor` mm wide sensor."""
    rotation = view_rotation(preset, style)
    right, up, back = rotation.col[0], rotation.col[1], rotation.col[2]
    ortho = _view(preset, style)[2]
    lo, hi = points.min(axis=0), points.max(axis=0)
    target = Vector(((lo + hi) / 2).tolist())
    rel = points - np.array(target)
    x = rel @ np.array(right)
    y = rel @ np.array(up)
    z = rel @ np.array(back)
    # Centre the projected box (for perspective, the centre of the x/y extents is close enough).
    shift = right * float((x.max() + x.min()) / 2) + up * float((y.max() + y.min()) / 2)
    target += shift
    x -= (x.max() + x.min()) / 2
    y -= (y.max() + y.min()) / 2
    if ortho:
        width, height = float(np.ptp(x)), float(np.ptp(y))
        scale = (
            max(width, height * aspect) * margin
            if aspect >= 1
            else max(width / aspect, height) * margin
        )
        return Pose(target, rotation, float(z.max()) + 10.0, scale)
    half = math.atan(sensor / (2 * lens))  # along the longer image side
    tan_x = math.tan(half) if aspect >= 1 else math.tan(half) * aspect
    tan_y = tan_x / aspect
    need_x = np.abs(x) * margin / tan_x + z
    need_y = np.abs(y) * margin / tan_y + z
    return Pose(target, rotation, float(max(need_x.max(), need_y.max())), None)


def eye_in_window(
    points: np.ndarray, rotation, window: tuple[float, float, float, float], margin: float = 1.06
) -> np.ndarray:
    """Where a perspective eye turned by `rotation` (columns: right, up, back; it looks along
    -back) stands nearest the points while every one of them falls inside `window`: (left,
    right, bottom, top) as tangents of the view angle off the view axis, so an off-centre part of
    a view can be filled. Exact: a point p (in the rotation's basis) is inside when
    left <= (p.x - e.x) / (e.z - p.z) <= right, which is linear in the eye e; returns the eye in
    the rotation's basis (x, y, z)."""
    p = np.asarray(points, np.float64) @ np.asarray(rotation, np.float64)
    left, right, bottom, top = (t / margin for t in window)
    eye = np.empty(3)
    need = [float(p[:, 2].max()) + 1e-3]  # in front of the eye
    ranges = []
    for axis, lo, hi in ((0, left, right), (1, bottom, top)):
        a_hi = float((p[:, axis] + hi * p[:, 2]).max())  # e.axis >= a_hi - hi * e.z
        a_lo = float((p[:, axis] + lo * p[:, 2]).min())  # e.axis <= a_lo - lo * e.z
        need.append((a_hi - a_lo) / (hi - lo))
        ranges.append((a_hi, hi, a_lo, lo))
    eye[2] = max(need)
    for axis, (a_hi, hi, a_lo, lo) in enumerate(ranges):
        eye[axis] = ((a_hi - hi * eye[2]) + (a_lo - lo * eye[2])) / 2  # centred in its room
    return eye


def frame(
    camera_obj, points: np.ndarray, preset: str, style: str, aspect: float, margin: float = 1.06
) -> None:
    """Place and aim `camera_obj` so every point is inside the frame (with a small margin)."""
    cam = camera_obj.data
    cam.sensor_fit = "AUTO"
    view = pose(points, preset, style, aspect, LENS, cam.sensor_width, margin)
    if view.ortho_scale is not None:
        cam.type = "ORTHO"
        cam.ortho_scale = view.ortho_scale
    else:
        cam.type = "PERSP"
        cam.lens = LENS
    back = view.rotation.col[2].to_3d()
    camera_obj.location = view.target + back * view.distance
    camera_obj.rotation_euler = view.rotation.to_euler()
    cam.clip_start = max(0.01, view.distance * 0.01)
    cam.clip_end = view.distance * 4 + 100.0


def camera(network: str, collection, points, preset: str, style: str, aspect: float):
    """The network's camera (created once), framed on `points`; returns the object's name."""
    obj = util.find("objects", network, "camera")
    if obj is None:
        data = util.tag(bpy.data.cameras.new(f"{network} camera"), network, "camera")
        obj = util.tag(bpy.data.objects.new(f"{network} camera", data), network, "camera")
        collection.objects.link(obj)
    frame(obj, points, preset, style, aspect)
    return obj.name


def pixel_size(camera_obj, points: np.ndarray, width_px: int) -> float:
    """World size of one pixel at the middle of `points`, as seen by the camera."""
    cam = camera_obj.data
    if cam.type == "ORTHO":
        return cam.ortho_scale / width_px
    centre = Vector(((points.min(axis=0) + points.max(axis=0)) / 2).tolist())
    to_centre = centre - camera_obj.matrix_world.translation
    forward = camera_obj.matrix_world.to_3x3() @ Vector((0.0, 0.0, -1.0))
    depth = max(to_centre.dot(forward), 1e-6)
    return depth * cam.sensor_width / cam.lens / width_px


# --- world and light --------------------------------------------------------------------------


def world(network: str, theme: materials.Theme):
    """A radial gradient seen by the camera (screen space, like the original's CSS gradient)."""
    old = util.find("worlds", network, "world")
    if old is not None:
        bpy.data.worlds.remove(old)
    w = util.tag(bpy.data.worlds.new(f"{network} world"), network, "world")
    nt = compat.shader_tree(w)
    nt.nodes.clear()
    n, link = trees.node, trees.link
    coord = n(nt, "ShaderNodeTexCoord", -900, 0)
    centred = n(nt, "ShaderNodeVectorMath", -700, 0, operation="SUBTRACT")
    link(nt, coord.outputs["Window"], centred.inputs[0])
    centred.inputs[1].default_value = (0.5, 0.5, 0.0)
    flat = n(nt, "ShaderNodeVectorMath", -550, 0, operation="MULTIPLY")
    link(nt, centred.outputs[0], flat.inputs[0])
    flat.inputs[1].default_value = (1.0, 1.0, 0.0)
    dist = n(nt, "ShaderNodeVectorMath", -400, 0, operation="LENGTH")
    link(nt, flat.outputs[0], dist.inputs[0])
    ramp = n(nt, "ShaderNodeValToRGB", -250, 0)
    ramp.name = ramp.label = "Background"
    centre, edge = theme.background
    materials.fill_ramp(ramp, [(0.0, centre), (0.7071, edge)])
    bg = n(nt, "ShaderNodeBackground", 50, 0)
    link(nt, dist.outputs["Value"], compat.factor(ramp.inputs))
    # Camera rays see the gradient; everything else sees a flat fill of the edge colour (cheap,
    # and no screen-space colour leaks into reflections of swapped-in materials).
    path = n(nt, "ShaderNodeLightPath", -250, 250)
    fill = n(nt, "ShaderNodeMix", -50, 150, data_type="RGBA")
    link(nt, path.outputs["Is Camera Ray"], compat.factor(fill.inputs))
    fill.inputs[6].default_value = materials.linear(edge)
    link(nt, ramp.outputs["Color"], fill.inputs[7])
    link(nt, fill.outputs[2], bg.inputs["Color"])
    out = n(nt, "ShaderNodeOutputWorld", 250, 0)
    link(nt, bg.outputs["Background"], out.inputs["Surface"])
    w.color = materials.linear(edge)[:3]  # what Workbench shows
    cycles = getattr(w, "cycles", None)
    if cycles is not None and hasattr(cycles, "sampling_method"):
        cycles.sampling_method = "NONE"  # lights nothing: no importance map (1.5 s per render)
    return w


def key_light(network: str, collection, target: Vector, size: float):
    """A soft sun from the upper left: unused by the emission materials, there for users' own."""
    if util.find("objects", network, "light") is not None:
        return
    data = util.tag(bpy.data.lights.new(f"{network} key light", "SUN"), network, "light")
    data.energy = 3.0
    data.angle = math.radians(15)
    obj = util.tag(bpy.data.objects.new(f"{network} key light", data), network, "light")
    obj.location = target + Vector((-0.4, -0.6, 0.7)) * size
    obj.rotation_euler = Vector((0.4, 0.6, -0.7)).to_track_quat("-Z", "Y").to_euler()
    collection.objects.link(obj)


# --- render settings --------------------------------------------------------------------------


def colour_management(scene) -> None:
    """Colours exactly as the colormaps say (renders and the live viewport alike)."""
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0


def configure_render(
    scene,
    engine: str = "cycles",
    samples: int = 64,
    resolution: tuple[int, int] = (1920, 1080),
    transparent: bool = False,
    denoise: bool = False,
) -> None:
    """Render settings for an emission-only scene: exact colours, no bounces, few samples."""
    scene.render.engine = engine_id(engine)
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = transparent
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA" if transparent else "RGB"
    colour_management(scene)
    if engine == "cycles":
        c = scene.cycles
        c.device = "CPU"
        c.samples = samples
        # Emission only: the only noise is anti-aliasing. Adaptive sampling with a low floor lets
        # flat colour and empty background stop early (Cycles' automatic floor for 64 samples
        # kept every pixel sampling: 3.4 s instead of 1.0 s for an empty 960x540 layer).
        c.use_adaptive_sampling = True
        c.adaptive_threshold = ADAPTIVE_THRESHOLD
        c.adaptive_min_samples = min(samples, max(4, samples // 8))
        c.max_bounces = 0
        c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = 0
        c.volume_bounces = 0
        c.transparent_max_bounces = 24
        c.caustics_reflective = c.caustics_refractive = False
        c.use_denoising = denoise  # nothing to denoise but aliasing: off by default
        c.denoiser = "OPENIMAGEDENOISE"
        c.pixel_filter_type = "BLACKMAN_HARRIS"
        scene.cycles_curves.shape = "RIBBONS"
        scene.render.use_persistent_data = False
    elif engine == "workbench":
        shading = scene.display.shading
        shading.light = "FLAT"
        shading.color_type = "MATERIAL"
        shading.show_object_outline = False
        scene.display.render_aa = "8" if samples >= 8 else "5" if samples >= 5 else "FXAA"
    elif engine == "eevee":
        scene.render.hair_type = "STRIP"  # strands with their real (sub-pixel) radius
        scene.render.hair_subdiv = 0
        if hasattr(scene, "eevee"):
            scene.eevee.taa_render_samples = samples


# --- layered render: edges in their own view layer, blended by the compositor -----------------

EDGE_LAYER = "NNViz Edges"


def layered_render(network: str, scene, transparent: bool = False) -> None:
    """Render the edges in a view layer of their own and blend them in the compositor.

    Transparent strands cost a ray bounce for every strand a ray crosses (design.md: 274 s at
    640x360); here the edges layer shades opaque emission (one hit per ray), the nodes are a
    holdout in it (edges behind nodes stay hidden), and the compositor makes

        image = base x (1 - edge_alpha) + edges

    i.e. light added on dark themes (edge_alpha = 0) and ink laid over on light themes.
    """
    edges_coll = util.find("collections", network, "edges_collection")
    nodes_coll = util.find("collections", network, "nodes_collection")
    edge_mat = util.find("materials", network, "edges_material")
    if edges_coll is None or edge_mat is None:
        return  # no edges: a single layer is all there is
    base = scene.view_layers[0]
    layer = scene.view_layers.get(EDGE_LAYER) or scene.view_layers.new(EDGE_LAYER)
    layer[util.TAG] = network
    util.layer_collection(base.layer_collection, edges_coll).exclude = True
    for child in layer.layer_collection.children:
        if child.collection.get(util.TAG) != network:
            child.exclude = True  # the user's other collections stay out of the edges layer
    util.layer_collection(layer.layer_collection, nodes_coll).holdout = True
    layer.use_sky = False
    if materials.EDGE_ALPHA_AOV not in layer.aovs:
        aov = layer.aovs.add()
        aov.name = materials.EDGE_ALPHA_AOV
        aov.type = "VALUE"
    if hasattr(layer, "cycles"):
        layer.cycles.use_denoising = False  # hairline strands: the denoiser smears them away
    materials.set_edge_look(edge_mat, layered=True)
    scene.render.use_single_layer = False
    _compositor(network, scene, base.name, layer.name, transparent)


def remove_edge_layer(network: str, scene) -> None:
    """Remove the network's edges view layer and the compositing that blends it in."""
    layer = scene.view_layers.get(EDGE_LAYER)
    if layer is not None and layer.get(util.TAG) == network and len(scene.view_layers) > 1:
        scene.view_layers.remove(layer)
        scene.render.use_single_layer = False
    _drop_compositor(network, scene)


def _drop_compositor(network: str, scene) -> None:
    tree = compat.compositor(scene)
    if tree is not None and tree.get(util.TAG) == network:
        for key in (util.TAG, util.ROLE):  # 4.x: the scene's own tree stays; forget we used it
            tree.pop(key, None)
        compat.drop_compositor(scene)


def single_layer_render(network: str, scene) -> None:
    """Undo layered_render: one view layer, edges blended in their material."""
    remove_edge_layer(network, scene)
    edges_coll = util.find("collections", network, "edges_collection")
    if edges_coll is not None:
        lc = util.layer_collection(scene.view_layers[0].layer_collection, edges_coll)
        if lc is not None:
            lc.exclude = False
    edge_mat = util.find("materials", network, "edges_material")
    if edge_mat is not None:
        materials.set_edge_look(edge_mat, layered=False)


def _compositor(network: str, scene, base_layer: str, edge_layer: str, transparent: bool):
    """image = base x (1 - edge_alpha) + edges; with `transparent`, alpha likewise."""
    _drop_compositor(network, scene)
    tree = compat.new_compositor(scene, f"{network} compositing")
    util.tag(tree, network, "compositor")
    n, link = trees.node, trees.link
    base = _render_layers(tree, scene, base_layer, -800, 200)
    edges = _render_layers(tree, scene, edge_layer, -800, -200)
    alpha = edges.outputs[materials.EDGE_ALPHA_AOV]
    keep = compat.compositor_math(tree, "SUBTRACT", -500, 0)
    keep.inputs[0].default_value = 1.0
    link(tree, alpha, keep.inputs[1])
    base_in, keep_in, dimmed = compat.compositor_mix(tree, "MULTIPLY", -300, 150)
    link(tree, base.outputs["Image"], base_in)
    link(tree, keep.outputs[0], keep_in)
    dimmed_in, edges_in, result = compat.compositor_mix(tree, "ADD", -100, 100)
    link(tree, dimmed, dimmed_in)
    link(tree, edges.outputs["Image"], edges_in)
    if transparent:
        # alpha = base_alpha x (1 - a) + a, with a = max(edge_alpha, brightest edge channel)
        split = n(tree, "CompositorNodeSeparateColor", -500, -300)
        link(tree, edges.outputs["Image"], split.inputs[0])
        m1 = compat.compositor_math(tree, "MAXIMUM", -300, -300)
        link(tree, split.outputs["Red"], m1.inputs[0])
        link(tree, split.outputs["Green"], m1.inputs[1])
        m2 = compat.compositor_math(tree, "MAXIMUM", -150, -300)
        link(tree, m1.outputs[0], m2.inputs[0])
        link(tree, split.outputs["Blue"], m2.inputs[1])
        m3 = compat.compositor_math(tree, "MAXIMUM", 0, -300, use_clamp=True)
        link(tree, m2.outputs[0], m3.inputs[0])
        link(tree, alpha, m3.inputs[1])
        inv = compat.compositor_math(tree, "SUBTRACT", 150, -300)
        inv.inputs[0].default_value = 1.0
        link(tree, m3.outputs[0], inv.inputs[1])
        mixed = compat.compositor_math(tree, "MULTIPLY_ADD", 300, -300)
        link(tree, base.outputs["Alpha"], mixed.inputs[0])
        link(tree, inv.outputs[0], mixed.inputs[1])
        link(tree, m3.outputs[0], mixed.inputs[2])
        set_alpha = compat.compositor_replace_alpha(tree, 450, 100)
        link(tree, result, set_alpha.inputs["Image"])
        link(tree, mixed.outputs[0], set_alpha.inputs["Alpha"])
        result = set_alpha.outputs[0]
    link(tree, result, compat.compositor_output(tree, 650, 100))


def _render_layers(tree, scene, layer: str, x: float, y: float):
    rl = trees.node(tree, "CompositorNodeRLayers", x, y)
    rl.scene = scene
    rl.layer = layer
    return rl


# --- everything at once -----------------------------------------------------------------------


def scene_points(network: str) -> np.ndarray:
    """Node positions, the boxes arcs (skip connections) pass through and label anchors: what
    the camera has to fit."""
    net = Network(network)
    positions = net.positions()
    pts = [positions]
    if net.stages:
        graph = core_graph.graph_from_table(net.stages)
        pts.append(core_layout.arc_bounds(graph, positions, net.layout))
    for obj in bpy.data.objects:
        if obj.get(util.TAG) == network and obj.type == "FONT":
            pts.append(np.array([obj.location[:]], np.float32))
    return np.concatenate(pts)


def setup(
    network: str,
    scene=None,
    *,
    camera_preset: str = "front",
    layout: str | None = None,
    theme: str | None = None,
    engine: str = "cycles",
    samples: int = 64,
    resolution: tuple[int, int] = (1920, 1080),
    transparent: bool = False,
    layered: bool = True,
) -> str:
    """Camera, world, light and render settings for a network; returns the camera's name."""
    scene = scene or bpy.context.scene
    net = Network(network)
    coll = net.collection
    layout = layout or net.layout
    th = materials.get_theme(theme or net.theme)
    points = scene_points(network)
    aspect = resolution[0] / resolution[1]
    cam = camera(network, coll, points, camera_preset, layout, aspect)
    scene.camera = bpy.data.objects[cam]
    scene.world = world(network, th)
    lo, hi = points.min(axis=0), points.max(axis=0)
    key_light(network, coll, Vector(((lo + hi) / 2).tolist()), float(np.linalg.norm(hi - lo)))
    configure_render(scene, engine, samples, resolution, transparent)
    solid.set_solid_colors(network, engine == "workbench")
    edges_obj = util.find("objects", network, "edges")
    if edges_obj is not None and len(edges_obj.data.curves):
        # Strands a fixed fraction of a pixel wide at any resolution: thick enough to converge in
        # a few samples, thin enough to stay lines; the material's strength is per pixel width.
        bpy.context.view_layer.update()
        px = pixel_size(scene.camera, points, resolution[0])
        edges.set_radius(edges_obj.data, EDGE_WIDTH_PX * px / 2)
        bundles.set_radius(network, EDGE_WIDTH_PX * px / 2)
    if layered and engine == "cycles":
        layered_render(network, scene, transparent)
    else:
        single_layer_render(network, scene)
    return cam

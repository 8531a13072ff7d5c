"""Live painting: a canvas image beside the network, polled by a timer tick.

pixels (foreach_get into a preallocated buffer) -> changed? -> preprocess -> forward ->
apply_activations. A session is plain Python state keyed by the network's name; the tick looks the
canvas image and the network up by tag on every call and holds no bpy reference in between, so
undo, file loads and deleted objects cannot leave it pointing at freed memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
import numpy as np

from .core.errors import NNVizError
from .core.forward import forward, probabilities, top_k
from .core.modelfile import Model, ModelError, load_model
from .core.preprocess import InputError, fit_image, is_blank, is_image_input, prepare, to_rgb
from .scene import attributes, compat, util
from .scene import network as scene_network
from .scene.handle import Network

CANVAS_SIZE = 256
TICK_SECONDS = 0.05
BRUSH_RADIUS = 12  # pixels on screen; a hint, the user keeps control of the brush


class LiveError(NNVizError, RuntimeError):
    """Live mode cannot start or has to stop; the message is for the user."""


@dataclass
class Session:
    network: str
    model: Model
    buffer: np.ndarray  # pixels read this tick
    last: np.ndarray  # pixels of the last update
    updates: int = 0


_sessions: dict[str, Session] = {}
_inputs: dict[str, np.ndarray] = {}  # the network input last shown, per network
_models: dict[str, tuple[float, Model]] = {}  # model file -> (mtime, model)
_messages: list[str] = []  # why sessions stopped, for the UI to report once
_updated: list[str] = []  # networks a tick updated since the UI last asked


# --- the canvas -----------------------------------------------------------------------------


def canvas_image(network: str):
    return util.find("images", network, "canvas_image")


def is_colour_canvas(network: str) -> bool:
    """True when the network's canvas is a colour one (an image model's 8-bit sRGB canvas)."""
    image = canvas_image(network)
    return image is not None and not image.is_float


def _canvas_mesh(name: str, network: str, half: float):
    corners = [[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]]
    return util.quad_mesh(name, network, "canvas_mesh", corners)


def _canvas_material(network: str, image):
    mat = util.tag(bpy.data.materials.new(f"{network} canvas"), network, "canvas_material")
    tree = compat.shader_tree(mat)
    tree.nodes.clear()
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Closest"
    emit = tree.nodes.new("ShaderNodeEmission")
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(tex.outputs["Color"], emit.inputs["Color"])
    tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    tree.nodes.active = tex  # the texture-paint slot
    return mat


def _canvas_place(network: str) -> tuple[tuple[float, float, float], float]:
    """Beside the network's input layer: left of the nodes' bounding box, at its bottom."""
    net = Network(network)
    co = net.positions() if net.find("objects", "nodes") is not None else np.empty((0, 3))
    if len(co) == 0:
        return (0.0, 0.0, 0.0), 1.0
    lo, hi = co.min(axis=0), co.max(axis=0)
    size = float(max(0.6, min(3.0, 0.25 * (hi[2] - lo[2] + hi[0] - lo[0]))))
    return (float(lo[0]) - 0.6 * size - 0.3, float(lo[1]), float(lo[2]) + 0.5 * size), size


def _colour_model(network: str) -> bool:
    """True when the network's model takes images (colour canvas), False for digit models."""
    try:
        return is_image_input(network_model(network))
    except LiveError:
        return False


def ensure_canvas(network: str, size: int = CANVAS_SIZE, colour: bool | None = None) -> str:
    """The network's canvas image (created black, on a plane beside the network); its name.

    Image models get an 8-bit sRGB canvas (`colour`; by default from the network's model): its
    pixels are what an image file of the painting would hold, which is what such models read.
    """
    coll = Network(network).collection
    image = canvas_image(network)
    if image is not None:
        return image.name
    colour = _colour_model(network) if colour is None else colour
    image = bpy.data.images.new(
        f"{network} canvas", size, size, alpha=False, float_buffer=not colour
    )
    util.tag(image, network, "canvas_image")
    image.generated_color = (0.0, 0.0, 0.0, 1.0)
    location, extent = _canvas_place(network)
    mesh = _canvas_mesh(f"{network} canvas", network, extent / 2)
    mesh.materials.append(_canvas_material(network, image))
    obj = util.new_object(coll, network, "canvas", mesh)
    obj.location = location
    return image.name


def clear_canvas(network: str) -> None:
    image = canvas_image(network)
    if image is None:
        raise LiveError(f"network {network!r} has no canvas (start live drawing first)")
    w, h = image.size
    pixels = np.zeros((h * w, 4), np.float32)
    pixels[:, 3] = 1.0
    attributes.write_pixels(image, pixels)
    image.update()


def paint_image(network: str, gray: np.ndarray) -> None:
    """Put an image (top row first) onto the canvas: a gray (H, W) one (ink light on dark)
    stretched to fit, a colour (H, W, 3/4) one centre-cropped and resized to cover it."""
    image = canvas_image(network)
    if image is None:
        raise LiveError(f"network {network!r} has no canvas (start live drawing first)")
    w, h = image.size
    if np.ndim(gray) == 3:
        try:
            rgb = fit_image(to_rgb(gray), h, w)[::-1]  # Blender stores the bottom row first
        except InputError as exc:
            raise LiveError(str(exc)) from None
        pixels = np.ones((h, w, 4), np.float32)
        pixels[..., :3] = rgb
        attributes.write_pixels(image, pixels)
        image.update()
        return
    g = np.asarray(gray, np.float32)
    if g.max() > 1.0:
        g = g / 255.0
    rows = np.minimum((np.arange(h) * g.shape[0]) // h, g.shape[0] - 1)
    cols = np.minimum((np.arange(w) * g.shape[1]) // w, g.shape[1] - 1)
    big = g[rows][:, cols][::-1]  # Blender stores the bottom row first
    pixels = np.ones((h, w, 4), np.float32)
    pixels[..., :3] = big[..., None]
    attributes.write_pixels(image, pixels)
    image.update()


# --- one straight path: canvas pixels -> network input -> activations -> node attributes ------


def network_model(network: str) -> Model:
    """The model a network was built from (loaded once per file version, then cached)."""
    path = bpy.path.abspath(Network(network).model)
    if not path:
        raise LiveError(f"network {network!r} does not record its model file; build it again")
    try:
        stamp = os.path.getmtime(path)
    except OSError:
        raise LiveError(f"the model file of {network!r} is missing: {path}") from None
    cached = _models.get(path)
    if cached is None or cached[0] != stamp:
        try:
            cached = (stamp, load_model(path))
        except ModelError as exc:
            raise LiveError(str(exc)) from None
        _models[path] = cached
    return cached[1]


def show_canvas(network: str, model: Model, pixels: np.ndarray, size: tuple[int, int]) -> list:
    """Run `model` on canvas pixels (Blender order, RGBA) and show the result on `network`.

    A canvas without ink shows the idle state instead (see `show_idle`) and returns [].
    """
    w, h = size
    try:
        x = prepare(model, pixels.reshape(h, w, 4)[::-1])
        if is_blank(x):
            show_idle(network)
            return []
        acts = forward(model, x)
    except (InputError, ModelError) as exc:
        raise LiveError(str(exc)) from None
    scene_network.apply_activations(network, model, acts)
    Network(network).prediction = top_k(probabilities(model, acts[-1]), model.labels)
    _inputs[network] = x
    return acts


def show_idle(network: str) -> None:
    """Nothing is drawn: every node shows zero (dark, no output label lit) and there is no
    prediction. The network's answer to an empty input (its biases alone, e.g. "1" at 100 % for
    the CNN) would read as a confident guess about a drawing that does not exist."""
    net = Network(network)
    scene_network.apply_values(network, np.zeros(len(net.positions()), np.float32))
    net.prediction = []
    _inputs.pop(network, None)


def current_input(network: str) -> np.ndarray | None:
    """The network input last shown on `network` (this session), if any."""
    return _inputs.get(network)


def prediction(network: str) -> list[tuple[str, float]]:
    """Top-3 (label, probability) of the last input shown (kept in the file)."""
    net = Network(network)
    return [(str(a), float(b)) for a, b in net.prediction] if net.exists else []


def refresh(network: str) -> list:
    """One update from the canvas, live or not (after Load Sample / Clear)."""
    image = canvas_image(network)
    if image is None:
        raise LiveError(f"network {network!r} has no canvas")
    pixels = attributes.read_pixels(image)
    s = _sessions.get(network)
    if s is not None and s.buffer.size == pixels.size:
        s.last[:] = pixels
    return show_canvas(network, network_model(network), pixels, tuple(image.size))


# --- sessions ---------------------------------------------------------------------------------


def start(network: str) -> Session:
    """Start (or restart) live drawing on `network`: canvas, model, first update."""
    model = network_model(network)
    image_name = ensure_canvas(network, colour=is_image_input(model))
    image = bpy.data.images[image_name]
    n = image.size[0] * image.size[1] * 4
    session = Session(network, model, np.empty(n, np.float32), np.full(n, -1.0, np.float32))
    _sessions[network] = session
    scene_network.set_painting(network, True)
    update(network)
    return session


def stop(network: str, reason: str | None = None) -> bool:
    session = _sessions.pop(network, None)
    scene_network.set_painting(network, False)
    if session is not None and reason:
        _messages.append(f"Live drawing on {network!r} stopped: {reason}")
    return session is not None


def stop_all(reason: str | None = None) -> None:
    for name in list(_sessions):
        stop(name, reason)


def forget_all() -> None:
    """After a file load: nothing of the previous file's sessions may survive."""
    _sessions.clear()
    _inputs.clear()
    _updated.clear()


def is_live(network: str) -> bool:
    return network in _sessions


def take_updated() -> list[str]:
    """The networks ticks have updated (a stroke changed their canvas) since the last call."""
    out = _updated[:]
    _updated.clear()
    return out


def take_messages() -> list[str]:
    out = _messages[:]
    _messages.clear()
    return out


def update(network: str) -> bool:
    """Poll one session's canvas; on a change run the network and show it. True if updated."""
    s = _sessions[network]
    image = canvas_image(network)
    if image is None:
        raise LiveError("the canvas was deleted")
    if Network(network).find("objects", "nodes") is None:
        raise LiveError("the network was deleted")
    if image.size[0] * image.size[1] * 4 != s.buffer.size:
        raise LiveError("the canvas changed size; start live drawing again")
    attributes.read_pixels(image, s.buffer)
    if np.array_equal(s.buffer, s.last):
        return False
    s.last[:] = s.buffer
    show_canvas(network, s.model, s.buffer, tuple(image.size))
    s.updates += 1
    return True


def tick() -> float | None:
    """The timer body: update every session; stop (with a message) those that cannot go on."""
    for name in list(_sessions):
        try:
            if update(name) and name not in _updated:
                _updated.append(name)
        except (NNVizError, ReferenceError) as exc:
            stop(name, str(exc))
    return TICK_SECONDS if _sessions else None

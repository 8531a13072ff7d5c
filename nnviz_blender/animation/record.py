"""Record live drawing: capture the canvas as network inputs, then bake it stroke by stroke.

A recording keeps what the network *reads* (the preprocessed input, 28x28 or 32x32 floats, a few
KB per capture), not canvas pixels, with the time of each capture. `capture(network)` is the
plain function a timer calls while recording (and tests call directly): it reads the canvas
(foreach_get into a kept buffer), skips it if the input did not change, else appends it.
Stopping stores the recording on the network's collection, so it is saved with the file and can
be baked later; `bake_recording` turns it into key states that follow the strokes in real time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import bpy
import numpy as np

from .. import live
from ..core.errors import NNVizError
from ..core.graph import build_graph
from ..core.preprocess import prepare
from ..scene import attributes
from ..scene import network as scene_network
from ..scene.handle import Network
from . import bake as anim_bake
from . import schedule as sched

DEFAULT_RATE = 12.0  # captures per second
MAX_CAPTURES = 20_000


class RecordError(live.LiveError):
    """Recording cannot start / go on / be baked; the message is for the user."""


@dataclass
class Recording:
    network: str
    rate: float
    inputs: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    t0: float = 0.0
    buffer: np.ndarray | None = None  # canvas pixels, reused every capture
    skipped: int = 0

    @property
    def count(self) -> int:
        return len(self.inputs)

    @property
    def duration(self) -> float:
        return self.times[-1] - self.times[0] if self.times else 0.0


_recordings: dict[str, Recording] = {}
_messages: list[str] = []  # why recordings stopped, for the UI to report once


def take_messages() -> list[str]:
    out = _messages[:]
    _messages.clear()
    return out


def is_recording(network: str) -> bool:
    return network in _recordings


def recording(network: str) -> Recording | None:
    """The recording in progress, else the one stored in the file, else None."""
    rec = _recordings.get(network)
    return rec if rec is not None else load(network)


def start(network: str, rate: float = DEFAULT_RATE, now: float | None = None) -> Recording:
    """Start recording the canvas of `network` (made if missing); the first capture is taken."""
    if not rate > 0:
        raise RecordError(f"the capture rate must be positive, not {rate}")
    live.ensure_canvas(network)
    model = live.network_model(network)  # fails early if the model file is gone
    anim_bake.set_enabled(network, False)  # a baked animation would hide the live drawing
    del model
    rec = Recording(network, float(rate), t0=time.monotonic() if now is None else now)
    _recordings[network] = rec
    capture(network, now)
    return rec


def capture(network: str, now: float | None = None) -> bool:
    """Capture the canvas once; True if it changed since the last capture (and was kept)."""
    rec = _recordings.get(network)
    if rec is None:
        raise RecordError(f"network {network!r} is not recording")
    image = live.canvas_image(network)
    if image is None:
        raise RecordError("the canvas was deleted")
    w, h = image.size
    if rec.buffer is None or rec.buffer.size != w * h * 4:
        rec.buffer = np.empty(w * h * 4, np.float32)
    attributes.read_pixels(image, rec.buffer)
    model = live.network_model(network)
    x = prepare(model, rec.buffer.reshape(h, w, 4)[::-1])
    if rec.inputs and np.array_equal(rec.inputs[-1], x):
        rec.skipped += 1
        return False
    if len(rec.inputs) >= MAX_CAPTURES:
        raise RecordError(f"recording is full ({MAX_CAPTURES} captures)")
    t = (time.monotonic() if now is None else now) - rec.t0
    rec.inputs.append(x.astype(np.float32))
    rec.times.append(float(t))
    return True


def stop(network: str, now: float | None = None) -> Recording | None:
    """Stop recording; the recording is stored on the network (saved with the file)."""
    rec = _recordings.pop(network, None)
    if rec is None:
        return None
    if rec.inputs:
        # the last drawing stays until the moment Stop was pressed
        end = (time.monotonic() if now is None else now) - rec.t0
        rec.times.append(max(end, rec.times[-1]))
        rec.inputs.append(rec.inputs[-1])
        store(rec)
    return rec


def stop_all() -> None:
    for name in list(_recordings):
        stop(name)


def forget_all() -> None:
    """After a file load: recordings in progress belong to the previous file."""
    _recordings.clear()


def tick() -> float | None:
    """Timer body: capture every recording canvas; stop recordings that cannot go on."""
    rate = 0.0
    for name in list(_recordings):
        try:
            capture(name)
            rate = max(rate, _recordings[name].rate)
        except (NNVizError, ReferenceError, KeyError) as exc:
            _recordings.pop(name, None)
            _messages.append(f"Recording on {name!r} stopped: {exc}")
    return 1.0 / rate if rate > 0 else None


# --- stored in the file -----------------------------------------------------------------------


def store(rec: Recording) -> None:
    net = Network(rec.network)
    if not net.exists:
        return
    stack = np.stack(rec.inputs).astype(np.float32)
    net.recording = {
        "rate": rec.rate,
        "shape": list(stack.shape),
        "times": [float(t) for t in rec.times],
        "inputs": stack.reshape(-1),
    }


def load(network: str) -> Recording | None:
    net = Network(network)
    raw = net.recording if net.exists else None
    if raw is None:
        return None
    shape = tuple(int(v) for v in raw["shape"])
    data = np.asarray(raw["inputs"], np.float32).reshape(shape)
    times = [float(t) for t in raw["times"]]
    return Recording(network, float(raw["rate"]), list(data), times)


def clear(network: str) -> None:
    _recordings.pop(network, None)
    net = Network(network)
    if net.exists:
        net.recording = None


# --- bake -------------------------------------------------------------------------------------


def trimmed(rec: Recording, max_pause: float = sched.MAX_PAUSE) -> tuple[np.ndarray, list]:
    """(times, inputs) of a recording as it is baked: the hold until Stop is dropped (the bake's
    end hold replaces it), the idle time before the first stroke is cut to `sched.LEAD` and
    every pause to `max_pause` (`sched.compact`)."""
    inputs = list(rec.inputs)
    times = list(rec.times)
    if len(inputs) > 1 and np.array_equal(inputs[-1], inputs[-2]):
        inputs, times = inputs[:-1], times[:-1]
    return sched.compact(times, max_pause=max_pause), inputs


def bake_recording(
    network: str,
    *,
    fps: float | None = None,
    speed: float = 1.0,
    end_hold: float = 1.5,
    max_pause: float = sched.MAX_PAUSE,
    wave: float = 0.0,
    scene=None,
) -> anim_bake.BakeInfo:
    """Bake the network's recording: the drawing appears at the speed it was drawn, without
    the idle time before the first stroke and after the last, pauses cut to `max_pause` s."""
    rec = recording(network)
    if rec is None or not rec.inputs:
        raise RecordError(f"network {network!r} has no recording (Record, draw, then Stop)")
    if is_recording(network):
        raise RecordError("stop recording before baking it")
    scene = scene or bpy.context.scene
    fps = fps or scene.render.fps / scene.render.fps_base
    times, inputs = trimmed(rec, max_pause)
    schedule, kept = sched.timed(times, fps=fps, end_hold=end_hold, speed=speed)
    model = live.network_model(network)
    graph = build_graph(model)
    xs = [inputs[i] for i in kept]
    values, glow = scene_network.key_values_and_glow(network, model, graph, xs)
    info = anim_bake.bake(
        network, graph, values, schedule, wave=wave, scene=scene, bundle_glow=glow
    )
    anim_bake.set_enabled(network, True)
    return info

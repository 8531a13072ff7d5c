"""A list of inputs as the key states of an animation, and the schedule that shows them.

What `animate` (the command) and Bake Sequence (the add-on) both read: comma-separated inputs
("sample:0,sample:1,x.npy"), each held on screen, optionally drawn stroke by stroke first.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import NNVizError
from ..core.preprocess import prepare
from ..inputs import load_inputs
from . import schedule, strokes


class SequenceError(NNVizError):
    """A bad list of inputs or output; the message is one line for the user."""


def parse_inputs(spec: str) -> list:
    """'sample:0,sample:1,x.npy' -> [(name, canvas image)] (a stack gives several)."""
    parts = [p.strip() for p in str(spec).split(",")]
    if not spec.strip() or any(not p for p in parts):
        raise SequenceError(
            f"bad --inputs {spec!r}: give comma-separated inputs, e.g. sample:3,x.npy"
        )
    out: list = []
    for part in parts:
        out += load_inputs(part)
    return out


def key_states(model, images, draw_seconds: float, fps: int, hold: float, transition: float):
    """Network inputs of every key state (float32 (K, ...)) and the schedule that shows them."""
    xs, holds, gaps = [], [], []
    for i, (_name, image) in enumerate(images):
        if draw_seconds > 0:
            n = max(2, int(round(draw_seconds * fps / 2)))  # a new stroke every other frame
            step = draw_seconds / n
            for j, canvas in enumerate(strokes.reveal(image, n)):
                xs.append(prepare(model, canvas))
                last = j == n - 1
                holds.append(hold if last else step / 2)
                gaps.append(transition if last else step / 2)
        else:
            xs.append(prepare(model, image))
            holds.append(hold)
            gaps.append(transition)
        if i == len(images) - 1:
            gaps.pop()
    sched = schedule.steps(holds, gaps, fps=fps, start=1)
    return np.stack(xs).astype(np.float32), sched


def last_of_each(n_images: int, n_states: int) -> list[int]:
    """Index of the finished state of each input (with drawing an input has several states)."""
    per = n_states // n_images
    return [(i + 1) * per - 1 for i in range(n_images)]

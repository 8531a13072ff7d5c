"""Timing of an animation: K key states, each held for a while, with smooth transitions.

The whole timing is ONE curve, the key *position* p(frame):

    p = k             while key state k is held
    p = k -> k + 1    linearly during the transition from state k to state k + 1

It becomes the keyframes of a float input of the bake modifier (LINEAR interpolation, constant
extrapolation), so Blender's own F-curve evaluation gives p at any frame, and a user can retime
the animation in the Graph Editor. From p the modifier takes

    a = floor(p),  b = min(a + 1, K - 1),  t = p - a

and shows value = mix(value_a, value_b, smoothstep(t_s)) where t_s is the transition time of
the node's stage: without a wave every stage uses t; with a wave of strength w in [0, 1) stage s
(of S) starts after s * w / (S - 1) of the transition and takes 1 - w of it, so the signal runs
from the input to the output.

Everything here is NumPy and mirrors what the modifier computes, for tests and previews.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import NNVizError

MAX_WAVE = 0.95
LEAD = 0.5  # seconds a recording shows its first state before the first stroke
MAX_PAUSE = 1.0  # seconds: longer pauses in a recording are cut to this by default


class ScheduleError(NNVizError, ValueError):
    """Timing that cannot be animated (no keys, negative times...); the message is for users."""


@dataclass(frozen=True)
class Schedule:
    """Keyframes (frame, position) of the position curve and the animation's frame range."""

    frames: np.ndarray  # float64 (M,), strictly increasing
    positions: np.ndarray  # float64 (M,), non-decreasing, from 0 to n_keys - 1
    n_keys: int
    frame_start: int
    frame_end: int

    @property
    def frame_count(self) -> int:
        return self.frame_end - self.frame_start + 1

    def position(self, frame):
        """p at `frame` (scalar or array): linear between keyframes, constant outside."""
        return np.interp(frame, self.frames, self.positions)

    def state(self, frame) -> tuple[int, int, float]:
        """(key a, key b, linear mix t in [0, 1]) at one frame."""
        return split(float(self.position(frame)), self.n_keys)

    def hold_frames(self, key: int) -> np.ndarray:
        """Every whole frame in the range where exactly key state `key` is shown."""
        f = np.arange(self.frame_start, self.frame_end + 1)
        return f[self.position(f) == key]

    def key_frame(self, key: int) -> int:
        """The first frame that shows key state `key` exactly."""
        held = self.hold_frames(key)
        if held.size == 0:
            raise ScheduleError(f"key state {key} is never shown on a whole frame")
        return int(held[0])


def _check_count(n_keys: int) -> None:
    if n_keys < 1:
        raise ScheduleError("an animation needs at least one input")


def frames_of(seconds: float, fps: float, minimum: int = 0) -> int:
    if not np.isfinite(seconds) or seconds < 0:
        raise ScheduleError(f"times must be zero or more seconds, not {seconds}")
    return max(minimum, int(round(seconds * fps)))


def sequence(
    n_keys: int, fps: float = 24.0, hold: float = 1.0, transition: float = 0.5, start: int = 1
) -> Schedule:
    """Key states one after the other: each held `hold` s, then `transition` s to the next.

    Key k is held on frames [s_k, s_k + h - 1] with s_k = start + k (h + tr); the tr frames in
    between are the transition (tr = 0 is a cut). The last key is held, nothing follows.
    """
    _check_count(n_keys)
    return steps([hold] * n_keys, [transition] * (n_keys - 1), fps, start)


def steps(
    holds: list[float] | np.ndarray,
    transitions: list[float] | np.ndarray,
    fps: float = 24.0,
    start: int = 1,
) -> Schedule:
    """Key states with their own hold times (K) and transition times (K - 1), in seconds."""
    holds = list(holds)
    transitions = list(transitions)
    _check_count(len(holds))
    if len(transitions) != len(holds) - 1:
        raise ScheduleError(f"{len(holds)} key states need {len(holds) - 1} transitions")
    if not fps > 0:
        raise ScheduleError(f"fps must be positive, not {fps}")
    frames, positions = [], []
    s = start
    for k, hold in enumerate(holds):
        h = frames_of(hold, fps, minimum=1)
        frames.append(s)
        positions.append(k)
        if h > 1:
            frames.append(s + h - 1)
            positions.append(k)
        end = s + h - 1
        if k < len(transitions):
            s = end + 1 + frames_of(transitions[k], fps)
    return Schedule(
        np.asarray(frames, np.float64), np.asarray(positions, np.float64), len(holds), start, end
    )


def timed(
    times: np.ndarray | list[float],
    fps: float = 24.0,
    start: int = 1,
    end_hold: float = 1.0,
    speed: float = 1.0,
) -> tuple[Schedule, np.ndarray]:
    """Key states at given times (seconds, e.g. canvas captures), morphing from one to the next.

    Several keys falling on the same frame keep only the last. Returns the schedule and the
    indices of the keys it uses (key state j of the schedule is input kept[j]).
    """
    t = np.asarray(times, np.float64).reshape(-1)
    _check_count(t.size)
    if fps <= 0 or speed <= 0:
        raise ScheduleError("fps and speed must be positive")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        raise ScheduleError("capture times must be finite and in order")
    frame = start + np.round((t - t[0]) * fps / speed).astype(np.int64)
    last_of_frame = np.append(frame[1:] != frame[:-1], True)
    kept = np.flatnonzero(last_of_frame)
    frames = frame[kept].astype(np.float64)
    frames[0] = start  # the first kept key opens the animation
    positions = np.arange(kept.size, dtype=np.float64)
    end = int(frames[-1]) + frames_of(end_hold, fps)
    return Schedule(frames, positions, int(kept.size), start, end), kept


def compact(
    times: np.ndarray | list[float], max_pause: float = MAX_PAUSE, lead: float = LEAD
) -> np.ndarray:
    """Capture times with the idle time taken out, starting at 0: the first change comes at most
    `lead` s after the first capture, and every longer pause between two captures is cut to
    `max_pause` s. Strokes (captures closer together than that) keep their real pace."""
    t = np.asarray(times, np.float64).reshape(-1)
    _check_count(t.size)
    if not (np.isfinite(max_pause) and max_pause > 0 and np.isfinite(lead) and lead >= 0):
        raise ScheduleError(f"pauses must be cut to a positive time, not {max_pause}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        raise ScheduleError("capture times must be finite and in order")
    gaps = np.diff(t)
    if gaps.size:
        gaps[0] = min(gaps[0], lead)
        gaps[1:] = np.minimum(gaps[1:], max_pause)
    return np.concatenate([[0.0], np.cumsum(gaps)])


def split(position: float, n_keys: int) -> tuple[int, int, float]:
    """p -> (a, b, t) as the modifier computes it (clamped to the keys that exist)."""
    p = min(max(float(position), 0.0), float(n_keys - 1))
    a = int(np.floor(p))
    b = min(a + 1, n_keys - 1)
    return a, b, p - a


def smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def wave_timing(n_stages: int, wave: float) -> tuple[float, float]:
    """(delay per stage, width of one stage's transition), both as shares of a transition."""
    if not 0.0 <= wave <= MAX_WAVE:
        raise ScheduleError(f"wave must be between 0 and {MAX_WAVE}, not {wave}")
    if n_stages < 2 or wave == 0.0:
        return 0.0, 1.0
    return wave / (n_stages - 1), 1.0 - wave


def stage_mix(t: float, n_stages: int, wave: float = 0.0) -> np.ndarray:
    """Eased mix factor of every stage at transition time t: float32 (n_stages,)."""
    delay, width = wave_timing(n_stages, wave)
    s = np.arange(n_stages, dtype=np.float32)
    local = np.clip((np.float32(t) - s * np.float32(delay)) / np.float32(width), 0.0, 1.0)
    return smoothstep(local).astype(np.float32)


def mix(first: np.ndarray, second: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """(1 - f) a + f b in float32, as the modifier's Mix node computes it."""
    f = np.asarray(factor, np.float32)
    a = np.asarray(first, np.float32)
    b = np.asarray(second, np.float32)
    return ((np.float32(1.0) - f) * a + f * b).astype(np.float32)


def frame_values(
    schedule: Schedule,
    key_values: np.ndarray,
    node_stage: np.ndarray,
    frame: float,
    wave: float = 0.0,
) -> np.ndarray:
    """What the nodes show at `frame`, given each key's per-node values (K, N): float32 (N,)."""
    key_values = np.asarray(key_values, np.float32)
    if key_values.shape[0] != schedule.n_keys:
        raise ScheduleError(
            f"{key_values.shape[0]} key states for a {schedule.n_keys}-key schedule"
        )
    a, b, t = schedule.state(frame)
    n_stages = int(np.max(node_stage)) + 1
    factor = stage_mix(t, n_stages, wave)[np.asarray(node_stage)]
    return mix(key_values[a], key_values[b], factor)


def parse_frames(text: str, schedule_range: tuple[int, int] | None = None) -> tuple[int, int]:
    """'A-B' or 'A' -> (A, B), checked against the animation's range if given."""
    raw = str(text).strip()
    left, sep, right = raw.partition("-")
    try:
        first = int(left)
        last = int(right) if sep else first
    except ValueError:
        raise ScheduleError(
            f"bad frame range {text!r}: use A-B, e.g. 1-120, or one frame"
        ) from None
    if first > last:
        raise ScheduleError(f"bad frame range {text!r}: the first frame is after the last")
    if schedule_range is not None:
        lo, hi = schedule_range
        if first < lo or last > hi:
            raise ScheduleError(f"frames {first}-{last} are outside the animation ({lo}-{hi})")
    return first, last

"""Animation timing, without Blender (pure NumPy)."""

import numpy as np
import pytest

from nnviz_blender.animation import schedule as sched


def test_sequence_holds_and_transitions():
    s = sched.sequence(3, fps=10, hold=1.0, transition=0.5)
    # key 0 on frames 1-10, transition 11-15, key 1 on 16-25, transition 26-30, key 2 on 31-40
    assert (s.frame_start, s.frame_end, s.frame_count) == (1, 40, 40)
    assert list(s.hold_frames(0)) == list(range(1, 11))
    assert list(s.hold_frames(1)) == list(range(16, 26))
    assert list(s.hold_frames(2)) == list(range(31, 41))
    assert s.key_frame(1) == 16
    for f in range(11, 16):
        a, b, t = s.state(f)
        assert (a, b) == (0, 1)
        assert t == pytest.approx((f - 10) / 6)
    # the position never goes backwards and ends on the last key
    p = s.position(np.arange(0, 50))
    assert np.all(np.diff(p) >= 0) and p[0] == 0 and p[-1] == 2
    assert s.state(1000) == (2, 2, 0.0)


def test_cut_single_key_and_rounding():
    s = sched.sequence(4, fps=24, hold=1 / 24, transition=0)
    assert (s.frame_start, s.frame_end) == (1, 4)
    assert [s.state(f)[0] for f in range(1, 5)] == [0, 1, 2, 3]
    one = sched.sequence(1, fps=24, hold=2.0, transition=1.0, start=10)
    assert (one.frame_start, one.frame_end) == (10, 57)
    assert one.state(30) == (0, 0, 0.0)
    assert (
        sched.sequence(2, fps=24, hold=0.0, transition=0).frame_end == 2
    )  # a hold is at least one frame


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_keys": 0},
        {"n_keys": 2, "fps": 0},
        {"n_keys": 2, "hold": -1},
        {"n_keys": 2, "hold": np.nan},
    ],
)
def test_bad_sequences(kwargs):
    with pytest.raises(sched.ScheduleError):
        sched.sequence(**kwargs)


def test_timed_captures():
    times = [0.0, 0.02, 0.1, 0.5, 0.52, 2.0]  # seconds; 0.0/0.02 and 0.5/0.52 share a frame
    s, kept = sched.timed(times, fps=24, start=1, end_hold=1.0)
    frames = 1 + np.round((np.asarray(times) - times[0]) * 24).astype(int)
    assert frames[3] == frames[4]
    assert list(kept) == [1, 2, 4, 5]
    assert s.n_keys == 4 and s.frame_start == 1
    assert s.frame_end == frames[-1] + 24
    for j, i in enumerate(kept[1:], start=1):  # each kept capture is exact on its own frame
        assert s.state(frames[i]) == (j, min(j + 1, 3), 0.0)
    with pytest.raises(sched.ScheduleError):
        sched.timed([1.0, 0.5])
    with pytest.raises(sched.ScheduleError):
        sched.timed([])


def test_speed_stretches_a_recording():
    s1, _ = sched.timed([0, 1, 2], fps=24)
    s2, _ = sched.timed([0, 1, 2], fps=24, speed=0.5)
    assert s2.frames[-1] - s2.frames[0] == 2 * (s1.frames[-1] - s1.frames[0])


def test_wave_moves_from_input_to_output():
    n = 8
    assert np.array_equal(sched.stage_mix(0.0, n, 0.7), np.zeros(n, np.float32))
    assert np.array_equal(sched.stage_mix(1.0, n, 0.7), np.ones(n, np.float32))
    for t in np.linspace(0.05, 0.95, 10):
        e = sched.stage_mix(t, n, 0.7)
        assert np.all(np.diff(e) <= 0)  # earlier stages are always further along
    mid = sched.stage_mix(0.5, n, 0.7)
    assert mid[0] == 1.0 and mid[-1] == 0.0
    flat = sched.stage_mix(0.3, n, 0.0)
    assert np.allclose(flat, sched.smoothstep(0.3))
    delay, width = sched.wave_timing(n, 0.7)
    assert delay * (n - 1) + width == pytest.approx(1.0)  # the last stage ends with the transition
    with pytest.raises(sched.ScheduleError):
        sched.wave_timing(n, 1.0)


def test_smoothstep_eases():
    t = np.linspace(0, 1, 101)
    e = sched.smoothstep(t)
    assert e[0] == 0 and e[-1] == 1 and e[50] == pytest.approx(0.5)
    assert np.all(np.diff(e) >= 0)
    slope = np.diff(e) / np.diff(t)
    assert slope[0] < 0.1 and slope[-1] < 0.1  # starts and ends at rest


def test_frame_values_mix_two_states():
    s = sched.sequence(2, fps=10, hold=1.0, transition=1.0)
    kv = np.array([[0, 0, 0], [1, 2, -4]], np.float32)
    stage = np.array([0, 1, 2])
    assert np.array_equal(sched.frame_values(s, kv, stage, 1), kv[0])
    assert np.array_equal(sched.frame_values(s, kv, stage, s.frame_end), kv[1])
    mid = sched.frame_values(s, kv, stage, 15.5)  # halfway through the transition
    assert np.allclose(mid, kv[1] * 0.5)
    waved = sched.frame_values(s, kv, stage, 16, wave=0.8) / kv[1]  # t = 6/11
    assert waved[0] == 1.0 and 0.0 < waved[1] < 1.0 and waved[2] == 0.0


def test_parse_frames():
    assert sched.parse_frames("1-120") == (1, 120)
    assert sched.parse_frames(" 7 ") == (7, 7)
    assert sched.parse_frames("10-20", (1, 40)) == (10, 20)
    for bad in ("a-b", "5-1", "", "1-2-3"):
        with pytest.raises(sched.ScheduleError):
            sched.parse_frames(bad)
    with pytest.raises(sched.ScheduleError, match="outside"):
        sched.parse_frames("30-50", (1, 40))


def test_steps_with_own_times():
    s = sched.steps([0.1, 0.1, 1.0], [0.0, 0.5], fps=10)
    # key 0 on frame 1, key 1 on frame 2, transition 3-7, key 2 on 8-17
    assert (s.frame_start, s.frame_end) == (1, 17)
    assert [s.state(f)[:2] for f in (1, 2, 8, 17)] == [(0, 1), (1, 2), (2, 2), (2, 2)]
    assert s.state(5)[2] == pytest.approx(3 / 6)
    with pytest.raises(sched.ScheduleError):
        sched.steps([1, 1], [])


def test_reveal_draws_progressively():
    from nnviz_blender.animation import strokes

    img = np.zeros((28, 28), np.float32)
    img[4, 5:20] = 1.0  # the bar of a 7
    for i in range(16):
        img[5 + i, 19 - i // 2] = 0.8  # its stem
    frames = strokes.reveal(img, 8)
    assert frames.shape == (8, 28, 28)
    ink = (frames > 0).sum(axis=(1, 2))
    assert np.all(np.diff(ink) >= 0) and ink[0] > 0
    assert np.array_equal(frames[-1], img)
    assert np.all(frames <= img + 1e-7)  # only pixels of the digit, with their own intensity
    # the pen starts at the top-left of the bar and finishes the bar before the stem's end
    first = np.argwhere(frames[0] > 0)
    assert first[:, 0].min() == 4 and first[:, 1].min() == 5
    assert frames[3][4, 5:20].all() and not frames[3][20].any()
    assert np.array_equal(strokes.reveal(np.zeros((5, 5)), 3), np.zeros((3, 5, 5)))
    big = np.zeros((300, 300), np.float32)
    big[100:110, 50:250] = 1.0
    assert strokes.drawing_order(big).size == 2000

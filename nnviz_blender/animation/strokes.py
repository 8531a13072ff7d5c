"""Synthetic drawing: reveal a finished digit stroke by stroke, as if a pen were drawing it.

The ink is thinned to its centre line (Zhang-Suen thinning) and a pen walks that line: it starts
at the top-most stroke end in the upper half of the drawing (else at the top), always continues
with the nearest point not drawn yet (keeping its direction among equally near ones), and lifts
and jumps when a stroke ends. Every ink pixel appears when the pen passes its nearest
centre-line point. Each prefix is a canvas a user could have painted, so the animation shows
what live drawing would show. NumPy only.
"""

from __future__ import annotations

import numpy as np

INK = 0.25  # share of the brightest pixel that counts as ink for the pen's path
MAX_SIDE = 96  # larger canvases are walked on a coarser grid (the path, not the pixels)

# neighbours p2..p9 of Zhang-Suen: N, NE, E, SE, S, SW, W, NW as (dy, dx)
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _gray(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float32)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 3:  # (H, W, C): mean of the colour channels
        img = img[..., :3].mean(axis=2) if img.shape[2] >= 3 else img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"expected an image (H, W), got shape {list(img.shape)}")
    return img


def _neighbours(b: np.ndarray) -> list[np.ndarray]:
    p = np.pad(b, 1)
    h, w = b.shape
    return [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _RING]


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to one-pixel-wide centre lines."""
    b = mask.astype(np.uint8).copy()
    while True:
        changed = False
        for first in (True, False):
            n = _neighbours(b)
            count = sum(n)
            ring = n + n[:1]
            turns = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.uint8) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if first:
                keep = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                keep = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            drop = (b == 1) & (count >= 2) & (count <= 6) & (turns == 1) & keep
            if drop.any():
                b[drop] = 0
                changed = True
        if not changed:
            return b.astype(bool)


def _walk(pts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Pen order of centre-line points: nearest next, keeping direction; jumps to stroke ends."""
    m = len(pts)
    left = np.ones(m, bool)
    order = np.empty(m, np.int64)
    # a stroke end in the upper half of the drawing (people write from the top), else the top
    top, bottom = pts[:, 0].min(), pts[:, 0].max()
    starts = np.flatnonzero(ends & (pts[:, 0] <= (top + bottom) / 2))
    pool = starts if starts.size else np.arange(m)
    cur = int(pool[np.lexsort((pts[pool, 1], pts[pool, 0]))[0]])  # top-most, then left-most
    heading = np.zeros(2)
    for i in range(m):
        order[i] = cur
        left[cur] = False
        if i == m - 1:
            break
        cand = np.flatnonzero(left)
        d = pts[cand] - pts[cur]
        dist = np.hypot(d[:, 0], d[:, 1])
        if dist.min() > 1.5:  # the stroke ended: lift the pen, start at the nearest stroke end
            free_ends = cand[ends[cand]]
            if free_ends.size:
                cand, d = free_ends, pts[free_ends] - pts[cur]
                dist = np.hypot(d[:, 0], d[:, 1])
            heading = np.zeros(2)
        score = dist - 0.3 * (d @ heading) / np.maximum(dist, 1e-9)
        nxt = int(cand[np.argmin(score)])
        move = pts[nxt] - pts[cur]
        heading = move / max(float(np.hypot(*move)), 1e-9) if dist.min() <= 1.5 else heading
        cur = nxt
    return order


def drawing_order(image: np.ndarray) -> np.ndarray:
    """Flat indices of the image's non-zero pixels in the order a pen would draw them."""
    img = _gray(image)
    peak = float(img.max()) if img.size else 0.0
    if peak <= 0:
        return np.empty(0, np.int64)
    h, w = img.shape
    step = max(1, int(np.ceil(max(h, w) / MAX_SIDE)))
    ch, cw = -(-h // step), -(-w // step)
    padded = np.zeros((ch * step, cw * step), np.float32)
    padded[:h, :w] = img
    coarse = padded.reshape(ch, step, cw, step).max(axis=(1, 3))
    line = thin(coarse > INK * peak)
    if not line.any():
        line = coarse >= coarse.max()
    ends = (sum(n.astype(np.int64) for n in _neighbours(line)) <= 1) & line
    ys, xs = np.nonzero(line)
    pts = np.stack([ys, xs], axis=1).astype(np.float64)
    order = _walk(pts, ends[ys, xs])
    rank = np.empty(len(pts), np.int64)
    rank[order] = np.arange(len(pts))
    # every pixel with ink appears with its nearest centre-line point (in chunks: big canvases)
    iy, ix = np.nonzero(img > 0)
    at = np.stack([(iy + 0.5) / step - 0.5, (ix + 0.5) / step - 0.5], axis=1)
    key = np.empty(len(at), np.float64)
    for s in range(0, len(at), 4096):
        d = at[s : s + 4096, None, :] - pts[None, :, :]
        dist = np.hypot(d[..., 0], d[..., 1])
        near = dist.argmin(axis=1)
        key[s : s + 4096] = rank[near] + dist[np.arange(len(near)), near] / (4.0 * max(h, w))
    return (iy * w + ix)[np.argsort(key, kind="stable")]


def reveal(image: np.ndarray, steps: int) -> np.ndarray:
    """`steps` canvases (steps, H, W) float32, each with more of the digit drawn; the last is
    the whole image. Pixels keep their own intensity (soft stroke edges stay soft)."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    img = _gray(image)
    order = drawing_order(img)
    flat = img.reshape(-1)
    out = np.zeros((steps, img.size), np.float32)
    if order.size:
        counts = np.ceil(np.arange(1, steps + 1) * order.size / steps).astype(np.int64)
        for j, c in enumerate(counts):
            out[j, order[:c]] = flat[order[:c]]
    out[-1] = flat  # exactly the finished drawing (faint non-ink pixels too)
    return out.reshape(steps, *img.shape)

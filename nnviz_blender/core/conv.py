"""Convolution and pooling in plain NumPy, float32 throughout, on batches (N, C, H, W).

A conv takes the fastest of four exact routes for its shape (conv2d): im2col and one matrix
product; Winograd F(2x2, 3x3) for 3x3 stride-1 convs of many channels on large maps; row-blocked
matrix-vector products when there are only a few output columns (OpenBLAS's gemm would copy the
whole weight first); and, on a map within the kernel's reach, a dense layer over the whole input
that never multiplies padding. Weights those routes derive are kept per weight array (_derived).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _padded(x: np.ndarray, pads, fill: float) -> np.ndarray:
    """(N, C, H, W) with (top, left, bottom, right) rows/columns of `fill` around it."""
    top, left, bottom, right = pads
    if not (top or left or bottom or right):
        return x
    n, c, h, w = x.shape  # a filled buffer: many times faster than np.pad at these sizes
    out = np.full((n, c, h + top + bottom, w + left + right), fill, dtype=x.dtype)
    out[:, :, top : top + h, left : left + w] = x
    return out


def _taps(
    x: np.ndarray, k, s, pads, fill: float, dilation=(1, 1)
) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The kh*kw shifted views of (N, C, H, W) that a window layer combines, (i, j) row-major.

    Tap (i, j) holds, for every output position (y, x), the input at (y*sh - top + i*dh,
    x*sw - left + j*dw); padding reads `fill`. Slicing keeps this a handful of fast NumPy views.
    """
    (kh, kw), (sh, sw), (dh, dw) = k, s, dilation
    x = _padded(x, pads, fill)
    ho = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    views = [
        x[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    return views, (ho, wo)


def _windows(x: np.ndarray, k, s, dilation) -> np.ndarray:
    """A read-only view (N, C, kh, kw, H', W') of every window of an already padded input."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, dilation
    n, c, h, w = x.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    s0, s1, s2, s3 = x.strides
    shape, strides = (n, c, kh, kw, ho, wo), (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw)
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def _view(base: np.ndarray, shape, strides, offset: int = 0) -> np.ndarray:
    """A read-only strided view of a contiguous array (`offset` and `strides` in bytes; strides
    may be negative): what as_strided makes, without its several microseconds per call."""
    view: np.ndarray = np.ndarray(shape, base.dtype, base, offset, strides)
    view.flags.writeable = False
    return view


def _pads(padding) -> tuple[int, int, int, int]:
    """[ph, pw] or [top, left, bottom, right] -> (top, left, bottom, right)."""
    p = tuple(int(v) for v in padding)
    return p if len(p) == 4 else (p[0], p[1], p[0], p[1])  # type: ignore[return-value]


def _valid_range(n_out: int, n_in: int, s: int, p: int, offset: int) -> tuple[int, int]:
    """Outputs y in [lo, hi) whose tap reads a real input: 0 <= y*s - p + offset < n_in."""
    lo = max(0, -(-(p - offset) // s))
    hi = min(n_out, (n_in - 1 + p - offset) // s + 1)
    return lo, max(lo, hi)


def _im2col(x: np.ndarray, k, s, pads, dilation) -> np.ndarray:
    """(N, C, kh, kw, H', W'): every tap's input for every output position, 0 in the padding.

    One strided slice copy per tap straight from the input (no padded copy of it first); with
    more taps than channels (a stem's 7x7 on RGB) one copy of the padded input's windows, which
    is faster there."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, dilation
    top, left, bottom, right = pads
    n, c, h, w = x.shape
    if kh * kw > c:
        return np.ascontiguousarray(_windows(_padded(x, pads, 0.0), k, s, dilation))
    ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    padded = top or left or bottom or right
    cols = (np.zeros if padded else np.empty)((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        y0, y1 = _valid_range(ho, h, sh, top, i * dh)
        r0 = y0 * sh - top + i * dh
        for j in range(kw):
            x0, x1 = _valid_range(wo, w, sw, left, j * dw)
            c0 = x0 * sw - left + j * dw
            if y1 > y0 and x1 > x0:
                rows = slice(r0, r0 + (y1 - y0 - 1) * sh + 1, sh)
                columns = slice(c0, c0 + (x1 - x0 - 1) * sw + 1, sw)
                cols[:, :, i, j, y0:y1, x0:x1] = x[:, :, rows, columns]
    return cols


# Winograd F(2x2, 3x3): a 3x3 stride-1 conv as 16 products per 4x4 input tile instead of 36;
# G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]] transforms the filters


def _winograd_pays(c: int, o: int, ho: int, wo: int) -> bool:
    """Whether Winograd beats im2col on a 3x3 stride-1 conv of C -> O channels with (H', W')
    outputs (measured single-threaded): from 48 input channels on maps of 8x8 or more, from 24
    (and 16 outputs) on maps of 16x16 or more, where its transforms are paid for."""
    side = min(ho, wo)
    return (c >= 48 and side >= 8) or (c >= 24 and o >= 16 and side >= 16)


_DERIVED: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}  # -> (weight, derived)


def _derived(weight: np.ndarray, kind: str, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """make(weight), computed once per weight array and kind (a layer's weights do not change)."""
    key = (id(weight), kind)
    hit = _DERIVED.get(key)
    if hit is None or hit[0] is not weight:
        if len(_DERIVED) >= 256:
            _DERIVED.clear()
        hit = _DERIVED[key] = (weight, make(weight))
    return hit[1]


def _winograd_transformed(weight: np.ndarray) -> np.ndarray:
    """G g G^T of every 3x3 filter -> (16, O, C) float32, summed in float64 on whole (O, C)
    planes (a first forward computes this for every Winograd layer)."""
    o, c = weight.shape[:2]
    g = weight.transpose(2, 3, 0, 1).astype(np.float64)  # (3, 3, O, C)
    t = np.empty((4, 3, o, c))  # G g: rows
    t[0], t[3] = g[0], g[2]
    np.add(g[0], g[2], out=t[1])
    np.subtract(t[1], g[1], out=t[2])
    t[1] += g[1]
    t[1:3] *= 0.5
    u = np.empty((4, 4, o, c))  # (G g) G^T: columns
    u[:, 0], u[:, 3] = t[:, 0], t[:, 2]
    np.add(t[:, 0], t[:, 2], out=u[:, 1])
    np.subtract(u[:, 1], t[:, 1], out=u[:, 2])
    u[:, 1] += t[:, 1]
    u[:, 1:3] *= 0.5
    return u.reshape(16, o, c).astype(np.float32)


def _channels_last(weight: np.ndarray) -> np.ndarray:
    """(O, C, kh, kw) -> (O, kh, kw, C): a row of taps is one run of kw*C numbers."""
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1))


def _winograd_conv(x: np.ndarray, weight: np.ndarray, pads) -> np.ndarray:
    """A 3x3 stride-1 conv (no groups) by Winograd F(2x2, 3x3) -> (N, O, H', W')."""
    n, c, h, w = x.shape
    top, left, bottom, right = pads
    ho, wo = h + top + bottom - 2, w + left + right - 2
    th, tw = -(-ho // 2), -(-wo // 2)  # 2x2 output tiles, each read from a 4x4 input tile
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), np.float32)  # channels last: every sum
    xp[:, top : top + h, left : left + w] = x.transpose(0, 2, 3, 1)  # runs along C at once
    s0, s1, s2, s3 = xp.strides
    d = _view(xp, (4, 4, n, th, tw, c), (s1, s2, s0, 2 * s1, 2 * s2, s3))
    t = np.empty(d.shape, np.float32)  # B^T d B: rows, then columns
    np.subtract(d[0], d[2], out=t[0])
    np.add(d[1], d[2], out=t[1])
    np.subtract(d[2], d[1], out=t[2])
    np.subtract(d[1], d[3], out=t[3])
    v = np.empty(d.shape, np.float32)
    np.subtract(t[:, 0], t[:, 2], out=v[:, 0])
    np.add(t[:, 1], t[:, 2], out=v[:, 1])
    np.subtract(t[:, 2], t[:, 1], out=v[:, 2])
    np.subtract(t[:, 1], t[:, 3], out=v[:, 3])
    u = _derived(weight, "winograd", _winograd_transformed)
    v = v.reshape(16, n, th * tw, c).transpose(0, 1, 3, 2)  # (16, N, C, tiles)
    m = np.matmul(u, v[:, 0]) if n == 1 else np.matmul(u[:, None], v)
    m = m.reshape(4, 4, n, -1, th, tw)
    r0, r1 = m[0] + m[1] + m[2], m[1] - m[2] - m[3]  # A^T m A: rows, then columns
    y = np.empty((n, m.shape[3], th, 2, tw, 2), np.float32)
    y[:, :, :, 0, :, 0] = r0[0] + r0[1] + r0[2]
    y[:, :, :, 0, :, 1] = r0[1] - r0[2] - r0[3]
    y[:, :, :, 1, :, 0] = r1[0] + r1[1] + r1[2]
    y[:, :, :, 1, :, 1] = r1[1] - r1[2] - r1[3]
    y = y.reshape(n, -1, 2 * th, 2 * tw)
    return y if (2 * th, 2 * tw) == (ho, wo) else np.ascontiguousarray(y[:, :, :ho, :wo])


# A handful of output columns (images x positions, as in a ResNet's last stage on a small input):
# OpenBLAS's gemm first copies the whole weight into its packed layout, which on a big weight
# costs more than the arithmetic; matrix-vector products read the weight where it lies, and one
# block of rows read for the first column is still in cache for the others.
_GEMV_MAX_COLUMNS = 6  # from about 8 columns on, one gemm is as fast
_GEMV_ROWS = 32  # weight rows per block


def _row_blocks(o: int) -> list[tuple[int, int, int]]:
    """(first row, blocks, rows per block) covering rows 0..o: whole blocks, then the rest."""
    r = min(_GEMV_ROWS, o)
    main = o - o % r
    return [(0, main // r, r)] + ([(main, 1, o - main)] if main < o else [])


def _few_columns(a: np.ndarray, xt: np.ndarray) -> np.ndarray:
    """a (O, K) @ xt.T for a few columns xt (N, K) -> (O, N): row-blocked matrix-vector products."""
    o, k = a.shape
    n = xt.shape[0]
    y = np.empty((o, n), np.float32)
    for first, blocks, r in _row_blocks(o):
        rows = a[first : first + blocks * r].reshape(blocks, 1, r, k)
        part = np.matmul(rows, xt.reshape(1, n, k, 1))  # (blocks, N, r, 1)
        y[first : first + blocks * r] = part.reshape(blocks, n, r).transpose(0, 2, 1).reshape(-1, n)
    return y


def _covers_input(h: int, k: int, s: int, before: int, after: int) -> bool:
    """Along one axis, every output's window holds the whole input (a map within the kernel)."""
    n_out = (h + before + after - k) // s + 1
    return before >= (n_out - 1) * s and h + before <= k


def _whole_input_conv(x: np.ndarray, weight: np.ndarray, stride, pads) -> np.ndarray:
    """A conv (no groups or dilation) whose every window covers the whole input -> (N, O, H', W').

    Output (y, x) is then a dense layer of the input: tap row top - y*sh + i, columns
    left - x*sw .. + W, of the channels-last weight against input row i. Those rows are one
    strided view of the weight, so the taps that read padding are never multiplied, and every
    product is a matrix-vector one over blocks of weight rows (see _few_columns)."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    (sh, sw), (top, left, bottom, right) = stride, pads
    ho, wo = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    flat = _derived(weight, "channels_last", _channels_last).reshape(-1)
    xs = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(1, n, 1, 1, h, w * c, 1)
    k, e = kh * kw * c, flat.itemsize
    y = np.empty((n, o, ho, wo), np.float32)
    for first, blocks, r in _row_blocks(o):
        rows = _view(
            flat,
            (blocks, 1, ho, wo, h, r, w * c),
            (r * k * e, 0, -sh * kw * c * e, -sw * c * e, kw * c * e, k * e, e),
            (first * k + (top * kw + left) * c) * e,
        )
        part = np.matmul(rows, xs).sum(axis=4)  # (blocks, N, H', W', r, 1)
        part = part.reshape(blocks, n, ho, wo, r).transpose(1, 0, 4, 2, 3)
        y[:, first : first + blocks * r] = part.reshape(n, blocks * r, ho, wo)
    return y


def _plus_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A freshly made (N, O, H, W) with a per-channel bias added in place."""
    if bias is not None:
        y += bias[:, None, None]
    return y


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride,
    padding,
    dilation=(1, 1),
    groups: int = 1,
) -> np.ndarray:
    """Cross-correlation as PyTorch's Conv2d: im2col (one slice copy per tap), then one matmul;
    a 3x3 stride-1 conv of enough channels on a large enough map by Winograd F(2x2, 3x3); with
    only a few output columns (batch x positions) matrix-vector products instead of the matmul,
    and on a map within the kernel's reach the whole-input path (no products with padding).

    With groups, output channel o reads only the input channels of its group o // (O / groups).
    """
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    pads = _pads(padding)
    stride, dilation = tuple(stride), tuple(dilation)
    ho = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    few = groups == 1 and n * ho * wo <= _GEMV_MAX_COLUMNS
    if (
        few
        and dilation == (1, 1)
        and _covers_input(h, kh, stride[0], pads[0], pads[2])
        and _covers_input(w, kw, stride[1], pads[1], pads[3])
    ):
        return _plus_bias(_whole_input_conv(x, weight, stride, pads), bias)
    if (
        (kh, kw) == (3, 3)
        and stride == dilation == (1, 1)
        and groups == 1
        and _winograd_pays(c, o, ho, wo)
    ):
        return _plus_bias(_winograd_conv(x, weight, pads), bias)
    windows = _im2col(x, (kh, kw), stride, pads, dilation)
    if few:
        cols = windows.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)
        y = _few_columns(weight.reshape(o, c * kh * kw), cols).reshape(o, n, ho * wo)
        y = np.ascontiguousarray(y.transpose(1, 0, 2))
    elif groups == 1:  # im2col: one copy of the windows, (c, i, j) like the weight, then one matmul
        cols = windows.reshape(n, c * kh * kw, ho * wo)
        y = np.matmul(weight.reshape(o, c * kh * kw), cols)
    else:
        cols = windows.reshape(n, groups, cg * kh * kw, ho * wo)
        y = np.matmul(weight.reshape(groups, o // groups, cg * kh * kw), cols)
        y = y.reshape(n, o, ho * wo)
    if bias is not None:
        y += bias[:, None]
    return y.reshape(n, o, ho, wo)


def maxpool2d(x: np.ndarray, kernel_size, stride, padding) -> np.ndarray:
    """Max over each window: along rows first, then columns of those maxima.

    The padded columns split by their index modulo the stride (one copy each), so that column
    tap j is phase j % sw shifted by j // sw: every maximum runs over contiguous numbers, not
    over a strided view (several times slower in NumPy)."""
    (kh, kw), (sh, sw) = tuple(kernel_size), tuple(stride)
    xp = _padded(x, _pads(padding), -np.inf)
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    phases = [np.ascontiguousarray(xp[..., p::sw]) for p in range(min(sw, kw))]
    cols = phases[0][..., :wo].copy()  # (N, C, padded H, W'): the max of each row's window
    for j in range(1, kw):
        np.maximum(cols, phases[j % sw][..., j // sw : j // sw + wo], out=cols)
    span = sh * (ho - 1) + 1
    out = cols[:, :, :span:sh].copy()
    for i in range(1, kh):
        np.maximum(out, cols[:, :, i : i + span : sh], out=out)
    return out


def pool_counts(in_hw, kernel_size, stride, padding) -> np.ndarray:
    """How many real (non-padding) inputs each output position of a window averages -> (H', W')."""
    ones = np.ones((1, 1, *in_hw), dtype=np.float32)
    views, _ = _taps(ones, tuple(kernel_size), tuple(stride), _pads(padding), 0.0)
    return np.sum(views, axis=0)[0, 0]


def avgpool2d(x: np.ndarray, kernel_size, stride, padding, count_include_pad=True) -> np.ndarray:
    """Average over the window; padding counts as zeros (count_include_pad) or is left out."""
    views, _ = _taps(x, tuple(kernel_size), tuple(stride), _pads(padding), 0.0)
    out = views[0].copy()
    for v in views[1:]:
        out += v
    if count_include_pad:
        out *= np.float32(1.0 / len(views))
    else:
        out /= pool_counts(x.shape[2:], kernel_size, stride, padding)
    return out

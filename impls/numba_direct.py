"""Direct convolution in numba: no im2col, just the seven loops, blocked and threaded.

Forward: a task is one output row and one block of output channels; per kernel tap it
gathers the input row and adds rows @ w[ki, kj] four pixels at a time, so each weight
vector loaded feeds four FMAs, with the innermost loop over C_out, which LLVM vectorizes.
dx runs the same kernel per input row, gathering every output pixel whose window covers it
(right for any stride and dilation); dw accumulates one partial per worker. Worker threads
(one per core) run GIL-free serial kernels on disjoint ranges.
Memory: one row accumulator per worker and one dw partial per worker; nothing k²-inflated.
Reference: Georganas et al., "Anatomy of High-Performance Deep Learning Convolutions on
SIMD Architectures" (SC 2018).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import NDArray

from ._base import Backend
from ._geometry import ConvGeometry
from ._parallel import run_jobs, worker_count

#: output channels per task: the row accumulator (OW x CO_BLOCK) should stay in L1
CO_BLOCK = 64
#: pixels per register block: each loaded weight vector feeds this many FMAs
PIXELS = 4


def _accumulate_plain(acc, rows, w_tap, n_rows):  # type: ignore[no-untyped-def]
    """acc[:n_rows] += rows[:n_rows] @ w_tap, PIXELS rows at a time.

    acc (P, C_o) and rows (P, C_i) have P >= n_rows rounded up to PIXELS; w_tap is (C_i, C_o).
    """
    c_in, c_out = w_tap.shape
    for p in range(0, n_rows, PIXELS):
        a0, a1, a2, a3 = acc[p], acc[p + 1], acc[p + 2], acc[p + 3]
        r0, r1, r2, r3 = rows[p], rows[p + 1], rows[p + 2], rows[p + 3]
        for ci in range(c_in):
            w_row = w_tap[ci]
            v0, v1, v2, v3 = r0[ci], r1[ci], r2[ci], r3[ci]
            for co in range(c_out):
                a0[co] += v0 * w_row[co]
                a1[co] += v1 * w_row[co]
                a2[co] += v2 * w_row[co]
                a3[co] += v3 * w_row[co]


def _accumulate_outer_plain(dw_tap, rows, dy_rows, n_rows):  # type: ignore[no-untyped-def]
    """dw_tap += rows[:n_rows].T @ dy_rows[:n_rows], PIXELS rows at a time."""
    c_in, c_out = dw_tap.shape
    for p in range(0, n_rows, PIXELS):
        d0, d1, d2, d3 = dy_rows[p], dy_rows[p + 1], dy_rows[p + 2], dy_rows[p + 3]
        for ci in range(c_in):
            dw_row = dw_tap[ci]
            v0, v1, v2, v3 = rows[p, ci], rows[p + 1, ci], rows[p + 2, ci], rows[p + 3, ci]
            for co in range(c_out):
                dw_row[co] += v0 * d0[co] + v1 * d1[co] + v2 * d2[co] + v3 * d3[co]


_accumulate = numba.njit(cache=True)(_accumulate_plain)
_accumulate_outer = numba.njit(cache=True)(_accumulate_outer_plain)


def _gather_row_plain(rows, src, img, iy, mul, off, div, size):  # type: ignore[no-untyped-def]
    """rows[p] = src[img, iy, (p * mul + off) / div] for p < size where that is a whole
    in-range pixel, else zeros; rows past size are zeroed too."""
    for p in range(rows.shape[0]):
        num = p * mul + off
        if p < size and num >= 0 and num % div == 0 and num // div < src.shape[2]:
            rows[p, :] = src[img, iy, num // div]
        else:
            rows[p, :] = 0.0


_gather_row = numba.njit(cache=True)(_gather_row_plain)


def _forward_plain(x, w_blocks, taps_finite, b, y, sh, sw, dh, dw, top, left, task0, task1):  # type: ignore[no-untyped-def]
    """y[n, oy, ox] = b + sum over taps of x[n, iy, ix] @ w[ki, kj], for tasks task0..task1.

    A task is one output row x one C_out block; w_blocks is (n_blocks, kh, kw, C_in,
    CO_BLOCK), the last block zero-padded. Padded rows are skipped, unless the tap
    (taps_finite is (kh, kw)) holds a non-finite weight: then they are multiplied as zeros,
    like padded columns, so that weight spreads to its whole channel, as in the reference.
    """
    h, c_in = x.shape[1], x.shape[3]
    n_blocks, kh, kw, _, co_block = w_blocks.shape
    _, out_h, out_w, c_out = y.shape
    padded_w = -(-out_w // PIXELS) * PIXELS
    acc = np.empty((padded_w, co_block), dtype=y.dtype)
    rows = np.empty((padded_w, c_in), dtype=x.dtype)
    for task in range(task0, task1):
        row, blk = task // n_blocks, task % n_blocks
        img, oy = row // out_h, row % out_h
        co0 = blk * co_block
        n_co = min(co_block, c_out - co0)
        acc[:] = 0.0
        for ki in range(kh):
            iy = oy * sh - top + ki * dh
            inside = 0 <= iy < h
            for kj in range(kw):
                if inside:
                    _gather_row(rows, x, img, iy, sw, kj * dw - left, 1, out_w)
                elif taps_finite[ki, kj]:
                    continue
                else:
                    rows[:] = 0.0
                _accumulate(acc, rows, w_blocks[blk, ki, kj], out_w)
        for ox in range(out_w):
            y[img, oy, ox, co0 : co0 + n_co] = acc[ox, :n_co] + b[co0 : co0 + n_co]


def _backward_input_plain(dy, w_t, taps_finite, dx, sh, sw, dh, dw, top, left, row0, row1):  # type: ignore[no-untyped-def]
    """dx[n, iy, ix] = sum over the (tap, output pixel) pairs that read it of dy @ w_t[tap],
    for the flat input rows row0..row1.

    w_t is (kh, kw, C_out, C_in). Gathering only output pixels whose index divides out
    whole is what makes this right for stride > 1 (no flipped-kernel shortcut). Missing
    output pixels are gathered as zeros; missing output rows are skipped unless the tap holds
    a non-finite weight, which thus spreads to its whole input channel either way.
    """
    _, h, w_in, c_in = dx.shape
    kh, kw, c_out = w_t.shape[0], w_t.shape[1], w_t.shape[2]
    out_h = dy.shape[1]
    padded_w = -(-w_in // PIXELS) * PIXELS
    acc = np.empty((padded_w, c_in), dtype=dx.dtype)
    rows = np.empty((padded_w, c_out), dtype=dy.dtype)
    for row in range(row0, row1):
        img, iy = row // h, row % h
        acc[:] = 0.0
        for ki in range(kh):
            oy_num = iy + top - ki * dh
            present = oy_num >= 0 and oy_num % sh == 0 and oy_num // sh < out_h
            for kj in range(kw):
                if present:
                    _gather_row(rows, dy, img, oy_num // sh, 1, left - kj * dw, sw, w_in)
                elif taps_finite[ki, kj]:
                    continue
                else:
                    rows[:] = 0.0
                _accumulate(acc, rows, w_t[ki, kj], w_in)
        dx[img, iy] = acc[:w_in]


def _backward_weight_plain(x, dy, dy_finite, dw_part, sh, sw, dh, dw, top, left, row0, row1):  # type: ignore[no-untyped-def]
    """dw_part = sum over the flat output rows row0..row1 of x[window].T @ dy[row].

    Padded rows are skipped unless dy holds a non-finite value: then, like padded columns,
    they are multiplied as zeros, so that value spreads to its whole channel of dw.
    """
    h, c_in = x.shape[1], x.shape[3]
    kh, kw = dw_part.shape[0], dw_part.shape[1]
    _, out_h, out_w, c_out = dy.shape
    padded_w = -(-out_w // PIXELS) * PIXELS
    dw_part[:] = 0.0
    rows = np.empty((padded_w, c_in), dtype=x.dtype)
    dy_rows = np.empty((padded_w, c_out), dtype=dy.dtype)
    for row in range(row0, row1):
        img, oy = row // out_h, row % out_h
        _gather_row(dy_rows, dy, img, oy, 1, 0, 1, out_w)
        for ki in range(kh):
            iy = oy * sh - top + ki * dh
            inside = 0 <= iy < h
            if not inside and dy_finite:
                continue
            for kj in range(kw):
                if inside:
                    _gather_row(rows, x, img, iy, sw, kj * dw - left, 1, out_w)
                else:
                    rows[:] = 0.0
                _accumulate_outer(dw_part[ki, kj], rows, dy_rows, out_w)


# serial and GIL-free: worker threads run them on disjoint ranges (numba's parallel=True
# compiled for minutes on 2 cores)
_forward_jit: Callable[..., None] = numba.njit(nogil=True, cache=True)(_forward_plain)
_backward_input_jit: Callable[..., None] = numba.njit(nogil=True, cache=True)(_backward_input_plain)
_backward_weight_jit: Callable[..., None] = numba.njit(nogil=True, cache=True)(
    _backward_weight_plain
)


def _split(total: int) -> list[tuple[int, int]]:
    """total tasks as one contiguous range per worker."""
    workers = max(1, min(worker_count(), total))
    bounds = [total * k // workers for k in range(workers + 1)]
    return list(itertools.pairwise(bounds))


def _all_finite(a: NDArray[np.floating]) -> bool:
    # min and max carry a NaN through, and are vectorized passes without a temporary
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def _taps_finite(w: NDArray[np.floating]) -> NDArray[np.bool_]:
    """(kh, kw): whether each kernel tap's weights are all finite."""
    return np.isfinite(w).all(axis=(2, 3))


def _weight_blocks(w: NDArray[np.floating]) -> NDArray[np.floating]:
    """(kh, kw, C_in, C_out) -> (n_blocks, kh, kw, C_in, CO_BLOCK), zero-padded past C_out."""
    kh, kw, c_in, c_out = w.shape
    co_block = min(CO_BLOCK, c_out)
    n_blocks = -(-c_out // co_block)
    padded = np.zeros((kh, kw, c_in, n_blocks * co_block), dtype=w.dtype)
    padded[..., :c_out] = w
    return np.ascontiguousarray(
        padded.reshape(kh, kw, c_in, n_blocks, co_block).transpose(3, 0, 1, 2, 4)
    )


class NumbaDirect(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "direct loops in numba, one output row x C_out block per task, 4-pixel SIMD over C_out"
    )
    #: one of ours
    role: ClassVar[str] = "ours"
    #: saved holds x itself (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)
    #: the zeros of padded and missing pixels are multiplied like data (see the kernels)
    nonfinite_spread: ClassVar[Mapping[str, str]] = {
        "y": "channel",
        "dx": "channel",
        "dw": "channel",
    }

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        x = np.ascontiguousarray(x)
        w_blocks = _weight_blocks(w)
        b = np.ascontiguousarray(b)
        y = np.empty(geom.y_shape, dtype=x.dtype)
        params = geom.index_params
        tasks = _split(geom.n * geom.out_h * w_blocks.shape[0])
        taps_finite = _taps_finite(w)
        run_jobs(
            [
                partial(_forward_jit, x, w_blocks, taps_finite, b, y, *params, lo, hi)
                for lo, hi in tasks
            ]
        )
        return y, (x, w.copy())

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x, w = saved
        dy = np.ascontiguousarray(dy)
        w_t = np.ascontiguousarray(w.transpose(0, 1, 3, 2))
        params = geom.index_params
        dx = np.empty(geom.x_shape, dtype=x.dtype)
        out_rows = _split(geom.n * geom.out_h)
        dw_parts = np.empty((len(out_rows), *geom.w_shape), dtype=x.dtype)
        taps_finite, dy_finite = _taps_finite(w), _all_finite(dy)
        # each worker writes only its own dx rows or its own dw partial
        run_jobs(
            [
                *(
                    partial(_backward_input_jit, dy, w_t, taps_finite, dx, *params, lo, hi)
                    for lo, hi in _split(geom.n * geom.h)
                ),
                *(
                    partial(_backward_weight_jit, x, dy, dy_finite, dw_parts[k], *params, lo, hi)
                    for k, (lo, hi) in enumerate(out_rows)
                ),
            ]
        )
        db = dy.reshape(-1, geom.c_out).sum(axis=0, dtype=np.float64).astype(x.dtype)
        return dx, dw_parts.sum(axis=0), db

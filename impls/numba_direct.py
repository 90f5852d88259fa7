"""Direct convolution in numba: no im2col, just the seven loops, blocked and threaded.

Forward: each parallel task owns one output row and one block of output channels, keeps its
(OW, C_out block) accumulator in L1, and adds x[pixel, ci] * w[ki, kj, ci, block] with the
innermost loop over C_out, which LLVM vectorizes. dx uses the same loop shape per input
row, gathering from every output pixel whose window covers it (right for any stride and
dilation); dw accumulates one partial per thread, innermost over C_out again.
Memory: one row accumulator per task and one dw partial per thread; nothing k²-inflated.
Reference: Georganas et al., "Anatomy of High-Performance Deep Learning Convolutions on
SIMD Architectures" (SC 2018).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import NDArray

from ._base import Backend
from ._geometry import ConvGeometry

#: output channels per task: the row accumulator (OW x CO_BLOCK) should stay in L1
CO_BLOCK = 64


def _forward_plain(x, w, b, y, sh, sw, dh, dw, top, left, co_block):  # type: ignore[no-untyped-def]
    """y[n, oy, ox] = b + sum over taps and ci of x[n, iy, ix, ci] * w[ki, kj, ci]."""
    n_img, h, w_in, c_in = x.shape
    kh, kw = w.shape[0], w.shape[1]
    _, out_h, out_w, c_out = y.shape
    n_blocks = -(-c_out // co_block)
    for task in numba.prange(n_img * out_h * n_blocks):
        row, blk = task // n_blocks, task % n_blocks
        img, oy = row // out_h, row % out_h
        co0 = blk * co_block
        co1 = min(co0 + co_block, c_out)
        acc = np.empty((out_w, co1 - co0), dtype=y.dtype)
        for ox in range(out_w):
            acc[ox, :] = b[co0:co1]
        for ki in range(kh):
            iy = oy * sh - top + ki * dh
            if iy < 0 or iy >= h:
                continue
            for kj in range(kw):
                for ox in range(out_w):
                    ix = ox * sw - left + kj * dw
                    if ix < 0 or ix >= w_in:
                        continue
                    for ci in range(c_in):
                        xv = x[img, iy, ix, ci]
                        for co in range(co1 - co0):
                            acc[ox, co] += xv * w[ki, kj, ci, co0 + co]
        y[img, oy, :, co0:co1] = acc


def _backward_input_plain(dy, w_t, dx, sh, sw, dh, dw, top, left):  # type: ignore[no-untyped-def]
    """dx[n, iy, ix] = sum over the (tap, output pixel) pairs that read it of dy @ w_t[tap].

    w_t is (kh, kw, C_out, C_in); the divisibility test keeps only output pixels that
    exist, which is what makes this right for stride > 1.
    """
    n_img, h, w_in, c_in = dx.shape
    kh, kw = w_t.shape[0], w_t.shape[1]
    _, out_h, out_w, c_out = dy.shape
    for row in numba.prange(n_img * h):
        img, iy = row // h, row % h
        acc = np.zeros((w_in, c_in), dtype=dx.dtype)
        for ki in range(kh):
            oy_num = iy + top - ki * dh
            if oy_num < 0 or oy_num % sh != 0 or oy_num // sh >= out_h:
                continue
            oy = oy_num // sh
            for kj in range(kw):
                for ix in range(w_in):
                    ox_num = ix + left - kj * dw
                    if ox_num < 0 or ox_num % sw != 0 or ox_num // sw >= out_w:
                        continue
                    ox = ox_num // sw
                    for co in range(c_out):
                        dyv = dy[img, oy, ox, co]
                        for ci in range(c_in):
                            acc[ix, ci] += dyv * w_t[ki, kj, co, ci]
        dx[img, iy] = acc


def _backward_weight_plain(x, dy, dw_parts, sh, sw, dh, dw, top, left):  # type: ignore[no-untyped-def]
    """dw_parts[t] = sum over output rows t, t + T, ... of x[window] (outer) dy[pixel]."""
    n_img, h, w_in, c_in = x.shape
    n_parts, kh, kw = dw_parts.shape[0], dw_parts.shape[1], dw_parts.shape[2]
    _, out_h, out_w, c_out = dy.shape
    for part in numba.prange(n_parts):
        dw_part = dw_parts[part]
        dw_part[:] = 0.0
        for row in range(part, n_img * out_h, n_parts):
            img, oy = row // out_h, row % out_h
            for ki in range(kh):
                iy = oy * sh - top + ki * dh
                if iy < 0 or iy >= h:
                    continue
                for kj in range(kw):
                    for ox in range(out_w):
                        ix = ox * sw - left + kj * dw
                        if ix < 0 or ix >= w_in:
                            continue
                        for ci in range(c_in):
                            xv = x[img, iy, ix, ci]
                            for co in range(c_out):
                                dw_part[ki, kj, ci, co] += xv * dy[img, oy, ox, co]


_forward_jit = numba.njit(parallel=True, cache=True)(_forward_plain)
_backward_input_jit = numba.njit(parallel=True, cache=True)(_backward_input_plain)
_backward_weight_jit = numba.njit(parallel=True, cache=True)(_backward_weight_plain)


def _loop_params(geom: ConvGeometry) -> tuple[int, ...]:
    (sh, sw), (dh, dw) = geom.stride, geom.dilation
    (top, _), (left, _) = geom.pad
    return sh, sw, dh, dw, top, left


class NumbaDirect(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "direct loops in numba prange, one output row x C_out block per task, SIMD over C_out"
    )
    #: one of ours
    role: ClassVar[str] = "ours"

    def _forward(
        self, x: NDArray[np.floating], w: NDArray[np.floating], b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        x = np.ascontiguousarray(x)
        w = np.ascontiguousarray(w)
        y = np.empty(geom.y_shape, dtype=x.dtype)
        _forward_jit(x, w, np.ascontiguousarray(b), y, *_loop_params(geom), CO_BLOCK)
        return y, (x, w)

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x, w = saved
        dy = np.ascontiguousarray(dy)
        params = _loop_params(geom)
        dx = np.empty(geom.x_shape, dtype=x.dtype)
        _backward_input_jit(dy, np.ascontiguousarray(w.transpose(0, 1, 3, 2)), dx, *params)
        dw_parts = np.empty((numba.get_num_threads(), *geom.w_shape), dtype=x.dtype)
        _backward_weight_jit(x, dy, dw_parts, *params)
        db = dy.reshape(-1, geom.c_out).sum(axis=0, dtype=np.float64).astype(x.dtype)
        return dx, dw_parts.sum(axis=0), db

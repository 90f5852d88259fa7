"""Direct convolution in numba: no im2col, just the seven loops, register-blocked and threaded.

Forward: a task is one output row and one block of output channels; 6 output pixels x 2
vectors of output channels accumulate in registers over every kernel tap and input channel
(a micro-kernel whose accumulators never go through memory), each input value broadcast
once per tile and each weight vector loaded once per 6 pixels. The input pixel of each
(output pixel, tap) is worked out on the fly, where the indirect backend reads a table.
dx is the same kernel per input row, over the output pixels that read it: taken in stride
phase (input columns ix = phase + k * stride), those are consecutive output pixels, right
for any stride and dilation. dw sums 8 input x 2 vectors of output channels per tile over
each output row. Worker threads (one per core) run GIL-free serial kernels on disjoint
ranges; a small call runs on the calling thread.
Memory: one dw partial (kh * kw * C_in * C_out) per worker and the weights in channel
blocks, twice; nothing k²-inflated.
Reference: Georganas et al., "Anatomy of High-Performance Deep Learning Convolutions on
SIMD Architectures" (SC 2018).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._base import Backend, SizeThreshold
from ._geometry import ConvGeometry
from ._index import jit_input_pixel, jit_output_pixel, jit_tap_offset
from ._parallel import PartialSums, run_jobs, split, splits_past_workers, worker_count
from ._reductions import bias_grad
from ._tiles import (
    OUTER_ROWS,
    OUTER_TILES,
    ROWS,
    VECTORS,
    add_outer,
    channel_blocks,
    inlined,
    kernel,
    lanes,
    madd_outer,
    madd_rows,
    register_tile,
    tile_lanes,
    weight_blocks_bytes,
    zero_outer,
    zero_rows,
)


def _store_plain(acc, stage, bias, out_row, first, step, count, co0):  # type: ignore[no-untyped-def]
    """out_row[first + i * step, co0 + j] = acc[i, j] + bias[co0 + j] for i < count, within C.

    Through stage, whole: an index of the tile that is not a constant of unrolled loops,
    even in a branch, would keep the tile out of registers everywhere.
    """
    nr = lanes(acc, VECTORS)
    for i in range(ROWS):
        for j in range(nr):
            stage[i, j] = acc[i, j]
    n_co = min(nr, out_row.shape[1] - co0)
    for i in range(count):
        pixel = out_row[first + i * step]
        for j in range(n_co):
            pixel[co0 + j] = stage[i, j] + bias[co0 + j]


_store = inlined(_store_plain)


def _forward_plain(x, w_blocks, taps_finite, b, y, sh, sw, dh, dw, top, left, task0, task1):  # type: ignore[no-untyped-def]
    """y[n, oy, ox] = b + sum over taps of x[n, iy, ix] @ w[ki, kj], for tasks task0..task1.

    A task is one output row x one block of output channels; w_blocks is (blocks, kh, kw,
    C_in, lanes), zero past C_out. Pixels outside x are zero rows; taps that read only those
    are skipped unless the tap (taps_finite is (kh, kw)) holds a non-finite weight: then they
    are multiplied as zeros, so that weight spreads to its whole channel, as in the reference.
    """
    nr = lanes(y, VECTORS)
    h, w_in, c_in = x.shape[1], x.shape[2], x.shape[3]
    n_blocks, kh, kw = w_blocks.shape[0], w_blocks.shape[1], w_blocks.shape[2]
    out_h, out_w = y.shape[1], y.shape[2]
    zeros = np.zeros(c_in, dtype=x.dtype)
    acc = numba.carray(register_tile(y, ROWS, VECTORS), (ROWS, nr))
    stage = np.empty((ROWS, nr), dtype=y.dtype)
    for task in range(task0, task1):
        row, blk = task // n_blocks, task % n_blocks
        img, oy = row // out_h, row % out_h
        for ox0 in range(0, out_w, ROWS):
            zero_rows(acc)
            for ki in range(kh):
                iy = jit_input_pixel(oy, ki, sh, dh, top)
                inside = 0 <= iy < h
                src = x[img, iy if inside else 0]
                for kj in range(kw):
                    if not inside and taps_finite[ki, kj]:
                        continue
                    ix = jit_input_pixel(ox0, kj, sw, dw, left)
                    w_tap = w_blocks[blk, ki, kj]
                    madd_rows(
                        acc,
                        src[ix] if inside and 0 <= ix < w_in else zeros,
                        src[ix + sw] if inside and 0 <= ix + sw < w_in else zeros,
                        src[ix + 2 * sw] if inside and 0 <= ix + 2 * sw < w_in else zeros,
                        src[ix + 3 * sw] if inside and 0 <= ix + 3 * sw < w_in else zeros,
                        src[ix + 4 * sw] if inside and 0 <= ix + 4 * sw < w_in else zeros,
                        src[ix + 5 * sw] if inside and 0 <= ix + 5 * sw < w_in else zeros,
                        w_tap,
                    )
            _store(acc, stage, b, y[img, oy], ox0, 1, min(ROWS, out_w - ox0), blk * nr)


def _backward_input_plain(dy, w_blocks, taps_finite, dx, sh, sw, dh, dw, top, left, task0, task1):  # type: ignore[no-untyped-def]
    """dx[n, iy, ix] = sum over the (tap, output pixel) pairs that read it of dy @ w_t[tap],
    for tasks task0..task1.

    A task is one input row x one block of input channels; w_blocks is (blocks, kh, kw,
    C_out, lanes), the transposed weights, zero past C_in. The input columns of one stride
    phase, ix = phase + k * sw, are read at tap kj by consecutive output columns (or by none,
    in every row), so 6 of them make a tile of consecutive dy pixels. Missing output pixels
    are zero rows, skipped where the tap's weights are finite: a non-finite weight thus
    spreads to its whole input channel either way.
    """
    nr = lanes(dx, VECTORS)
    h, w_in = dx.shape[1], dx.shape[2]
    n_blocks, kh, kw = w_blocks.shape[0], w_blocks.shape[1], w_blocks.shape[2]
    out_h, out_w, c_out = dy.shape[1], dy.shape[2], dy.shape[3]
    zeros = np.zeros(c_out, dtype=dy.dtype)
    no_bias = np.zeros(dx.shape[3], dtype=dx.dtype)
    acc = numba.carray(register_tile(dx, ROWS, VECTORS), (ROWS, nr))
    stage = np.empty((ROWS, nr), dtype=dx.dtype)
    for task in range(task0, task1):
        row, blk = task // n_blocks, task % n_blocks
        img, iy = row // h, row % h
        for phase in range(min(sw, w_in)):
            columns = -(-(w_in - phase) // sw)
            for k0 in range(0, columns, ROWS):
                zero_rows(acc)
                for ki in range(kh):
                    oy = jit_output_pixel(jit_tap_offset(iy, ki, dh, top), sh, out_h)
                    present = oy >= 0
                    src = dy[img, oy if present else 0]
                    for kj in range(kw):
                        # the tile's first output column, and whether this tap reads it whole
                        ox_num = jit_tap_offset(phase + k0 * sw, kj, dw, left)
                        aligned = present and ox_num % sw == 0
                        if not aligned and taps_finite[ki, kj]:
                            continue
                        ox = ox_num // sw
                        w_tap = w_blocks[blk, ki, kj]
                        madd_rows(
                            acc,
                            src[ox] if aligned and 0 <= ox < out_w else zeros,
                            src[ox + 1] if aligned and 0 <= ox + 1 < out_w else zeros,
                            src[ox + 2] if aligned and 0 <= ox + 2 < out_w else zeros,
                            src[ox + 3] if aligned and 0 <= ox + 3 < out_w else zeros,
                            src[ox + 4] if aligned and 0 <= ox + 4 < out_w else zeros,
                            src[ox + 5] if aligned and 0 <= ox + 5 < out_w else zeros,
                            w_tap,
                        )
                count = min(ROWS, columns - k0)
                _store(acc, stage, no_bias, dx[img, iy], phase + k0 * sw, sw, count, blk * nr)


def _backward_weight_plain(x, dy, dy_finite, dw_part, sh, sw, dh, dw, top, left, row0, row1):  # type: ignore[no-untyped-def]
    """dw_part += sum over the flat output rows row0..row1 of x[window].T @ dy[row].

    Tiles of OUTER_ROWS input x OUTER_TILES vectors of output channels sum over a row's
    pixels. Pixels outside x are skipped unless dy holds a non-finite value: then they are
    multiplied as zeros, so that value spreads to its whole channel of dw.
    """
    nr = lanes(dw_part, OUTER_TILES)
    h, w_in, c_in = x.shape[1], x.shape[2], x.shape[3]
    kh, kw = dw_part.shape[0], dw_part.shape[1]
    out_h, out_w, c_out = dy.shape[1], dy.shape[2], dy.shape[3]
    zero = np.zeros(1, dtype=x.dtype)[0]  # in x's dtype: a float 0.0 would make v0.. float64
    lo = numba.carray(register_tile(dw_part, OUTER_ROWS, 1), (OUTER_ROWS, lanes(dw_part, 1)))
    hi = numba.carray(register_tile(dw_part, OUTER_ROWS, 1), (OUTER_ROWS, lanes(dw_part, 1)))
    for row in range(row0, row1):
        img, oy = row // out_h, row % out_h
        grads = dy[img, oy]
        for ki in range(kh):
            iy = jit_input_pixel(oy, ki, sh, dh, top)
            inside = 0 <= iy < h
            if not inside and dy_finite:
                continue
            src = x[img, iy if inside else 0]
            for kj in range(kw):
                dw_tap = dw_part[ki, kj]
                for ci0 in range(0, c_in, OUTER_ROWS):
                    for co0 in range(0, c_out, nr):
                        if ci0 + OUTER_ROWS <= c_in and co0 + nr <= c_out:
                            zero_outer(lo, hi)
                            for ox in range(out_w):
                                ix = jit_input_pixel(ox, kj, sw, dw, left)
                                if inside and 0 <= ix < w_in:
                                    a = src[ix, ci0:]
                                    v0, v1, v2, v3 = a[0], a[1], a[2], a[3]
                                    v4, v5, v6, v7 = a[4], a[5], a[6], a[7]
                                elif dy_finite:
                                    continue
                                else:
                                    v0 = v1 = v2 = v3 = v4 = v5 = v6 = v7 = zero
                                madd_outer(lo, hi, v0, v1, v2, v3, v4, v5, v6, v7, grads[ox, co0:])
                            add_outer(lo, hi, dw_tap, ci0, co0)
                        else:
                            # the channels left over past the last whole tile, in memory
                            for ox in range(out_w):
                                ix = jit_input_pixel(ox, kj, sw, dw, left)
                                real = inside and 0 <= ix < w_in
                                if not real and dy_finite:
                                    continue
                                for i in range(ci0, min(ci0 + OUTER_ROWS, c_in)):
                                    value = src[ix, i] if real else zero
                                    for j in range(co0, min(co0 + nr, c_out)):
                                        dw_tap[i, j] += value * grads[ox, j]


# serial and GIL-free: worker threads run them on disjoint ranges (numba's parallel=True
# compiled for minutes on 2 cores)
_forward_jit: Callable[..., None] = kernel(_forward_plain)
_backward_input_jit: Callable[..., None] = kernel(_backward_input_plain)
_backward_weight_jit: Callable[..., None] = kernel(_backward_weight_plain)


def _taps_finite(w: NDArray[np.floating]) -> NDArray[np.bool_]:
    """(kh, kw): whether each kernel tap's weights are all finite."""
    return np.isfinite(w).all(axis=(2, 3))


class NumbaDirect(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "direct loops in numba: 6 pixels x 2 vectors of C_out in registers over all taps"
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
    #: channel blocks of a tile row, pixel tiles, dw's outer-product tiles, tasks over workers
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = (
        SizeThreshold(
            "output channels in tile-row blocks (y)",
            lambda geom, dtype: SizeThreshold.partial(geom.c_out, tile_lanes(dtype)),
        ),
        SizeThreshold(
            "input channels in tile-row blocks (dx)",
            lambda geom, dtype: SizeThreshold.partial(geom.c_in, tile_lanes(dtype)),
        ),
        SizeThreshold(
            "an output row's pixels in tiles of ROWS",
            lambda geom, dtype: SizeThreshold.partial(geom.out_w, ROWS),
        ),
        SizeThreshold(
            "dw's input x output channels in outer-product tiles",
            lambda geom, dtype: (
                SizeThreshold.partial(geom.c_in, OUTER_ROWS)
                and SizeThreshold.partial(geom.c_out, tile_lanes(dtype, OUTER_TILES))
            ),
        ),
        SizeThreshold(
            "output rows x channel blocks over the workers",
            lambda geom, dtype: splits_past_workers(
                geom.n * geom.out_h * -(-geom.c_out // tile_lanes(dtype)), geom.flops_forward // 2
            ),
        ),
    )

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """The weights in channel blocks, twice, and one dw partial per worker."""
        return weight_blocks_bytes(geom.kh, geom.kw, geom.c_in, geom.c_out, worker_count(), dtype)

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        x = np.ascontiguousarray(x)
        w_blocks = channel_blocks(w)
        y = np.empty(geom.y_shape, dtype=x.dtype)
        args = (x, w_blocks, _taps_finite(w), np.ascontiguousarray(b), y, *geom.index_params)
        tasks = geom.n * geom.out_h * w_blocks.shape[0]
        macs = geom.flops_forward // 2
        run_jobs(
            [partial(_forward_jit, *args, lo, hi) for lo, hi in split(tasks, macs)], blas=False
        )
        return y, (x, w.copy())

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x, w = saved
        dy = np.ascontiguousarray(dy)
        w_t = w.transpose(0, 1, 3, 2)
        w_blocks = channel_blocks(w_t)
        params = geom.index_params
        macs = geom.flops_forward // 2
        dx = np.empty(geom.x_shape, dtype=x.dtype)
        dx_args = (dy, w_blocks, _taps_finite(w_t), dx, *params)
        dx_tasks = split(geom.n * geom.h * w_blocks.shape[0], macs)
        db = bias_grad(dy)
        # a non-finite dy value makes its channel's sum non-finite
        dy_finite = bool(np.isfinite(db).all())
        partials = PartialSums(geom.w_shape, x.dtype)

        def dw_add(part: NDArray[np.floating], lo: int, hi: int) -> None:
            _backward_weight_jit(x, dy, dy_finite, part, *params, lo, hi)

        dw_jobs = partials.jobs(dw_add, geom.n * geom.out_h, macs)
        # each job writes only its own dx rows, or adds into its thread's dw partial
        dx_jobs = [partial(_backward_input_jit, *dx_args, lo, hi) for lo, hi in dx_tasks]
        run_jobs(dx_jobs + dw_jobs, blas=False)
        return dx, partials.total(), db

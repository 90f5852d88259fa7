"""Indirect convolution: a table of where each window's rows start in x, read by a micro-kernel.

For every output pixel and kernel tap the indirection table holds the offset of the C_in
input values that tap reads (or -1 where it reads padding, which the kernel reads as a zero
row), so y = b + sum over taps of x[table[p, tap]] @ w[tap]. A register-blocked micro-kernel
keeps 6 output pixels x 2 vectors of output channels in registers over all taps and input
channels, loading each input value once per tile through the table: the column matrix is
never written. dx is the same kernel run over dy with the transposed table (for each input
pixel and tap, the output pixel that read it there, if any: right for any stride) and the
transposed kernel; its pixels are ordered by stride phase so that taps no pixel of a tile
reads are skipped whole. dw sums, per tap, x rows read through the table times dy rows, in
tiles of input x output channels held in registers over chunks of pixels.
The tables index one image and serve every image of the batch; they depend only on the
geometry and are built once per geometry (a small cache), as XNNPACK builds its indirection
buffer once per input shape.
Memory: the two tables, (OH * OW + H * W) * kh * kw offsets of 8 bytes (plus one tile's
padding each); the weights in channel blocks, twice; one dw partial (kh * kw * C_in * C_out)
per worker.
Reference: Dukhan, "The Indirect Convolution Algorithm" (2019), and XNNPACK's indirection
buffer (src/indirection.c).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache, partial
from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._base import Backend, SizeThreshold
from ._geometry import ConvGeometry
from ._index import input_pixel, output_pixels, tap_offset
from ._parallel import PartialSums, run_jobs, split, splits_past_workers, worker_count
from ._reductions import bias_grad
from ._tiles import (
    OUTER_ROWS,
    OUTER_TILES,
    ROWS,
    VECTORS,
    add_outer,
    channel_blocks,
    kernel,
    lanes,
    madd_outer,
    madd_rows,
    register_tile,
    store_rows,
    tile_lanes,
    weight_blocks_bytes,
    zero_outer,
    zero_rows,
)

#: output pixels per dw work item: its dy rows and the x rows they read stay in L2
DW_PIXELS = 256
#: geometries whose tables are kept: the tables are reused by every call of one layer
TABLE_CACHE = 8


def _conv_rows_plain(src, table, order, w_blocks, bias, skippable, out, first, stop):  # type: ignore[no-untyped-def]
    """out[img, order[p]] = bias + sum over taps of src[img, table[p, tap]:][:depth] @ w[tap].

    For the tiles first <= tile < stop, each ROWS consecutive table rows of one image.

    Parameters
    ----------
    src : (N, S) the input of each image, flat; table offsets index it
    table : (tiles_per_image * ROWS, taps) offsets into an image of src, -1 for a zero row
    order : (tiles_per_image * ROWS,) the output pixel of each table row
    w_blocks : (n_blocks, taps, depth, lanes) the weights in blocks of output channels,
        zero past C_out
    bias : (C_out,)
    skippable : (taps,) whether a tap may be skipped where all of a tile's rows are zero
        (its weights are finite, so zeros times them add nothing)
    out : (N, pixels, C_out)
    """
    nr = lanes(out, VECTORS)
    n_blocks, taps, depth, _ = w_blocks.shape
    pixels, c_out = out.shape[1], out.shape[2]
    per_image = table.shape[0] // ROWS
    zeros = np.zeros(depth, dtype=src.dtype)
    acc = numba.carray(register_tile(out, ROWS, VECTORS), (ROWS, nr))
    stage = np.empty((ROWS, nr), dtype=out.dtype)
    no_bias = np.zeros(nr, dtype=out.dtype)
    for tile in range(first, stop):
        img, p0 = tile // per_image, (tile % per_image) * ROWS
        image = src[img]
        for blk in range(n_blocks):
            zero_rows(acc)
            for t in range(taps):
                o0, o1, o2 = table[p0, t], table[p0 + 1, t], table[p0 + 2, t]
                o3, o4, o5 = table[p0 + 3, t], table[p0 + 4, t], table[p0 + 5, t]
                if skippable[t] and max(o0, o1, o2, o3, o4, o5) < 0:
                    continue
                madd_rows(
                    acc,
                    image[o0:] if o0 >= 0 else zeros,
                    image[o1:] if o1 >= 0 else zeros,
                    image[o2:] if o2 >= 0 else zeros,
                    image[o3:] if o3 >= 0 else zeros,
                    image[o4:] if o4 >= 0 else zeros,
                    image[o5:] if o5 >= 0 else zeros,
                    w_blocks[blk, t],
                )
            co0 = blk * nr
            if p0 + ROWS <= pixels and co0 + nr <= c_out:
                store_rows(
                    acc,
                    bias[co0:],
                    out[img, order[p0], co0:],
                    out[img, order[p0 + 1], co0:],
                    out[img, order[p0 + 2], co0:],
                    out[img, order[p0 + 3], co0:],
                    out[img, order[p0 + 4], co0:],
                    out[img, order[p0 + 5], co0:],
                )
                continue
            # a tile cut by the last pixels or channels: through memory
            store_rows(acc, no_bias, stage[0], stage[1], stage[2], stage[3], stage[4], stage[5])
            for i in range(min(ROWS, pixels - p0)):
                y_row = out[img, order[p0 + i]]
                for j in range(min(nr, c_out - co0)):
                    y_row[co0 + j] = stage[i, j] + bias[co0 + j]


def _conv_weights_plain(src, table, dy, dy_finite, dw, first, stop):  # type: ignore[no-untyped-def]
    """dw[tap] += sum over the pixels p of work items first..stop of
    src[img, table[p, tap]:][:C_in] outer dy[img, p].

    A work item is DW_PIXELS output pixels of one image. src is (N, S), table
    (>= pixels, taps), dy (N, pixels, C_out) and dw (taps, C_in, C_out). Tiles are
    OUTER_ROWS input channels x OUTER_TILES vectors of output channels. Rows that read padding
    are skipped unless dy holds a non-finite value: then they are multiplied as zeros, so that
    value spreads to its whole channel of dw, as in the reference.
    """
    nr = lanes(dw, OUTER_TILES)
    taps, c_in, c_out = dw.shape
    pixels = dy.shape[1]
    per_image = -(-pixels // DW_PIXELS)
    zero = np.zeros(1, dtype=src.dtype)[0]  # in src's dtype: a float 0.0 would make v0.. float64
    lo = numba.carray(register_tile(dw, OUTER_ROWS, 1), (OUTER_ROWS, lanes(dw, 1)))
    hi = numba.carray(register_tile(dw, OUTER_ROWS, 1), (OUTER_ROWS, lanes(dw, 1)))
    for item in range(first, stop):
        img, p0 = item // per_image, (item % per_image) * DW_PIXELS
        p1 = min(p0 + DW_PIXELS, pixels)
        image, grads = src[img], dy[img]
        for t in range(taps):
            dw_tap = dw[t]
            for ci0 in range(0, c_in, OUTER_ROWS):
                for co0 in range(0, c_out, nr):
                    if ci0 + OUTER_ROWS <= c_in and co0 + nr <= c_out:
                        zero_outer(lo, hi)
                        for p in range(p0, p1):
                            off = table[p, t]
                            if off >= 0:
                                a = image[off + ci0 : off + ci0 + OUTER_ROWS]
                                v0, v1, v2, v3 = a[0], a[1], a[2], a[3]
                                v4, v5, v6, v7 = a[4], a[5], a[6], a[7]
                            elif dy_finite:
                                continue
                            else:
                                v0 = v1 = v2 = v3 = v4 = v5 = v6 = v7 = zero
                            madd_outer(lo, hi, v0, v1, v2, v3, v4, v5, v6, v7, grads[p, co0:])
                        add_outer(lo, hi, dw_tap, ci0, co0)
                    else:
                        # the channels left over past the last whole tile, in memory
                        n_ci, n_co = min(OUTER_ROWS, c_in - ci0), min(nr, c_out - co0)
                        for p in range(p0, p1):
                            off = table[p, t]
                            if off < 0 and dy_finite:
                                continue
                            for i in range(n_ci):
                                v = image[off + ci0 + i] if off >= 0 else zero
                                for j in range(n_co):
                                    dw_tap[ci0 + i, co0 + j] += v * grads[p, co0 + j]


_conv_rows = kernel(_conv_rows_plain)
_conv_weights = kernel(_conv_weights_plain)


def _padded_rows(count: int) -> int:
    return -(-count // ROWS) * ROWS


def _table(
    src_y: NDArray[np.intp], src_x: NDArray[np.intp], width: int, depth: int
) -> NDArray[np.intp]:
    """(pixels padded to whole tiles, taps): the offset (src_y * width + src_x) * depth of the
    source pixel each pixel reads at each tap, or -1 where src_y or src_x is -1 (none).

    src_y is (pixels, kh) and src_x (pixels, kw), a source row and column per pixel and tap
    row or column; a tap (ki, kj) is column ki * kw + kj of the table.
    """
    valid = (src_y[:, :, None] >= 0) & (src_x[:, None, :] >= 0)
    flat = (src_y[:, :, None] * width + src_x[:, None, :]) * depth
    offsets = np.where(valid, flat, -1).reshape(len(src_y), -1)
    table = np.full((_padded_rows(len(src_y)), offsets.shape[1]), -1, dtype=np.intp)
    table[: len(src_y)] = offsets
    return table


@lru_cache(maxsize=TABLE_CACHE)
def _tables(geom: ConvGeometry) -> tuple[NDArray[np.intp], ...]:
    """(forward table, forward order, dx table, dx order) of one image, read-only.

    Forward: output pixel p = (oy, ox) reads input pixel (input_pixel(oy, ki, ...),
    input_pixel(ox, kj, ...)) at tap (ki, kj) where that lies inside x. dx: input pixel
    (iy, ix) was read at tap (ki, kj) by output pixel (output_pixel(tap_offset(iy, ki, ...)),
    ...) where there is one (see impls._index); its pixels go in stride-phase order, so that
    the pixels of a tile share the taps that read them.
    """
    sh, sw, dh, dw, top, left = geom.index_params
    ki, kj = np.arange(geom.kh), np.arange(geom.kw)
    oy, ox = np.divmod(np.arange(geom.out_h * geom.out_w), geom.out_w)
    # at step 1, output_pixels keeps the pixels inside [0, size) and marks the others -1
    forward = _table(
        output_pixels(input_pixel(oy[:, None], ki, sh, dh, top), 1, geom.h),
        output_pixels(input_pixel(ox[:, None], kj, sw, dw, left), 1, geom.w),
        geom.w,
        geom.c_in,
    )
    iy, ix = np.divmod(np.arange(geom.h * geom.w), geom.w)
    order = np.lexsort((ix, iy, ix % sw, iy % sh))
    iy, ix = iy[order], ix[order]
    backward = _table(
        output_pixels(tap_offset(iy[:, None], ki, dh, top), sh, geom.out_h),
        output_pixels(tap_offset(ix[:, None], kj, dw, left), sw, geom.out_w),
        geom.out_w,
        geom.c_out,
    )
    tables = (forward, np.arange(geom.out_h * geom.out_w), backward, order)
    for table in tables:
        table.flags.writeable = False
    return tables


def _row_jobs(
    src: NDArray[np.floating],
    table: NDArray[np.intp],
    order: NDArray[np.intp],
    w_taps: NDArray[np.floating],
    bias: NDArray[np.floating],
    out: NDArray[np.floating],
    macs: int,
) -> list[partial[None]]:
    """Jobs for out[n, order[p]] = bias + sum over taps of src[n] at table[p, tap] @ w_taps[tap].

    src (N, ...) and out (N, ...) are read as one flat row of values per image, w_taps is
    (taps, depth, C); macs is the multiply-adds of the whole product.
    """
    n = src.shape[0]
    blocks, finite = channel_blocks(w_taps), _taps_finite(w_taps)
    rows = out.reshape(n, -1, bias.shape[0])
    return [
        partial(_conv_rows, src.reshape(n, -1), table, order, blocks, bias, finite, rows, lo, hi)
        for lo, hi in split(n * (table.shape[0] // ROWS), macs)
    ]


def _taps_finite(w_taps: NDArray[np.floating]) -> NDArray[np.bool_]:
    return np.isfinite(w_taps).all(axis=(1, 2))


class IndirectIm2col(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "indirection table of input rows read by a 6-pixel register-tile micro-kernel: no columns"
    )
    #: one of ours
    role: ClassVar[str] = "ours"
    #: saved holds x itself (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)
    #: padding and missing pixels are zero rows that multiply the weights like data
    nonfinite_spread: ClassVar[Mapping[str, str]] = {
        "y": "channel",
        "dx": "channel",
        "dw": "channel",
    }
    #: table rows in tiles of ROWS, channel blocks, dw's pixel items, tiles over workers
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = (
        SizeThreshold(
            "an image's output pixels in tiles of ROWS",
            lambda geom, dtype: SizeThreshold.partial(geom.out_h * geom.out_w, ROWS),
        ),
        SizeThreshold(
            "output channels in tile-row blocks (y)",
            lambda geom, dtype: SizeThreshold.partial(geom.c_out, tile_lanes(dtype)),
        ),
        SizeThreshold(
            "input channels in tile-row blocks (dx)",
            lambda geom, dtype: SizeThreshold.partial(geom.c_in, tile_lanes(dtype)),
        ),
        SizeThreshold(
            "dw's output pixels in items of DW_PIXELS",
            lambda geom, dtype: SizeThreshold.partial(geom.out_h * geom.out_w, DW_PIXELS),
        ),
        SizeThreshold(
            "dw's input x output channels in outer-product tiles",
            lambda geom, dtype: (
                SizeThreshold.partial(geom.c_in, OUTER_ROWS)
                and SizeThreshold.partial(geom.c_out, tile_lanes(dtype, OUTER_TILES))
            ),
        ),
        SizeThreshold(
            "pixel tiles over the workers",
            lambda geom, dtype: splits_past_workers(
                geom.n * -(-(geom.out_h * geom.out_w) // ROWS), geom.flops_forward // 2
            ),
        ),
    )

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """The two tables, the weight blocks twice and one dw partial per worker."""
        table_rows = _padded_rows(geom.out_h * geom.out_w) + _padded_rows(geom.h * geom.w)
        tables = table_rows * (geom.kh * geom.kw + 1) * np.dtype(np.intp).itemsize
        return tables + weight_blocks_bytes(
            geom.kh, geom.kw, geom.c_in, geom.c_out, worker_count(), dtype
        )

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        x = np.ascontiguousarray(x)
        table, order, _, _ = _tables(geom)
        y = np.empty(geom.y_shape, dtype=x.dtype)
        w_taps = w.reshape(geom.kh * geom.kw, geom.c_in, geom.c_out)
        jobs = _row_jobs(
            x, table, order, w_taps, np.ascontiguousarray(b), y, geom.flops_forward // 2
        )
        run_jobs(jobs, blas=False)
        return y, (x, w.copy())

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x, w = saved
        dy = np.ascontiguousarray(dy)
        table, _, table_t, order_t = _tables(geom)
        taps = geom.kh * geom.kw
        dx = np.empty(geom.x_shape, dtype=x.dtype)
        # dx: the forward kernel over dy, through the transposed table, with w as
        # (taps, C_out, C_in)
        w_t = w.reshape(taps, geom.c_in, geom.c_out).transpose(0, 2, 1)
        no_bias = np.zeros(geom.c_in, x.dtype)
        dx_jobs = _row_jobs(dy, table_t, order_t, w_t, no_bias, dx, geom.flops_forward // 2)
        # dw: one partial per thread, over disjoint ranges of pixels
        items = geom.n * -(-(geom.out_h * geom.out_w) // DW_PIXELS)
        db = bias_grad(dy)
        # a non-finite dy value makes its channel's sum non-finite
        dy_finite = bool(np.isfinite(db).all())
        grads = dy.reshape(geom.n, -1, geom.c_out)
        src = x.reshape(geom.n, -1)
        partials = PartialSums((taps, geom.c_in, geom.c_out), x.dtype)

        def dw_add(part: NDArray[np.floating], lo: int, hi: int) -> None:
            _conv_weights(src, table, grads, dy_finite, part, lo, hi)

        dw_jobs = partials.jobs(dw_add, items, geom.flops_forward // 2)
        run_jobs(dx_jobs + dw_jobs, blas=False)
        return dx, partials.total().reshape(geom.w_shape), db

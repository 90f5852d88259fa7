"""Winograd minimal filtering F(4x4, 3x3): 36 batched channel products instead of 9 taps.

Each 6x6 input tile d and 3x3 filter g become B^T d B and G g G^T; one 4x4 output tile is
A^T [(G g G^T) * (B^T d B)] A, so the channel sums for each of the 36 transformed positions
are one product (tiles, C_in) @ (C_in, C_out): 36 multiplies per 4x4 output tile instead of
the direct sum's 144. Tiles go through in cache-sized chunks, one numba job per core: the
transforms, spelled out with their constant coefficients, and the products, in register
tiles of 6 tiles x 2 vectors of channels (no BLAS call per chunk).
dx is the same pass over dy with the flipped kernel (exact at stride 1); dw is the adjoint
bilinear form G^T [sum over tiles (A dY A^T) * (B^T d B)] G over the forward's tiling.
The transforms mix a whole tile, so one non-finite input would spoil up to 16 outputs whose
windows never touch it, and large finite inputs (|x| near 1e36 in float32) overflow inside
them: both leave a non-finite output, which the output transform flags as it writes, and
the call is then redone by tiled_im2col's direct sums. Finite, well-scaled data never is.
Memory: two (36, CHUNK_TILES, C) chunk buffers per worker and the transformed filter (36 *
C_in * C_out, in channel blocks); for dw, one transformed partial (36 * C_in * C_out) per
worker and their float64 sum. Nothing is kept for backward but x and a copy of w. Only 3x3
kernels at stride 1 and dilation 1 (any padding).
Measured float32 error, max |err| / max |expected| against the float64 reference (normal
data, w scaled by 1/sqrt(9 C_in)): at N=16 56x56 64->64, y 5.9e-6, dx 8.9e-6, dw 4.5e-6,
db 3.1e-8; at N=8 128x128 32->32, y 5.2e-6, dx 6.5e-6, dw 4.9e-6 (tolerance: 1e-4).
Reference: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._base import Backend, SizeThreshold
from ._geometry import ConvGeometry
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
    stack_scratch,
    tile_lanes,
    zero_outer,
    zero_rows,
)
from .tiled_im2col import TiledIm2col

#: output tile side m of F(m x m, 3 x 3); the input tile is m + 2
TILE = 4
#: channels a transform handles at a time: its 6 x 6 intermediate values live on the stack
CHANNEL_BLOCK = 64
# the stack scratch sizes (constants, as numba needs them): a 6 x 6 and a 4 x 6 tile, 4 rows
_SCRATCH_36, _SCRATCH_24, _SCRATCH_4 = 36 * CHANNEL_BLOCK, 24 * CHANNEL_BLOCK, 4 * CHANNEL_BLOCK
#: tiles per chunk, a multiple of the register tile's ROWS: a chunk's transformed input and
#: output (36 x CHUNK_TILES x C each) stay in cache
CHUNK_TILES = 48
#: input transform B^T, (6, 6)
B_T = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=np.float64,
)
#: filter transform G, (6, 3)
G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=np.float64,
)
#: output transform A^T, (4, 6)
A_T = np.array(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
    dtype=np.float64,
)


# The 1-D transforms, spelled out (B^T, A^T and A above, row by row): with constant
# coefficients a transform is a few adds per value, vectorized over the channels.


@inlined
def _constants(a):  # type: ignore[no-untyped-def]
    """The transforms' coefficients 2, 4, 5 and 8 in a's dtype: a Python number times a
    float32 value would give a float64."""
    k = np.empty(4, dtype=a.dtype)
    k[0], k[1], k[2], k[3] = 2, 4, 5, 8
    return k[0], k[1], k[2], k[3]


@inlined
def _apply_b_t(s0, s1, s2, s3, s4, s5, o0, o1, o2, o3, o4, o5, n, k):  # type: ignore[no-untyped-def]
    """o_i[:n] = (B^T @ (s0, ..., s5))_i, value by value: an input tile's rows or columns.

    One loop per output: a loop that writes several arrays makes LLVM check at run time, for
    each pair, that they do not overlap, which for loops this short costs more than the loop.
    """
    two, four, five, _ = k
    for c in range(n):
        o0[c] = four * s0[c] - five * s2[c] + s4[c]
    for c in range(n):
        o1[c] = s3[c] + s4[c] - four * (s1[c] + s2[c])
    for c in range(n):
        o2[c] = four * (s1[c] - s2[c]) + s4[c] - s3[c]
    for c in range(n):
        o3[c] = two * (s3[c] - s1[c]) + s4[c] - s2[c]
    for c in range(n):
        o4[c] = two * (s1[c] - s3[c]) + s4[c] - s2[c]
    for c in range(n):
        o5[c] = four * s1[c] - five * s3[c] + s5[c]


@inlined
def _apply_a_t(s0, s1, s2, s3, s4, s5, o0, o1, o2, o3, n, k):  # type: ignore[no-untyped-def]
    """o_i[:n] = (A^T @ (s0, ..., s5))_i: an output tile's rows or columns."""
    two, four, _, eight = k
    for c in range(n):
        o0[c] = s0[c] + (s1[c] + s2[c]) + (s3[c] + s4[c])
    for c in range(n):
        o1[c] = (s1[c] - s2[c]) + two * (s3[c] - s4[c])
    for c in range(n):
        o2[c] = (s1[c] + s2[c]) + four * (s3[c] + s4[c])
    for c in range(n):
        o3[c] = (s1[c] - s2[c]) + eight * (s3[c] - s4[c]) + s5[c]


@inlined
def _apply_a(s0, s1, s2, s3, o0, o1, o2, o3, o4, o5, n, k):  # type: ignore[no-untyped-def]
    """o_i[:n] = (A @ (s0, ..., s3))_i: a dy tile's rows or columns, for dw."""
    two, four, _, eight = k
    for c in range(n):
        o0[c] = s0[c]
    for c in range(n):
        o1[c] = (s0[c] + s2[c]) + (s1[c] + s3[c])
    for c in range(n):
        o2[c] = (s0[c] + s2[c]) - (s1[c] + s3[c])
    for c in range(n):
        o3[c] = (s0[c] + four * s2[c]) + (two * s1[c] + eight * s3[c])
    for c in range(n):
        o4[c] = (s0[c] + four * s2[c]) - (two * s1[c] + eight * s3[c])
    for c in range(n):
        o5[c] = s3[c]


@inlined
def _tile_origin(t, tiles_h, tiles_w):  # type: ignore[no-untyped-def]
    """(image, first row, first column) of tile t."""
    img, r = t // (tiles_h * tiles_w), t % (tiles_h * tiles_w)
    return img, (r // tiles_w) * TILE, (r % tiles_w) * TILE


def _input_transform_plain(src, top, left, tiles_h, tiles_w, t0, count, v, zeros):  # type: ignore[no-untyped-def]
    """v[k * 6 + l, t] = (B^T d B)[k, l] for the tiles t0 + t, t < count, of src (N, H, W, C).

    Tile (img, ty, tx) reads the 6x6 patch d of src from (ty * 4 - top, tx * 4 - left),
    zeros outside; zeros is (C,). CHANNEL_BLOCK channels at a time, through stack scratch.
    """
    _, h, w, c = src.shape
    k = _constants(src)
    half = numba.carray(stack_scratch(src, _SCRATCH_36), (6, 6, CHANNEL_BLOCK))
    for t in range(count):
        img, y0, x0 = _tile_origin(t0 + t, tiles_h, tiles_w)
        y0, x0 = y0 - top, x0 - left
        for c0 in range(0, c, CHANNEL_BLOCK):
            n = min(CHANNEL_BLOCK, c - c0)
            # rows first: half[i] = (B^T d[i]^T)^T
            for i in range(6):
                h_i = half[i]
                # rows outside src read zeros: their image row is any in-range one
                inside = 0 <= y0 + i < h
                row = src[img, y0 + i if inside else 0]
                _apply_b_t(
                    row[x0, c0:] if inside and 0 <= x0 < w else zeros[c0:],
                    row[x0 + 1, c0:] if inside and 0 <= x0 + 1 < w else zeros[c0:],
                    row[x0 + 2, c0:] if inside and 0 <= x0 + 2 < w else zeros[c0:],
                    row[x0 + 3, c0:] if inside and 0 <= x0 + 3 < w else zeros[c0:],
                    row[x0 + 4, c0:] if inside and 0 <= x0 + 4 < w else zeros[c0:],
                    row[x0 + 5, c0:] if inside and 0 <= x0 + 5 < w else zeros[c0:],
                    h_i[0], h_i[1], h_i[2], h_i[3], h_i[4], h_i[5], n, k,
                )  # fmt: skip
            # then columns
            for j in range(6):
                _apply_b_t(
                    half[0, j], half[1, j], half[2, j], half[3, j], half[4, j], half[5, j],
                    v[j, t, c0:], v[6 + j, t, c0:], v[12 + j, t, c0:],
                    v[18 + j, t, c0:], v[24 + j, t, c0:], v[30 + j, t, c0:], n, k,
                )  # fmt: skip


def _products_plain(v, u_blocks, m, rows):  # type: ignore[no-untyped-def]
    """m[k, :rows] = v[k, :rows] @ u[k] for the 36 positions k, in register tiles.

    v is (36, R, C_in), m (36, R, blocks * lanes) and u_blocks (blocks, 36, C_in, lanes),
    with R a multiple of ROWS and rows <= R; rows past ``rows`` are computed from whatever
    v holds there, and never read.
    """
    nr = lanes(m, VECTORS)
    n_blocks = u_blocks.shape[0]
    acc = numba.carray(register_tile(m, ROWS, VECTORS), (ROWS, nr))
    for k in range(36):
        vk, mk = v[k], m[k]
        for r in range(0, rows, ROWS):
            for blk in range(n_blocks):
                zero_rows(acc)
                madd_rows(
                    acc,
                    vk[r],
                    vk[r + 1],
                    vk[r + 2],
                    vk[r + 3],
                    vk[r + 4],
                    vk[r + 5],
                    u_blocks[blk, k],
                )
                co0 = blk * nr
                for i in range(ROWS):
                    out = mk[r + i, co0:]
                    for j in range(nr):
                        out[j] = acc[i, j]


def _output_transform_plain(m, bias, dst, tiles_h, tiles_w, t0, count):  # type: ignore[no-untyped-def]
    """Output tile t0 + t = A^T M A + bias, M[k, l] = m[k * 6 + l, t], for t < count.

    dst is (N, OH, OW, C); the parts of edge tiles past OH or OW are dropped. Returns whether
    every output written is finite.
    """
    _, out_h, out_w, c = dst.shape
    k = _constants(dst)
    half = numba.carray(stack_scratch(dst, _SCRATCH_24), (TILE, 6, CHANNEL_BLOCK))
    edge = numba.carray(stack_scratch(dst, _SCRATCH_4), (TILE, CHANNEL_BLOCK))
    # stays zero while every output is finite: v - v is 0 for a finite v and NaN otherwise
    spoiled = numba.carray(stack_scratch(dst, CHANNEL_BLOCK), (CHANNEL_BLOCK,))
    spoiled[:] = 0.0
    for t in range(count):
        img, y0, x0 = _tile_origin(t0 + t, tiles_h, tiles_w)
        cols = min(TILE, out_w - x0)
        for c0 in range(0, c, CHANNEL_BLOCK):
            n = min(CHANNEL_BLOCK, c - c0)
            # columns first
            for j in range(6):
                _apply_a_t(
                    m[j, t, c0:], m[6 + j, t, c0:], m[12 + j, t, c0:],
                    m[18 + j, t, c0:], m[24 + j, t, c0:], m[30 + j, t, c0:],
                    half[0, j], half[1, j], half[2, j], half[3, j], n, k,
                )  # fmt: skip
            # then rows, into dst; an edge tile's columns past OW are dropped
            for i in range(min(TILE, out_h - y0)):
                row = dst[img, y0 + i]
                h_i = half[i]
                if cols == TILE:
                    outs = (row[x0, c0:], row[x0 + 1, c0:], row[x0 + 2, c0:], row[x0 + 3, c0:])
                else:
                    outs = (edge[0], edge[1], edge[2], edge[3])
                _apply_a_t(
                    h_i[0], h_i[1], h_i[2], h_i[3], h_i[4], h_i[5],
                    outs[0], outs[1], outs[2], outs[3], n, k,
                )  # fmt: skip
                for j in range(cols):
                    out = row[x0 + j, c0:]
                    if cols < TILE:
                        out[:n] = edge[j, :n]
                    for ci in range(n):
                        out[ci] += bias[c0 + ci]
                    for ci in range(n):
                        spoiled[ci] += out[ci] - out[ci]
    return not np.any(spoiled != 0.0)


def _correlate_plain(src, u_blocks, bias, dst, top, left, tiles_h, tiles_w, first, stop):  # type: ignore[no-untyped-def]
    """Tiles first..stop of the Winograd correlation of src with u into dst, chunk by chunk.

    Returns whether every value written is finite.
    """
    c_in = src.shape[3]
    width = u_blocks.shape[0] * u_blocks.shape[3]
    v = np.zeros((36, CHUNK_TILES, c_in), dtype=src.dtype)
    m = np.zeros((36, CHUNK_TILES, width), dtype=dst.dtype)
    zeros = np.zeros(c_in, dtype=src.dtype)
    finite = True
    for t0 in range(first, stop, CHUNK_TILES):
        count = min(CHUNK_TILES, stop - t0)
        _input_transform(src, top, left, tiles_h, tiles_w, t0, count, v, zeros)
        _products(v, u_blocks, m, count)
        finite &= _output_transform(m, bias, dst, tiles_h, tiles_w, t0, count)
    return finite


def _dy_transform_plain(dy, tiles_h, tiles_w, t0, count, e, zeros):  # type: ignore[no-untyped-def]
    """e[k * 6 + l, t] = (A g A^T)[k, l] for the 4x4 tiles g of dy (N, OH, OW, C) at
    (ty * 4, tx * 4), zeros past OH and OW; zeros is (C,)."""
    _, out_h, out_w, c = dy.shape
    k = _constants(dy)
    half = numba.carray(stack_scratch(dy, _SCRATCH_24), (TILE, 6, CHANNEL_BLOCK))
    for t in range(count):
        img, y0, x0 = _tile_origin(t0 + t, tiles_h, tiles_w)
        for c0 in range(0, c, CHANNEL_BLOCK):
            n = min(CHANNEL_BLOCK, c - c0)
            # rows first
            for i in range(TILE):
                h_i = half[i]
                # rows past OH read zeros: their dy row is any in-range one
                inside = y0 + i < out_h
                row = dy[img, y0 + i if inside else 0]
                _apply_a(
                    row[x0, c0:] if inside else zeros[c0:],
                    row[x0 + 1, c0:] if inside and x0 + 1 < out_w else zeros[c0:],
                    row[x0 + 2, c0:] if inside and x0 + 2 < out_w else zeros[c0:],
                    row[x0 + 3, c0:] if inside and x0 + 3 < out_w else zeros[c0:],
                    h_i[0], h_i[1], h_i[2], h_i[3], h_i[4], h_i[5], n, k,
                )  # fmt: skip
            # then columns
            for j in range(6):
                _apply_a(
                    half[0, j], half[1, j], half[2, j], half[3, j],
                    e[j, t, c0:], e[6 + j, t, c0:], e[12 + j, t, c0:],
                    e[18 + j, t, c0:], e[24 + j, t, c0:], e[30 + j, t, c0:], n, k,
                )  # fmt: skip


def _weight_products_plain(v, e, du, rows):  # type: ignore[no-untyped-def]
    """du[k] += v[k, :rows].T @ e[k, :rows] for the 36 positions k, in register tiles.

    v is (36, R, C_in), e (36, R, C_out), du (36, C_in, C_out); the tiles are OUTER_ROWS
    input channels x OUTER_TILES vectors of output channels, summed over the rows.
    """
    nr = lanes(du, OUTER_TILES)
    c_in, c_out = du.shape[1], du.shape[2]
    lo = numba.carray(register_tile(du, OUTER_ROWS, 1), (OUTER_ROWS, lanes(du, 1)))
    hi = numba.carray(register_tile(du, OUTER_ROWS, 1), (OUTER_ROWS, lanes(du, 1)))
    for k in range(36):
        vk, ek, duk = v[k], e[k], du[k]
        for ci0 in range(0, c_in, OUTER_ROWS):
            for co0 in range(0, c_out, nr):
                if ci0 + OUTER_ROWS <= c_in and co0 + nr <= c_out:
                    zero_outer(lo, hi)
                    for r in range(rows):
                        a = vk[r, ci0:]
                        madd_outer(
                            lo, hi, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], ek[r, co0:]
                        )
                    add_outer(lo, hi, duk, ci0, co0)
                else:
                    # the channels left over past the last whole tile, in memory
                    for r in range(rows):
                        for i in range(ci0, min(ci0 + OUTER_ROWS, c_in)):
                            value = vk[r, i]
                            for j in range(co0, min(co0 + nr, c_out)):
                                duk[i, j] += value * ek[r, j]


def _weight_grad_plain(src, dy, top, left, tiles_h, tiles_w, first, stop, du):  # type: ignore[no-untyped-def]
    """du += sum over tiles first..stop of (B^T d B) * (A g A^T), per channel pair."""
    c_in, c_out = src.shape[3], dy.shape[3]
    v = np.zeros((36, CHUNK_TILES, c_in), dtype=src.dtype)
    e = np.zeros((36, CHUNK_TILES, c_out), dtype=dy.dtype)
    zeros = np.zeros(max(c_in, c_out), dtype=src.dtype)
    for t0 in range(first, stop, CHUNK_TILES):
        count = min(CHUNK_TILES, stop - t0)
        _input_transform(src, top, left, tiles_h, tiles_w, t0, count, v, zeros)
        _dy_transform(dy, tiles_h, tiles_w, t0, count, e, zeros)
        _weight_products(v, e, du, count)


_input_transform = kernel(_input_transform_plain)
_products = kernel(_products_plain)
_output_transform = kernel(_output_transform_plain)
_correlate_jit = kernel(_correlate_plain)
_dy_transform = kernel(_dy_transform_plain)
_weight_products = kernel(_weight_products_plain)
_weight_grad = kernel(_weight_grad_plain)


#: exact direct sums, for the calls whose Winograd result has a non-finite value
_DIRECT = TiledIm2col()


def _quiet() -> np.errstate:
    """No numpy warnings for the transforms' overflows and NaNs: such calls are redone exactly."""
    return np.errstate(over="ignore", invalid="ignore")


def _sandwich(mat: NDArray[np.floating], t: NDArray[np.floating]) -> NDArray[np.floating]:
    """mat @ t @ mat.T over t's first two axes: (k, k, ...) -> (m, m, ...), in t's dtype."""
    m, k = mat.shape
    mat = mat.astype(t.dtype)
    rows = (mat @ t.reshape(k, -1)).reshape(m, k, -1)
    return np.matmul(mat, rows).reshape(m, m, *t.shape[2:])


def _filter_transform(w: NDArray[np.floating]) -> NDArray[np.floating]:
    """G g G^T for every (C_in, C_out) pair: (3, 3, C_in, C_out) -> (36, C_in, C_out)."""
    return _sandwich(G, w).reshape(36, *w.shape[2:])


def _tiles(size: int) -> int:
    return -(-size // TILE)


def _cost(u: NDArray[np.floating], n_tiles: int) -> int:
    """A call's work in multiply-adds, for splitting it: the products', twice, as the
    transforms take about as long."""
    return 2 * n_tiles * 36 * u.shape[1] * u.shape[2]


def _n_tiles(geom: ConvGeometry) -> int:
    """Output tiles of a forward call."""
    return geom.n * _tiles(geom.out_h) * _tiles(geom.out_w)


def _cost_of(geom: ConvGeometry) -> int:
    """``_cost`` of a forward call, from its geometry."""
    return 2 * _n_tiles(geom) * 36 * geom.c_in * geom.c_out


def _chunks_cross(geom: ConvGeometry, dtype: np.dtype) -> bool:
    """Some forward job has more tiles than a chunk, its last chunk partial."""
    ranges = split(_n_tiles(geom), _cost_of(geom))
    return any(SizeThreshold.partial(hi - lo, CHUNK_TILES) for lo, hi in ranges)


def _correlate(
    x: NDArray[np.floating],
    u: NDArray[np.floating],
    bias: NDArray[np.floating],
    top: int,
    left: int,
    out_h: int,
    out_w: int,
) -> tuple[NDArray[np.floating], bool]:
    """y[n, oy, ox] = sum over i, j of x[n, oy - top + i, ox - left + j] @ g[i, j], by Winograd.

    Parameters
    ----------
    x : array, shape (N, H, W, C_in); read as zero outside
    u : array, shape (36, C_in, C_out); the transformed 3x3 filter g
    bias : array, shape (C_out,)
    top, left : int
        Where output pixel (0, 0) reads x, negated; negative values skip rows or columns.
    out_h, out_w : int

    Returns
    -------
    y : array, shape (N, out_h, out_w, C_out)
    finite : bool
        Whether every value of y is finite; where one is not, y cannot be trusted.
    """
    x = np.ascontiguousarray(x)
    tiles_h, tiles_w = _tiles(out_h), _tiles(out_w)
    n_tiles = x.shape[0] * tiles_h * tiles_w
    y = np.empty((x.shape[0], out_h, out_w, u.shape[2]), dtype=x.dtype)
    args = (x, channel_blocks(u), np.ascontiguousarray(bias), y, top, left, tiles_h, tiles_w)
    jobs = [partial(_correlate_jit, *args, lo, hi) for lo, hi in split(n_tiles, _cost(u, n_tiles))]
    return y, all(run_jobs(jobs, blas=False))


class Winograd(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "Winograd F(4x4,3x3): 36 register-tiled channel products, 4x fewer multiplies (3x3, s1)"
    )
    #: one of ours
    role: ClassVar[str] = "ours"
    #: saved holds x itself (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)
    #: tile chunks, transform channel blocks, register tiles, tiles over workers
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = (
        SizeThreshold("a job's tiles in chunks of CHUNK_TILES", _chunks_cross),
        SizeThreshold(
            "input channels in transform blocks of CHANNEL_BLOCK",
            lambda geom, dtype: SizeThreshold.partial(geom.c_in, CHANNEL_BLOCK),
        ),
        SizeThreshold(
            "output channels in tile-row blocks",
            lambda geom, dtype: SizeThreshold.partial(geom.c_out, tile_lanes(dtype)),
        ),
        SizeThreshold(
            "a chunk's tiles in register tiles of ROWS",
            lambda geom, dtype: SizeThreshold.partial(_n_tiles(geom) % CHUNK_TILES, ROWS),
        ),
        SizeThreshold(
            "tiles over the workers",
            lambda geom, dtype: splits_past_workers(_n_tiles(geom), _cost_of(geom)),
        ),
    )

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """The transformed filter, per worker two chunk buffers, and dw's partials and sum."""
        itemsize = np.dtype(dtype).itemsize
        nr = tile_lanes(dtype)
        width = max(-(-geom.c_out // nr), -(-geom.c_in // nr)) * nr
        chunks = 36 * CHUNK_TILES * (geom.c_in + width)
        filters = 36 * geom.c_in * width
        workers = worker_count()
        # dw: per worker a partial, then their sum in float64
        partials = 36 * geom.c_in * geom.c_out * (workers * itemsize + 8)
        return (workers * chunks + filters) * itemsize + partials

    def supports(self, geom: ConvGeometry, dtype: DTypeLike) -> str | None:
        if (geom.kh, geom.kw) != (3, 3):
            return f"Winograd F(4x4, 3x3) needs a 3x3 kernel, got {geom.kh}x{geom.kw}"
        if geom.stride != (1, 1):
            return f"Winograd needs stride 1, got {geom.stride}"
        if geom.dilation != (1, 1):
            return f"Winograd needs dilation 1, got {geom.dilation}"
        return None

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        (top, _), (left, _) = geom.pad
        with _quiet():
            u = _filter_transform(w)
        y, finite = _correlate(x, u, b, top, left, geom.out_h, geom.out_w)
        if not finite:
            y, _ = _DIRECT.forward(x, w, b, padding=geom.pad)
        return y, (x, w.copy())

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x, w = saved
        dtype = dy.dtype
        dy = np.ascontiguousarray(dy)
        x = np.ascontiguousarray(x)
        (top, _), (left, _) = geom.pad
        # stride 1: dx is the correlation of dy with the flipped, transposed kernel
        w_flip = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))
        with _quiet():
            u_flip = _filter_transform(w_flip)
        dx, dx_finite = _correlate(
            dy,
            u_flip,
            np.zeros(geom.c_in, dtype=dtype),
            2 - top,
            2 - left,
            geom.h,
            geom.w,
        )
        # dw: the adjoint of the forward's bilinear form, over the forward's own tiling
        tiles_h, tiles_w = _tiles(geom.out_h), _tiles(geom.out_w)
        n_tiles = geom.n * tiles_h * tiles_w
        partials = PartialSums((36, geom.c_in, geom.c_out), dtype)

        def du_add(part: NDArray[np.floating], lo: int, hi: int) -> None:
            _weight_grad(x, dy, top, left, tiles_h, tiles_w, lo, hi, part)

        run_jobs(partials.jobs(du_add, n_tiles, _cost(u_flip, n_tiles)), blas=False)
        with _quiet():
            du_total = partials.total(np.float64)
            dw = _sandwich(G.T, du_total.reshape(6, 6, geom.c_in, geom.c_out)).astype(dtype)
        if not (dx_finite and np.isfinite(dw).all()):
            _, ctx = _DIRECT.forward(x, w, None, padding=geom.pad)
            return _DIRECT.backward(dy, ctx)
        db = bias_grad(dy)
        return dx, dw, db

"""Winograd minimal filtering F(4x4, 3x3): 36 batched channel products instead of 9 taps.

Each 6x6 input tile d and 3x3 filter g become B^T d B and G g G^T; one 4x4 output tile is
A^T [(G g G^T) * (B^T d B)] A, so the channel sums for each of the 36 transformed positions
are one BLAS product (tiles, C_in) @ (C_in, C_out): 36 multiplies per 4x4 output tile
instead of the direct sum's 144. Tiles go through in cache-sized chunks, one worker thread per core.
dx is the same pass over dy with the flipped kernel (exact at stride 1); dw is the adjoint
bilinear form G^T [sum over tiles (A dY A^T) * (B^T d B)] G over the forward's tiling.
The transforms mix a whole tile, so one non-finite input would spoil up to 16 outputs whose
windows never touch it, and large finite inputs (|x| near 1e36 in float32) overflow inside
them: both leave a non-finite output, which the output transform flags as it writes, and
the call is then redone by tiled_im2col's direct sums. Finite, well-scaled data never is.
Memory: two (36, CHUNK_TILES, C) chunk buffers per worker; nothing is kept for backward
but x and a copy of w. Only 3x3 kernels at stride 1 and dilation 1 (any padding).
Measured float32 error, max |err| / max |expected| against the float64 reference (normal
data, w scaled by 1/sqrt(9 C_in)): at N=16 56x56 64->64, y 4.7e-6, dx 6.5e-6, dw 4.0e-6,
db 3.5e-8; at N=8 128x128 32->32, y 4.3e-6, dx 6.0e-6, dw 4.1e-6 (tolerance: 1e-4).
Reference: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._base import Backend
from ._geometry import ConvGeometry, IntOrPair, PaddingSpec, resolve_geometry
from ._parallel import run_jobs, worker_count
from .tiled_im2col import TiledIm2col

#: output tile side m of F(m x m, 3 x 3); the input tile is m + 2
TILE = 4
#: tiles per chunk: a chunk's transformed input and output (36 x CHUNK_TILES x C each) stay in cache
CHUNK_TILES = 64
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


def _to_tiles_plain(src, mat, dst, top, left, tiles_h, tiles_w, t0, t1):  # type: ignore[no-untyped-def]
    """dst[:, t - t0] = mat @ patch @ mat.T for tiles t0 <= t < t1 of src.

    Tile t = (image, ty, tx) reads an (a, a) patch of src (N, H, W, C) from
    (ty * TILE - top, tx * TILE - left), zero outside; mat is (b, a), dst (b * b, >= t1 - t0, C).
    """
    _, src_h, src_w, c = src.shape
    b, a = mat.shape
    patch = np.empty((a, a, c), dtype=src.dtype)
    half = np.empty((b, a, c), dtype=src.dtype)
    for t in range(t0, t1):
        img, r = t // (tiles_h * tiles_w), t % (tiles_h * tiles_w)
        y0, x0 = (r // tiles_w) * TILE - top, (r % tiles_w) * TILE - left
        for i in range(a):
            for j in range(a):
                if 0 <= y0 + i < src_h and 0 <= x0 + j < src_w:
                    for ci in range(c):
                        patch[i, j, ci] = src[img, y0 + i, x0 + j, ci]
                else:
                    for ci in range(c):
                        patch[i, j, ci] = 0.0
        # rows first: half = mat @ patch
        for i in range(b):
            for j in range(a):
                for ci in range(c):
                    half[i, j, ci] = 0.0
            for k in range(a):
                m = mat[i, k]
                if m != 0.0:
                    for j in range(a):
                        for ci in range(c):
                            half[i, j, ci] += m * patch[k, j, ci]
        # then columns: half @ mat.T
        for i in range(b):
            for j in range(b):
                out = dst[i * b + j, t - t0]
                for ci in range(c):
                    out[ci] = 0.0
                for k in range(a):
                    m = mat[j, k]
                    if m != 0.0:
                        for ci in range(c):
                            out[ci] += m * half[i, k, ci]


#: exact direct sums, for the calls whose Winograd result has a non-finite value
_DIRECT = TiledIm2col()


def _quiet() -> np.errstate:
    """No numpy warnings for the transforms' overflows and NaNs: such calls are redone exactly."""
    return np.errstate(over="ignore", invalid="ignore")


def _from_tiles_plain(src, mat, bias, dst, tiles_h, tiles_w, t0, t1):  # type: ignore[no-untyped-def]
    """Output tile t = mat @ src[:, t - t0] @ mat.T + bias, the inverse direction of _to_tiles.

    src is (a * a, >= t1 - t0, C), mat is (TILE, a) and dst is (N, OH, OW, C); the parts
    of edge tiles past OH or OW are dropped. Returns whether every output written is finite.
    """
    _, out_h, out_w, c = dst.shape
    b, a = mat.shape
    half = np.empty((b, a, c), dtype=dst.dtype)
    # stays 0 while every output is finite: v - v is 0 for a finite v and NaN otherwise, a
    # test that vectorizes with the loop that writes the outputs
    spoiled = np.zeros(c, dtype=dst.dtype)
    for t in range(t0, t1):
        img, r = t // (tiles_h * tiles_w), t % (tiles_h * tiles_w)
        y0, x0 = (r // tiles_w) * TILE, (r % tiles_w) * TILE
        for i in range(b):
            for j in range(a):
                for ci in range(c):
                    half[i, j, ci] = 0.0
            for k in range(a):
                m = mat[i, k]
                if m != 0.0:
                    for j in range(a):
                        row = src[k * a + j, t - t0]
                        for ci in range(c):
                            half[i, j, ci] += m * row[ci]
        for i in range(min(b, out_h - y0)):
            for j in range(min(b, out_w - x0)):
                out = dst[img, y0 + i, x0 + j]
                for ci in range(c):
                    out[ci] = bias[ci]
                for k in range(a):
                    m = mat[j, k]
                    if m != 0.0:
                        for ci in range(c):
                            out[ci] += m * half[i, k, ci]
                for ci in range(c):
                    spoiled[ci] += out[ci] - out[ci]
    return not np.any(spoiled != 0.0)


_to_tiles = numba.njit(nogil=True, cache=True)(_to_tiles_plain)
_from_tiles = numba.njit(nogil=True, cache=True)(_from_tiles_plain)


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


def _chunks(n_tiles: int) -> tuple[int, int]:
    """(tiles per chunk, workers): a chunk's two transformed blocks stay in cache."""
    chunk = min(CHUNK_TILES, n_tiles)
    return chunk, min(worker_count(), -(-n_tiles // chunk))


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
    dtype = x.dtype
    x = np.ascontiguousarray(x)
    b_t, a_t = B_T.astype(dtype), A_T.astype(dtype)
    tiles_h, tiles_w = _tiles(out_h), _tiles(out_w)
    n_tiles = x.shape[0] * tiles_h * tiles_w
    y = np.empty((x.shape[0], out_h, out_w, u.shape[2]), dtype=dtype)
    chunk, workers = _chunks(n_tiles)

    def job(first: int) -> bool:
        v = np.empty((36, chunk, x.shape[3]), dtype=dtype)
        m = np.empty((36, chunk, u.shape[2]), dtype=dtype)
        finite = True
        with _quiet():
            for t0 in range(first * chunk, n_tiles, workers * chunk):
                t1 = min(t0 + chunk, n_tiles)
                _to_tiles(x, b_t, v, top, left, tiles_h, tiles_w, t0, t1)
                np.matmul(v[:, : t1 - t0], u, out=m[:, : t1 - t0])
                finite &= _from_tiles(m, a_t, bias, y, tiles_h, tiles_w, t0, t1)
        return finite

    return y, all(run_jobs([partial(job, t) for t in range(workers)]))


class Winograd(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "Winograd F(4x4,3x3): 36 batched BLAS channel products, 4x fewer multiplies (3x3, s1)"
    )
    #: one of ours
    role: ClassVar[str] = "ours"
    #: saved holds x itself (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)

    def supports(
        self,
        x_shape: tuple[int, ...],
        w_shape: tuple[int, ...],
        *,
        stride: IntOrPair = 1,
        padding: PaddingSpec = "VALID",
        dilation: IntOrPair = 1,
        dtype: DTypeLike = np.float32,
    ) -> str | None:
        geom = resolve_geometry(x_shape, w_shape, stride=stride, padding=padding, dilation=dilation)
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
        b_t, a = B_T.astype(dtype), A_T.T.astype(dtype)
        tiles_h, tiles_w = _tiles(geom.out_h), _tiles(geom.out_w)
        n_tiles = geom.n * tiles_h * tiles_w
        chunk, workers = _chunks(n_tiles)

        def job(first: int) -> NDArray[np.floating]:
            v = np.empty((36, chunk, geom.c_in), dtype=dtype)
            dy_hat = np.empty((36, chunk, geom.c_out), dtype=dtype)
            du = np.zeros((36, geom.c_in, geom.c_out), dtype=dtype)
            du_chunk = np.empty_like(du)
            with _quiet():
                for t0 in range(first * chunk, n_tiles, workers * chunk):
                    t1 = min(t0 + chunk, n_tiles)
                    _to_tiles(x, b_t, v, top, left, tiles_h, tiles_w, t0, t1)
                    _to_tiles(dy, a, dy_hat, 0, 0, tiles_h, tiles_w, t0, t1)
                    v_t = v[:, : t1 - t0].transpose(0, 2, 1)
                    np.matmul(v_t, dy_hat[:, : t1 - t0], out=du_chunk)
                    du += du_chunk
            return du

        with _quiet():
            du_total = np.sum(
                run_jobs([partial(job, t) for t in range(workers)]), axis=0, dtype=np.float64
            )
            dw = _sandwich(G.T, du_total.reshape(6, 6, geom.c_in, geom.c_out)).astype(dtype)
        if not (dx_finite and np.isfinite(dw).all()):
            _, ctx = _DIRECT.forward(x, w, None, padding=geom.pad)
            return _DIRECT.backward(dy, ctx)
        db = dy.reshape(-1, geom.c_out).sum(axis=0, dtype=np.float64).astype(dtype)
        return dx, dw, db

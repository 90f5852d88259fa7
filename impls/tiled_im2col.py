"""Cache-blocked im2col + GEMM: the column matrix is built one L2-sized block at a time.

Each worker thread gathers a block of output pixels' input windows into its own small
column buffer (numba, GIL released) and multiplies it with single-threaded BLAS straight
into its slice of y, so the gather and the product of one block share one core's L2.
Backward regathers each block for dw and scatters each block's column gradient into dx;
workers own whole images there, so the scatter needs no locks. Where the column matrix is x
itself (a 1x1 kernel at stride 1, no padding), nothing is gathered or scattered: each block
of x, of dy and of dx takes part in its products as it is.
Memory: one (BLOCK_BYTES) column buffer and two dw blocks (kh * kw * C_in * C_out each) per
worker, and the weight matrix twice (as it is and transposed); never the full k²-inflated
matrix.
Reference: Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (2008),
for blocking to the cache; Chellapilla et al. (2006) for im2col.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numba
import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._base import Backend, SizeThreshold
from ._geometry import ConvGeometry
from ._index import jit_input_pixel
from ._parallel import run_jobs, worker_count
from ._reductions import bias_grad


def _l2_bytes(default: int = 1 << 20) -> int:
    """One core's L2 cache size from Linux sysfs, or ``default`` where it cannot be read."""
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip()
                return int(size.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(size[-1], 0)
        except (OSError, ValueError):
            break
    return default


#: bytes of one worker's column buffer: one core's L2, so a block is gathered and multiplied
#: in cache (measured flat from 128 KiB to 2 MiB on a 512 KiB-L2 EPYC; 64 KiB is slower)
BLOCK_BYTES = _l2_bytes()


def _window_params(geom: ConvGeometry) -> tuple[int, ...]:
    """The integers the jitted loops need, in their argument order."""
    return geom.out_h, geom.out_w, *geom.index_params, geom.kh, geom.kw


def _gather_plain(x, cols, p0, p1, out_h, out_w, sh, sw, dh, dw, top, left, kh, kw):  # type: ignore[no-untyped-def]
    """cols[p - p0] = the (kh, kw, C_in) input window of flat output pixel p, zeros outside x."""
    h, w, c_in = x.shape[1], x.shape[2], x.shape[3]
    for p in range(p0, p1):
        n, r = divmod(p, out_h * out_w)
        oy, ox = divmod(r, out_w)
        row = cols[p - p0]
        for ki in range(kh):
            iy = jit_input_pixel(oy, ki, sh, dh, top)
            for kj in range(kw):
                ix = jit_input_pixel(ox, kj, sw, dw, left)
                base = (ki * kw + kj) * c_in
                if 0 <= iy < h and 0 <= ix < w:
                    for ci in range(c_in):
                        row[base + ci] = x[n, iy, ix, ci]
                else:
                    for ci in range(c_in):
                        row[base + ci] = 0.0


def _scatter_plain(dx, dcols, p0, p1, out_h, out_w, sh, sw, dh, dw, top, left, kh, kw):  # type: ignore[no-untyped-def]
    """The adjoint of the gather: dx[window of p] += dcols[p - p0]; padding taps dropped."""
    h, w, c_in = dx.shape[1], dx.shape[2], dx.shape[3]
    for p in range(p0, p1):
        n, r = divmod(p, out_h * out_w)
        oy, ox = divmod(r, out_w)
        row = dcols[p - p0]
        for ki in range(kh):
            iy = jit_input_pixel(oy, ki, sh, dh, top)
            if iy < 0 or iy >= h:
                continue
            for kj in range(kw):
                ix = jit_input_pixel(ox, kj, sw, dw, left)
                if 0 <= ix < w:
                    base = (ki * kw + kj) * c_in
                    for ci in range(c_in):
                        dx[n, iy, ix, ci] += row[base + ci]


_gather = numba.njit(nogil=True, cache=True)(_gather_plain)
_scatter = numba.njit(nogil=True, cache=True)(_scatter_plain)


def _columns_are_x(geom: ConvGeometry) -> bool:
    """Whether the column matrix is x itself: a 1x1 kernel at stride 1 without padding."""
    return (geom.kh, geom.kw, geom.stride, geom.pad) == (1, 1, (1, 1), ((0, 0), (0, 0)))


def _block_rows(geom: ConvGeometry, itemsize: int) -> int:
    """Output pixels per column block: as many as BLOCK_BYTES hold, at least one."""
    return max(1, BLOCK_BYTES // (geom.cols_shape[1] * itemsize))


def _forward_blocks_cross(geom: ConvGeometry, dtype: np.dtype) -> bool:
    """More column blocks than workers (each takes a second one), the last one partial."""
    rows, block = geom.cols_shape[0], _block_rows(geom, dtype.itemsize)
    return -(-rows // block) > worker_count() >= 2 and rows % block != 0


def _backward_blocks_cross(geom: ConvGeometry, dtype: np.dtype) -> bool:
    """More images than workers (each takes a second one), an image's last block partial."""
    per_image, block = geom.out_h * geom.out_w, _block_rows(geom, dtype.itemsize)
    return geom.n > worker_count() >= 2 and per_image > block and per_image % block != 0


def _ranges(start: int, stop: int, step: int) -> Iterator[tuple[int, int]]:
    for p0 in range(start, stop, step):
        yield p0, min(p0 + step, stop)


class TiledIm2col(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "im2col one L2-sized block at a time, each block multiplied by BLAS into its slice of y"
    )
    #: one of ours
    role: ClassVar[str] = "ours"
    #: saved holds x itself (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)
    #: column blocks over workers in forward, images over workers in backward
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = (
        SizeThreshold(
            "forward's column blocks over the workers",
            _forward_blocks_cross,
            "impls.tiled_im2col:BLOCK_BYTES",
            4096,
        ),
        SizeThreshold(
            "backward's images over the workers, each in column blocks",
            _backward_blocks_cross,
            "impls.tiled_im2col:BLOCK_BYTES",
            4096,
        ),
    )

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """Per worker a column buffer and two dw blocks, and the weight matrix twice."""
        itemsize = np.dtype(dtype).itemsize
        rows, k = geom.cols_shape
        block = min(_block_rows(geom, itemsize), rows) * k
        weights = k * geom.c_out
        return (worker_count() * (block + 2 * weights) + 2 * weights) * itemsize

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        x = np.ascontiguousarray(x)
        rows, k = geom.cols_shape
        # a private copy: w may be changed in place before backward
        w_mat = np.array(w.reshape(k, geom.c_out), order="C")
        y = np.empty(geom.y_shape, dtype=x.dtype)
        y_mat = y.reshape(rows, geom.c_out)
        block = _block_rows(geom, x.itemsize)
        workers = min(worker_count(), -(-rows // block))
        params = _window_params(geom)

        # a 1x1 kernel at stride 1 without padding: the column matrix is x itself
        x_mat = x.reshape(rows, k) if _columns_are_x(geom) else None

        def job(first: int) -> None:
            cols = np.empty((block, k), dtype=x.dtype) if x_mat is None else x_mat
            for p0 in range(first * block, rows, workers * block):
                p1 = min(p0 + block, rows)
                if x_mat is None:
                    _gather(x, cols, p0, p1, *params)
                    block_cols = cols[: p1 - p0]
                else:
                    block_cols = x_mat[p0:p1]
                np.matmul(block_cols, w_mat, out=y_mat[p0:p1])
                y_mat[p0:p1] += b

        run_jobs([partial(job, t) for t in range(workers)])
        return y, (x, w_mat)

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x, w_mat = saved
        rows, k = geom.cols_shape
        dy_mat = np.ascontiguousarray(dy).reshape(rows, geom.c_out)
        w_mat_t = np.ascontiguousarray(w_mat.T)
        block = _block_rows(geom, x.itemsize)
        per_image = geom.out_h * geom.out_w
        workers = min(worker_count(), geom.n)
        params = _window_params(geom)

        # a 1x1 kernel at stride 1 without padding: the column matrix is x, its gradient dx
        x_mat = x.reshape(rows, k) if _columns_are_x(geom) else None
        dx = (np.empty if x_mat is not None else np.zeros)(geom.x_shape, dtype=x.dtype)
        dx_mat = dx.reshape(-1, geom.c_in)

        def job(first: int) -> NDArray[np.floating]:
            # a worker owns images first, first + workers, ...: its dx scatter never collides
            cols = np.empty((block, k), dtype=x.dtype)
            dw_mat = np.zeros((k, geom.c_out), dtype=x.dtype)
            dw_block = np.empty_like(dw_mat)
            for image in range(first, geom.n, workers):
                for p0, p1 in _ranges(image * per_image, (image + 1) * per_image, block):
                    m = p1 - p0
                    if x_mat is not None:
                        np.matmul(x_mat[p0:p1].T, dy_mat[p0:p1], out=dw_block)
                        dw_mat += dw_block
                        np.matmul(dy_mat[p0:p1], w_mat_t, out=dx_mat[p0:p1])
                        continue
                    _gather(x, cols, p0, p1, *params)
                    np.matmul(cols[:m].T, dy_mat[p0:p1], out=dw_block)
                    dw_mat += dw_block
                    np.matmul(dy_mat[p0:p1], w_mat_t, out=cols[:m])
                    _scatter(dx, cols, p0, p1, *params)
            return dw_mat

        dw_mat = sum(run_jobs([partial(job, t) for t in range(workers)]))
        db = bias_grad(dy_mat)
        return dx, np.asarray(dw_mat).reshape(geom.w_shape), db

"""im2col, col2im, bias and a tiled matrix product as numba.cuda kernels, all on the GPU.

im2col writes the column matrix straight from the unpadded input (out-of-range taps are
zeros, so padding never leaves the device), a shared-memory GEMM with register blocking
multiplies it by the weights and adds the bias in its epilogue, and col2im gathers each
input pixel's gradient from the windows that cover it, so no two threads write one place.
Memory: the column matrix (N * OH * OW * kh * kw * C_in items) is kept from forward to
backward, and backward allocates one more of that size for dcols.
Reference: Chellapilla, Puri & Simard, "High Performance Convolutional Neural Networks for
Document Processing" (2006).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any, ClassVar

import numpy as np
from numba import cuda
from numpy.typing import NDArray

from ._base import Backend
from ._geometry import ConvGeometry

try:
    from numba.cuda.core.config import ENABLE_CUDASIM as _SIMULATED
except ImportError:  # an older numba-cuda keeps the flag in numba's own config
    from numba.config import ENABLE_CUDASIM as _SIMULATED

#: (x, y) threads per block of the elementwise kernels: x runs along memory, 32 = one warp;
#: the simulator runs one Python thread per CUDA thread, so it gets small blocks and grids
THREADS_PER_BLOCK = (4, 4) if _SIMULATED else (32, 8)
#: most blocks a launch gets along (x, y); grid-stride loops in the kernels cover the rest
MAX_GRID = (2, 2) if _SIMULATED else (2**31 - 1, 65535)
#: the GEMM block is GEMM_THREADS x GEMM_THREADS threads, each computing MICRO x MICRO outputs
GEMM_THREADS, MICRO, TILE_K = (4, 4, 16) if _SIMULATED else (16, 4, 16)
#: rows and columns of C computed by one GEMM block
TILE = GEMM_THREADS * MICRO
#: aim for at least this many blocks (2 per SM of an H100), splitting a reduction when the
#: output alone gives fewer
TARGET_BLOCKS = 8 if _SIMULATED else 264

# shared-memory elements each thread stages per K step, for one operand
_LOADS = TILE * TILE_K // (GEMM_THREADS * GEMM_THREADS)
assert _LOADS * GEMM_THREADS * GEMM_THREADS == TILE * TILE_K

Saved = tuple[Any, Any]


def _grid(extent: tuple[int, int], threads: tuple[int, int]) -> tuple[int, int]:
    """Blocks covering ``extent`` = (x, y) items with ``threads`` per block, up to MAX_GRID."""
    return (
        min(math.ceil(extent[0] / threads[0]), MAX_GRID[0]),
        min(math.ceil(extent[1] / threads[1]), MAX_GRID[1]),
    )


def _conv_args(geom: ConvGeometry) -> tuple[int, ...]:
    """The geometry as the flat int tuple the im2col and col2im kernels unpack."""
    return (geom.kh, geom.kw, *geom.index_params, geom.out_h, geom.out_w)


@cuda.jit
def _im2col_kernel(x, cols, conv):  # type: ignore[no-untyped-def]
    _, kw, sh, sw, dh, dw, top, left, out_h, out_w = conv
    _, h, w, c_in = x.shape
    # x along a cols row: neighbouring threads write neighbouring addresses
    col0, row0 = cuda.grid(2)
    col_step, row_step = cuda.gridsize(2)
    for row in range(row0, cols.shape[0], row_step):
        img, pixel = row // (out_h * out_w), row % (out_h * out_w)
        oy, ox = pixel // out_w, pixel % out_w
        for col in range(col0, cols.shape[1], col_step):
            ki, kj, c = col // (kw * c_in), (col // c_in) % kw, col % c_in
            iy = oy * sh + ki * dh - top
            ix = ox * sw + kj * dw - left
            if 0 <= iy < h and 0 <= ix < w:
                cols[row, col] = x[img, iy, ix, c]
            else:
                cols[row, col] = 0


@cuda.jit
def _col2im_kernel(dcols, dx, conv):  # type: ignore[no-untyped-def]
    kh, kw, sh, sw, dh, dw, top, left, out_h, out_w = conv
    n, h, w, c_in = dx.shape
    # one thread per dx element, x along (W, C_in): a gather, so no write races
    col0, row0 = cuda.grid(2)
    col_step, row_step = cuda.gridsize(2)
    for row in range(row0, n * h, row_step):
        img, iy = row // h, row % h
        for col in range(col0, w * c_in, col_step):
            ix, c = col // c_in, col % c_in
            # float64 sum: at most kh * kw terms, and the kernel is bound by memory anyway
            total = 0.0
            for ki in range(kh):
                # which output row, if any, reads input row iy through kernel row ki
                ty = iy + top - ki * dh
                if ty >= 0 and ty % sh == 0 and ty // sh < out_h:
                    for kj in range(kw):
                        tx = ix + left - kj * dw
                        if tx >= 0 and tx % sw == 0 and tx // sw < out_w:
                            pixel = (img * out_h + ty // sh) * out_w + tx // sw
                            total += dcols[pixel, (ki * kw + kj) * c_in + c]
            dx[img, iy, ix, c] = total


@cuda.jit
def _copy4d_kernel(src, dst):  # type: ignore[no-untyped-def]
    a, b, c, d = dst.shape
    col0, row0 = cuda.grid(2)
    col_step, row_step = cuda.gridsize(2)
    for row in range(row0, a * b, row_step):
        for col in range(col0, c * d, col_step):
            dst[row // b, row % b, col // d, col % d] = src[row // b, row % b, col // d, col % d]


@cuda.jit
def _zero_kernel(out):  # type: ignore[no-untyped-def]
    col0, row0 = cuda.grid(2)
    col_step, row_step = cuda.gridsize(2)
    for row in range(row0, out.shape[0], row_step):
        for col in range(col0, out.shape[1], col_step):
            out[row, col] = 0


@cache
def _gemm_kernel(dtype: np.dtype, trans_a: bool, trans_b: bool, epilogue: str):  # type: ignore[no-untyped-def]
    """A kernel for c = op(a) @ op(b), op being a transpose where asked, then ``epilogue``.

    ``epilogue`` is "store", "bias" (store c + bias[None, :]) or "atomic" (add into a zeroed
    c, for split-K). Block (bx, by, bz) computes the TILE x TILE blocks of c at
    (i * TILE, j * TILE) for i = by, by + gridDim.y, ... and j = bx, bx + gridDim.x, ...,
    from the K range [bz * k_chunk, (bz + 1) * k_chunk).
    """
    scalar = dtype.type
    atomic, add_bias = epilogue == "atomic", epilogue == "bias"

    @cuda.jit
    def gemm(a, b, bias, c, k_chunk):  # type: ignore[no-untyped-def]
        # one declaration a line: the simulator tells shared arrays apart by source line;
        # the extra column keeps the K-fastest tile stores (no transpose) off one bank
        a_tile = cuda.shared.array((TILE_K, TILE + 1), scalar)
        b_tile = cuda.shared.array((TILE_K, TILE + 1), scalar)
        acc = cuda.local.array((MICRO, MICRO), scalar)
        a_reg = cuda.local.array(MICRO, scalar)
        b_reg = cuda.local.array(MICRO, scalar)
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * GEMM_THREADS + tx
        k_begin = cuda.blockIdx.z * k_chunk
        k_end = min(k, k_begin + k_chunk)
        for m0 in range(cuda.blockIdx.y * TILE, m, cuda.gridDim.y * TILE):
            for n0 in range(cuda.blockIdx.x * TILE, n, cuda.gridDim.x * TILE):
                for i in range(MICRO):
                    for j in range(MICRO):
                        acc[i, j] = 0
                for k0 in range(k_begin, k_end, TILE_K):
                    # stage both tiles K-major; consecutive threads read consecutive addresses
                    for load in range(_LOADS):
                        idx = tid + load * GEMM_THREADS * GEMM_THREADS
                        if trans_a:
                            kk, mm = idx // TILE, idx % TILE
                        else:
                            kk, mm = idx % TILE_K, idx // TILE_K
                        if m0 + mm < m and k0 + kk < k_end:
                            if trans_a:
                                a_tile[kk, mm] = a[k0 + kk, m0 + mm]
                            else:
                                a_tile[kk, mm] = a[m0 + mm, k0 + kk]
                        else:
                            a_tile[kk, mm] = 0
                        if trans_b:
                            kk, nn = idx % TILE_K, idx // TILE_K
                        else:
                            kk, nn = idx // TILE, idx % TILE
                        if n0 + nn < n and k0 + kk < k_end:
                            if trans_b:
                                b_tile[kk, nn] = b[n0 + nn, k0 + kk]
                            else:
                                b_tile[kk, nn] = b[k0 + kk, n0 + nn]
                        else:
                            b_tile[kk, nn] = 0
                    cuda.syncthreads()
                    # register blocking: MICRO + MICRO shared reads feed MICRO * MICRO
                    # multiply-adds; a thread's rows and columns are GEMM_THREADS apart, so a
                    # warp reads consecutive b_tile entries and writes consecutive c entries
                    for kk in range(TILE_K):
                        for i in range(MICRO):
                            a_reg[i] = a_tile[kk, ty + i * GEMM_THREADS]
                        for j in range(MICRO):
                            b_reg[j] = b_tile[kk, tx + j * GEMM_THREADS]
                        for i in range(MICRO):
                            for j in range(MICRO):
                                acc[i, j] += a_reg[i] * b_reg[j]
                    # the tiles are overwritten next step only once every thread is done
                    cuda.syncthreads()
                for i in range(MICRO):
                    row = m0 + ty + i * GEMM_THREADS
                    for j in range(MICRO):
                        col = n0 + tx + j * GEMM_THREADS
                        if row < m and col < n:
                            if atomic:
                                cuda.atomic.add(c, (row, col), acc[i, j])
                            elif add_bias:
                                c[row, col] = acc[i, j] + bias[col]
                            else:
                                c[row, col] = acc[i, j]

    return gemm


@cache
def _bias_grad_kernel(dtype: np.dtype):  # type: ignore[no-untyped-def]
    """A kernel adding the column sums of a (M, C) matrix into a zeroed db (C,).

    Block (bx, by) sums rows [by * rows_per_block, (by + 1) * rows_per_block) of each
    column tile bx, bx + gridDim.x, ..., then adds one partial sum per column.
    """
    scalar = dtype.type
    width, height = THREADS_PER_BLOCK

    @cuda.jit
    def bias_grad(dy_mat, db, rows_per_block):  # type: ignore[no-untyped-def]
        partial = cuda.shared.array((height, width), scalar)
        rows, c_out = dy_mat.shape
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row_begin = cuda.blockIdx.y * rows_per_block
        row_end = min(rows, row_begin + rows_per_block)
        for col0 in range(cuda.blockIdx.x * width, c_out, cuda.gridDim.x * width):
            col = col0 + tx
            total = scalar(0)
            if col < c_out:
                # x along a dy row: coalesced reads
                for row in range(row_begin + ty, row_end, height):
                    total += dy_mat[row, col]
            partial[ty, tx] = total
            cuda.syncthreads()
            if ty == 0 and col < c_out:
                for i in range(1, height):
                    total += partial[i, tx]
                cuda.atomic.add(db, col, total)
            # partial is overwritten next tile only once row 0 has read it
            cuda.syncthreads()

    return bias_grad


def _zeros(shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """A zero-filled device array, filled on the device."""
    out = cuda.device_array(shape, dtype)
    flat = out.reshape(1, out.size)
    _zero_kernel[_grid((out.size, 1), THREADS_PER_BLOCK), THREADS_PER_BLOCK](flat)
    return out


def _matmul(
    a: Any, b: Any, *, trans_a: bool = False, trans_b: bool = False, bias: Any = None
) -> Any:
    """op(a) @ op(b) (+ bias) on the device; op transposes where asked.

    Parameters
    ----------
    a : device array, shape (M, K), or (K, M) with ``trans_a``
    b : device array, shape (K, N), or (N, K) with ``trans_b``
    bias : device array, shape (N,), optional
        Added to every row of the product, in the same kernel.

    Returns
    -------
    c : device array, shape (M, N), of a's dtype
    """
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    dtype = np.dtype(a.dtype)
    grid_x, grid_y = _grid((n, m), (TILE, TILE))
    k_steps = math.ceil(k / TILE_K)
    # split K over the grid's z axis when M and N alone leave the GPU idle (dw is such a case);
    # the bias is then added elsewhere, so a biased product is never split
    splits = 1 if bias is not None else min(k_steps, math.ceil(TARGET_BLOCKS / (grid_x * grid_y)))
    k_chunk = math.ceil(k_steps / splits) * TILE_K
    splits = math.ceil(k / k_chunk)
    if splits > 1:
        c, epilogue = _zeros((m, n), dtype), "atomic"
    else:
        c, epilogue = cuda.device_array((m, n), dtype), "store" if bias is None else "bias"
    kernel = _gemm_kernel(dtype, trans_a, trans_b, epilogue)
    # an unused bias argument still needs an array of the right dtype
    bias_arg = c[0] if bias is None else bias
    kernel[(grid_x, grid_y, splits), (GEMM_THREADS, GEMM_THREADS)](a, b, bias_arg, c, k_chunk)
    return c


def _on_device(a: Any) -> Any:
    """A device array holding ``a``: moved there if it is on the host, never a host copy."""
    if hasattr(a, "copy_to_host"):
        device = a
    elif hasattr(a, "__cuda_array_interface__"):
        device = cuda.as_cuda_array(a)
    else:
        return cuda.to_device(np.ascontiguousarray(a))
    if device.ndim == 4 and not device.is_c_contiguous():
        # reshaping into a matrix needs C order: copy on the device
        packed = cuda.device_array(device.shape, device.dtype)
        a_, b_, c_, d_ = device.shape
        grid = _grid((c_ * d_, a_ * b_), THREADS_PER_BLOCK)
        _copy4d_kernel[grid, THREADS_PER_BLOCK](device, packed)
        return packed
    return device


class NumbaCuda(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "numba.cuda kernels: coalesced im2col, shared-memory tiled GEMM with fused bias, "
        "gather col2im"
    )
    #: arrays stay on the GPU between calls
    device: ClassVar[str] = "gpu"
    #: a textbook strategy, written for the GPU
    role: ClassVar[str] = "seed"
    #: saved holds the column matrix and a device copy of w, both private
    saved_by_reference: ClassVar[tuple[str, ...]] = ()

    def available(self) -> tuple[bool, str]:
        if cuda.is_available():
            return True, ""
        return False, "no CUDA GPU found (the tests run this backend on numba's CUDA simulator)"

    def simulated(self) -> bool:
        """Whether kernels run on numba's CUDA simulator: correct, but never worth timing."""
        return bool(_SIMULATED)

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Saved]:
        x, w, b = _on_device(x), _on_device(w), _on_device(b)
        cols = cuda.device_array(geom.cols_shape, x.dtype)
        rows, width = geom.cols_shape
        grid = _grid((width, rows), THREADS_PER_BLOCK)
        _im2col_kernel[grid, THREADS_PER_BLOCK](x, cols, _conv_args(geom))
        # a private device copy (microseconds): w may be changed in place before backward
        w_mat = cuda.device_array((width, geom.c_out), w.dtype)
        w_mat.copy_to_device(w.reshape(width, geom.c_out))
        y_mat = _matmul(cols, w_mat, bias=b)
        return y_mat.reshape(*geom.y_shape), (cols, w_mat)

    def _backward(self, dy: Any, saved: Saved, geom: ConvGeometry) -> tuple[Any, Any, Any]:
        cols, w_mat = saved
        rows = geom.cols_shape[0]
        dy_mat = _on_device(dy).reshape(rows, geom.c_out)
        dw = _matmul(cols, dy_mat, trans_a=True).reshape(*geom.w_shape)
        dcols = _matmul(dy_mat, w_mat, trans_b=True)
        dx = cuda.device_array(geom.x_shape, cols.dtype)
        grid = _grid((geom.w * geom.c_in, geom.n * geom.h), THREADS_PER_BLOCK)
        _col2im_kernel[grid, THREADS_PER_BLOCK](dcols, dx, _conv_args(geom))
        return dx, dw, self._bias_grad(dy_mat)

    def _bias_grad(self, dy_mat: Any) -> Any:
        """db (C_out,): the column sums of dy_mat (N * OH * OW, C_out)."""
        rows, c_out = dy_mat.shape
        db = _zeros((c_out,), np.dtype(dy_mat.dtype))
        # enough row blocks to fill the GPU, each summing one stretch of rows
        grid_x, grid_y = _grid((c_out, rows), THREADS_PER_BLOCK)
        grid_y = min(grid_y, max(1, TARGET_BLOCKS // grid_x))
        rows_per_block = math.ceil(rows / grid_y)
        _bias_grad_kernel(np.dtype(dy_mat.dtype))[(grid_x, grid_y), THREADS_PER_BLOCK](
            dy_mat, db, rows_per_block
        )
        return db

    def to_device(self, a: NDArray[np.floating]) -> Any:
        return cuda.to_device(np.ascontiguousarray(a))

    def to_numpy(self, a: Any) -> NDArray[np.floating]:
        if hasattr(a, "copy_to_host"):
            return a.copy_to_host()
        return np.asarray(a)

    def synchronize(self) -> None:
        cuda.synchronize()

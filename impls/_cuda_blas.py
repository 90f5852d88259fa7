"""A device BLAS in numba.cuda: a tiled matrix product with fused bias, and column sums.

The GEMM stages K slices of both operands in shared memory and keeps a micro_m x micro_n
register tile per thread; where the output alone gives too few blocks to fill the GPU (dw's
product), the K range is split over the grid's z axis into partial products that one more
kernel sums in a fixed order. Column sums (db) sum stretches of rows per block, then the
partials, also in a fixed order. No sum uses atomics, so two calls give the same bits.
Also here: the launch shapes (threads per block, grid limits, launch bounds) that the
numba_cuda backend's own kernels share with these.
Reference: Volkov & Demmel, "Benchmarking GPUs to Tune Dense Linear Algebra" (SC 2008), for
register blocking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numba import cuda

from . import _numpy_compat  # noqa: F401  (np.row_stack, before the first compile)

try:
    from numba.cuda.core.config import ENABLE_CUDASIM as SIMULATED
except ImportError:  # an older numba-cuda keeps the flag in numba's own config
    from numba.config import ENABLE_CUDASIM as SIMULATED

#: (x, y) threads per block of the elementwise kernels: x runs along memory, 32 = one warp;
#: the simulator runs one Python thread per CUDA thread, so it gets small blocks and grids
THREADS_PER_BLOCK = (4, 4) if SIMULATED else (32, 8)
#: most blocks a launch gets along (x, y); grid-stride loops in the kernels cover the rest
MAX_GRID = (2, 2) if SIMULATED else (2**31 - 1, 65535)
#: depth of the K slice a GEMM block stages in shared memory per step (16 spilled registers
#: under the launch bound)
TILE_K = 8
#: aim for at least this many blocks (4 per SM of an H100, as many as the launch bound lets
#: one SM hold), splitting a reduction when the output alone gives fewer
TARGET_BLOCKS = 8 if SIMULATED else 528

#: threads per block of the kernels that walk one flat index
FLAT_BLOCK = (THREADS_PER_BLOCK[0] * THREADS_PER_BLOCK[1], 1)


@dataclass(frozen=True)
class GemmShape:
    """How a GEMM block covers C: threads along (N, M), each computing micro_m x micro_n."""

    threads_n: int
    threads_m: int
    micro_m: int
    micro_n: int

    @property
    def tile_m(self) -> int:
        return self.threads_m * self.micro_m

    @property
    def tile_n(self) -> int:
        return self.threads_n * self.micro_n

    @property
    def threads(self) -> int:
        return self.threads_n * self.threads_m


#: GEMM block shapes by item size, (for N <= its tile_n, for wider N): 256 threads, each with
#: a 4 x 4 register tile in float32 (16 accumulators, as many registers as 2 x 4 in float64).
#: Where N <= 32 (C_out = 32 in the default benchmark rows) a tall tile replaces the square
#: one, which would compute half zeros there.
GEMM_SHAPES = (
    {size: (GemmShape(2, 8, 4, 4), GemmShape(4, 4, 4, 4)) for size in (4, 8)}
    if SIMULATED
    else {
        4: (GemmShape(8, 32, 4, 4), GemmShape(16, 16, 4, 4)),
        8: (GemmShape(8, 32, 2, 4), GemmShape(16, 16, 2, 4)),
    }
)


def launch_min_blocks() -> int:
    """Blocks of 256 threads the compiler must fit on one of this GPU's SMs (0: no bound).

    The launch bound on the GEMM and col2im: 4 blocks cap a thread at 64 registers, so half
    of an SM's 64 warps are resident. Volta (sm_70) has no uniform registers for the values
    a whole warp shares, so the same code needs more registers there and spills at 64: 3.
    """
    if SIMULATED:
        return 0
    return 4 if cuda.get_current_device().compute_capability >= (7, 5) else 3


def launch_bounds(threads: int, min_blocks: int) -> dict[str, Any]:
    """cuda.jit's options for a launch bound; none for 0 (the simulator takes none)."""
    return {"launch_bounds": (threads, min_blocks)} if min_blocks else {}


def launch_grid(extent: tuple[int, int], threads: tuple[int, int]) -> tuple[int, int]:
    """Blocks covering ``extent`` = (x, y) items with ``threads`` per block, up to MAX_GRID."""
    return (
        min(math.ceil(extent[0] / threads[0]), MAX_GRID[0]),
        min(math.ceil(extent[1] / threads[1]), MAX_GRID[1]),
    )


@cuda.jit
def _sum_rows_kernel(partials, out):  # type: ignore[no-untyped-def]
    # out[j] = partials[0, j] + partials[1, j] + ..., always in that order: a reduction whose
    # bits do not depend on which block finished first, unlike atomics
    col0, _ = cuda.grid(2)
    col_step, _ = cuda.gridsize(2)
    for col in range(col0, out.shape[0], col_step):
        total = partials[0, col]
        for row in range(1, partials.shape[0]):
            total += partials[row, col]
        out[col] = total


@cache
def _gemm_kernel(  # type: ignore[no-untyped-def]
    dtype: np.dtype, trans_a: bool, trans_b: bool, add_bias: bool, shape: GemmShape, min_blocks: int
):
    """A kernel for c = op(a) @ op(b), op being a transpose where asked, plus bias if asked,
    built with a launch bound of ``min_blocks`` blocks per SM.

    Block (bx, by, bz) computes the tile_m x tile_n block of C at (bx * tile_m, by * tile_n)
    from the K range [bz * k_chunk, (bz + 1) * k_chunk), into rows bz * M + bx * tile_m + ...
    of c: with the K range split over z, c holds one (M, N) partial product per split.
    """
    scalar = dtype.type
    threads_n, micro_m, micro_n = shape.threads_n, shape.micro_m, shape.micro_n
    threads_m, tile_m, tile_n = shape.threads_m, shape.tile_m, shape.tile_n
    # shared-memory elements each thread stages per K step, for each operand
    threads = shape.threads
    a_loads, b_loads = tile_m * TILE_K // threads, tile_n * TILE_K // threads
    assert a_loads * threads == tile_m * TILE_K
    assert b_loads * threads == tile_n * TILE_K
    # tile rows 4 banks past a multiple of 32: the TILE_K rows a warp stores into at once
    # (the K-fastest loads, no transpose) start on different banks
    pad = 16 // dtype.itemsize
    a_shape, b_shape = (TILE_K, tile_m + pad), (TILE_K, tile_n + pad)

    @cuda.jit(**launch_bounds(threads, min_blocks))
    def gemm(a, b, bias, c, k_chunk):  # type: ignore[no-untyped-def]
        # one declaration a line: the simulator tells shared arrays apart by source line
        a_tile = cuda.shared.array(a_shape, scalar)
        b_tile = cuda.shared.array(b_shape, scalar)
        acc = cuda.local.array((micro_m, micro_n), scalar)
        a_reg = cuda.local.array(micro_m, scalar)
        b_reg = cuda.local.array(micro_n, scalar)
        m = a.shape[1] if trans_a else a.shape[0]
        k = a.shape[0] if trans_a else a.shape[1]
        n = c.shape[1]
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * threads_n + tx
        k_begin = cuda.blockIdx.z * k_chunk
        k_end = min(k, k_begin + k_chunk)
        c_row0 = cuda.blockIdx.z * m
        m0, n0 = cuda.blockIdx.x * tile_m, cuda.blockIdx.y * tile_n
        for i in range(micro_m):
            for j in range(micro_n):
                acc[i, j] = 0
        for k0 in range(k_begin, k_end, TILE_K):
            # stage both tiles K-major; consecutive threads read consecutive addresses
            for load in range(a_loads):
                idx = tid + load * threads
                if trans_a:
                    kk, mm = idx // tile_m, idx % tile_m
                else:
                    kk, mm = idx % TILE_K, idx // TILE_K
                if m0 + mm < m and k0 + kk < k_end:
                    if trans_a:
                        a_tile[kk, mm] = a[k0 + kk, m0 + mm]
                    else:
                        a_tile[kk, mm] = a[m0 + mm, k0 + kk]
                else:
                    a_tile[kk, mm] = 0
            for load in range(b_loads):
                idx = tid + load * threads
                if trans_b:
                    kk, nn = idx % TILE_K, idx // TILE_K
                else:
                    kk, nn = idx // tile_n, idx % tile_n
                if n0 + nn < n and k0 + kk < k_end:
                    if trans_b:
                        b_tile[kk, nn] = b[n0 + nn, k0 + kk]
                    else:
                        b_tile[kk, nn] = b[k0 + kk, n0 + nn]
                else:
                    b_tile[kk, nn] = 0
            cuda.syncthreads()
            # register blocking: micro_m + micro_n shared reads feed micro_m * micro_n
            # multiply-adds; a thread's rows (columns) are threads_m (threads_n) apart,
            # so a warp reads consecutive b_tile entries and writes consecutive c entries
            for kk in range(TILE_K):
                for i in range(micro_m):
                    a_reg[i] = a_tile[kk, ty + i * threads_m]
                for j in range(micro_n):
                    b_reg[j] = b_tile[kk, tx + j * threads_n]
                for i in range(micro_m):
                    for j in range(micro_n):
                        acc[i, j] += a_reg[i] * b_reg[j]
            # the tiles are overwritten next step only once every thread is done
            cuda.syncthreads()
        for i in range(micro_m):
            row = m0 + ty + i * threads_m
            for j in range(micro_n):
                col = n0 + tx + j * threads_n
                if row < m and col < n:
                    if add_bias:
                        c[c_row0 + row, col] = acc[i, j] + bias[col]
                    else:
                        c[c_row0 + row, col] = acc[i, j]

    return gemm


@cache
def _bias_grad_kernel(dtype: np.dtype):  # type: ignore[no-untyped-def]
    """A kernel writing partial column sums of a (M, C) matrix into partials (gridDim.y, C).

    Block (bx, by) sums rows [by * rows_per_block, (by + 1) * rows_per_block) of each
    column tile bx, bx + gridDim.x, ... into row by of partials.
    """
    scalar = dtype.type
    width, height = THREADS_PER_BLOCK

    @cuda.jit
    def bias_grad(dy_mat, partials, rows_per_block):  # type: ignore[no-untyped-def]
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
                partials[cuda.blockIdx.y, col] = total
            # partial is overwritten next tile only once row 0 has read it
            cuda.syncthreads()

    return bias_grad


def _sum_rows(partials: Any, out: Any) -> None:
    """out (S,) = partials (R, S) summed over R, on the device, in a fixed order."""
    _sum_rows_kernel[launch_grid((out.size, 1), FLAT_BLOCK), FLAT_BLOCK](partials, out)


def matmul(
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
    narrow, wide = GEMM_SHAPES[dtype.itemsize]
    shape = narrow if n <= narrow.tile_n else wide
    # one block per tile, M along x (up to 2**31 - 1 blocks), N along y (up to 65535)
    grid_x, grid_y = math.ceil(m / shape.tile_m), math.ceil(n / shape.tile_n)
    if grid_y > 65535:
        raise ValueError(f"a GEMM with N = {n} columns is too wide for one launch")
    k_steps = math.ceil(k / TILE_K)
    # split K over the grid's z axis when M and N alone leave the GPU idle (dw is such a case);
    # the bias is then added elsewhere, so a biased product is never split
    splits = 1 if bias is not None else min(k_steps, math.ceil(TARGET_BLOCKS / (grid_x * grid_y)))
    k_chunk = math.ceil(k_steps / splits) * TILE_K
    splits = math.ceil(k / k_chunk)
    kernel = _gemm_kernel(dtype, trans_a, trans_b, bias is not None, shape, launch_min_blocks())
    # each split writes its own (M, N) partial product, summed afterwards in a fixed order
    c = cuda.device_array((splits * m, n), dtype)
    # an unused bias argument still needs an array of the right dtype
    bias_arg = c[0] if bias is None else bias
    block = (shape.threads_n, shape.threads_m)
    kernel[(grid_x, grid_y, splits), block](a, b, bias_arg, c, k_chunk)
    if splits == 1:
        return c
    out = cuda.device_array((m, n), dtype)
    _sum_rows(c.reshape(splits, m * n), out.reshape(m * n))
    return out


def column_sums(mat: Any) -> Any:
    """The column sums (C,) of a device matrix (M, C), on the device, in a fixed order."""
    rows, c_out = mat.shape
    dtype = np.dtype(mat.dtype)
    # enough row blocks to fill the GPU, each summing one stretch of rows
    grid_x, grid_y = launch_grid((c_out, rows), THREADS_PER_BLOCK)
    grid_y = min(grid_y, max(1, TARGET_BLOCKS // grid_x))
    rows_per_block = math.ceil(rows / grid_y)
    grid_y = math.ceil(rows / rows_per_block)
    partials = cuda.device_array((grid_y, c_out), dtype)
    _bias_grad_kernel(dtype)[(grid_x, grid_y), THREADS_PER_BLOCK](mat, partials, rows_per_block)
    if grid_y == 1:
        return partials.reshape(c_out)
    sums = cuda.device_array((c_out,), dtype)
    _sum_rows(partials, sums)
    return sums

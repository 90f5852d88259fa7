"""The register-blocked GEMM pieces the numba.cuda convolution kernels are built from.

A block of ``threads_m x threads_n`` threads owns a ``tile_m x tile_n`` block of C; its
kernel stages ``TILE_K``-deep slices of the two operands in shared memory (loaded however
the caller gathers them), and each thread multiplies them into a ``micro_m x micro_n`` tile
of sums held in registers: ``micro_m + micro_n`` shared-memory reads feed
``micro_m * micro_n`` multiply-adds. Split-K partial products are summed by
:func:`sum_splits_kernel` in a fixed order, never with atomics, so two calls give the same bits.
Reference: Volkov & Demmel, "Benchmarking GPUs to tune dense linear algebra" (SC 2008).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

if not hasattr(np, "row_stack"):
    # numba-cuda <= 0.30 registers an overload for np.row_stack when it first compiles, and
    # numpy 2.5 removed that alias of np.vstack: without it, no kernel compiles at all
    np.row_stack = np.vstack  # type: ignore[attr-defined]

from numba import cuda

try:
    from numba.cuda.core.config import ENABLE_CUDASIM as SIMULATED
except ImportError:  # an older numba-cuda keeps the flag in numba's own config
    from numba.config import ENABLE_CUDASIM as SIMULATED

#: depth of the K slice a block stages in shared memory per step
TILE_K = 8


@dataclass(frozen=True)
class GemmShape:
    """How a GEMM block covers C: threads along (N, M), each computing micro_m x micro_n.

    A thread's rows (columns) come in runs of as many items as one 16-byte shared-memory load
    holds (``micro_offsets``), the runs of neighbouring threads side by side: one vector load
    reads a run, and a warp reads consecutive runs of the B tile and writes consecutive runs
    of C.
    """

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

    @property
    def block(self) -> tuple[int, int]:
        """Threads per block, (x, y) = (threads_n, threads_m)."""
        return self.threads_n, self.threads_m

    def loads(self, tile: int) -> int:
        """Elements each thread stages per K step for an operand tile ``tile`` wide: one run
        along K of one row (K fastest), or one column at that many K (the width fastest).

        Raises
        ------
        ValueError
            If the threads do not cover the tile evenly in both load orders (K fastest, or
            the tile's width fastest).
        """
        loads = tile * TILE_K // self.threads
        if self.threads % tile or loads * self.threads != tile * TILE_K or TILE_K % loads:
            raise ValueError(f"{self} cannot stage a {TILE_K} x {tile} tile evenly")
        return loads


#: block shapes by item size, (for N <= its tile_n, for wider N): 256 threads each computing
#: 8 x 4 or 8 x 8 sums in float32 (128 x 64 or 128 x 128 tiles), 4 x 4 in float64 (64 x 64;
#: 4 x 8 spills under the launch bound);
#: the simulator runs one Python thread per CUDA thread, so it gets 16 threads and 16 x 8 tiles
GEMM_SHAPES = (
    {size: (GemmShape(4, 4, 4, 2), GemmShape(4, 4, 4, 2)) for size in (4, 8)}
    if SIMULATED
    else {
        4: (GemmShape(16, 16, 8, 4), GemmShape(16, 16, 8, 8)),
        8: (GemmShape(16, 16, 4, 4), GemmShape(16, 16, 4, 4)),
    }
)


def gemm_shape(itemsize: int, n: int) -> GemmShape:
    """The block shape for a product with ``n`` columns of ``itemsize``-byte items."""
    narrow, wide = GEMM_SHAPES[itemsize]
    return narrow if n <= narrow.tile_n else wide


def device_options() -> dict[str, Any]:
    """cuda.jit's options for a device function the kernels must inline (none on the simulator):
    arrays the kernel passes in then stay in registers instead of local memory."""
    return {} if SIMULATED else {"forceinline": True}


def launch_bounds(threads: int, min_blocks: int) -> dict[str, Any]:
    """cuda.jit's options for a launch bound; none for 0 (the simulator takes none)."""
    return {"launch_bounds": (threads, min_blocks)} if min_blocks else {}


#: byte alignment of the shared tiles, so that a thread's run is one 16-byte load (the
#: simulator takes no alignment)
SHARED_ALIGN = None if SIMULATED else 16


def tile_pad(dtype: np.dtype) -> int:
    """Items added to each shared tile row: 16 bytes, so the ``TILE_K`` rows that a warp
    stores into at once (K-fastest loads) start on different banks."""
    return 16 // dtype.itemsize


def _run(micro: int, itemsize: int) -> int:
    """Items of a thread's run along one side of its micro-tile: one 16-byte load's worth."""
    run = min(micro, 16 // itemsize)
    if micro % run:
        raise ValueError(f"a micro-tile side of {micro} is not whole {run}-item runs")
    return run


@cache
def micro_offsets(shape: GemmShape, dtype: np.dtype):  # type: ignore[no-untyped-def]
    """Device functions ``row_of(i, ty)`` and ``col_of(j, tx)``: where row i (column j) of
    thread (tx, ty)'s micro-tile lies in the block's tile."""
    run_m, run_n = _run(shape.micro_m, dtype.itemsize), _run(shape.micro_n, dtype.itemsize)
    threads_m, threads_n = shape.threads_m, shape.threads_n

    @cuda.jit(device=True, **device_options())
    def row_of(i, ty):  # type: ignore[no-untyped-def]
        return i // run_m * (threads_m * run_m) + ty * run_m + i % run_m

    @cuda.jit(device=True, **device_options())
    def col_of(j, tx):  # type: ignore[no-untyped-def]
        return j // run_n * (threads_n * run_n) + tx * run_n + j % run_n

    return row_of, col_of


@cache
def micro_kernel(shape: GemmShape, dtype: np.dtype):  # type: ignore[no-untyped-def]
    """A device function ``mma(a_tile, b_tile, acc, a_reg, b_reg, tx, ty)``: acc += the
    thread's part of a_tile (TILE_K, >= tile_m).T @ b_tile (TILE_K, >= tile_n)."""
    micro_m, micro_n = shape.micro_m, shape.micro_n
    row_of, col_of = micro_offsets(shape, dtype)

    @cuda.jit(device=True, **device_options())
    def mma(a_tile, b_tile, acc, a_reg, b_reg, tx, ty):  # type: ignore[no-untyped-def]
        for kk in range(TILE_K):
            for i in range(micro_m):
                a_reg[i] = a_tile[kk, row_of(i, ty)]
            for j in range(micro_n):
                b_reg[j] = b_tile[kk, col_of(j, tx)]
            for i in range(micro_m):
                for j in range(micro_n):
                    acc[i, j] += a_reg[i] * b_reg[j]

    return mma


@cuda.jit
def sum_splits_kernel(partials, out):  # type: ignore[no-untyped-def]
    # out[j] = partials[0, j] + partials[1, j] + ..., always in that order: a reduction whose
    # bits do not depend on which block finished first, unlike atomics
    start = cuda.grid(1)
    step = cuda.gridsize(1)
    for col in range(start, out.shape[0], step):
        total = partials[0, col]
        for row in range(1, partials.shape[0]):
            total += partials[row, col]
        out[col] = total

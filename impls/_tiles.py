"""Register tiles for numba GEMM micro-kernels: ROWS x lanes accumulators that stay in registers.

A micro-kernel keeps a small block of its output (ROWS pixels x ``lanes`` channels) in vector
registers while it runs over the whole reduction, so each value loaded feeds several
multiply-adds and no partial sum goes through memory. numba gives no direct way to say so: a
local ``np.zeros`` tile lives on the heap, and LLVM keeps its every update in memory (measured:
45 GFLOP/s on one AVX-512 core, against 105 for the same loop on this tile). ``register_tile``
allocates the tile on the stack instead; with every index a constant once the loops over its
ROWS and ``lanes`` are unrolled (``lanes`` is a compile-time constant per dtype), LLVM promotes
it to registers. The kernels index the tile only with those unrolled loops, never with a
runtime index, and never pass it to a function that is not inlined.
Reference: Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (2008);
Low et al., "Analytical Modeling Is Enough for High-Performance BLIS" (2016), for the shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llvmlite.binding
import llvmlite.ir
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numpy.typing import NDArray


def _vector_bytes() -> int:
    """Bytes of one vector register on the CPU numba compiles for: 64 (AVX-512), 32 or 16."""
    if getattr(numba.config, "CPU_NAME", None) not in (None, "host"):
        # a named target (NUMBA_CPU_NAME=generic for portable caches, say): assume the least
        return 16
    features = llvmlite.binding.get_host_cpu_features()
    if features.get("avx512f"):
        return 64
    if features.get("avx"):
        return 32
    return 16


#: bytes of one vector register
VECTOR_BYTES = _vector_bytes()
#: rows of a tile: 6 rows x 2 vectors is 12 accumulators, which leaves room in AVX2's 16
#: registers for the 2 vectors of weights and a broadcast (the classic 6 x 16 float32 kernel);
#: the forward kernels spell the 6 rows out, so changing this means changing them
ROWS = 6
#: vectors per tile row
VECTORS = 2


def tile_lanes(dtype: Any, vectors: int = VECTORS) -> int:
    """Channels of a tile row for ``dtype``: ``vectors`` registers (32 float32 on AVX-512 at 2)."""
    return vectors * VECTOR_BYTES // np.dtype(dtype).itemsize


def channel_blocks(a: NDArray[np.floating]) -> NDArray[np.floating]:
    """(..., depth, C) -> (blocks, ..., depth, lanes): C in blocks of one tile row, zero-padded.

    The weights as the micro-kernels read them: each tile-row's channels contiguous.
    """
    *lead, depth, c = a.shape
    nr = tile_lanes(a.dtype)
    n_blocks = -(-c // nr)
    padded = np.zeros((*lead, depth, n_blocks * nr), dtype=a.dtype)
    padded[..., :c] = a
    blocks = padded.reshape(*lead, depth, n_blocks, nr)
    return np.ascontiguousarray(np.moveaxis(blocks, -2, 0))


def weight_blocks_bytes(kh: int, kw: int, c_in: int, c_out: int, workers: int, dtype: Any) -> int:
    """What a register-tiled backend holds besides its tables: w in channel blocks for y
    (C_out blocked) and for dx (C_in blocked), and one dw partial per worker."""
    nr = tile_lanes(dtype)
    taps = kh * kw
    blocks = taps * (c_in * -(-c_out // nr) + c_out * -(-c_in // nr))
    partials = workers * taps * c_in * c_out
    return (blocks * nr + partials) * np.dtype(dtype).itemsize


def lanes(a: Any, vectors: int) -> int:
    """In jitted code: ``tile_lanes(a.dtype, vectors)``, as a compile-time constant.

    ``vectors`` must be a constant (a module global).
    """
    return tile_lanes(a.dtype, vectors)


# numba compares this signature with the implementation's, annotations included: none here
@overload(lanes, inline="always")
def _lanes_jit(a, vectors):  # type: ignore[no-untyped-def]
    if not isinstance(vectors, types.IntegerLiteral):
        return None
    count = tile_lanes(numba.np.numpy_support.as_dtype(a.dtype), vectors.literal_value)
    return lambda a, vectors: count


def _stack_block(dtype: Any, count: int) -> Any:
    """Code that allocates ``count`` items of ``dtype`` on the stack and returns a pointer."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        item = context.get_value_type(dtype)
        # alloca_once puts it in the entry block: one block per call, promotable to registers
        block = cgutils.alloca_once(builder, llvmlite.ir.ArrayType(item, count))
        return builder.bitcast(block, item.as_pointer())

    return codegen


@intrinsic
def register_tile(typingctx: Any, like: Any, rows: Any, vectors: Any) -> Any:
    """In jitted code: a (rows, lanes) tile of ``like``'s dtype on the stack, uninitialised.

    ``rows`` and ``vectors`` must be constants (module globals); wrap the pointer as
    ``numba.carray(register_tile(a, ROWS, VECTORS), (ROWS, lanes(a, VECTORS)))``.
    """
    if not isinstance(rows, types.IntegerLiteral) or not isinstance(vectors, types.IntegerLiteral):
        return None
    dtype = like.dtype
    count = rows.literal_value * tile_lanes(
        numba.np.numpy_support.as_dtype(dtype), vectors.literal_value
    )
    return types.CPointer(dtype)(like, rows, vectors), _stack_block(dtype, count)


@intrinsic
def stack_scratch(typingctx: Any, like: Any, count: Any) -> Any:
    """In jitted code: ``count`` items of ``like``'s dtype on the stack, uninitialised.

    ``count`` must be a constant: scratch that costs no allocation per call.
    """
    if not isinstance(count, types.IntegerLiteral):
        return None
    dtype = like.dtype
    return types.CPointer(dtype)(like, count), _stack_block(dtype, count.literal_value)


def kernel(function: Callable[..., Any]) -> Any:
    """``function`` compiled as every micro-kernel is: GIL-free (worker threads run it side by
    side), cached, and with multiply-adds fused (``contract``: FMA instructions, one rounding
    instead of two; nothing is reordered)."""
    return numba.njit(nogil=True, cache=True, fastmath={"contract"})(function)


def inlined(function: Callable[..., Any]) -> Any:
    """``function`` compiled to be inlined into its callers in numba's own IR, before LLVM sees
    the code: a tile it updates stays a local of the kernel, in registers."""
    return numba.njit(inline="always")(function)


@inlined
def zero_rows(acc):  # type: ignore[no-untyped-def]
    """acc[:, :] = 0 for a (ROWS, lanes(acc, VECTORS)) tile."""
    nr = lanes(acc, VECTORS)
    for i in range(ROWS):
        for j in range(nr):
            acc[i, j] = 0.0


@inlined
def madd_rows(acc, r0, r1, r2, r3, r4, r5, w_tap):  # type: ignore[no-untyped-def]
    """acc[i] += r_i[:depth] @ w_tap for the ROWS = 6 rows r_i; w_tap is (depth, lanes).

    Each step broadcasts one value of each row and loads one row of w_tap: 6 x VECTORS
    multiply-adds per 6 + VECTORS loads.
    """
    nr = lanes(acc, VECTORS)
    for c in range(w_tap.shape[0]):
        v0, v1, v2, v3, v4, v5 = r0[c], r1[c], r2[c], r3[c], r4[c], r5[c]
        w_row = w_tap[c]
        for j in range(nr):
            acc[0, j] += v0 * w_row[j]
            acc[1, j] += v1 * w_row[j]
            acc[2, j] += v2 * w_row[j]
            acc[3, j] += v3 * w_row[j]
            acc[4, j] += v4 * w_row[j]
            acc[5, j] += v5 * w_row[j]


@inlined
def store_rows(acc, bias, r0, r1, r2, r3, r4, r5):  # type: ignore[no-untyped-def]
    """r_i[:lanes] = acc[i] + bias[:lanes] for the ROWS = 6 rows of a whole tile.

    The bias is first read into registers, then each row is written by a loop of its own,
    one vector wide: no store is reordered with a load or with another row's store, which
    might overlap it, and every index into the tile is a constant once the loops are done.
    """
    vl = lanes(acc, 1)
    b = numba.carray(register_tile(acc, 1, VECTORS), (1, 2 * vl))
    for j in range(vl):
        b[0, j], b[0, vl + j] = bias[j], bias[vl + j]
    for j in range(vl):
        r0[j], r0[vl + j] = acc[0, j] + b[0, j], acc[0, vl + j] + b[0, vl + j]
    for j in range(vl):
        r1[j], r1[vl + j] = acc[1, j] + b[0, j], acc[1, vl + j] + b[0, vl + j]
    for j in range(vl):
        r2[j], r2[vl + j] = acc[2, j] + b[0, j], acc[2, vl + j] + b[0, vl + j]
    for j in range(vl):
        r3[j], r3[vl + j] = acc[3, j] + b[0, j], acc[3, vl + j] + b[0, vl + j]
    for j in range(vl):
        r4[j], r4[vl + j] = acc[4, j] + b[0, j], acc[4, vl + j] + b[0, vl + j]
    for j in range(vl):
        r5[j], r5[vl + j] = acc[5, j] + b[0, j], acc[5, vl + j] + b[0, vl + j]


#: rows of an outer-product tile (see madd_outer), spelled out in its code
OUTER_ROWS = 8
#: one-vector outer-product tiles side by side: two make 8 x 2 accumulators, 16 of AVX-512's
#: 32 registers; one leaves room in AVX2's 16. Each tile row is one vector, so that every
#: loop over a row is a single vector operation: over two vectors, LLVM leaves a loop of two
#: steps that indexes the tile, which keeps the tile out of registers
OUTER_TILES = 2 if VECTOR_BYTES == 64 else 1


@inlined
def zero_outer(lo, hi):  # type: ignore[no-untyped-def]
    """lo[:, :] = hi[:, :] = 0 (hi only with OUTER_TILES = 2)."""
    vl = lanes(lo, 1)
    for j in range(vl):
        lo[0, j] = lo[1, j] = lo[2, j] = lo[3, j] = lo[4, j] = lo[5, j] = lo[6, j] = lo[7, j] = 0.0
        if OUTER_TILES == 2:
            hi[0, j] = hi[1, j] = hi[2, j] = hi[3, j] = 0.0
            hi[4, j] = hi[5, j] = hi[6, j] = hi[7, j] = 0.0


@inlined
def add_outer(lo, hi, mat, r, c):  # type: ignore[no-untyped-def]
    """mat[r + i, c : c + vl] += lo[i], mat[r + i, c + vl : c + 2 vl] += hi[i] for the
    OUTER_ROWS rows; mat is a C-contiguous matrix.

    A tile sums its part of a reduction from zero and is then added to the running total: a
    sum of partial sums, whose float32 rounding error grows with the number of partial sums,
    not with the number of terms, as a single running sum's would.
    """
    vl = lanes(lo, 1)
    d0, d1, d2, d3 = mat[r, c:], mat[r + 1, c:], mat[r + 2, c:], mat[r + 3, c:]
    d4, d5, d6, d7 = mat[r + 4, c:], mat[r + 5, c:], mat[r + 6, c:], mat[r + 7, c:]
    for j in range(vl):
        d0[j] += lo[0, j]
    for j in range(vl):
        d1[j] += lo[1, j]
    for j in range(vl):
        d2[j] += lo[2, j]
    for j in range(vl):
        d3[j] += lo[3, j]
    for j in range(vl):
        d4[j] += lo[4, j]
    for j in range(vl):
        d5[j] += lo[5, j]
    for j in range(vl):
        d6[j] += lo[6, j]
    for j in range(vl):
        d7[j] += lo[7, j]
    if OUTER_TILES == 2:
        for j in range(vl):
            d0[vl + j] += hi[0, j]
        for j in range(vl):
            d1[vl + j] += hi[1, j]
        for j in range(vl):
            d2[vl + j] += hi[2, j]
        for j in range(vl):
            d3[vl + j] += hi[3, j]
        for j in range(vl):
            d4[vl + j] += hi[4, j]
        for j in range(vl):
            d5[vl + j] += hi[5, j]
        for j in range(vl):
            d6[vl + j] += hi[6, j]
        for j in range(vl):
            d7[vl + j] += hi[7, j]


@inlined
def madd_outer(lo, hi, v0, v1, v2, v3, v4, v5, v6, v7, row):  # type: ignore[no-untyped-def]
    """lo[i] += v_i * row[:vl], hi[i] += v_i * row[vl:2 vl]: one rank-1 update of the tile."""
    vl = lanes(lo, 1)
    for j in range(vl):
        g = row[j]
        lo[0, j] += v0 * g
        lo[1, j] += v1 * g
        lo[2, j] += v2 * g
        lo[3, j] += v3 * g
        lo[4, j] += v4 * g
        lo[5, j] += v5 * g
        lo[6, j] += v6 * g
        lo[7, j] += v7 * g
        if OUTER_TILES == 2:
            g = row[vl + j]
            hi[0, j] += v0 * g
            hi[1, j] += v1 * g
            hi[2, j] += v2 * g
            hi[3, j] += v3 * g
            hi[4, j] += v4 * g
            hi[5, j] += v5 * g
            hi[6, j] += v6 * g
            hi[7, j] += v7 * g

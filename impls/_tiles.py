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

from typing import Any

import llvmlite.binding
import llvmlite.ir
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def _vector_bytes() -> int:
    """Bytes of one vector register on the CPU numba compiles for: 64 (AVX-512), 32 or 16."""
    if numba.config.CPU_NAME not in (None, "host"):
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

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        item = context.get_value_type(dtype)
        # alloca_once puts it in the entry block: one tile per call, promotable to registers
        block = cgutils.alloca_once(builder, llvmlite.ir.ArrayType(item, count))
        return builder.bitcast(block, item.as_pointer())

    return types.CPointer(dtype)(like, rows, vectors), codegen

"""im2col, col2im, bias and a tiled matrix product as numba.cuda kernels, all on the GPU.

im2col writes the column matrix straight from the unpadded input (out-of-range taps are
zeros, so padding never leaves the device), a shared-memory GEMM with register blocking
multiplies it by the weights and adds the bias in its epilogue, and col2im gathers each
input pixel's gradient from the windows that cover it, so no two threads write one place.
No sum depends on which block finishes first (no atomics): two calls give the same bits.
Memory: the column matrix (N * OH * OW * kh * kw * C_in items) is kept from forward to
backward, and backward allocates one more of that size for dcols, plus dw's split-K partial
products (one kh * kw * C_in x C_out block per split).
Reference: Chellapilla, Puri & Simard, "High Performance Convolutional Neural Networks for
Document Processing" (2006).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np
from numba import cuda, types
from numpy.typing import NDArray

from . import _numpy_compat  # noqa: F401  (np.row_stack, before the first compile)
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
#: depth of the K slice a GEMM block stages in shared memory per step (16 spilled registers
#: under the launch bound)
TILE_K = 8
#: aim for at least this many blocks (4 per SM of an H100, as many as the launch bound lets
#: one SM hold), splitting a reduction when the output alone gives fewer
TARGET_BLOCKS = 8 if _SIMULATED else 528

#: threads per block of the kernels that walk one flat index
FLAT_BLOCK = (THREADS_PER_BLOCK[0] * THREADS_PER_BLOCK[1], 1)

Saved = tuple[Any, Any]


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
    if _SIMULATED
    else {
        4: (GemmShape(8, 32, 4, 4), GemmShape(16, 16, 4, 4)),
        8: (GemmShape(8, 32, 2, 4), GemmShape(16, 16, 2, 4)),
    }
)


def _min_blocks() -> int:
    """Blocks of 256 threads the compiler must fit on one of this GPU's SMs (0: no bound).

    The launch bound on the GEMM and col2im: 4 blocks cap a thread at 64 registers, so half
    of an SM's 64 warps are resident. Volta (sm_70) has no uniform registers for the values
    a whole warp shares, so the same code needs more registers there and spills at 64: 3.
    """
    if _SIMULATED:
        return 0
    return 4 if cuda.get_current_device().compute_capability >= (7, 5) else 3


@cache
def _toolkit_missing() -> str:
    """Why no kernel can be compiled for this GPU ('' when one can): NVVM and nvrtc must load.

    A driver alone runs kernels but does not compile them: numba-cuda needs the CUDA
    toolkit's NVVM and nvrtc libraries (the ``cuda`` extra brings them as wheels).
    """

    def probe(out):  # type: ignore[no-untyped-def]
        out[0] = 0

    try:
        cc = cuda.get_current_device().compute_capability
        cuda.compile_ptx(probe, (types.float32[::1],), cc=cc)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [""])[0]
        return (
            f"cannot compile CUDA kernels ({type(exc).__name__}: {detail}); the CUDA toolkit "
            "libraries NVVM and nvrtc are needed: pip install -e '.[cuda]'"
        )
    return ""


def _launch_bounds(threads: int, min_blocks: int) -> dict[str, Any]:
    """cuda.jit's options for a launch bound; none for 0 (the simulator takes none)."""
    return {"launch_bounds": (threads, min_blocks)} if min_blocks else {}


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
    kh, kw, sh, sw, dh, dw, top, left, out_h, out_w = conv
    _, h, w, c_in = x.shape
    # one thread per (output pixel, channel) writes that channel of every kernel tap: the
    # index arithmetic (64-bit divisions, slow on a GPU) is paid once per kh * kw items, and
    # neighbouring threads read and write neighbouring channels
    start, _ = cuda.grid(2)
    step, _ = cuda.gridsize(2)
    for item in range(start, cols.shape[0] * c_in, step):
        row, c = item // c_in, item % c_in
        img, pixel = row // (out_h * out_w), row % (out_h * out_w)
        oy, ox = pixel // out_w, pixel % out_w
        for ki in range(kh):
            iy = oy * sh + ki * dh - top
            for kj in range(kw):
                ix = ox * sw + kj * dw - left
                col = (ki * kw + kj) * c_in + c
                if 0 <= iy < h and 0 <= ix < w:
                    cols[row, col] = x[img, iy, ix, c]
                else:
                    cols[row, col] = 0


@cache
def _col2im_kernel(min_blocks: int):  # type: ignore[no-untyped-def]
    """The col2im kernel, built with a launch bound of ``min_blocks`` blocks per SM."""

    @cuda.jit(**_launch_bounds(FLAT_BLOCK[0], min_blocks))
    def col2im(dcols, dx, conv):  # type: ignore[no-untyped-def]
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
                    # which output row, if any, reads input row iy through kernel row ki; stride
                    # 1 skips the divisions
                    ty = iy + top - ki * dh
                    if sh == 1:
                        oy, hit_y = ty, 0 <= ty < out_h
                    else:
                        oy, hit_y = ty // sh, ty >= 0 and ty % sh == 0 and ty // sh < out_h
                    if hit_y:
                        for kj in range(kw):
                            tx = ix + left - kj * dw
                            if sw == 1:
                                ox, hit_x = tx, 0 <= tx < out_w
                            else:
                                ox, hit_x = tx // sw, tx >= 0 and tx % sw == 0 and tx // sw < out_w
                            if hit_x:
                                pixel = (img * out_h + oy) * out_w + ox
                                total += dcols[pixel, (ki * kw + kj) * c_in + c]
                dx[img, iy, ix, c] = total

    return col2im


@cuda.jit
def _copy4d_kernel(src, dst):  # type: ignore[no-untyped-def]
    a, b, c, d = dst.shape
    col0, row0 = cuda.grid(2)
    col_step, row_step = cuda.gridsize(2)
    for row in range(row0, a * b, row_step):
        for col in range(col0, c * d, col_step):
            dst[row // b, row % b, col // d, col % d] = src[row // b, row % b, col // d, col % d]


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

    @cuda.jit(**_launch_bounds(threads, min_blocks))
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
    _sum_rows_kernel[_grid((out.size, 1), FLAT_BLOCK), FLAT_BLOCK](partials, out)


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
    kernel = _gemm_kernel(dtype, trans_a, trans_b, bias is not None, shape, _min_blocks())
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


def _on_device(a: Any) -> Any:
    """A device array holding ``a``: moved there if it is on the host, never a host copy."""
    if hasattr(a, "copy_to_host"):
        device = a
    elif hasattr(a, "__cuda_array_interface__"):
        device = cuda.as_cuda_array(a)
    else:
        # native byte order: a big-endian host array is converted on its way
        return cuda.to_device(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))
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
    #: the full column matrix goes through device memory (the traffic model counts it)
    column_buffer: ClassVar[bool] = True

    def available(self) -> tuple[bool, str]:
        if _SIMULATED:
            return True, ""
        if not cuda.is_available():
            return False, "no CUDA GPU found (the tests run this backend on numba's CUDA simulator)"
        missing = _toolkit_missing()
        if missing:
            return False, missing
        return True, ""

    def simulated(self) -> bool:
        """Whether kernels run on numba's CUDA simulator: correct, but never worth timing."""
        return bool(_SIMULATED)

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Saved]:
        x, w, b = _on_device(x), _on_device(w), _on_device(b)
        cols = cuda.device_array(geom.cols_shape, x.dtype)
        rows, width = geom.cols_shape
        grid = _grid((rows * geom.c_in, 1), FLAT_BLOCK)
        _im2col_kernel[grid, FLAT_BLOCK](x, cols, _conv_args(geom))
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
        _col2im_kernel(_min_blocks())[grid, THREADS_PER_BLOCK](dcols, dx, _conv_args(geom))
        return dx, dw, self._bias_grad(dy_mat)

    def _bias_grad(self, dy_mat: Any) -> Any:
        """db (C_out,): the column sums of dy_mat (N * OH * OW, C_out)."""
        rows, c_out = dy_mat.shape
        dtype = np.dtype(dy_mat.dtype)
        # enough row blocks to fill the GPU, each summing one stretch of rows
        grid_x, grid_y = _grid((c_out, rows), THREADS_PER_BLOCK)
        grid_y = min(grid_y, max(1, TARGET_BLOCKS // grid_x))
        rows_per_block = math.ceil(rows / grid_y)
        grid_y = math.ceil(rows / rows_per_block)
        partials = cuda.device_array((grid_y, c_out), dtype)
        _bias_grad_kernel(dtype)[(grid_x, grid_y), THREADS_PER_BLOCK](
            dy_mat, partials, rows_per_block
        )
        if grid_y == 1:
            return partials.reshape(c_out)
        db = cuda.device_array((c_out,), dtype)
        _sum_rows(partials, db)
        return db

    def to_device(self, a: NDArray[np.floating]) -> Any:
        # native byte order: a big-endian host array is converted on its way
        return cuda.to_device(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))

    def to_numpy(self, a: Any) -> NDArray[np.floating]:
        if hasattr(a, "copy_to_host"):
            return a.copy_to_host()
        return np.asarray(a)

    def synchronize(self) -> None:
        cuda.synchronize()

"""im2col, col2im, bias and a tiled matrix product as numba.cuda kernels, all on the GPU.

The matrix products and the bias gradient come from the device BLAS in
:mod:`impls._cuda_blas`; this module holds the convolution's own kernels and the backend.

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

from functools import cache
from typing import Any, ClassVar

import numpy as np
from numba import cuda, types
from numpy.typing import NDArray

from . import _numpy_compat  # noqa: F401  (np.row_stack, before the first compile)
from ._base import Backend
from ._cuda_blas import (
    FLAT_BLOCK,
    SIMULATED,
    THREADS_PER_BLOCK,
    column_sums,
    launch_bounds,
    launch_grid,
    launch_min_blocks,
    matmul,
)
from ._geometry import ConvGeometry
from ._index import device_functions

Saved = tuple[Any, Any]

#: the index arithmetic of impls._index, as device functions inlined into the kernels
_input_pixel, _tap_offset, _output_pixel = device_functions()


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
            iy = _input_pixel(oy, ki, sh, dh, top)
            for kj in range(kw):
                ix = _input_pixel(ox, kj, sw, dw, left)
                col = (ki * kw + kj) * c_in + c
                if 0 <= iy < h and 0 <= ix < w:
                    cols[row, col] = x[img, iy, ix, c]
                else:
                    cols[row, col] = 0


@cache
def _col2im_kernel(min_blocks: int):  # type: ignore[no-untyped-def]
    """The col2im kernel, built with a launch bound of ``min_blocks`` blocks per SM."""

    @cuda.jit(**launch_bounds(FLAT_BLOCK[0], min_blocks))
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
                    # which output row, if any, reads input row iy through kernel row ki
                    oy = _output_pixel(_tap_offset(iy, ki, dh, top), sh, out_h)
                    if oy >= 0:
                        for kj in range(kw):
                            ox = _output_pixel(_tap_offset(ix, kj, dw, left), sw, out_w)
                            if ox >= 0:
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
        grid = launch_grid((c_ * d_, a_ * b_), THREADS_PER_BLOCK)
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
        if SIMULATED:
            return True, ""
        if not cuda.is_available():
            return False, "no CUDA GPU found (the tests run this backend on numba's CUDA simulator)"
        missing = _toolkit_missing()
        if missing:
            return False, missing
        return True, ""

    def simulated(self) -> bool:
        """Whether kernels run on numba's CUDA simulator: correct, but never worth timing."""
        return bool(SIMULATED)

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Saved]:
        x, w, b = _on_device(x), _on_device(w), _on_device(b)
        cols = cuda.device_array(geom.cols_shape, x.dtype)
        rows, width = geom.cols_shape
        grid = launch_grid((rows * geom.c_in, 1), FLAT_BLOCK)
        _im2col_kernel[grid, FLAT_BLOCK](x, cols, _conv_args(geom))
        # a private device copy (microseconds): w may be changed in place before backward
        w_mat = cuda.device_array((width, geom.c_out), w.dtype)
        w_mat.copy_to_device(w.reshape(width, geom.c_out))
        y_mat = matmul(cols, w_mat, bias=b)
        return y_mat.reshape(*geom.y_shape), (cols, w_mat)

    def _backward(self, dy: Any, saved: Saved, geom: ConvGeometry) -> tuple[Any, Any, Any]:
        cols, w_mat = saved
        rows = geom.cols_shape[0]
        dy_mat = _on_device(dy).reshape(rows, geom.c_out)
        dw = matmul(cols, dy_mat, trans_a=True).reshape(*geom.w_shape)
        dcols = matmul(dy_mat, w_mat, trans_b=True)
        dx = cuda.device_array(geom.x_shape, cols.dtype)
        grid = launch_grid((geom.w * geom.c_in, geom.n * geom.h), THREADS_PER_BLOCK)
        _col2im_kernel(launch_min_blocks())[grid, THREADS_PER_BLOCK](dcols, dx, _conv_args(geom))
        return dx, dw, column_sums(dy_mat)

    def to_device(self, a: NDArray[np.floating]) -> Any:
        # native byte order: a big-endian host array is converted on its way
        return cuda.to_device(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))

    def to_numpy(self, a: Any) -> NDArray[np.floating]:
        if hasattr(a, "copy_to_host"):
            return a.copy_to_host()
        return np.asarray(a)

    def synchronize(self) -> None:
        cuda.synchronize()

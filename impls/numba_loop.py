"""im2col and col2im as numba-jitted parallel loops, with the matrix products left to BLAS.

The im2col loop reads each window straight from the unpadded input (out-of-range taps
are zeros), so no padded copy is made; rows of output pixels are spread over threads.
col2im is written as a gather: each input pixel sums the dcols entries of the windows
that cover it, so threads never write to the same place and no atomics are needed.
Memory: the full column matrix, N * OH * OW * kh * kw * C_in items.
Reference: Lam, Pitrou & Seibert, "Numba: a LLVM-based Python JIT compiler" (2015).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from ._columns import ColumnBackend
from ._geometry import ConvGeometry
from ._index import jit_input_pixel, jit_output_pixel, jit_tap_offset
from ._parallel import threadsafe_parallel


def _im2col(x, cols, out_h, out_w, kh, kw, sh, sw, dh, dw, top, left):  # type: ignore[no-untyped-def]
    n_img, h, w, c_in = x.shape
    for r in prange(n_img * out_h):
        n, oy = r // out_h, r % out_h
        for ox in range(out_w):
            row = r * out_w + ox
            for ki in range(kh):
                iy = jit_input_pixel(oy, ki, sh, dh, top)
                for kj in range(kw):
                    ix = jit_input_pixel(ox, kj, sw, dw, left)
                    base = (ki * kw + kj) * c_in
                    inside = 0 <= iy < h and 0 <= ix < w
                    for c in range(c_in):
                        cols[row, base + c] = x[n, iy, ix, c] if inside else 0.0


def _col2im(dcols, dx, out_h, out_w, kh, kw, sh, sw, dh, dw, top, left):  # type: ignore[no-untyped-def]
    n_img, h, w, c_in = dx.shape
    for r in prange(n_img * h):
        n, iy = r // h, r % h
        for ki in range(kh):
            # which output row, if any, reads input row iy through kernel row ki
            oy = jit_output_pixel(jit_tap_offset(iy, ki, dh, top), sh, out_h)
            if oy < 0:
                continue
            for ix in range(w):
                for kj in range(kw):
                    ox = jit_output_pixel(jit_tap_offset(ix, kj, dw, left), sw, out_w)
                    if ox < 0:
                        continue
                    row = (n * out_h + oy) * out_w + ox
                    base = (ki * kw + kj) * c_in
                    for c in range(c_in):
                        dx[n, iy, ix, c] += dcols[row, base + c]


# callable from several threads at once under any numba threading layer
im2col = threadsafe_parallel(njit(parallel=True, cache=True)(_im2col))
col2im = threadsafe_parallel(njit(parallel=True, cache=True)(_col2im))


def _loop_args(geom: ConvGeometry) -> tuple[int, ...]:
    return geom.out_h, geom.out_w, geom.kh, geom.kw, *geom.index_params


class NumbaLoop(ColumnBackend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "numba parallel loops for im2col and a gather col2im, BLAS for the matrix products"
    )

    def im2col(self, x: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        cols = np.empty(geom.cols_shape, dtype=x.dtype)
        im2col(np.ascontiguousarray(x), cols, *_loop_args(geom))
        return cols

    def col2im(self, dcols: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        dx = np.zeros(geom.x_shape, dtype=dcols.dtype)
        col2im(dcols, dx, *_loop_args(geom))
        return dx

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

from ._base import Backend
from ._gemm import cols_backward, cols_forward
from ._geometry import ConvGeometry
from ._parallel import threadsafe_parallel

Saved = tuple[NDArray[np.floating], NDArray[np.floating]]


def _im2col(x, cols, out_h, out_w, kh, kw, sh, sw, dh, dw, top, left):  # type: ignore[no-untyped-def]
    n_img, h, w, c_in = x.shape
    for r in prange(n_img * out_h):
        n, oy = r // out_h, r % out_h
        for ox in range(out_w):
            row = r * out_w + ox
            for ki in range(kh):
                iy = oy * sh + ki * dh - top
                for kj in range(kw):
                    ix = ox * sw + kj * dw - left
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
            ty = iy + top - ki * dh
            if ty < 0 or ty % sh != 0 or ty // sh >= out_h:
                continue
            oy = ty // sh
            for ix in range(w):
                for kj in range(kw):
                    tx = ix + left - kj * dw
                    if tx < 0 or tx % sw != 0 or tx // sw >= out_w:
                        continue
                    row = (n * out_h + oy) * out_w + tx // sw
                    base = (ki * kw + kj) * c_in
                    for c in range(c_in):
                        dx[n, iy, ix, c] += dcols[row, base + c]


# callable from several threads at once under any numba threading layer
im2col = threadsafe_parallel(njit(parallel=True, cache=True)(_im2col))
col2im = threadsafe_parallel(njit(parallel=True, cache=True)(_col2im))


def _loop_args(geom: ConvGeometry) -> tuple[int, ...]:
    return geom.out_h, geom.out_w, geom.kh, geom.kw, *geom.index_params


class NumbaLoop(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "numba parallel loops for im2col and a gather col2im, BLAS for the matrix products"
    )
    #: a strategy from the source article
    role: ClassVar[str] = "seed"
    #: saved holds the column matrix and a copy of w, both private
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: the full column matrix goes through memory (the traffic model counts it)
    column_buffer: ClassVar[bool] = True

    def im2col(self, x: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        """The column matrix (N * OH * OW, kh * kw * C_in) of x: forward's first phase.

        The harness times it alone, to weigh im2col against the whole forward pass.
        """
        cols = np.empty(geom.cols_shape, dtype=x.dtype)
        im2col(np.ascontiguousarray(x), cols, *_loop_args(geom))
        return cols

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Saved]:
        cols = self.im2col(x, geom)
        y, w_mat = cols_forward(cols, w, b, geom)
        return y, (cols, w_mat)

    def _backward(
        self, dy: NDArray[np.floating], saved: Saved, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        cols, w_mat = saved
        dcols, dw, db = cols_backward(dy, cols, w_mat, geom)
        dx = np.zeros(geom.x_shape, dtype=dy.dtype)
        col2im(dcols, dx, *_loop_args(geom))
        return dx, dw, db

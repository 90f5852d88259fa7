"""The textbook im2col: a Python loop copies every output pixel's window into one row.

Row ``(n, oy, ox)`` of the column matrix holds the window under output pixel (oy, ox)
of image n, flattened in (kh, kw, C_in) order, so the layer is one matrix product with
the kernel reshaped to (kh * kw * C_in, C_out). The backward pass multiplies dY back
through that product and scatter-adds each row into its window (col2im), which is right
for every stride. Memory: the full column matrix, N * OH * OW * kh * kw * C_in items.
Reference: Chellapilla, Puri & Simard, "High performance convolutional neural networks
for document processing" (2006).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ._base import Backend
from ._gemm import cols_backward, cols_forward
from ._geometry import ConvGeometry, pad_input

Saved = tuple[NDArray[np.floating], NDArray[np.floating]]


class NaiveLoop(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "Python loop over every (image, output row, output column) window, then one matmul"
    )
    #: a strategy from the source article
    role: ClassVar[str] = "seed"
    #: saved holds the column matrix and a copy of w, both private
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: the full column matrix goes through memory (the traffic model counts it)
    column_buffer: ClassVar[bool] = True

    def _windows(self, geom: ConvGeometry):  # type: ignore[no-untyped-def]
        """Yield (row, n, rows, cols): a column-matrix row and the padded-input window it holds."""
        (sh, sw), (dh, dw) = geom.stride, geom.dilation
        row = 0
        for n in range(geom.n):
            for oy in range(geom.out_h):
                for ox in range(geom.out_w):
                    rows = slice(oy * sh, oy * sh + (geom.kh - 1) * dh + 1, dh)
                    cols = slice(ox * sw, ox * sw + (geom.kw - 1) * dw + 1, dw)
                    yield row, n, rows, cols
                    row += 1

    def im2col(self, x: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        """The column matrix (N * OH * OW, kh * kw * C_in) of x: forward's first phase.

        The harness times it alone, to weigh im2col against the whole forward pass.
        """
        x_pad = pad_input(x, geom)
        cols = np.empty(geom.cols_shape, dtype=x.dtype)
        for row, n, rows, win_cols in self._windows(geom):
            cols[row] = x_pad[n, rows, win_cols, :].ravel()
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
        # col2im: overlapping windows add up
        dx_pad = np.zeros((geom.n, *geom.padded_hw, geom.c_in), dtype=dy.dtype)
        window = (geom.kh, geom.kw, geom.c_in)
        for row, n, rows, win_cols in self._windows(geom):
            dx_pad[n, rows, win_cols, :] += dcols[row].reshape(window)
        inner_rows, inner_cols = geom.interior()
        return dx_pad[:, inner_rows, inner_cols, :], dw, db

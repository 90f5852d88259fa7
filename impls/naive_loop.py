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

from ._columns import ColumnBackend
from ._geometry import ConvGeometry, pad_input


class NaiveLoop(ColumnBackend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "Python loop over every (image, output row, output column) window, then one matmul"
    )

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
        x_pad = pad_input(x, geom)
        cols = np.empty(geom.cols_shape, dtype=x.dtype)
        for row, n, rows, win_cols in self._windows(geom):
            cols[row] = x_pad[n, rows, win_cols, :].ravel()
        return cols

    def col2im(self, dcols: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        # overlapping windows add up
        dx_pad = np.zeros((geom.n, *geom.padded_hw, geom.c_in), dtype=dcols.dtype)
        window = (geom.kh, geom.kw, geom.c_in)
        for row, n, rows, win_cols in self._windows(geom):
            dx_pad[n, rows, win_cols, :] += dcols[row].reshape(window)
        inner_rows, inner_cols = geom.interior()
        return dx_pad[:, inner_rows, inner_cols, :]

"""Batched im2col: one strided copy per kernel tap replaces the loop over windows.

For each kernel tap (ki, kj), the input pixels it reads for every output pixel of every
image form one strided slice of the padded input; copying that slice fills the tap's
C_in columns of the whole column matrix at once. So the Python loop runs kh * kw times
instead of N * OH * OW times. col2im adds each tap's slice of dcols back the same way.
Memory: the full column matrix, N * OH * OW * kh * kw * C_in items.
Reference: the numpy-ml ``im2col`` (github.com/ddbourgin/numpy-ml) vectorises the same way.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ._columns import ColumnBackend
from ._geometry import ConvGeometry, pad_input


class BatchedIm2col(ColumnBackend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "one strided numpy copy per kernel tap builds the whole batch's columns"
    )

    def im2col(self, x: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        x_pad = pad_input(x, geom)
        cols = np.empty((geom.n, geom.out_h, geom.out_w, geom.kh, geom.kw, geom.c_in), x.dtype)
        for ki in range(geom.kh):
            for kj in range(geom.kw):
                rows, win_cols = geom.window_starts(ki, kj)
                cols[:, :, :, ki, kj, :] = x_pad[:, rows, win_cols, :]
        return cols.reshape(geom.cols_shape)

    def col2im(self, dcols: NDArray[np.floating], geom: ConvGeometry) -> NDArray[np.floating]:
        taps = dcols.reshape(geom.n, geom.out_h, geom.out_w, geom.kh, geom.kw, geom.c_in)
        # taps whose windows overlap add up in dx
        dx_pad = np.zeros((geom.n, *geom.padded_hw, geom.c_in), dtype=dcols.dtype)
        for ki in range(geom.kh):
            for kj in range(geom.kw):
                rows, win_cols = geom.window_starts(ki, kj)
                dx_pad[:, rows, win_cols, :] += taps[:, :, :, ki, kj, :]
        inner_rows, inner_cols = geom.interior()
        return dx_pad[:, inner_rows, inner_cols, :]

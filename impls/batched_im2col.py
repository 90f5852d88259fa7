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

from ._base import Backend
from ._gemm import cols_backward, cols_forward
from ._geometry import ConvGeometry, pad_input

Saved = tuple[NDArray[np.floating], NDArray[np.floating]]


class BatchedIm2col(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "one strided numpy copy per kernel tap builds the whole batch's columns"
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
        x_pad = pad_input(x, geom)
        cols = np.empty((geom.n, geom.out_h, geom.out_w, geom.kh, geom.kw, geom.c_in), x.dtype)
        for ki in range(geom.kh):
            for kj in range(geom.kw):
                rows, win_cols = geom.window_starts(ki, kj)
                cols[:, :, :, ki, kj, :] = x_pad[:, rows, win_cols, :]
        return cols.reshape(geom.cols_shape)

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Saved]:
        cols_mat = self.im2col(x, geom)
        y, w_mat = cols_forward(cols_mat, w, b, geom)
        return y, (cols_mat, w_mat)

    def _backward(
        self, dy: NDArray[np.floating], saved: Saved, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        cols_mat, w_mat = saved
        dcols_mat, dw, db = cols_backward(dy, cols_mat, w_mat, geom)
        dcols = dcols_mat.reshape(geom.n, geom.out_h, geom.out_w, geom.kh, geom.kw, geom.c_in)
        # col2im: taps whose windows overlap add up in dx
        dx_pad = np.zeros((geom.n, *geom.padded_hw, geom.c_in), dtype=dy.dtype)
        for ki in range(geom.kh):
            for kj in range(geom.kw):
                rows, win_cols = geom.window_starts(ki, kj)
                dx_pad[:, rows, win_cols, :] += dcols[:, :, :, ki, kj, :]
        inner_rows, inner_cols = geom.interior()
        return dx_pad[:, inner_rows, inner_cols, :], dw, db

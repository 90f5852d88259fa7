"""The im2col family's base: the column matrix, one matrix product each way, and col2im.

With cols (N * OH * OW, kh * kw * C_in) and w_mat = w reshaped to (kh * kw * C_in, C_out):
y = cols @ w_mat + b; dW = cols.T @ dY; db = column sums of dY; dcols = dY @ w_mat.T.
The backends differ only in how they build cols (``im2col``) and scatter dcols back onto
the input (``col2im``): a subclass of :class:`ColumnBackend` supplies just those two.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ._base import Backend
from ._geometry import ConvGeometry

Array = NDArray[np.floating]
#: what forward keeps for backward: the column matrix and a private copy of w as a matrix
Saved = tuple[Array, Array]


def cols_forward(cols: Array, w: Array, b: Array, geom: ConvGeometry) -> tuple[Array, Array]:
    """y (N, OH, OW, C_out) from the column matrix, and a private weight matrix for backward."""
    # a copy: w may be changed in place before backward
    w_mat = w.reshape(-1, geom.c_out).copy()
    y = cols @ w_mat
    y += b
    return y.reshape(geom.y_shape), w_mat


def cols_backward(
    dy: Array, cols: Array, w_mat: Array, geom: ConvGeometry
) -> tuple[Array, Array, Array]:
    """dcols (N * OH * OW, kh * kw * C_in), dw (kh, kw, C_in, C_out) and db (C_out,)."""
    dy_mat = dy.reshape(-1, geom.c_out)
    dw = (cols.T @ dy_mat).reshape(geom.w_shape)
    db = dy_mat.sum(axis=0)
    return dy_mat @ w_mat.T, dw, db


class ColumnBackend(Backend):
    """A backend that builds the full column matrix and multiplies it with BLAS.

    Subclasses implement :meth:`im2col` and :meth:`col2im`; forward and backward are these
    products around them. Memory: the full column matrix, N * OH * OW * kh * kw * C_in items,
    kept from forward to backward, and its gradient of the same size.
    """

    #: the im2col strategies come from the source article
    role: ClassVar[str] = "seed"
    #: saved holds the column matrix and a copy of w, both private
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: the full column matrix goes through memory (the traffic model counts it)
    column_buffer: ClassVar[bool] = True

    def im2col(self, x: Array, geom: ConvGeometry) -> Array:
        """The column matrix (N * OH * OW, kh * kw * C_in) of x (N, H, W, C_in): forward's
        first phase.

        The harness times it alone, to weigh im2col against the whole forward pass.
        """
        raise NotImplementedError

    def col2im(self, dcols: Array, geom: ConvGeometry) -> Array:
        """dx (N, H, W, C_in): each row of dcols (N * OH * OW, kh * kw * C_in) added back onto
        the input pixels its window read; overlapping windows add up, padding is dropped."""
        raise NotImplementedError

    def _forward(self, x: Array, w: Array, b: Array, geom: ConvGeometry) -> tuple[Array, Saved]:
        cols = self.im2col(x, geom)
        y, w_mat = cols_forward(cols, w, b, geom)
        return y, (cols, w_mat)

    def _backward(self, dy: Array, saved: Saved, geom: ConvGeometry) -> tuple[Array, Array, Array]:
        cols, w_mat = saved
        dcols, dw, db = cols_backward(dy, cols, w_mat, geom)
        return self.col2im(dcols, geom), dw, db

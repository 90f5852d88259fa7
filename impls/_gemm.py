"""The matrix products every im2col backend shares once it has its column matrix.

With cols (N * OH * OW, kh * kw * C_in) and w_mat = w reshaped to (kh * kw * C_in, C_out):
y = cols @ w_mat + b; dW = cols.T @ dY; db = column sums of dY; dcols = dY @ w_mat.T.
The backends differ only in how they build cols and scatter dcols back (col2im).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._geometry import ConvGeometry

Array = NDArray[np.floating]


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

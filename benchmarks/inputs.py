"""The inputs a case is timed and checked on: x, w, b and dy, drawn from one fixed seed."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .matrix import Conv

Array = NDArray[np.floating]


def case_inputs(conv: Conv) -> tuple[Array, Array, Array, Array]:
    """The host arrays of ``conv`` in its dtype, the same on every call.

    Returns
    -------
    x : (N, H, W, C_in) array
    w : (k, k, C_in, C_out) array, scaled by 1/k so y stays near unit magnitude
    b : (C_out,) array
    dy : (N, OH, OW, C_out) array
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal(conv.x_shape, dtype=np.float32).astype(conv.dtype)
    w = (rng.standard_normal(conv.w_shape, dtype=np.float32) / conv.k).astype(conv.dtype)
    b = rng.standard_normal(conv.c_out, dtype=np.float32).astype(conv.dtype)
    y_shape = conv.geometry().y_shape
    dy = rng.standard_normal(y_shape, dtype=np.float32).astype(conv.dtype)
    return x, w, b, dy

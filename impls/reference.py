"""The oracle: a direct convolution in float64, looping over output pixels and kernel taps.

Each output pixel is the sum over kernel taps of (input pixel row) @ (kernel tap matrix);
the backward pass scatter-adds each tap's contribution back, which is right for every
stride, padding and dilation. Memory: the padded input and its gradient only.
Reference: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ._base import Backend
from ._geometry import ConvGeometry, pad_input
from ._index import input_pixel


class Reference(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "float64 direct loops over output pixels and kernel taps, scatter-add backward (the oracle)"
    )
    #: the oracle every other backend is tested against, not a contender
    role: ClassVar[str] = "oracle"
    #: saved holds float64 copies of x (padded) and w
    saved_by_reference: ClassVar[tuple[str, ...]] = ()

    def _taps(self, geom: ConvGeometry):  # type: ignore[no-untyped-def]
        """Yield (oy, ox, ki, kj, iy, ix): output pixel, kernel tap and padded input pixel."""
        (sh, sw), (dh, dw) = geom.stride, geom.dilation
        for oy in range(geom.out_h):
            for ox in range(geom.out_w):
                for ki in range(geom.kh):
                    for kj in range(geom.kw):
                        # in the padded input's coordinates: no padding before
                        iy, ix = input_pixel(oy, ki, sh, dh, 0), input_pixel(ox, kj, sw, dw, 0)
                        yield oy, ox, ki, kj, iy, ix

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], tuple[NDArray[np.float64], NDArray[np.float64]]]:
        x_pad = pad_input(x.astype(np.float64), geom)
        w64 = w.astype(np.float64)
        y = np.zeros(geom.y_shape)
        for oy, ox, ki, kj, iy, ix in self._taps(geom):
            y[:, oy, ox, :] += x_pad[:, iy, ix, :] @ w64[ki, kj]
        y += b.astype(np.float64)
        return y.astype(x.dtype), (x_pad, w64)

    def _backward(
        self,
        dy: NDArray[np.floating],
        saved: tuple[NDArray[np.float64], NDArray[np.float64]],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x_pad, w64 = saved
        dy64 = dy.astype(np.float64)
        dx_pad = np.zeros_like(x_pad)
        dw = np.zeros_like(w64)
        for oy, ox, ki, kj, iy, ix in self._taps(geom):
            # each tap read x_pad[:, iy, ix] into y[:, oy, ox]: send the gradient back the same way
            dx_pad[:, iy, ix, :] += dy64[:, oy, ox, :] @ w64[ki, kj].T
            dw[ki, kj] += x_pad[:, iy, ix, :].T @ dy64[:, oy, ox, :]
        db = dy64.sum(axis=(0, 1, 2))
        rows, cols = geom.interior()
        dtype = dy.dtype
        return dx_pad[:, rows, cols, :].astype(dtype), dw.astype(dtype), db.astype(dtype)

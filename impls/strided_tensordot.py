"""Strided windows and tensordot: im2col as a read-only view, never copied out by hand.

``as_strided`` gives a (N, OH, OW, kh, kw, C_in) window view of the padded input, and
``np.tensordot`` contracts it with the kernel over (kh, kw, C_in); dW contracts the same
view with dY over (N, OH, OW). dX is the full correlation of dY, dilated by the stride
(stride - 1 zeros between its pixels), with the 180°-rotated kernel, again a window view
plus tensordot. Without that dilation the flipped-kernel trick is wrong for stride > 1.
Memory: no column matrix of our own, though tensordot may copy the view to call BLAS.
Reference: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016),
section 4 (transposed convolution).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from ._base import Backend
from ._geometry import ConvGeometry, pad_input

Saved = tuple[NDArray[np.floating], NDArray[np.floating]]


def window_view(
    a: NDArray[np.floating],
    out_hw: tuple[int, int],
    k_hw: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> NDArray[np.floating]:
    """Read-only (N, OH, OW, kh, kw, C) view of the windows of a (N, H, W, C) array."""
    sn, sh, sw, sc = a.strides
    return as_strided(
        a,
        shape=(a.shape[0], *out_hw, *k_hw, a.shape[3]),
        strides=(sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False,
    )


class StridedTensordot(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "read-only as_strided window view contracted with np.tensordot; dx via stride-dilated dy"
    )
    #: a strategy from the source article
    role: ClassVar[str] = "seed"
    #: saved holds the padded copy of x and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: tensordot copies the window view into a full column matrix for BLAS (the traffic model
    #: counts it)
    column_buffer: ClassVar[bool] = True
    #: padding zeros meet a non-finite weight or dy value in every product, and dx correlates
    #: the zeros around and between dy's pixels with the whole kernel
    nonfinite_spread: ClassVar[Mapping[str, str]] = {
        "y": "channel",
        "dx": "channel",
        "dw": "channel",
    }

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Saved]:
        x_pad = pad_input(x, geom)
        windows = window_view(
            x_pad, (geom.out_h, geom.out_w), (geom.kh, geom.kw), geom.stride, geom.dilation
        )
        y = np.tensordot(windows, w, axes=([3, 4, 5], [0, 1, 2])) + b
        return y, (x_pad, w.copy())

    def _backward(
        self, dy: NDArray[np.floating], saved: Saved, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x_pad, w = saved
        windows = window_view(
            x_pad, (geom.out_h, geom.out_w), (geom.kh, geom.kw), geom.stride, geom.dilation
        )
        dw = np.tensordot(windows, dy, axes=([0, 1, 2], [0, 1, 2]))
        db = dy.sum(axis=(0, 1, 2))
        # dilate dy by the stride, then pad it so that a stride-1 correlation with the
        # rotated kernel yields one value per padded-input pixel
        (sh, sw), (dh, dw_) = geom.stride, geom.dilation
        span_h, span_w = (geom.kh - 1) * dh, (geom.kw - 1) * dw_
        padded_h, padded_w = geom.padded_hw
        dy_dil = np.zeros(
            (geom.n, padded_h + span_h, padded_w + span_w, geom.c_out), dtype=dy.dtype
        )
        dy_dil[
            :,
            span_h : span_h + (geom.out_h - 1) * sh + 1 : sh,
            span_w : span_w + (geom.out_w - 1) * sw + 1 : sw,
        ] = dy
        w_rot = w[::-1, ::-1]
        dy_windows = window_view(
            dy_dil, (padded_h, padded_w), (geom.kh, geom.kw), (1, 1), geom.dilation
        )
        dx_pad = np.tensordot(dy_windows, w_rot, axes=([3, 4, 5], [0, 1, 3]))
        inner_rows, inner_cols = geom.interior()
        return dx_pad[:, inner_rows, inner_cols, :], dw, db

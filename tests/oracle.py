"""An oracle that shares nothing with the code under test: convolution from the raw call arguments.

Output shape, padding split and y, dx, dw, db are worked out here from first principles, with
plain numpy and no import from ``impls``, so that a bug in ``impls._geometry`` (a stride pair
read backwards, a SAME split on the wrong side) cannot agree with itself. The arithmetic is
the textbook one: a kernel of size k and dilation d spans (k - 1) d + 1 pixels, and the
output has floor((size + before + after - span) / stride) + 1 of them; "SAME" keeps
ceil(size / stride) outputs, as TensorFlow does, with the odd pixel of padding after (bottom,
right), as torch's ``padding="same"`` puts it.
Reference: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning" (2016).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Pair = tuple[int, int]
Array = NDArray[np.float64]


def pair(value: Any) -> Pair:
    """An int or an (h, w) pair, as a pair."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def span(k: int, dilation: int) -> int:
    """Pixels a kernel of k taps covers with that dilation."""
    return (k - 1) * dilation + 1


def padding_split(
    padding: Any, hw: Pair, k: Pair, stride: Any = 1, dilation: Any = 1
) -> tuple[Pair, Pair]:
    """((top, bottom), (left, right)) for the raw ``padding`` argument."""
    stride, dilation = pair(stride), pair(dilation)
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return (0, 0), (0, 0)
        sides = []
        for size, taps, s, d in zip(hw, k, stride, dilation, strict=True):
            out = -(-size // s)
            total = max((out - 1) * s + span(taps, d) - size, 0)
            sides.append((total // 2, total - total // 2))
        return sides[0], sides[1]
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    (top, bottom), (left, right) = padding
    return (top, bottom), (left, right)


def output_hw(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: Any = 1,
    padding: Any = "VALID",
    dilation: Any = 1,
) -> Pair:
    """(OH, OW) of the convolution of an NHWC x with a (kh, kw, C_in, C_out) w."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    h, w, kh, kw = x_shape[1], x_shape[2], w_shape[0], w_shape[1]
    (top, bottom), (left, right) = padding_split(padding, (h, w), (kh, kw), stride, dilation)
    return (
        (h + top + bottom - span(kh, dh)) // sh + 1,
        (w + left + right - span(kw, dw)) // sw + 1,
    )


def _taps(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any
) -> tuple[tuple[Pair, Pair], list[tuple[int, int, NDArray[np.intp], NDArray[np.intp]]]]:
    """The padding, and for each tap (ki, kj) the padded rows and columns its outputs read."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    kh, kw = w_shape[0], w_shape[1]
    pad = padding_split(padding, (x_shape[1], x_shape[2]), (kh, kw), stride, dilation)
    out_h, out_w = output_hw(x_shape, w_shape, stride, padding, dilation)
    taps = [
        (ki, kj, np.arange(out_h) * sh + ki * dh, np.arange(out_w) * sw + kj * dw)
        for ki in range(kh)
        for kj in range(kw)
    ]
    return pad, taps


def _padded(x: Array, pad: tuple[Pair, Pair]) -> Array:
    (top, bottom), (left, right) = pad
    n, h, w, c = x.shape
    out = np.zeros((n, h + top + bottom, w + left + right, c))
    out[:, top : top + h, left : left + w] = x
    return out


def conv2d(
    x: Any, w: Any, b: Any, *, stride: Any = 1, padding: Any = "VALID", dilation: Any = 1
) -> Array:
    """y (N, OH, OW, C_out) = b + the cross-correlation of x with w, in float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    pad, taps = _taps(x.shape, w.shape, stride, padding, dilation)
    x_pad = _padded(x, pad)
    out_h, out_w = output_hw(x.shape, w.shape, stride, padding, dilation)
    y = np.zeros((x.shape[0], out_h, out_w, w.shape[3]))
    for ki, kj, rows, cols in taps:
        y += np.einsum("nhwc,co->nhwo", x_pad[:, rows][:, :, cols], w[ki, kj])
    return y + (0.0 if b is None else np.asarray(b, np.float64))


def conv2d_grads(
    x: Any, w: Any, dy: Any, *, stride: Any = 1, padding: Any = "VALID", dilation: Any = 1
) -> tuple[Array, Array, Array]:
    """dx, dw, db of sum(y * dy), in float64."""
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    pad, taps = _taps(x.shape, w.shape, stride, padding, dilation)
    x_pad = _padded(x, pad)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for ki, kj, rows, cols in taps:
        window = x_pad[:, rows][:, :, cols]
        dw[ki, kj] = np.einsum("nhwc,nhwo->co", window, dy)
        # rows and cols hold no repeats for one tap, so += adds every contribution
        dx_pad[:, rows[:, None], cols[None, :]] += np.einsum("nhwo,co->nhwc", dy, w[ki, kj])
    (top, _), (left, _) = pad
    dx = dx_pad[:, top : top + x.shape[1], left : left + x.shape[2]]
    return dx, dw, dy.sum(axis=(0, 1, 2))

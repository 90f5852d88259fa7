"""Shared convolution arithmetic: argument checks, padding, output shape and FLOP counts.

Every backend gets its geometry from :func:`resolve_geometry`; none re-derives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Pair = tuple[int, int]
IntOrPair = int | tuple[int, int]
PaddingSpec = str | int | tuple[tuple[int, int], tuple[int, int]]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: the largest stride or dilation: what 32-bit index arithmetic (CUDA kernels, cuDNN) holds,
#: and small enough that a step times a row's bytes stays within numpy's 64-bit offsets
MAX_STEP = 2**31 - 1
#: the most elements the padded input, the output or the im2col matrix may have, so that
#: their bytes (8 per float64) stay within numpy's 64-bit offsets
MAX_ELEMENTS = 2**59


@dataclass(frozen=True)
class ConvGeometry:
    """Everything a backend needs to know about one convolution's shape.

    Attributes
    ----------
    n, h, w, c_in : int
        Input shape (N, H, W, C_in), NHWC.
    kh, kw, c_out : int
        Kernel shape (kh, kw, C_in, C_out).
    stride, dilation : (int, int)
        Along (height, width).
    pad : ((int, int), (int, int))
        Zero padding ((top, bottom), (left, right)).
    out_h, out_w : int
        Output spatial shape.
    """

    n: int
    h: int
    w: int
    c_in: int
    c_out: int
    kh: int
    kw: int
    stride: Pair
    dilation: Pair
    pad: tuple[Pair, Pair]
    out_h: int
    out_w: int

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.h, self.w, self.c_in)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.kh, self.kw, self.c_in, self.c_out)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.out_h, self.out_w, self.c_out)

    @property
    def padded_hw(self) -> Pair:
        """(H, W) of the zero-padded input."""
        (top, bottom), (left, right) = self.pad
        return self.h + top + bottom, self.w + left + right

    @property
    def cols_shape(self) -> Pair:
        """Shape of the im2col matrix: (N * OH * OW, kh * kw * C_in)."""
        return self.n * self.out_h * self.out_w, self.kh * self.kw * self.c_in

    def cols_bytes(self, itemsize: int) -> int:
        """Bytes of the full im2col matrix at the given item size."""
        rows, cols = self.cols_shape
        return rows * cols * itemsize

    @property
    def flops_forward(self) -> int:
        """Multiply-adds of the forward pass, counted as 2 FLOPs each."""
        return 2 * self.n * self.out_h * self.out_w * self.c_out * self.kh * self.kw * self.c_in

    @property
    def flops_backward(self) -> int:
        """FLOPs of dx plus dw: twice the forward pass."""
        return 2 * self.flops_forward

    @property
    def index_params(self) -> tuple[int, int, int, int, int, int]:
        """(sh, sw, dh, dw, top, left): what jitted loops need to map output to input pixels.

        Input pixel (iy, ix) = (oy * sh + ki * dh - top, ox * sw + kj * dw - left): the
        kernels compute it, and its inverse, with :mod:`impls._index`.
        """
        (sh, sw), (dh, dw) = self.stride, self.dilation
        (top, _), (left, _) = self.pad
        return sh, sw, dh, dw, top, left

    @property
    def tight_steps(self) -> tuple[Pair, Pair]:
        """(stride, dilation) that give the same output with the smallest numbers: a stride
        past the last usable output pixel cut to the smallest that still gives its one
        pixel, a dilation along a one-tap kernel axis cut to 1.

        What a library is handed: torch's backward dies of SIGFPE on a stride of 65536.
        """
        (sh, sw), (dh, dw) = self.stride, self.dilation
        padded_h, padded_w = self.padded_hw
        span_h, span_w = (self.kh - 1) * dh + 1, (self.kw - 1) * dw + 1
        stride = (min(sh, padded_h - span_h + 1), min(sw, padded_w - span_w + 1))
        return stride, (dh if self.kh > 1 else 1, dw if self.kw > 1 else 1)

    def window_starts(self, ki: int, kj: int) -> tuple[slice, slice]:
        """Slices of the padded input read by kernel offset (ki, kj) for every output pixel."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        row0, col0 = ki * dh, kj * dw
        return (
            slice(row0, row0 + (self.out_h - 1) * sh + 1, sh),
            slice(col0, col0 + (self.out_w - 1) * sw + 1, sw),
        )

    def interior(self) -> tuple[slice, slice]:
        """Slices that cut the unpadded input back out of the padded one."""
        (top, _), (left, _) = self.pad
        return slice(top, top + self.h), slice(left, left + self.w)


def _as_pair(value: Any, what: str) -> Pair:
    """An int or an (h, w) pair of ints in [1, MAX_STEP], as a pair."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(_is_int(v) for v in items):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    pair = (int(items[0]), int(items[1]))
    if min(pair) < 1:
        raise ValueError(f"{what} must be >= 1, got {value!r}")
    if max(pair) > MAX_STEP:
        raise ValueError(f"{what} must be at most 2**31 - 1 = {MAX_STEP}, got {value!r}")
    return pair


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _same_pad(size: int, k: int, stride: int, dilation: int) -> Pair:
    """TensorFlow's SAME rule: out = ceil(size / stride); the odd leftover goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _resolve_padding(
    padding: Any, hw: Pair, k: Pair, stride: Pair, dilation: Pair
) -> tuple[Pair, Pair]:
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0), (0, 0)
        if mode == "SAME":
            return (
                _same_pad(hw[0], k[0], stride[0], dilation[0]),
                _same_pad(hw[1], k[1], stride[1], dilation[1]),
            )
        raise ValueError(
            f"Unknown padding {padding!r}: use 'VALID', 'SAME', an int, "
            "or ((top, bottom), (left, right))"
        )
    if _is_int(padding):
        p = int(padding)
        if p < 0:
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        return (p, p), (p, p)
    try:
        (top, bottom), (left, right) = padding
    except (TypeError, ValueError):
        raise ValueError(
            f"padding must be 'VALID', 'SAME', an int, or ((top, bottom), (left, right)); "
            f"got {padding!r}"
        ) from None
    values = (top, bottom, left, right)
    if not all(_is_int(v) for v in values):
        raise ValueError(f"padding amounts must be ints, got {padding!r}")
    if min(values) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return (int(top), int(bottom)), (int(left), int(right))


def resolve_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    *,
    stride: IntOrPair = 1,
    padding: PaddingSpec = "VALID",
    dilation: IntOrPair = 1,
) -> ConvGeometry:
    """Check a convolution's shapes and arguments, and work out its geometry.

    Parameters
    ----------
    x_shape : tuple
        Input shape (N, H, W, C_in).
    w_shape : tuple
        Kernel shape (kh, kw, C_in, C_out).
    stride, dilation : int or (int, int)
        Steps between output pixels and between kernel taps, >= 1.
    padding : {"VALID", "SAME"}, int or ((top, bottom), (left, right))
        Zero padding. "SAME" follows TensorFlow: OH = ceil(H / stride).

    Returns
    -------
    ConvGeometry

    Raises
    ------
    ValueError
        On a shape or argument that does not make a non-empty convolution, a stride or
        dilation past :data:`MAX_STEP`, or a padding that makes an array of more than
        :data:`MAX_ELEMENTS` elements; the message names the argument.
    """
    if len(x_shape) != 4:
        raise ValueError(f"x must be 4-D (N, H, W, C_in), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w must be 4-D (kh, kw, C_in, C_out), got shape {tuple(w_shape)}")
    if min(x_shape) < 1:
        raise ValueError(f"x has an empty axis: shape {tuple(x_shape)}")
    if min(w_shape) < 1:
        raise ValueError(f"w has an empty axis: shape {tuple(w_shape)}")
    n, h, w, c_in = (int(v) for v in x_shape)
    kh, kw, w_c_in, c_out = (int(v) for v in w_shape)
    if w_c_in != c_in:
        raise ValueError(f"C_in differs: x has {c_in} channels, w expects {w_c_in}")
    stride_hw = _as_pair(stride, "stride")
    dilation_hw = _as_pair(dilation, "dilation")
    pad = _resolve_padding(padding, (h, w), (kh, kw), stride_hw, dilation_hw)
    padded_h, padded_w = h + sum(pad[0]), w + sum(pad[1])
    span_h, span_w = (kh - 1) * dilation_hw[0] + 1, (kw - 1) * dilation_hw[1] + 1
    if span_h > padded_h or span_w > padded_w:
        raise ValueError(
            f"kernel spans {span_h}x{span_w} pixels (with dilation) but the padded input is "
            f"only {padded_h}x{padded_w}: the output would be empty"
        )
    out_h = (padded_h - span_h) // stride_hw[0] + 1
    out_w = (padded_w - span_w) // stride_hw[1] + 1
    sizes = {
        "the padded input": n * padded_h * padded_w * c_in,
        "the output": n * out_h * out_w * c_out,
        "the im2col matrix": n * out_h * out_w * kh * kw * c_in,
    }
    for what, elements in sizes.items():
        if elements > MAX_ELEMENTS:
            cause = f"padding {padding!r}" if pad != ((0, 0), (0, 0)) else "the shapes of x and w"
            raise ValueError(
                f"{cause} makes {what} {elements:.3g} elements, past the 2**59 that numpy's "
                "64-bit byte offsets hold"
            )
    return ConvGeometry(
        n=n,
        h=h,
        w=w,
        c_in=c_in,
        c_out=c_out,
        kh=kh,
        kw=kw,
        stride=stride_hw,
        dilation=dilation_hw,
        pad=pad,
        out_h=out_h,
        out_w=out_w,
    )


def as_numpy_dtype(dtype: Any) -> np.dtype:
    """numpy's dtype for a numpy, numba or torch dtype (torch.float32 -> float32)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        # torch dtypes are not numpy's, but their names are: "torch.float32"
        return np.dtype(str(dtype).rpartition(".")[2])


def check_dtypes(**arrays: Any) -> np.dtype:
    """The one float dtype that all arrays share; ValueError on integer, complex or mixed."""
    dtypes = {name: as_numpy_dtype(a.dtype) for name, a in arrays.items()}
    for name, dtype in dtypes.items():
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"{name} has dtype {dtype}; only float32 and float64 are supported")
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name}={dtype}" for name, dtype in dtypes.items())
        raise ValueError(f"mixed dtypes ({listed}): x, w and b must share one float dtype")
    return next(iter(dtypes.values()))


def pad_input(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Zero-pad x (N, H, W, C) to (N, H + top + bottom, W + left + right, C); always a copy."""
    return np.pad(x, ((0, 0), geom.pad[0], geom.pad[1], (0, 0)))

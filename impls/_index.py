"""Which input pixel an output pixel reads through a kernel tap, and back: the one copy.

Along one axis (height: step sh, dilation dh, padding before it top; width: sw, dw, left),
output pixel o reads input pixel ``o * step + k * dilation - pad`` through tap k; in the
zero-padded input's own coordinates, pad is 0. Conversely, input pixel i is read through tap
k by the output pixel o with ``o * step = i + pad - k * dilation``, where that divides out
whole and lands in [0, out); by none otherwise.

The functions are plain Python, written once and used three ways: as they are, on ints and
on numpy arrays (``input_pixel`` and ``tap_offset`` broadcast; ``output_pixels`` is
``output_pixel`` for arrays); compiled for CPU kernels by ``numba.njit(inline="always")``,
inlined into each kernel that calls them (the ``jit_`` names); and compiled as numba.cuda
device functions for GPU kernels (:func:`device_functions`).
Reference: minitorch (minitorch.github.io), which compiles its tensor index helpers with both
``numba.njit`` and ``numba.cuda.jit(device=True)``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray


def input_pixel(o, k, step, dilation, pad):  # type: ignore[no-untyped-def]
    """The input pixel that output pixel ``o`` reads through tap ``k``, along one axis.

    ``o * step + k * dilation - pad``: outside [0, size) where it reads padding. Takes ints
    or numpy arrays, which broadcast.
    """
    return o * step + k * dilation - pad


def tap_offset(i, k, dilation, pad):  # type: ignore[no-untyped-def]
    """``o * step`` for the output pixel o that reads input pixel ``i`` through tap ``k``.

    ``i + pad - k * dilation``, the inverse of :func:`input_pixel`; :func:`output_pixel`
    divides it by the step where it can. Takes ints or numpy arrays, which broadcast.
    """
    return i + pad - k * dilation


def output_pixel(offset, step, out):  # type: ignore[no-untyped-def]
    """``offset / step`` where it divides out whole and lies in [0, out), else -1.

    With ``offset`` from :func:`tap_offset`: the output pixel that reads that input pixel
    through that tap, or -1 for none. Stride 1 skips the divisions (slow on a GPU). Ints
    only; :func:`output_pixels` takes arrays.
    """
    if step == 1:
        return offset if 0 <= offset < out else -1
    if offset < 0 or offset % step != 0 or offset // step >= out:
        return -1
    return offset // step


def output_pixels(offset: NDArray[np.intp], step: int, out: int) -> NDArray[np.intp]:
    """:func:`output_pixel` elementwise over an integer array of offsets."""
    whole = (offset >= 0) & (offset % step == 0) & (offset // step < out)
    return np.where(whole, offset // step, -1)


#: the CPU kernels' versions, inlined in numba's IR into each kernel that calls them
jit_input_pixel = numba.njit(inline="always")(input_pixel)
jit_tap_offset = numba.njit(inline="always")(tap_offset)
jit_output_pixel = numba.njit(inline="always")(output_pixel)


@cache
def device_functions() -> tuple[Any, Any, Any]:
    """(input_pixel, tap_offset, output_pixel) as numba.cuda device functions, for GPU kernels.

    Built on the first call, so that importing this module never imports numba.cuda (which
    fixes whether the CUDA simulator is used).
    """
    from numba import cuda

    # inlined in numba's IR, as on the CPU: the kernel's registers see through them
    compile_ = cuda.jit(device=True, inline="always")
    return compile_(input_pixel), compile_(tap_offset), compile_(output_pixel)

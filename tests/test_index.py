"""impls._index: output_pixel inverts input_pixel, and its numpy and numba forms agree."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from impls._index import (
    input_pixel,
    jit_input_pixel,
    jit_output_pixel,
    jit_tap_offset,
    output_pixel,
    output_pixels,
    tap_offset,
)

#: (step, dilation, pad, taps, out): strides 1 (the shortcut) and above, padding, dilation
AXES = [(1, 1, 0, 3, 5), (1, 2, 2, 3, 6), (2, 1, 1, 3, 4), (3, 2, 0, 2, 3), (2, 3, 4, 4, 5)]


@pytest.mark.parametrize(("step", "dilation", "pad", "taps", "out"), AXES)
def test_output_pixel_is_the_one_that_reads_the_input_pixel(
    step: int, dilation: int, pad: int, taps: int, out: int
) -> None:
    """For every input pixel and tap: the output pixel found reads it, and -1 means none does."""
    size = (out - 1) * step + (taps - 1) * dilation + 1
    for i, k in itertools.product(range(-2, size + 2), range(taps)):
        readers = [o for o in range(out) if input_pixel(o, k, step, dilation, pad) == i]
        found = output_pixel(tap_offset(i, k, dilation, pad), step, out)
        assert found == (readers[0] if readers else -1), (i, k)
        assert jit_output_pixel(jit_tap_offset(i, k, dilation, pad), step, out) == found


@pytest.mark.parametrize(("step", "dilation", "pad", "taps", "out"), AXES)
def test_the_array_forms_match_the_scalar_ones(
    step: int, dilation: int, pad: int, taps: int, out: int
) -> None:
    o, k = np.arange(out)[:, None], np.arange(taps)[None, :]
    pixels = input_pixel(o, k, step, dilation, pad)
    assert pixels.tolist() == [
        [jit_input_pixel(int(a), int(b), step, dilation, pad) for b in range(taps)]
        for a in range(out)
    ]
    offsets = tap_offset(np.arange(-3, 3 * out * step)[:, None], k, dilation, pad)
    expected = [[output_pixel(int(t), step, out) for t in row] for row in offsets]
    assert output_pixels(offsets, step, out).tolist() == expected

"""TEMPLATE: copy me to ``impls/<your_backend>.py``; I am then discovered, tested and benchmarked.

State your algorithm here in two or three sentences, its memory cost, and one reference.
As shipped, the template works: ``np.einsum`` contracts a read-only window view of the
padded input with the kernel, and the backward pass scatter-adds one kernel tap at a time.
Memory: the padded input, plus whatever einsum allocates.
Reference: numpy's ``sliding_window_view`` documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import DTypeLike, NDArray

from ._base import Backend, SizeThreshold
from ._geometry import ConvGeometry, pad_input

Saved = tuple[NDArray[np.floating], NDArray[np.floating]]


class TemplateBackend(Backend):  # rename the class; the backend's name is the file name
    #: one line on the strategy, shown in the README table and the reports
    description: ClassVar[str] = "einsum over a sliding_window_view (the template backend)"
    #: "seed" for the source article's strategies, "ours" for new ones, "peer" for libraries
    role: ClassVar[str] = "ours"
    #: "cpu", or "gpu" if you also override to_device, to_numpy and synchronize (the base class
    #: then takes device arrays as they are: see Backend._take_input)
    device: ClassVar[str] = "cpu"
    #: inputs that what _forward saves shares memory with: the base class fingerprints them at
    #: forward and refuses a backward once they changed in place. Save private copies where
    #: cheap (w, here) and list only the rest; the default, ("x", "w"), is safe for numpy
    #: arrays (a GPU backend saves device copies, microseconds, and lists none)
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: where a non-finite weight (y, dx) or dy value (dw) spreads: "channel" if your zeros
    #: (padding, gaps of a strided dy) multiply it like data, "data" if they are skipped,
    #: "either" if a library decides; tests/test_nonfinite.py checks it. The template's
    #: einsum multiplies padding, as the reference does
    nonfinite_spread: ClassVar[Mapping[str, str]] = {"y": "channel", "dx": "data", "dw": "channel"}
    #: the sizes past which your code takes another path (blocks, chunks, channel blocks, work
    #: over workers), each with a predicate saying whether a shape crosses it with a remainder
    #: and the module constant the tests may shrink: tests/test_blocking.py then runs cases
    #: that cross each one. None here: the template has no blocks
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = ()
    #: True if you write the full im2col matrix and read it back: the roofline's traffic model
    #: then counts it (override traffic_bytes to state your traffic otherwise)
    column_buffer: ClassVar[bool] = False

    def available(self) -> tuple[bool, str]:
        # return (False, "why") when a dependency or device is missing
        return True, ""

    def supports(self, geom: ConvGeometry, dtype: DTypeLike) -> str | None:
        # return a reason string to decline a configuration (e.g. "3x3 kernels only" where
        # (geom.kh, geom.kw) != (3, 3)); geom is the resolved geometry, dtype float32 or float64
        return None

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Saved]:
        # the base class has already checked every argument (b is zeros when None was given);
        # geom holds shapes and padding. Threads: split work with _parallel.run_jobs, wrap
        # numba parallel=True functions in _parallel.threadsafe_parallel, and apply any
        # process-wide setting through _parallel.SharedSetting; a reduction over jobs (dw) adds
        # into per-thread buffers with _parallel.PartialSums. Which input pixel an output
        # pixel reads, in numpy, numba or numba.cuda code: _index (input_pixel and its
        # inverse). A backend that builds the full column matrix subclasses
        # _columns.ColumnBackend and writes only im2col and col2im
        x_pad = pad_input(x, geom)
        (sh, sw), (dh, dw) = geom.stride, geom.dilation
        span = ((geom.kh - 1) * dh + 1, (geom.kw - 1) * dw + 1)
        # windows: (N, OH, OW, C_in, kh, kw), strided by the stride and the dilation
        windows = sliding_window_view(x_pad, span, axis=(1, 2))[
            :, : (geom.out_h - 1) * sh + 1 : sh, : (geom.out_w - 1) * sw + 1 : sw, :, ::dh, ::dw
        ]
        y = np.einsum("nyxcij,ijco->nyxo", windows, w, optimize=True) + b
        # x_pad is a copy already; w is copied, so neither is saved by reference
        return y, (x_pad, w.copy())

    def _backward(
        self, dy: NDArray[np.floating], saved: Saved, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        x_pad, w = saved
        dx_pad = np.zeros_like(x_pad)
        dw = np.empty_like(w)
        for ki in range(geom.kh):
            for kj in range(geom.kw):
                rows, cols = geom.window_starts(ki, kj)
                # the input pixels this tap read, for every output pixel
                dx_pad[:, rows, cols, :] += dy @ w[ki, kj].T
                dw[ki, kj] = np.einsum("nyxc,nyxo->co", x_pad[:, rows, cols, :], dy)
        inner_rows, inner_cols = geom.interior()
        return dx_pad[:, inner_rows, inner_cols, :], dw, dy.sum(axis=(0, 1, 2))

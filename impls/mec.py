"""Memory-efficient convolution (MEC): lower along the width only, multiply overlapping views.

Each image is lowered to L (OW, H_pad, kw * C_in): row ox holds the kw input columns that
output column ox reads, over every padded input row. The window of output pixel (oy, ox) is
then kh consecutive rows of L[ox], contiguous in memory, so output row oy is one BLAS
product of a column slice of L (an overlapping view, never copied) with w as a
(kh * kw * C_in, C_out) matrix. With dilation the rows of L go in dilation-phase order, so
that a window's rows stay consecutive. Backward reuses the views: dw sums view.T @ dy_row
over the output rows; dx adds dy_row @ w.T into a lowered gradient the shape of L, which is
then folded back onto the input columns. Workers (one per core, single-threaded BLAS) own
whole images.
Memory: per worker, L and its gradient, 2 * OW * H_pad * kw * C_in values (about 2 / kh of one
image's im2col matrix), a zero-padded image and its gradient, and one output row's column
gradient and dw product: (2 * OW * H_pad * kw + 2 * H_pad * W_pad) * C_in
+ OW * kh * kw * C_in + 3 * kh * kw * C_in * C_out values.
Reference: Cho & Brand, "MEC: Memory-efficient Convolution for Deep Neural Network" (ICML 2017).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._base import Backend, SizeThreshold
from ._geometry import ConvGeometry
from ._parallel import run_jobs, worker_count
from ._reductions import bias_grad

Array = NDArray[np.floating]


class _Lowering:
    """Where things are in one image's lowered matrix, for one geometry."""

    def __init__(self, geom: ConvGeometry) -> None:
        self.geom = geom
        padded_h, _ = geom.padded_hw
        dh = geom.dilation[0]
        #: the padded rows in dilation-phase order: h % dh, then h
        self.row_order = np.concatenate(
            [np.arange(p, padded_h, dh) for p in range(min(dh, padded_h))]
        )
        position = np.empty(padded_h, dtype=np.intp)
        position[self.row_order] = np.arange(padded_h)
        row_len = geom.kw * geom.c_in
        #: where output row oy's window starts in a row of L, for every oy
        self.starts = position[np.arange(geom.out_h) * geom.stride[0]] * row_len
        #: window length: kh rows of L
        self.depth = geom.kh * row_len
        self.shape = (geom.out_w, padded_h, geom.kw, geom.c_in)

    def columns(self, kj: int) -> slice:
        """The padded input columns that tap column kj reads, one per output column."""
        return self.geom.window_starts(0, kj)[1]

    def lower(self, x_pad: Array, lowered: Array) -> Array:
        """lowered[ox, r, kj] = x_pad[row_order[r], ox * sw + kj * dw]; returns it as
        (OW, H_pad * kw * C_in)."""
        rows = x_pad if self.geom.dilation[0] == 1 else x_pad[self.row_order]
        for kj in range(self.geom.kw):
            lowered[:, :, kj] = rows[:, self.columns(kj)].transpose(1, 0, 2)
        return lowered.reshape(self.geom.out_w, -1)

    def fold(self, lowered: Array, x_pad: Array) -> None:
        """x_pad += the adjoint of ``lower``: each value of L back onto its input pixel."""
        rows = slice(None) if self.geom.dilation[0] == 1 else self.row_order
        for kj in range(self.geom.kw):
            x_pad[rows, self.columns(kj)] += lowered[:, :, kj].transpose(1, 0, 2)


class _Buffers:
    """One worker's scratch arrays for one image at a time."""

    def __init__(self, lowering: _Lowering, dtype: np.dtype, backward: bool) -> None:
        geom = lowering.geom
        self.x_pad = np.zeros((*geom.padded_hw, geom.c_in), dtype=dtype)
        self.lowered = np.empty(lowering.shape, dtype=dtype)
        if backward:
            self.dx_pad = np.empty_like(self.x_pad)
            self.d_lowered = np.empty(lowering.shape, dtype=dtype)
            self.d_cols = np.empty((geom.out_w, lowering.depth), dtype=dtype)
            self.dw_row = np.empty((lowering.depth, geom.c_out), dtype=dtype)

    def load(self, x: Array, geom: ConvGeometry) -> None:
        """The image x (H, W, C_in) into the interior of x_pad, whose border stays zero."""
        rows, cols = geom.interior()
        self.x_pad[rows, cols] = x


class Mec(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "MEC: lowered along the width only; each output row one BLAS product of an overlapping view"
    )
    #: one of ours
    role: ClassVar[str] = "ours"
    #: saved holds x itself (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)
    #: workers own whole images
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = (
        SizeThreshold("images over the workers", lambda geom, dtype: geom.n > worker_count() >= 2),
    )

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """Per worker: L and its gradient, the padded image twice, one row's products."""
        padded_h, padded_w = geom.padded_hw
        depth = geom.kh * geom.kw * geom.c_in
        lowered = geom.out_w * padded_h * geom.kw * geom.c_in
        per_worker = 2 * lowered + 2 * padded_h * padded_w * geom.c_in + geom.out_w * depth
        per_worker += 3 * depth * geom.c_out
        return min(worker_count(), geom.n) * per_worker * np.dtype(dtype).itemsize

    def _forward(
        self,
        x: Array,
        w: Array,
        b: Array,
        geom: ConvGeometry,
    ) -> tuple[Array, Any]:
        lowering = _Lowering(geom)
        # a private copy: w may be changed in place before backward
        w_mat = np.array(w.reshape(lowering.depth, geom.c_out), order="C")
        y = np.empty(geom.y_shape, dtype=x.dtype)
        workers = min(worker_count(), geom.n)

        def job(first: int) -> None:
            scratch = _Buffers(lowering, x.dtype, backward=False)
            for image in range(first, geom.n, workers):
                scratch.load(x[image], geom)
                lowered = lowering.lower(scratch.x_pad, scratch.lowered)
                for oy, start in enumerate(lowering.starts):
                    np.matmul(lowered[:, start : start + lowering.depth], w_mat, out=y[image, oy])
                y[image] += b

        run_jobs([partial(job, k) for k in range(workers)])
        return y, (x, w_mat)

    def _backward(self, dy: Array, saved: Any, geom: ConvGeometry) -> tuple[Array, Array, Array]:
        x, w_mat = saved
        lowering = _Lowering(geom)
        w_mat_t = np.ascontiguousarray(w_mat.T)
        dy = np.ascontiguousarray(dy)
        dx = np.empty(geom.x_shape, dtype=x.dtype)
        workers = min(worker_count(), geom.n)
        rows, cols = geom.interior()

        def job(first: int) -> Array:
            scratch = _Buffers(lowering, x.dtype, backward=True)
            dw_mat = np.zeros((lowering.depth, geom.c_out), dtype=x.dtype)
            d_lowered = scratch.d_lowered.reshape(geom.out_w, -1)
            for image in range(first, geom.n, workers):
                scratch.load(x[image], geom)
                lowered = lowering.lower(scratch.x_pad, scratch.lowered)
                d_lowered[:] = 0.0
                for oy, start in enumerate(lowering.starts):
                    window = slice(start, start + lowering.depth)
                    dy_row = dy[image, oy]
                    np.matmul(lowered[:, window].T, dy_row, out=scratch.dw_row)
                    dw_mat += scratch.dw_row
                    np.matmul(dy_row, w_mat_t, out=scratch.d_cols)
                    d_lowered[:, window] += scratch.d_cols
                scratch.dx_pad[:] = 0.0
                lowering.fold(scratch.d_lowered, scratch.dx_pad)
                dx[image] = scratch.dx_pad[rows, cols]
            return dw_mat

        dw_mat = sum(run_jobs([partial(job, k) for k in range(workers)]))
        db = bias_grad(dy)
        return dx, np.asarray(dw_mat).reshape(geom.w_shape), db

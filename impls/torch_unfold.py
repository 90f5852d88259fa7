"""im2col done by a library: ``F.unfold`` plus one batched matrix product, ``F.fold`` for dx.

``F.unfold`` builds the (N, C_in * kh * kw, OH * OW) column tensor, a batched matmul with
the (C_out, C_in * kh * kw) weight matrix gives y; backward multiplies by the transposed
weights and folds (col2im) the columns back into dx. Memory: the full k²-inflated column
tensor, kept from forward for dw, plus its gradient during backward.
Reference: Chellapilla et al., "High Performance Convolutional Neural Networks for
Document Processing" (2006).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._geometry import ConvGeometry
from ._torch import TorchPeer, as_tensor, torch

F = torch.nn.functional if torch is not None else None


class TorchUnfold(TorchPeer):
    #: one line on the strategy
    description: ClassVar[str] = "torch F.unfold + matmul, F.fold for dx: im2col done by a library"
    #: saved holds the unfolded columns and a copy of w, both private
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: the full column tensor goes through memory (the traffic model counts it)
    column_buffer: ClassVar[bool] = True

    def _unfold_args(self, geom: ConvGeometry) -> dict[str, Any]:
        stride, dilation = geom.tight_steps
        return {"kernel_size": (geom.kh, geom.kw), "dilation": dilation, "stride": stride}

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        (top, bottom), (left, right) = geom.pad
        # pad explicitly: unfold's own padding is symmetric only
        x_pad = F.pad(as_tensor(x).permute(0, 3, 1, 2), (left, right, top, bottom))
        cols = F.unfold(x_pad, **self._unfold_args(geom))
        # unfold orders a column as (C_in, kh, kw): match it in the weight matrix, a private
        # copy as w may be changed in place before backward
        w_mat = torch.from_numpy(np.array(w.transpose(3, 2, 0, 1), order="C"))
        w_mat = w_mat.reshape(geom.c_out, -1)
        y = torch.matmul(w_mat, cols) + as_tensor(b)[:, None]
        y = y.reshape(geom.n, geom.c_out, geom.out_h, geom.out_w).permute(0, 2, 3, 1)
        return np.ascontiguousarray(y.numpy()), (cols, w_mat)

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        cols, w_mat = saved
        dy_mat = as_tensor(dy).reshape(geom.n, -1, geom.c_out).transpose(1, 2)
        dw_mat = torch.matmul(dy_mat, cols.transpose(1, 2)).sum(dim=0)
        dw = dw_mat.reshape(geom.c_out, geom.c_in, geom.kh, geom.kw).permute(2, 3, 1, 0)
        dcols = torch.matmul(w_mat.T, dy_mat)
        dx_pad = F.fold(dcols, output_size=geom.padded_hw, **self._unfold_args(geom))
        rows, cols_ = geom.interior()
        dx = dx_pad[:, :, rows, cols_].permute(0, 2, 3, 1)
        db = as_tensor(dy).sum(dim=(0, 1, 2))
        return (
            np.ascontiguousarray(dx.numpy()),
            np.ascontiguousarray(dw.numpy()),
            db.numpy(),
        )

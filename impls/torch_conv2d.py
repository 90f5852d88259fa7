"""The production yardstick: ``torch.nn.functional.conv2d`` and its autograd, channels-last.

The NHWC input is viewed as an NCHW tensor in channels-last memory format (no copy), so
oneDNN runs its native NHWC kernels; the backward pass is whatever autograd records for
``F.conv2d``. Memory: torch's own workspaces plus the autograd graph (x, w and y).
Reference: Chetlur et al., "cuDNN: Efficient Primitives for Deep Learning" (2014), and
oneDNN's convolution primitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._geometry import ConvGeometry
from ._torch import TorchPeer, as_tensor, torch

F = torch.nn.functional if torch is not None else None


class TorchConv2d(TorchPeer):
    #: one line on the strategy
    description: ClassVar[str] = (
        "torch F.conv2d + autograd on channels-last tensors (oneDNN on CPU): the yardstick"
    )
    #: autograd keeps a tensor sharing x's memory (fingerprinted) and a copy of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ("x",)
    #: oneDNN skips padding ("data"), but torch runs dilated layers through its own im2col,
    #: and SAME padding that is lopsided is applied here explicitly: zeros multiplied ("channel")
    nonfinite_spread: ClassVar[Mapping[str, str]] = {"y": "either", "dx": "data", "dw": "either"}

    def _forward(
        self,
        x: NDArray[np.floating],
        w: NDArray[np.floating],
        b: NDArray[np.floating],
        geom: ConvGeometry,
    ) -> tuple[NDArray[np.floating], Any]:
        # NHWC storage viewed as NCHW is exactly torch's channels_last layout
        x_t = as_tensor(x).permute(0, 3, 1, 2).requires_grad_()
        # w stays in the default layout: a channels-last w sends degenerate shapes down
        # slow_conv2d, whose backward raises "grad_weight must be contiguous"; always a copy,
        # as w may be changed in place before backward
        w_t = as_tensor(w).permute(3, 2, 0, 1).clone(memory_format=torch.contiguous_format)
        w_t.requires_grad_()
        b_t = as_tensor(b).requires_grad_()
        (top, bottom), (left, right) = geom.pad
        if top == bottom and left == right:
            x_in, padding = x_t, (top, left)
        else:
            # F.conv2d pads symmetrically only; SAME with stride > 1 can be lopsided
            x_in, padding = F.pad(x_t, (left, right, top, bottom)), (0, 0)
        with torch.enable_grad():
            y_t = F.conv2d(
                x_in, w_t, b_t, stride=geom.stride, padding=padding, dilation=geom.dilation
            )
        y = y_t.detach().permute(0, 2, 3, 1).numpy()
        return y, (y_t, x_t, w_t, b_t)

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        y_t, x_t, w_t, b_t = saved
        dy_t = as_tensor(dy).permute(0, 3, 1, 2)
        # keep the graph: backward may run many times on one ctx
        dx_t, dw_t, db_t = torch.autograd.grad(y_t, (x_t, w_t, b_t), dy_t, retain_graph=True)
        dx = dx_t.permute(0, 2, 3, 1).numpy()
        dw = dw_t.permute(2, 3, 1, 0).numpy()
        return np.ascontiguousarray(dx), np.ascontiguousarray(dw), db_t.numpy()

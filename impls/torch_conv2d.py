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
from ._torch import TorchPeer, as_tensor, conv2d_grads, conv2d_with_graph


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
        y_t, graph = conv2d_with_graph(as_tensor(x), as_tensor(w), as_tensor(b), geom)
        return y_t.numpy(), graph

    def _backward(
        self, dy: NDArray[np.floating], saved: Any, geom: ConvGeometry
    ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
        dx_t, dw_t, db_t = conv2d_grads(saved, as_tensor(dy))
        return np.ascontiguousarray(dx_t.numpy()), np.ascontiguousarray(dw_t.numpy()), db_t.numpy()

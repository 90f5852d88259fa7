"""The GPU yardstick: ``torch.nn.functional.conv2d`` and its autograd on a CUDA device (cuDNN).

The same call as ``torch_conv2d``, on the GPU: the NHWC input is viewed as an NCHW tensor in
channels-last memory format (no copy), so cuDNN runs its NHWC kernels, and the backward pass
is whatever autograd records. cuDNN runs in benchmark mode (each shape's algorithms timed once,
in the untimed warm-up, as a tuned training loop would), restricted to deterministic
algorithms (two backward calls give the same bits, as ours do), and float32 stays IEEE float32:
TF32, on by default for cuDNN convolutions, would round the inputs to 10-bit mantissas.
Memory: cuDNN's workspaces plus the autograd graph (x, w and y), in torch's caching allocator.
Reference: Chetlur et al., "cuDNN: Efficient Primitives for Deep Learning" (2014).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._geometry import ConvGeometry
from ._parallel import SharedSetting
from ._torch import TorchPeer, as_tensor, conv2d_grads, conv2d_with_graph, torch


@contextlib.contextmanager
def cudnn_settings() -> Iterator[None]:
    """cuDNN on, benchmark mode, deterministic algorithms only, no TF32; restored afterwards."""
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=True, benchmark=True, deterministic=True, allow_tf32=False):
        # torch >= 2.9 also keeps a float32 precision per operation: make conv's IEEE too (and
        # ask that API only: reading the legacy flag can raise once the two APIs are mixed)
        conv: Any = getattr(cudnn, "conv", None)
        before = getattr(conv, "fp32_precision", None)
        if before is not None:
            conv.fp32_precision = "ieee"
        try:
            tf32 = conv.fp32_precision != "ieee" if before is not None else cudnn.allow_tf32
            if tf32:
                raise RuntimeError("torch kept TF32 on for cuDNN convolutions")
            yield
        finally:
            if before is not None:
                conv.fp32_precision = before


#: cudnn_settings for every call at once: torch's flags are process-wide, and calls from several
#: threads overlap
_SHARED_SETTINGS = SharedSetting(cudnn_settings)


class TorchCudnn(TorchPeer):
    #: one line on the strategy
    description: ClassVar[str] = (
        "torch F.conv2d + autograd on a CUDA GPU (cuDNN, channels-last, no TF32): the GPU yardstick"
    )
    #: tensors stay on the GPU between calls
    device: ClassVar[str] = "gpu"
    #: autograd keeps a device copy of x (microseconds) and of w
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: cuDNN picks its algorithms per shape, and each may skip or multiply padding zeros
    nonfinite_spread: ClassVar[Mapping[str, str]] = {"y": "either", "dx": "either", "dw": "either"}

    def available(self) -> tuple[bool, str]:
        ok, reason = super().available()
        if not ok:
            return ok, reason
        if not torch.cuda.is_available():
            return False, (
                f"torch {torch.__version__} finds no CUDA GPU (a CPU build, or no driver)"
            )
        if not torch.backends.cudnn.is_available():
            return False, f"torch {torch.__version__} was built without cuDNN"
        return True, ""

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Any]:
        # a private copy of x: the caller's tensor may be changed in place before backward
        x_t = self.to_device(x).clone()
        with _SHARED_SETTINGS():
            return conv2d_with_graph(x_t, self.to_device(w), self.to_device(b), geom)

    def _backward(self, dy: Any, saved: Any, geom: ConvGeometry) -> tuple[Any, Any, Any]:
        with _SHARED_SETTINGS():
            dx_t, dw_t, db_t = conv2d_grads(saved, self.to_device(dy))
            return dx_t.contiguous(), dw_t.contiguous(), db_t

    def to_device(self, a: Any) -> Any:
        return as_tensor(a, "cuda")

    def to_numpy(self, a: Any) -> NDArray[np.floating]:
        if isinstance(a, torch.Tensor):
            return a.detach().cpu().numpy()
        return np.asarray(a)

    def synchronize(self) -> None:
        torch.cuda.synchronize()

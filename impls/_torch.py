"""What the torch peers share: the optional import, tensors from arrays, F.conv2d with its graph."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._base import Backend
from ._geometry import ConvGeometry

try:
    import torch
except ImportError:  # the `peers` extra is optional
    torch = None  # type: ignore[assignment]

F = torch.nn.functional if torch is not None else None


def as_tensor(a: Any, device: str = "cpu") -> Any:
    """A tensor holding ``a`` on ``device``, sharing a's memory where torch can.

    A tensor or a ``__cuda_array_interface__`` array already on the GPU is used in place; an
    array torch cannot share (read-only, negatively strided, big-endian) is copied first.
    """
    if isinstance(a, torch.Tensor):
        return a.to(device)
    if device != "cpu" and hasattr(a, "__cuda_array_interface__"):
        return torch.as_tensor(a, device=device)
    a = np.asarray(a)
    if not a.dtype.isnative:  # torch reads native byte order only
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.writeable or any(step < 0 for step in a.strides):
        a = a.copy()
    return torch.from_numpy(a).to(device)


def conv2d_with_graph(x_t: Any, w_t: Any, b_t: Any, geom: ConvGeometry) -> tuple[Any, Any]:
    """y = F.conv2d(x, w) + b, and the autograd graph :func:`conv2d_grads` differentiates.

    Parameters
    ----------
    x_t : tensor, shape (N, H, W, C_in)
    w_t : tensor, shape (kh, kw, C_in, C_out)
    b_t : tensor, shape (C_out,)

    Returns
    -------
    y : tensor, shape (N, OH, OW, C_out), a view
    graph : what :func:`conv2d_grads` needs
    """
    # NHWC storage viewed as NCHW is exactly torch's channels_last layout
    x_leaf = x_t.detach().permute(0, 3, 1, 2).requires_grad_()
    # w stays in the default layout: a channels-last w sends degenerate shapes down
    # slow_conv2d on CPU, whose backward raises "grad_weight must be contiguous"; always a
    # copy, as w may be changed in place before backward
    w_leaf = w_t.detach().permute(3, 2, 0, 1).clone(memory_format=torch.contiguous_format)
    w_leaf.requires_grad_()
    b_leaf = b_t.detach().requires_grad_()
    (top, bottom), (left, right) = geom.pad
    if top == bottom and left == right:
        x_in, padding = x_leaf, (top, left)
    else:
        # F.conv2d pads symmetrically only; SAME with stride > 1 can be lopsided
        x_in, padding = F.pad(x_leaf, (left, right, top, bottom)), (0, 0)
    stride, dilation = geom.tight_steps
    with torch.enable_grad():
        y_t = F.conv2d(x_in, w_leaf, b_leaf, stride=stride, padding=padding, dilation=dilation)
    return y_t.detach().permute(0, 2, 3, 1), (y_t, x_leaf, w_leaf, b_leaf)


def conv2d_grads(graph: Any, dy_t: Any) -> tuple[Any, Any, Any]:
    """dx (N, H, W, C_in), dw (kh, kw, C_in, C_out) and db (C_out,) from dy (N, OH, OW, C_out).

    The graph is kept, so this may run many times on one forward's graph.
    """
    y_t, x_leaf, w_leaf, b_leaf = graph
    dx_t, dw_t, db_t = torch.autograd.grad(
        y_t, (x_leaf, w_leaf, b_leaf), dy_t.permute(0, 3, 1, 2), retain_graph=True
    )
    return dx_t.permute(0, 2, 3, 1), dw_t.permute(2, 3, 1, 0), db_t


class TorchPeer(Backend):
    """Base of the backends that hand the work to torch."""

    #: a library to compare against, not one of ours
    role: ClassVar[str] = "peer"

    def available(self) -> tuple[bool, str]:
        if torch is None:
            return False, "torch not installed (pip install -e .[peers])"
        return True, ""

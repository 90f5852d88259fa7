"""What the torch peer backends share: the optional import, availability and zero-copy tensors."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._base import Backend

try:
    import torch
except ImportError:  # the `peers` extra is optional
    torch = None  # type: ignore[assignment]


def as_tensor(a: NDArray[np.floating]) -> Any:
    """A CPU tensor sharing a's memory, or a copy where torch cannot share it."""
    if not a.flags.writeable or any(step < 0 for step in a.strides):
        a = a.copy()
    return torch.from_numpy(a)


class TorchPeer(Backend):
    """Base of the backends that hand the work to torch."""

    #: a library to compare against, not one of ours
    role: ClassVar[str] = "peer"

    def available(self) -> tuple[bool, str]:
        if torch is None:
            return False, "torch not installed (pip install -e .[peers])"
        return True, ""

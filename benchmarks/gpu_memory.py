"""A GPU call's peak device memory, from the allocators themselves: numba-cuda's and torch's.

Both keep freed blocks for reuse (numba-cuda frees in batches, torch caches), so the device's
free memory says little about what a call needed. What each allocator holds for live arrays
does: numba-cuda's memory manager keeps every allocation not yet released by its arrays in
``allocations`` (its peak is read at each allocation, the only moment it can grow), torch
counts its own (``max_memory_allocated``). Both are reset before the measured call.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

METHOD = (
    "peak bytes live in numba-cuda's and torch's allocators over one forward + backward, "
    "after one untimed, less those live before it and the outputs y, dx, dw, db"
)


class NumbaPeak:
    """The peak of the bytes live in one numba-cuda memory manager while it is open.

    Opening wraps the manager's ``memalloc`` in place, so it works whichever context made
    the manager and whenever; closing puts it back, so the timed calls never pay for it.
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.base = self.peak = self.live()

    def __enter__(self) -> NumbaPeak:
        allocate = self.manager.memalloc

        def memalloc(size: int) -> Any:
            memory = allocate(size)
            self.peak = max(self.peak, self.live())
            return memory

        self.manager.memalloc = memalloc
        return self

    def __exit__(self, *exc: object) -> None:
        del self.manager.memalloc  # the class's own method again

    def live(self) -> int:
        """Bytes of the allocations no array has released yet."""
        return sum(int(memory.size) for memory in list(self.manager.allocations.values()))

    def reset(self) -> None:
        self.base = self.peak = self.live()

    def extra(self) -> int:
        """The peak since the last reset, beyond what was live then."""
        return max(self.peak - self.base, 0)


def _numba_manager() -> Any | None:
    """The current context's numba-cuda memory manager, or None without a real GPU (the
    simulator's context has none)."""
    from numba import cuda

    if not cuda.is_available():
        return None
    manager = getattr(cuda.current_context(), "memory_manager", None)
    return manager if hasattr(manager, "allocations") else None


def _torch_cuda() -> Any | None:
    """torch's CUDA module where torch is loaded and sees a GPU, else None."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda


def peak_extra(call: Callable[[], None], outputs_bytes: int) -> dict[str, Any]:
    """Peak device bytes one ``call`` needs beyond its inputs and its outputs.

    Parameters
    ----------
    call : a forward + backward that waits for the device
    outputs_bytes : bytes of y, dx, dw and db, which any backend allocates

    Returns
    -------
    dict with ``peak_extra_bytes``, each allocator's own peak (``numba_peak_bytes``,
    ``torch_peak_bytes``; None for one not in use), ``outputs_bytes`` and ``memory_method``.
    """
    manager = _numba_manager()
    tracker = NumbaPeak(manager) if manager is not None else None
    torch_cuda = _torch_cuda()
    call()  # one untimed: a library's one-time buffers are not the call's working memory
    if torch_cuda is not None:
        torch_cuda.synchronize()
        torch_cuda.reset_peak_memory_stats()
        torch_base = torch_cuda.memory_allocated()
    with tracker or contextlib.nullcontext():
        if tracker is not None:
            tracker.reset()
        call()
    numba_bytes = tracker.extra() if tracker is not None else None
    torch_bytes = torch_cuda.max_memory_allocated() - torch_base if torch_cuda is not None else None
    total = (numba_bytes or 0) + (torch_bytes or 0)
    return {
        "peak_extra_bytes": max(total - outputs_bytes, 0),
        "numba_peak_bytes": numba_bytes,
        "torch_peak_bytes": torch_bytes,
        "outputs_bytes": outputs_bytes,
        "memory_method": METHOD,
    }


def free_bytes() -> int | None:
    """Bytes the GPU can still give: free on the device, plus what torch caches unused; None
    without a real GPU."""
    manager = _numba_manager()
    if manager is None:
        return None
    from numba import cuda

    free = int(cuda.current_context().get_memory_info().free)
    torch_cuda = _torch_cuda()
    if torch_cuda is not None:
        free += torch_cuda.memory_reserved() - torch_cuda.memory_allocated()
    return free

"""The machine a run measures: thread settings, free memory, and what its JSON says about it."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Any


def apply_threads(threads: int) -> Any:
    """Set BLAS, numba and torch to ``threads``; returns the threadpoolctl limiter to undo BLAS."""
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, getattr(numba.config, "NUMBA_NUM_THREADS", threads)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return limiter


def default_threads() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def available_memory() -> int:
    """Bytes of memory the system can give without swapping, now."""
    import psutil

    return int(psutil.virtual_memory().available)


def machine_extras(threads: int) -> dict[str, Any]:
    """BLAS library and threads, numba and numba-cuda versions, GPU name, thread setting."""
    from threadpoolctl import threadpool_info

    blas = [
        {
            key: pool.get(key)
            for key in ("internal_api", "version", "architecture", "num_threads", "filepath")
        }
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]
    return {
        "blas": blas,
        "numba_version": _version("numba"),
        "numba_cuda_version": _version("numba-cuda"),
        "torch_version": _version("torch"),
        "numpy_version": _version("numpy"),
        "gpu": gpu_name(),
        "threads": threads,
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def gpu_name() -> str:
    """The CUDA device's name, or "none" (the simulator counts as none)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "none (numba CUDA simulator)"
    try:
        from numba import cuda

        if not cuda.is_available():
            return "none"
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return f"none ({type(exc).__name__})"

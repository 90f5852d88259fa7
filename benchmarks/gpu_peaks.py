"""The GPU's float32 compute peak, measured as the CPU's is: a large product and an FMA loop.

The product is a square float32 matrix product through torch (cuBLAS) with TF32 off, so every
multiply is an IEEE float32 one, as in the backends; the loop is a numba.cuda kernel in which
every thread runs FMA_CHAINS independent chains of fused multiply-adds, enough blocks to fill
every SM. Both are timed by CUDA events, best of REPEATS; the higher is the run's peak.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numba import cuda, float32

from impls import _numpy_compat  # noqa: F401  (np.row_stack, before the first compile)

#: side of the square product: 1.1 TFLOP, about 20 ms at an H200's float32 rate
MATMUL_SIZE = 8192
REPEATS = 5
#: independent accumulators per thread of the FMA loop, threads per block, blocks per SM
FMA_CHAINS = 8
FMA_THREADS = 256
FMA_BLOCKS_PER_SM = 8
#: multiply-adds per chain: about 5 ms a call on an H200
FMA_ITERATIONS = 1 << 16


def best_event_seconds(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    """The fastest of ``repeats`` calls, each between two CUDA events, after one untimed."""
    from impls._cuda_events import EventTimer

    timer = EventTimer()
    call()
    return min(timer.time(call).device_s for _ in range(repeats))


@contextlib.contextmanager
def no_tf32(torch: Any) -> Iterator[None]:
    """torch's float32 matrix products in IEEE float32 (no TF32); restored afterwards."""
    matmul = torch.backends.cuda.matmul
    # torch >= 2.9 keeps a precision per operation; ask that API only, as cudnn_settings does
    if hasattr(matmul, "fp32_precision"):
        before = matmul.fp32_precision
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = before
        return
    before = matmul.allow_tf32
    matmul.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32 = before


def matmul_gflops(n: int = MATMUL_SIZE, repeats: int = REPEATS) -> float:
    """GFLOP/s of an (n, n) @ (n, n) float32 product through torch on the GPU (2 n^3 FLOPs)."""
    import torch

    generator = torch.Generator(device="cuda").manual_seed(0)
    a, b = (torch.randn(n, n, device="cuda", generator=generator) for _ in range(2))
    out = torch.empty(n, n, device="cuda")
    with no_tf32(torch):
        seconds = best_event_seconds(lambda: torch.matmul(a, b, out=out), repeats)
    return 2 * n**3 / seconds / 1e9


def _fma_loop(scale_shift, iterations, out):  # type: ignore[no-untyped-def]
    """out[i] = the sum of FMA_CHAINS chains of ``iterations`` a = fma(a, scale, shift).

    The chains are spelled out so each stays in a register; |scale| < 1 keeps them bounded,
    and the sum written out keeps the compiler from leaving any out.
    """
    i = cuda.grid(1)
    scale, shift = scale_shift[0], scale_shift[1]
    a0 = scale_shift[2] * float32(i)
    a1, a2, a3 = a0 + shift, a0 - shift, a0 * scale
    a4, a5, a6, a7 = a1 * scale, a2 * scale, a3 + shift, a0 + scale
    for _ in range(iterations):
        a0 = cuda.fma(a0, scale, shift)
        a1 = cuda.fma(a1, scale, shift)
        a2 = cuda.fma(a2, scale, shift)
        a3 = cuda.fma(a3, scale, shift)
        a4 = cuda.fma(a4, scale, shift)
        a5 = cuda.fma(a5, scale, shift)
        a6 = cuda.fma(a6, scale, shift)
        a7 = cuda.fma(a7, scale, shift)
    if i < out.size:
        out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7


#: the FMA loop for the device, compiled at its first launch
fma_kernel = cuda.jit(_fma_loop)


#: what the loop's constants are: scale, shift, and the spread of the starting values
FMA_CONSTANTS = np.array([0.999, 0.001, 1e-6], dtype=np.float32)


def fma_gflops(iterations: int = FMA_ITERATIONS, repeats: int = REPEATS) -> float:
    """GFLOP/s of the FMA loop over every SM (2 FLOPs per multiply-add)."""
    blocks = cuda.get_current_device().MULTIPROCESSOR_COUNT * FMA_BLOCKS_PER_SM
    threads = blocks * FMA_THREADS
    constants = cuda.to_device(FMA_CONSTANTS)
    out = cuda.device_array(threads, np.float32)
    kernel = fma_kernel[blocks, FMA_THREADS]
    seconds = best_event_seconds(lambda: kernel(constants, iterations, out), repeats)
    return 2 * FMA_CHAINS * iterations * threads / seconds / 1e9


def measure() -> dict[str, Any]:
    """The GPU's float32 peak for the run's JSON: ``{"float32": {...}, "tf32": False, ...}``.

    The float32 entry has ``matmul_gflops``, ``fma_gflops`` and ``peak_gflops`` from
    ``peak_source``, the higher of the two; a measurement that fails is left out, with its
    error under ``errors``.
    """
    started = time.perf_counter()
    rates: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, rate in (("matmul", matmul_gflops), ("fma", fma_gflops)):
        try:
            rates[name] = rate()
        except Exception as exc:  # a peak that cannot be measured must not stop the run
            errors[name] = f"{type(exc).__name__}: {exc}"
    entry: dict[str, Any] = {
        "matmul_gflops": rates.get("matmul"),
        "matmul_size": MATMUL_SIZE,
        "fma_gflops": rates.get("fma"),
    }
    if rates:
        source = max(rates, key=lambda name: rates[name])
        entry.update(peak_gflops=rates[source], peak_source=source)
    return {
        "float32": entry,
        "tf32": False,
        "errors": errors,
        "method": {
            "matmul": f"torch.matmul of two {MATMUL_SIZE}-square float32 matrices (cuBLAS), "
            f"TF32 off, best of {REPEATS} by CUDA events",
            "fma": f"numba.cuda loop of {FMA_CHAINS} independent float32 FMA chains per "
            f"thread, {FMA_BLOCKS_PER_SM} blocks of {FMA_THREADS} threads per SM, "
            f"best of {REPEATS} by CUDA events",
            "tf32": "off for this product and for torch_cudnn's cuDNN calls "
            "(impls/torch_cudnn.py): float32 is IEEE float32 on both sides",
        },
        "seconds": time.perf_counter() - started,
    }

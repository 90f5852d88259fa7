"""How one case is timed: the calls to time, how many rounds, estimates from smaller cases, memory.

Inputs, JIT compilation and host/device transfers stay outside the timed calls, and every
timed call waits for the device.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from impls import Backend

from .matrix import BlasCase, Case, Conv, Preset

Target = Callable[..., None]
Setup = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]


def make_target(backend: Backend, case: Case) -> tuple[Target, Setup | None]:
    """The call to time and, for backward, the untimed forward that gives it a fresh context."""
    conv = case.conv
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal(conv.x_shape, dtype=np.float32).astype(conv.dtype)
    w_host = (rng.standard_normal(conv.w_shape, dtype=np.float32) / conv.k).astype(conv.dtype)
    b_host = rng.standard_normal(conv.c_out, dtype=np.float32).astype(conv.dtype)
    x, w, b = (backend.to_device(a) for a in (x_host, w_host, b_host))
    kwargs: dict[str, Any] = {"stride": conv.stride, "padding": conv.padding}
    y_shape = conv.geometry().y_shape
    dy = backend.to_device(rng.standard_normal(y_shape, dtype=np.float32).astype(conv.dtype))
    backend.synchronize()

    def forward() -> None:
        backend.forward(x, w, b, **kwargs)
        backend.synchronize()

    def fresh_context() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # autograd-backed backends free their graph after one backward: never reuse a ctx
        _, ctx = backend.forward(x, w, b, **kwargs)
        backend.synchronize()
        return (ctx,), {}

    def backward(ctx: Any) -> None:
        backend.backward(dy, ctx)
        backend.synchronize()

    def step() -> None:
        _, ctx = backend.forward(x, w, b, **kwargs)
        backend.backward(dy, ctx)
        backend.synchronize()

    def transfer() -> None:
        # host to device for the inputs, device to host for an output-sized array
        for a in (x_host, w_host, b_host):
            backend.to_device(a)
        backend.to_numpy(dy)
        backend.synchronize()

    if case.pass_ == "backward":
        return backward, fresh_context
    if case.pass_ == "im2col":
        geom = conv.geometry()

        def im2col() -> None:
            backend.im2col(x, geom)  # type: ignore[attr-defined]
            backend.synchronize()

        return im2col, None
    return {"forward": forward, "step": step, "transfer": transfer}[case.pass_], None


def time_case(benchmark: Any, backend: Backend, case: Case, estimates: Estimates) -> float | None:
    """Time one case with pytest-benchmark; its median in seconds, or None when disabled.

    With ``--benchmark-disable`` the case runs once, untimed, as a plain test.
    """
    target, setup = make_target(backend, case)
    if not benchmark.enabled:
        benchmark.pedantic(target, setup=setup, rounds=1)
        return None
    args, _ = setup() if setup else ((), {})
    started = time.perf_counter()
    target(*args)  # warm-up: JIT compilation and caches
    warm_s = time.perf_counter() - started
    estimate = estimates.estimate(case)
    per_call = min(warm_s, estimate) if estimate is not None else warm_s
    if case.pass_ == "step":
        benchmark.extra_info.update(peak_memory(backend, target, case.conv))
    benchmark.extra_info["warmup_s"] = warm_s
    rounds = estimates.rounds(per_call)
    benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0)
    median = float(benchmark.stats.stats.median)
    estimates.add(case, median)
    return median


def time_blas(benchmark: Any, case: BlasCase, estimates: Estimates) -> float | None:
    """Time the plain float32 GEMM of a configuration's im2col product: the machine's limit."""
    geom = case.conv.geometry()
    rows, depth = geom.cols_shape
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((rows, depth), dtype=np.float32)
    w_mat = rng.standard_normal((depth, geom.c_out), dtype=np.float32)
    out = np.empty((rows, geom.c_out), dtype=np.float32)
    if not benchmark.enabled:
        benchmark.pedantic(np.matmul, args=(cols, w_mat), kwargs={"out": out})
        return None
    started = time.perf_counter()
    np.matmul(cols, w_mat, out=out)
    benchmark.pedantic(
        np.matmul,
        args=(cols, w_mat),
        kwargs={"out": out},
        rounds=estimates.rounds(time.perf_counter() - started),
        warmup_rounds=1,
    )
    return float(benchmark.stats.stats.median)


@dataclass
class Estimates:
    """Every median measured so far, to size rounds and to estimate bigger cases."""

    preset: Preset
    #: (backend, pass) -> [(configuration, median seconds)]
    medians: dict[tuple[str, str], list[tuple[Conv, float]]] = field(default_factory=dict)

    def add(self, case: Case, median: float) -> None:
        self.medians.setdefault((case.backend, case.pass_), []).append((case.conv, median))

    def estimate(self, case: Case) -> float | None:
        """Seconds per call, scaled from a smaller case of this backend and pass.

        Within one configuration, time scales with output pixels by the exponent fitted so
        far; across configurations it scales with whichever grew more, pixels or FLOPs.
        """
        points = self.medians.get((case.backend, case.pass_), [])
        pixels, flops = case.conv.pixels, max(case.flops(), 1)
        same = [(c.pixels, t) for c, t in points if c.label == case.conv.label]
        smaller = [(p, t) for p, t in same if p <= pixels]
        if smaller:
            p0, t0 = max(smaller)
            return t0 * (pixels / p0) ** scaling_exponent(same)
        others = [
            (c.pixels, max(Case(case.backend, case.pass_, c).flops(), 1), t)
            for c, t in points
            if c.pixels <= pixels
        ]
        if not others:
            return None
        p0, f0, t0 = max(others)
        return t0 * max(pixels / p0, flops / f0)

    def rounds(self, seconds_per_call: float) -> int:
        wanted = math.ceil(self.preset.round_budget_s / max(seconds_per_call, 1e-9))
        return max(self.preset.min_rounds, min(self.preset.max_rounds, wanted))


def scaling_exponent(points: list[tuple[int, float]]) -> float:
    """Log-log slope of time against pixels, clamped to [1, 1.5]; 1 with fewer than two sizes.

    The clamp keeps one noisy median from turning into a wild extrapolation.
    """
    work = np.log([p for p, _ in points])
    if len(points) < 2 or np.ptp(work) == 0:
        return 1.0
    slope = np.polyfit(work, np.log([t for _, t in points]), 1)[0]
    return float(np.clip(slope, 1.0, 1.5))


def memory_needed(backend: Backend, conv: Conv) -> int:
    """Estimated peak bytes of one forward + backward, from shapes alone.

    The inputs x, w, b and dy, the outputs y, dx, dw and db, and the backend's own working
    memory (:meth:`impls.Backend.memory_estimate`: the im2col buffer for those that build it).
    """
    geom = conv.geometry()
    arrays = 2 * (math.prod(geom.x_shape) + math.prod(geom.w_shape) + geom.c_out)
    arrays += 2 * math.prod(geom.y_shape)
    return arrays * conv.itemsize + backend.memory_estimate(geom, np.dtype(conv.dtype))


def blas_memory_needed(case: BlasCase) -> int:
    """Bytes of the BLAS limit's float32 operands: cols, w_mat and the product."""
    geom = case.conv.geometry()
    rows, depth = geom.cols_shape
    return 4 * (rows * depth + depth * geom.c_out + rows * geom.c_out)


def peak_memory(backend: Backend, target: Target, conv: Conv) -> dict[str, Any]:
    """Peak extra bytes of one forward+backward, beyond the outputs y, dx, dw and db.

    On CPU, tracemalloc sees numpy's allocations but not numba's or torch's own allocators,
    so those backends read low. On GPU, the drop in the device's free memory is recorded.
    """
    if backend.device == "gpu":
        from numba import cuda

        context = cuda.current_context()
        free_before = context.get_memory_info().free
        target()
        return {
            "peak_extra_bytes": max(free_before - context.get_memory_info().free, 0),
            "memory_method": "device free-memory drop after one call",
        }
    geom = conv.geometry()
    outputs = sum(math.prod(shape) for shape in (geom.y_shape, geom.x_shape, geom.w_shape))
    output_bytes = (outputs + geom.c_out) * conv.itemsize
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        target()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return {
        "peak_extra_bytes": max(peak - output_bytes, 0),
        "peak_total_bytes": peak,
        "memory_method": "tracemalloc peak minus the outputs y, dx, dw, db (numpy only)",
    }

"""The benchmark matrix and how one case is timed.

The matrix (backend x configuration x pass) is built once from a :class:`Preset`; the test
functions in ``test_conv.py`` only call :meth:`Harness.time_case` and
:meth:`Harness.time_blas_limit`. Nothing here knows about HTML: everything the report
needs goes into pytest-benchmark's own JSON (``extra_info`` and machine info).
"""

from __future__ import annotations

import math
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pytest

import impls
from impls import Backend, ConvGeometry, resolve_geometry

#: the passes every backend is timed on; "transfer" is added for GPU backends only
PASSES = ("forward", "backward", "step")
#: the label of the default sweep's configuration
SWEEP = "default"
#: the issue-4 yardstick: a ResNet stage-2 layer
REFERENCE = "reference"


@dataclass(frozen=True)
class Conv:
    """One convolution configuration: NHWC input, square image and kernel, SAME padding."""

    #: short name of the configuration ("default" for the size sweep)
    label: str
    n: int
    size: int
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    padding: str = "SAME"
    dtype: str = "float32"

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.size, self.size, self.c_in)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.k, self.k, self.c_in, self.c_out)

    def geometry(self) -> ConvGeometry:
        return resolve_geometry(
            self.x_shape, self.w_shape, stride=self.stride, padding=self.padding
        )

    @property
    def pixels(self) -> int:
        """Output pixels over the batch, N * OH * OW: what per-pixel loops pay for."""
        geom = self.geometry()
        return geom.n * geom.out_h * geom.out_w

    @property
    def id(self) -> str:
        return f"{self.label}-{self.size}px"


def sweep_conv(size: int) -> Conv:
    """The default configuration at one image size: batch 8, 32 -> 32 channels, 3x3."""
    return Conv(SWEEP, n=8, size=size, c_in=32, c_out=32, k=3)


#: the one-factor-at-a-time rows, each at the preset's variant size
VARIANTS: dict[str, dict[str, int]] = {
    "stride2": {"stride": 2},
    "k1": {"k": 1},
    "k5": {"k": 5},
    "c64": {"c_in": 64, "c_out": 64},
}
REFERENCE_CONV = Conv(REFERENCE, n=16, size=56, c_in=64, c_out=64, k=3)


@dataclass(frozen=True)
class Preset:
    """How much of the matrix to run and how long each benchmark may take."""

    name: str
    #: image sizes of the default sweep
    sizes: tuple[int, ...]
    #: image size of the one-factor rows; 0 leaves them out
    variant_size: int
    #: whether the issue-4 reference shape is in the matrix
    reference: bool
    #: image size of the default configuration whose GEMM is the machine's limit
    limit_size: int
    #: timed rounds per benchmark: at least, at most
    min_rounds: int
    max_rounds: int
    #: seconds of timed rounds aimed at per benchmark
    round_budget_s: float
    #: a case whose single call is estimated slower than this is skipped
    max_call_s: float
    #: once the run has taken this long, the remaining cases are skipped
    session_budget_s: float

    def convs(self, sizes: Iterable[int] | None = None) -> list[Conv]:
        """Every configuration of this preset, the sweep at ``sizes`` when given."""
        convs = [sweep_conv(s) for s in (sizes or self.sizes)]
        if self.variant_size:
            base = sweep_conv(self.variant_size)
            convs += [
                Conv(**{**asdict(base), "label": label, **change})
                for label, change in VARIANTS.items()
            ]
        if self.reference:
            convs.append(REFERENCE_CONV)
        return convs

    def limit_convs(self) -> list[Conv]:
        """The configurations whose plain GEMM is timed as the machine's limit."""
        convs = [sweep_conv(self.limit_size)]
        return [*convs, REFERENCE_CONV] if self.reference else convs


PRESETS = {
    "smoke": Preset(
        "smoke",
        sizes=(16, 32),
        variant_size=0,
        reference=False,
        limit_size=32,
        min_rounds=3,
        max_rounds=5,
        round_budget_s=0.1,
        max_call_s=0.5,
        session_budget_s=40,
    ),
    "default": Preset(
        "default",
        sizes=(16, 24, 32, 64, 128, 224),
        variant_size=64,
        reference=True,
        limit_size=128,
        min_rounds=3,
        max_rounds=15,
        round_budget_s=0.6,
        max_call_s=2.0,
        session_budget_s=450,
    ),
    "full": Preset(
        "full",
        sizes=(16, 24, 32, 48, 64, 96, 128, 160, 224),
        variant_size=128,
        reference=True,
        limit_size=128,
        min_rounds=5,
        max_rounds=50,
        round_budget_s=3.0,
        max_call_s=30.0,
        session_budget_s=4 * 3600,
    ),
}


@dataclass(frozen=True)
class Case:
    """One benchmark: a backend timed on one pass of one configuration."""

    backend: str
    pass_: str
    conv: Conv

    @property
    def id(self) -> str:
        return f"{self.backend}-{self.pass_}-{self.conv.id}"

    def params(self) -> dict[str, Any]:
        """The case as flat JSON-able parameters (the report's row keys)."""
        geom = self.conv.geometry()
        return {
            "backend": self.backend,
            "pass": self.pass_,
            "config": self.conv.label,
            "n": geom.n,
            "h": geom.h,
            "w": geom.w,
            "c_in": geom.c_in,
            "c_out": geom.c_out,
            "kh": geom.kh,
            "kw": geom.kw,
            "stride": geom.stride[0],
            "padding": self.conv.padding,
            "dilation": geom.dilation[0],
            "dtype": self.conv.dtype,
        }

    def flops(self) -> int:
        geom = self.conv.geometry()
        return {
            "forward": geom.flops_forward,
            "backward": geom.flops_backward,
            "step": geom.flops_forward + geom.flops_backward,
        }.get(self.pass_, 0)


def build_matrix(preset: Preset, backends: list[str], sizes: list[int] | None) -> list[Case]:
    """Every case, fewest output pixels first, so slow backends are estimated before big ones."""
    cases = []
    order = sorted(preset.convs(sizes), key=lambda c: (c.pixels, c.geometry().flops_forward))
    for conv in order:
        for name in backends:
            passes = (*PASSES, "transfer") if _device(name) == "gpu" else PASSES
            cases += [Case(name, pass_, conv) for pass_ in passes]
    return cases


def _device(name: str) -> str:
    return str(getattr(impls.get_backend(name), "device", "cpu"))


def contenders(names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Split backend names into those to time and those left out, with the reason."""
    timed, left_out = [], {}
    for name in names:
        if impls.get_backend(name).role == "oracle":
            left_out[name] = "oracle, not a contender"
        else:
            timed.append(name)
    return timed, left_out


@dataclass
class Harness:
    """Session state: the preset, the thread count and every median measured so far."""

    preset: Preset
    threads: int
    started: float = field(default_factory=time.perf_counter)
    #: (backend, pass) -> [(configuration, median seconds)], to estimate bigger cases
    medians: dict[tuple[str, str], list[tuple[Conv, float]]] = field(default_factory=dict)

    def skip_reason(self, case: Case, backend: Backend) -> str | None:
        """Why this case is not timed, or None to time it."""
        ok, why = backend.available()
        if not ok:
            return f"unavailable: {why}"
        simulated = getattr(backend, "simulated", None)
        if callable(simulated) and simulated():
            return "runs on numba's CUDA simulator: correct but never timed"
        conv = case.conv
        declined = backend.supports(
            conv.x_shape,
            conv.w_shape,
            stride=conv.stride,
            padding=conv.padding,
            dtype=np.dtype(conv.dtype),
        )
        if declined:
            return f"declined: {declined}"
        elapsed = time.perf_counter() - self.started
        if elapsed > self.preset.session_budget_s:
            return (
                f"over budget: the {self.preset.name} preset's "
                f"{self.preset.session_budget_s:.0f} s session budget is spent"
            )
        estimate = self.estimate(case)
        if estimate is not None and estimate > self.preset.max_call_s:
            return (
                f"too slow: estimated {estimate:.3g} s per call from smaller sizes, over the "
                f"{self.preset.name} preset's {self.preset.max_call_s:g} s limit"
            )
        return None

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

    def time_case(self, benchmark: Any, case: Case) -> None:
        """Time one case with pytest-benchmark; inputs, JIT and transfers stay outside."""
        backend = impls.get_backend(case.backend)
        reason = self.skip_reason(case, backend)
        if reason:
            pytest.skip(f"{case.backend}: {reason}")
        benchmark.group = f"{case.pass_} {case.conv.id}"
        benchmark.extra_info.update(
            case.params(),
            role=backend.role,
            device=backend.device,
            flops=case.flops(),
            cols_bytes=case.conv.geometry().cols_bytes(np.dtype(case.conv.dtype).itemsize),
            threads=self.threads,
        )
        target, setup = make_target(backend, case)
        args, _ = setup() if setup else ((), {})
        started = time.perf_counter()
        target(*args)  # warm-up: JIT compilation and caches
        warm_s = time.perf_counter() - started
        estimate = self.estimate(case)
        per_call = min(warm_s, estimate) if estimate is not None else warm_s
        if case.pass_ == "step":
            benchmark.extra_info.update(peak_memory(backend, target, case.conv))
        benchmark.extra_info["warmup_s"] = warm_s
        benchmark.pedantic(target, setup=setup, rounds=self.rounds(per_call), warmup_rounds=0)
        self.medians.setdefault((case.backend, case.pass_), []).append(
            (case.conv, benchmark.stats.stats.median)
        )

    def time_blas_limit(self, benchmark: Any, conv: Conv) -> None:
        """Time the plain float32 GEMM of a configuration's im2col product: the machine's limit."""
        geom = conv.geometry()
        rows, depth = geom.cols_shape
        rng = np.random.default_rng(0)
        cols = rng.standard_normal((rows, depth), dtype=np.float32)
        w_mat = rng.standard_normal((depth, geom.c_out), dtype=np.float32)
        out = np.empty((rows, geom.c_out), dtype=np.float32)
        benchmark.group = "blas limit"
        benchmark.extra_info.update(
            kind="blas_limit",
            config=conv.label,
            m=rows,
            k=depth,
            n_cols=geom.c_out,
            h=geom.h,
            flops=geom.flops_forward,
            threads=self.threads,
        )
        started = time.perf_counter()
        np.matmul(cols, w_mat, out=out)
        benchmark.pedantic(
            np.matmul,
            args=(cols, w_mat),
            kwargs={"out": out},
            rounds=self.rounds(time.perf_counter() - started),
            warmup_rounds=1,
        )


def scaling_exponent(points: list[tuple[int, float]]) -> float:
    """Log-log slope of time against pixels, clamped to [1, 1.5]; 1 with fewer than two sizes.

    The clamp keeps one noisy median from turning into a wild extrapolation.
    """
    work = np.log([p for p, _ in points])
    if len(points) < 2 or np.ptp(work) == 0:
        return 1.0
    slope = np.polyfit(work, np.log([t for _, t in points]), 1)[0]
    return float(np.clip(slope, 1.0, 1.5))


Target = Callable[..., None]
Setup = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]


def make_target(backend: Backend, case: Case) -> tuple[Target, Setup | None]:
    """The call to time and, for backward, the untimed forward that gives it a fresh context.

    Every call waits for the device, so GPU timings end when the work does.
    """
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
    return {"forward": forward, "step": step, "transfer": transfer}[case.pass_], None


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
    output_bytes = (outputs + geom.c_out) * np.dtype(conv.dtype).itemsize
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
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_extras(threads: int) -> dict[str, Any]:
    """BLAS library and threads, numba and numba-cuda versions, GPU name, thread setting."""
    from threadpoolctl import threadpool_info

    blas = [
        {key: pool.get(key) for key in ("internal_api", "version", "num_threads", "filepath")}
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

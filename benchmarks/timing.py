"""How one case is timed: its calls, the protocol of one visit's rounds, estimates, memory.

Inputs, JIT compilation and host/device transfers stay outside the timed calls, and every
timed call waits for the device. A run visits each case once to size it (:func:`size_case`:
two untimed calls, JIT compilation and caches) and then once per trial
(:func:`time_visit`, with freshly allocated inputs; benchmarks/trials.py orders the visits).

A visit on the CPU starts when the process's own threads have stopped spinning
(:func:`settle`: the previous library's thread pool no longer holds a core); its rounds then
run in blocks (:class:`Blocks`), each opened by untimed calls for at least WARM_S (this
library's pool wakes up), each later block settled first. So every round is the library's
steady state, whatever ran before it.

On the GPU (:class:`GpuRounds`) there is no pool to settle, and a pause lets the GPU's clocks
drop: untimed calls go on until the time per call stops falling (:func:`warm_until_flat`),
then the rounds run back to back, each between two CUDA events, with the host's time to
queue the call kept beside the device's (a row whose host time reaches its device time is
bound by the launches, not the GPU).
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from impls import Backend
from impls._cuda_events import CallTimes, DeviceTimer

from . import gpu_memory
from .inputs import case_inputs
from .machine import CONTENDED_CORES, CpuSample, CpuUse
from .matrix import BlasCase, Case, Conv, Preset
from .memory import output_bytes

Target = Callable[..., None]
Setup = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]

#: rounds per block at least, and blocks per benchmark at most
BLOCK_ROUNDS = 5
MAX_BLOCKS = 3
#: the process counts as settled when its threads use less than this many cores
SETTLED_CORES = 0.1
#: how often to look, and how long to wait at most, for the process to settle
SETTLE_POLL_S = 0.01
SETTLE_MAX_S = 1.0
#: the shortest window over which other processes' CPU use is measured
MIN_WINDOW_S = 0.2
#: untimed calls open each block for at least this long: after a pause a small call runs
#: 2-5x slower for its first one to five calls (measured), a 10 ms call not at all
WARM_S = 0.02
#: a GPU's warm-up: calls in groups of GPU_WARM_GROUP until a group's median is less than
#: GPU_FLAT below the previous group's (the time per call stopped falling), GPU_WARM_MAX_S
#: at most
GPU_WARM_GROUP = 5
GPU_FLAT = 0.02
GPU_WARM_MAX_S = 1.0
#: a GPU row is bound by its launches when the host's time to queue a call is at least this
#: share of the device's time between its events: the GPU waits for the host
LAUNCH_BOUND_SHARE = 0.9


def settle(max_s: float = SETTLE_MAX_S) -> float:
    """Wait until this process's threads stop spinning; the seconds waited.

    OpenBLAS threads spin about 0.1 s after a call, torch's OpenMP threads about 8 ms; a
    library timed while another's threads spin shares the cores with them.
    """
    start = time.perf_counter()
    while True:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(SETTLE_POLL_S)
        busy = (time.process_time() - cpu) / (time.perf_counter() - wall)
        waited = time.perf_counter() - start
        if busy < SETTLED_CORES or waited >= max_s:
            return waited


def protocol() -> dict[str, Any]:
    """The protocol's settings, for the run's JSON."""
    return {
        "block_rounds": BLOCK_ROUNDS,
        "max_blocks": MAX_BLOCKS,
        "settled_cores": SETTLED_CORES,
        "settle_max_s": SETTLE_MAX_S,
        "warm_s": WARM_S,
        "min_window_s": MIN_WINDOW_S,
        "contended_cores": CONTENDED_CORES,
        "gpu": {
            "timer": "CUDA events on the default stream around each round; rounds back to "
            "back, no settling; pytest-benchmark's time is the call plus the wait for the device",
            "warm_group": GPU_WARM_GROUP,
            "warm_flat": GPU_FLAT,
            "warm_max_s": GPU_WARM_MAX_S,
            "launch_bound_share": LAUNCH_BOUND_SHARE,
        },
    }


def block_sizes(rounds: int) -> list[int]:
    """``rounds`` split into blocks of at least BLOCK_ROUNDS, at most MAX_BLOCKS of them."""
    blocks = max(1, min(MAX_BLOCKS, rounds // BLOCK_ROUNDS))
    return [rounds // blocks + (i < rounds % blocks) for i in range(blocks)]


class Blocks:
    """One benchmark's rounds in blocks; :meth:`setup` is pytest-benchmark's per-round setup.

    pytest-benchmark still times every round (``benchmark.pedantic``); the setup, untimed,
    settles the process and makes the untimed calls where a block starts, and samples the
    CPU counters so the rounds' CPU use is known.
    """

    def __init__(
        self,
        target: Target,
        make_args: Setup | None,
        rounds: int,
        warmed_s: float = 0.0,
        window: CpuWindow | None = None,
    ) -> None:
        self.target = target
        self.window = window or CpuWindow()
        self.make_args = make_args
        #: seconds of untimed calls just made, settled before them: they open the first block
        self.warmed_s = warmed_s
        self.sizes = block_sizes(rounds)
        self.starts = set(itertools.accumulate(self.sizes[:-1], initial=0))
        self.done = 0
        self.settle_s = 0.0
        self.untimed_calls = 0
        self.topped_up_s = 0.0
        self.first: CpuSample | None = None

    @property
    def rounds(self) -> int:
        return sum(self.sizes)

    def setup(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if self.done in self.starts:
            if self.first is None:
                self.first = self.window.sample()
                if self.warmed_s < WARM_S:
                    self.warm_up(WARM_S - self.warmed_s)
            else:
                self.settle_s += settle()
                self.warm_up(WARM_S)
        self.done += 1
        return self.make_args() if self.make_args else None

    def warm_up(self, seconds: float) -> None:
        """Untimed calls for at least ``seconds``, one at least: this library's threads wake."""
        started = time.perf_counter()
        while True:
            args, kwargs = self.make_args() if self.make_args else ((), {})
            self.target(*args, **kwargs)
            self.untimed_calls += 1
            if time.perf_counter() - started >= seconds:
                return

    def cpu_use(self) -> CpuUse:
        """The CPU use over the rounds, until now (call it after them)."""
        use, self.topped_up_s = self.window.since(self.first)
        return use

    def info(self) -> dict[str, Any]:
        """The protocol as run, for the benchmark's ``extra_info``."""
        return {
            "blocks": self.sizes,
            "settle_s": self.settle_s,
            "untimed_calls": self.untimed_calls,
            "window_topped_up_s": self.topped_up_s,
        }


class CpuWindow:
    """The CPU counters sampled where each visit's rounds start.

    The system counts CPU time in 10 ms ticks, so a visit's CPU use is measured over
    MIN_WINDOW_S at least: from its own start when the rounds took that long, else from the
    latest earlier sample at least that old (the visits just before it, other processes'
    use then included), else topped up by waiting, idle, while other processes go on.
    """

    #: samples kept: far more than MIN_WINDOW_S of visits
    KEPT = 256

    def __init__(self) -> None:
        self.samples: deque[CpuSample] = deque(maxlen=self.KEPT)

    def sample(self) -> CpuSample:
        """Sample the counters now, where a visit's rounds start."""
        sample = CpuSample.now()
        self.samples.append(sample)
        return sample

    def since(self, first: CpuSample | None) -> tuple[CpuUse, float]:
        """The CPU use from ``first`` (or an earlier sample) until now, and the seconds waited
        to top the window up."""
        if first is None:
            raise RuntimeError("no round has started")
        start = first
        now = time.perf_counter()
        if now - first.wall < MIN_WINDOW_S:
            older = [s for s in self.samples if now - s.wall >= MIN_WINDOW_S]
            start = older[-1] if older else first
        topped_up_s = max(MIN_WINDOW_S - (now - start.wall), 0)
        time.sleep(topped_up_s)
        return CpuUse.between(start, CpuSample.now()), topped_up_s


def warm_until_flat(
    call_s: Callable[[], float],
    group: int = GPU_WARM_GROUP,
    flat: float = GPU_FLAT,
    max_s: float = GPU_WARM_MAX_S,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Call ``call_s`` (one call, its seconds) in groups until the time per call stops falling.

    It stops after a group whose median is no more than ``flat`` (a share) below the previous
    group's, so after two groups at least, or once ``max_s`` have passed. Returns every
    call's seconds.
    """
    started = clock()
    seconds: list[float] = []
    previous = math.inf
    while True:
        times = [call_s() for _ in range(group)]
        seconds += times
        median = statistics.median(times)
        if median >= previous * (1 - flat) or clock() - started >= max_s:
            return seconds
        previous = median


def launch_bound(host_s: float, device_s: float) -> bool:
    """Whether the host's time to queue a call reaches the device's time for it (a share)."""
    return host_s >= LAUNCH_BOUND_SHARE * device_s


class GpuRounds:
    """One GPU benchmark's rounds, back to back; :meth:`target` is what pytest-benchmark times.

    Each round runs the call between two CUDA events (``backend.device_timer()``) and waits
    for the device, so pytest-benchmark's time is the call's wall clock with the device waited
    for, and each round's host and device times are kept too.
    """

    def __init__(
        self,
        call: Target,
        make_args: Setup | None,
        rounds: int,
        timer: DeviceTimer,
        synchronize: Callable[[], None],
        warm_calls: int = 0,
        window: CpuWindow | None = None,
    ) -> None:
        self.call = call
        self.window = window or CpuWindow()
        self.synchronize = synchronize
        self.make_args = make_args
        self.rounds = rounds
        self.timer = timer
        self.warm_calls = warm_calls
        self.times: list[CallTimes] = []
        self.first: CpuSample | None = None
        self.topped_up_s = 0.0

    def target(self, *args: Any, **kwargs: Any) -> None:
        self.times.append(self.timer.time(self.call, *args, **kwargs))
        # the events waited for the default stream: this waits for any stream of the backend's
        self.synchronize()

    def setup(self) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        if self.first is None:
            self.first = self.window.sample()
        return self.make_args() if self.make_args else None

    def cpu_use(self) -> CpuUse:
        """The CPU use over the rounds (call it after them)."""
        use, self.topped_up_s = self.window.since(self.first)
        return use

    def info(self) -> dict[str, Any]:
        """The rounds' host and device times, for the benchmark's ``extra_info``."""
        host_s = statistics.median(t.host_s for t in self.times)
        device_s = statistics.median(t.device_s for t in self.times)
        return {
            "untimed_calls": self.warm_calls,
            "window_topped_up_s": self.topped_up_s,
            "host_s": host_s,
            "device_s": device_s,
            "device_times": [t.device_s for t in self.times],
            "launch_bound": launch_bound(host_s, device_s),
        }


def make_call(backend: Backend, case: Case) -> tuple[Target, Setup | None]:
    """The call to time, not waiting for the device, and, for backward, the untimed forward
    that gives it a fresh context."""
    conv = case.conv
    x_host, w_host, b_host, dy_host = case_inputs(conv)
    x, w, b = (backend.to_device(a) for a in (x_host, w_host, b_host))
    kwargs: dict[str, Any] = {"stride": conv.stride, "padding": conv.padding}
    dy = backend.to_device(dy_host)
    backend.synchronize()

    def forward() -> None:
        backend.forward(x, w, b, **kwargs)

    def fresh_context() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # autograd-backed backends free their graph after one backward: never reuse a ctx
        _, ctx = backend.forward(x, w, b, **kwargs)
        backend.synchronize()
        return (ctx,), {}

    def backward(ctx: Any) -> None:
        backend.backward(dy, ctx)

    def step() -> None:
        _, ctx = backend.forward(x, w, b, **kwargs)
        backend.backward(dy, ctx)

    def transfer() -> None:
        # host to device for the inputs, device to host for an output-sized array
        for a in (x_host, w_host, b_host):
            backend.to_device(a)
        backend.to_numpy(dy)

    if case.pass_ == "backward":
        return backward, fresh_context
    if case.pass_ == "im2col":
        geom = conv.geometry()

        def im2col() -> None:
            backend.im2col(x, geom)  # type: ignore[attr-defined]

        return im2col, None
    return {"forward": forward, "step": step, "transfer": transfer}[case.pass_], None


def synchronized(backend: Backend, call: Target) -> Target:
    """``call``, then waiting for the backend's device."""

    def target(*args: Any, **kwargs: Any) -> None:
        call(*args, **kwargs)
        backend.synchronize()

    return target


def make_target(backend: Backend, case: Case) -> tuple[Target, Setup | None]:
    """:func:`make_call`'s call, waiting for the device before it returns, and its setup."""
    call, setup = make_call(backend, case)
    return synchronized(backend, call), setup


@dataclass(frozen=True)
class Sizing:
    """What a case's sizing visit learned: its two untimed calls, and its time per call."""

    #: the first call (JIT compilation, mostly) and the second, in seconds
    first_s: float
    second_s: float
    #: seconds per call to size its rounds by: the faster call, or on a GPU the device time
    #: per call once warm
    per_call_s: float
    #: untimed calls made
    calls: int = 2

    def info(self) -> dict[str, Any]:
        return {"warmup_s": self.first_s, "second_call_s": self.second_s}


def size_case(backend: Backend, case: Case) -> Sizing:
    """The sizing visit: untimed calls, the first compiling, that size the case's rounds."""
    call, setup = make_call(backend, case)
    target = synchronized(backend, call)
    timer = backend.device_timer()
    if timer is None:
        settle()  # the previous case's threads stop spinning: the calls size the rounds
    first_s, second_s = (_untimed_call(target, setup) for _ in range(2))  # JIT, then caches
    if timer is None:
        return Sizing(first_s, second_s, min(first_s, second_s))

    warm = warm_until_flat(partial(_device_call_s, backend, timer, call, setup))
    return Sizing(first_s, second_s, statistics.median(warm[-GPU_WARM_GROUP:]), 2 + len(warm))


def time_visit(
    benchmark: Any,
    backend: Backend,
    case: Case,
    rounds: int,
    window: CpuWindow | None = None,
    device_memory: bool = False,
) -> Blocks | GpuRounds | None:
    """Time one visit of a case with pytest-benchmark, with freshly allocated inputs: its
    ``rounds`` under the protocol, or None when pytest-benchmark is disabled (then the case
    runs once, untimed, as a plain test). ``device_memory``: measure a GPU step's peak device
    memory first."""
    call, setup = make_call(backend, case)
    target = synchronized(backend, call)
    if not benchmark.enabled:
        benchmark.pedantic(target, setup=setup, rounds=1)
        return None
    timer = backend.device_timer()
    if timer is not None:
        return _time_on_device(
            benchmark, backend, case, rounds, timer, call, setup, window, device_memory
        )
    settle()  # the previous visit's threads stop spinning
    blocks = Blocks(target, setup, rounds, window=window)
    benchmark.pedantic(target, setup=blocks.setup, rounds=blocks.rounds)
    return blocks


def _time_on_device(
    benchmark: Any,
    backend: Backend,
    case: Case,
    rounds: int,
    timer: DeviceTimer,
    call: Target,
    setup: Setup | None,
    window: CpuWindow | None,
    device_memory: bool,
) -> GpuRounds:
    """The GPU protocol: warm until flat, then back-to-back rounds between CUDA events."""

    warm = warm_until_flat(partial(_device_call_s, backend, timer, call, setup))
    if device_memory and case.pass_ == "step":
        target = synchronized(backend, call)
        benchmark.extra_info.update(gpu_memory.peak_extra(target, output_bytes(case.conv)))
    gpu = GpuRounds(call, setup, rounds, timer, backend.synchronize, len(warm), window)
    benchmark.pedantic(gpu.target, setup=gpu.setup, rounds=gpu.rounds)
    return gpu


def _device_call_s(
    backend: Backend, timer: DeviceTimer, call: Target, setup: Setup | None
) -> float:
    """One call between CUDA events, with its setup; the device's seconds for it."""
    args, kwargs = setup() if setup else ((), {})
    seconds = timer.time(call, *args, **kwargs).device_s
    backend.synchronize()
    return seconds


def _untimed_call(target: Target, setup: Setup | None) -> float:
    """One call outside pytest-benchmark's rounds; its seconds, to size the rounds."""
    args, kwargs = setup() if setup else ((), {})
    started = time.perf_counter()
    target(*args, **kwargs)
    return time.perf_counter() - started


def blas_product(case: BlasCase) -> Target:
    """The plain float32 GEMM of a configuration's im2col product, on fresh operands."""
    geom = case.conv.geometry()
    rows, depth = geom.cols_shape
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((rows, depth), dtype=np.float32)
    w_mat = rng.standard_normal((depth, geom.c_out), dtype=np.float32)
    out = np.empty((rows, geom.c_out), dtype=np.float32)

    def product() -> None:
        np.matmul(cols, w_mat, out=out)

    return product


def size_blas(case: BlasCase) -> Sizing:
    """The BLAS limit's sizing visit: two untimed products."""
    product = blas_product(case)
    settle()
    first_s, second_s = (_untimed_call(product, None) for _ in range(2))
    return Sizing(first_s, second_s, min(first_s, second_s))


def time_blas(
    benchmark: Any, case: BlasCase, rounds: int, window: CpuWindow | None = None
) -> Blocks | None:
    """Time one visit of the plain float32 GEMM of a configuration's im2col product: the
    machine's limit."""
    product = blas_product(case)
    if not benchmark.enabled:
        benchmark.pedantic(product)
        return None
    settle()
    blocks = Blocks(product, None, rounds, window=window)
    benchmark.pedantic(product, setup=blocks.setup, rounds=blocks.rounds)
    return blocks


@dataclass(frozen=True)
class Estimate:
    """Seconds per call of a case not yet timed, and the measurement it was scaled from."""

    seconds: float
    #: the configuration whose fastest round was scaled
    source: Conv
    #: that fastest round, in seconds
    source_s: float

    def describe(self) -> str:
        return (
            f"estimated {self.seconds:.3g} s per call, scaled from its fastest round at "
            f"{self.source.id} ({self.source_s:.3g} s)"
        )


@dataclass
class Estimates:
    """The fastest round of every case timed so far, to size rounds and estimate bigger cases.

    The fastest round, not the median: contention only ever slows a round down, so the
    fastest is the one a busy machine distorts least.
    """

    preset: Preset
    #: (backend, pass) -> [(configuration, fastest round in seconds)]
    fastest: dict[tuple[str, str], list[tuple[Conv, float]]] = field(default_factory=dict)

    def add(self, case: Case, fastest: float) -> None:
        self.fastest.setdefault((case.backend, case.pass_), []).append((case.conv, fastest))

    def estimate(self, case: Case) -> Estimate | None:
        """Seconds per call, scaled from a smaller case of this backend and pass.

        Within one configuration, time scales with output pixels by the exponent fitted so
        far; across configurations it scales with whichever grew more, pixels or FLOPs. A real
        network's layer gets its FLOPs at the slowest FLOP rate reached so far: its layers
        trade pixels for channels, so scaling by pixels would call a 56-pixel layer 16 times
        slower than a 7-pixel one with the same FLOPs.
        """
        points = self.fastest.get((case.backend, case.pass_), [])
        if case.conv.network:
            rates = [(Case(case.backend, case.pass_, c).flops() / t, c, t) for c, t in points]
            if not rates or not case.flops():
                return None
            rate, conv, t0 = min(rates, key=lambda point: point[0])
            return Estimate(case.flops() / rate, conv, t0)
        pixels, flops = case.conv.pixels, max(case.flops(), 1)
        same = [(c.pixels, t) for c, t in points if c.label == case.conv.label]
        smaller = [(c, t) for c, t in points if c.label == case.conv.label and c.pixels <= pixels]
        if smaller:
            conv, t0 = max(smaller, key=lambda point: point[0].pixels)
            return Estimate(t0 * (pixels / conv.pixels) ** scaling_exponent(same), conv, t0)
        others = [(c, t) for c, t in points if c.pixels <= pixels]
        if not others:
            return None
        conv, t0 = max(others, key=lambda point: point[0].pixels)
        grown = max(
            pixels / conv.pixels, flops / max(Case(case.backend, case.pass_, conv).flops(), 1)
        )
        return Estimate(t0 * grown, conv, t0)

    def rounds(self, seconds_per_call: float, trials: int = 1) -> int:
        """Rounds per visit: the preset's round budget and bounds, shared by ``trials``
        visits (each gets one round at least)."""
        wanted = math.ceil(self.preset.round_budget_s / max(seconds_per_call, 1e-9))
        total = max(self.preset.min_rounds, min(self.preset.max_rounds, wanted))
        return max(1, math.ceil(total / trials))


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


#: the drift probe: a fixed float32 product of PROBE_SIZE square matrices, PROBE_CALLS times
PROBE_SIZE = 192
PROBE_CALLS = 21


def probe_s() -> float:
    """The drift probe's median seconds: a fixed small BLAS product timed at the start of every
    trial, so the report shows how the machine's speed moved between trials (shown, never
    divided out)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((PROBE_SIZE, PROBE_SIZE), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    settle()
    times = []
    for _ in range(PROBE_CALLS + 2):  # two untimed: the BLAS pool wakes up
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])

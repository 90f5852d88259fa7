"""The GPU side of the harness: its preset, its timing protocol, its memory and its peak.

On a CPU the protocol runs with fake events, fake allocators and fake benchmarks: what is
checked is what it calls, when, and the arithmetic on what it reads. The tests marked
``real_gpu`` run only where numba-cuda sees a GPU (``benchmarks/gpu_run.sh`` runs them).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

import impls
from benchmarks import gpu_memory, gpu_peaks, options, timing
from benchmarks.matrix import (
    BATCH,
    BATCH_SIZES,
    PRESETS,
    RESNET50,
    RESNET50_BATCH,
    Case,
    contenders,
    resnet50_convs,
)
from benchmarks.memory import output_bytes
from impls._cuda_events import CallTimes, EventTimer

ROOT = Path(__file__).parent.parent


def _real_gpu() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    from numba import cuda

    return bool(cuda.is_available())


real_gpu = pytest.mark.skipif(not _real_gpu(), reason="needs a GPU (numba-cuda sees none)")


# the preset


def test_the_gpu_preset_has_every_distinct_resnet50_layer_once_at_batch_128() -> None:
    layers = [c for c in PRESETS["gpu"].convs() if c.label == RESNET50]
    assert len(layers) == 22
    assert len({c.id for c in layers}) == 22  # every layer its own benchmark id
    assert {c.n for c in layers} == {RESNET50_BATCH}
    assert {c.k for c in layers} == {1, 3}
    assert {c.dtype for c in layers} == {"float32"}
    # torchvision v1.5: the stride is on the 3x3 of a stage's first block, and on its projection
    strided = sorted((c.k, c.size, c.c_in, c.c_out) for c in layers if c.stride == 2)
    assert strided == [
        (1, 14, 1024, 2048), (1, 28, 512, 1024), (1, 56, 256, 512),
        (3, 14, 512, 512), (3, 28, 256, 256), (3, 56, 128, 128),
    ]  # fmt: skip


@pytest.mark.parametrize("conv", resnet50_convs(), ids=lambda c: c.id)
def test_each_resnet50_layer_pads_as_torchvision_does(conv: Any) -> None:
    geom = conv.geometry()
    pad = conv.k // 2
    assert geom.pad == ((pad, pad), (pad, pad))
    assert geom.out_h == (conv.size + 2 * pad - conv.k) // conv.stride + 1


def test_the_batch_sweep_runs_from_1_to_128_at_the_stage2_3x3_layer() -> None:
    sweep = [c for c in PRESETS["gpu"].convs() if c.label == BATCH]
    assert [c.n for c in sweep] == list(BATCH_SIZES) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert {(c.size, c.c_in, c.c_out, c.k, c.stride) for c in sweep} == {(56, 64, 64, 3, 1)}
    assert sweep[0].id == "batch-n1-56px"


@pytest.mark.parametrize("name", ["numba_cuda", "torch_cudnn"])
def test_every_gpu_case_fits_the_memory_guard_of_an_80_gib_h100(name: str) -> None:
    backend = impls.get_backend(name)
    needed = max(timing.memory_needed(backend, c) for c in PRESETS["gpu"].convs())
    assert needed <= 0.5 * 80 * 2**30  # the default --memory-limit, 50%


def test_the_gpu_preset_leaves_cpu_backends_out_and_says_why() -> None:
    timed, left_out = contenders(["naive_loop", "numba_cuda", "torch_cudnn"], PRESETS["gpu"])
    assert timed == ["numba_cuda", "torch_cudnn"]
    assert left_out == {
        "naive_loop": "a CPU backend: the gpu preset times GPU backends only",
    }
    assert PRESETS["gpu"].limit_convs() == []


class _Fake(impls.Backend):
    """A backend stand-in: its device, availability and whether it is simulated."""

    role: ClassVar[str] = "ours"

    def __init__(self, device: str, ok: bool = True, simulated: bool = False) -> None:
        self.device, self.ok, self.sim = device, ok, simulated

    def available(self) -> tuple[bool, str]:
        return self.ok, "" if self.ok else "no GPU"

    def simulated(self) -> bool:
        return self.sim


@pytest.mark.parametrize(
    ("fakes", "chosen"),
    [
        ({"a_cpu": _Fake("cpu"), "b_gpu": _Fake("gpu")}, "b_gpu"),
        ({"a_cpu": _Fake("cpu"), "b_gpu": _Fake("gpu", ok=False)}, None),
        ({"b_gpu": _Fake("gpu", simulated=True)}, None),
    ],
)
def test_the_gpu_preset_is_chosen_only_for_a_gpu_backend_on_a_real_gpu(
    monkeypatch: pytest.MonkeyPatch, fakes: dict[str, _Fake], chosen: str | None
) -> None:
    monkeypatch.setattr(impls, "get_backend", fakes.__getitem__)
    monkeypatch.setattr(impls, "backend_names", lambda: sorted(fakes))
    assert options.gpu_backend(sorted(fakes)) == chosen
    given = {"benchmark_only": True, "memory_limit": None}
    config = SimpleNamespace(
        getoption=lambda name, default=None: given.get(name, default), rootpath=ROOT
    )
    settings = options.read_settings(config)  # type: ignore[arg-type]
    assert settings.preset.name == ("gpu" if chosen else "default")
    assert settings.preset_chosen == (
        f"chosen because {chosen} runs on a GPU (--preset names another)" if chosen else ""
    )


def test_without_a_gpu_the_gpu_preset_skips_every_case_with_its_reason(tmp_path: Path) -> None:
    if _real_gpu():
        pytest.skip("this machine has a GPU: the preset runs here (benchmarks/gpu_run.sh)")
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "benchmarks.plugin", "--benchmark-only",
         "--preset", "gpu", "--backends", "numba_cuda,torch_cudnn,naive_loop",
         "--report-dir", str(tmp_path), "-p", "no:cacheprovider", "-rs"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    assert "preset gpu" in out
    assert "numba_cuda: unavailable: no CUDA GPU found" in out
    assert "torch_cudnn: unavailable:" in out
    assert "the gpu preset times no BLAS limit" in out
    assert "naive_loop" not in out.split("short test summary")[-1]  # left out, not skipped
    assert not list(tmp_path.glob("runs/*.json"))  # nothing timed, nothing saved


def test_a_gpu_backend_is_timed_under_the_gpu_protocol_end_to_end(tmp_path: Path) -> None:
    """The whole harness on a fake GPU backend (host compute, host clock as its device's): its
    rows keep host and device times and no CPU settling, and the run and report are saved."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    fixtures = Path(__file__).parent / "fixtures"
    env["PYTHONPATH"] = os.pathsep.join([str(fixtures), str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "benchmarks.plugin", "-p", "fake_gpu",
         "--benchmark-only", "--preset", "smoke", "--sizes", "8", "--backends", "fake_gpu",
         "--report-dir", str(tmp_path), "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = (tmp_path / "runs").glob("*.json")
    run = json.loads(path.read_text())
    rows = [b["extra_info"] for b in run["benchmarks"] if b["extra_info"].get("kind") == "conv"]
    assert {row["pass"] for row in rows} == {"forward", "backward", "step", "transfer"}
    for row in rows:
        assert row["device_s"] > 0
        assert row["host_s"] > 0
        assert row["launch_bound"] is True  # the host's clock is the "device's"
        assert "settle_s" not in row
        assert "blocks" not in row
    (step,) = [row for row in rows if row["pass"] == "step"]
    assert "peak_extra_bytes" in step
    assert run["im2col_bench"]["protocol"]["gpu"]["launch_bound_share"] == 0.9
    # without a real GPU the peak's measurements fail, and say why, without stopping the run
    errors = set(run["machine_info"]["gpu_peaks"]["errors"])
    assert errors == (set() if _real_gpu() else {"matmul", "fma"})
    assert path.with_suffix(".html").exists()


# the protocol


def test_warm_up_stops_once_the_time_per_call_stops_falling() -> None:
    # groups of 2, medians 9, 5.5, 5 (9% less), 4.95 (1% less: no longer falling)
    times = iter([10.0, 8.0, 6.0, 5.0, 5.0, 5.0, 5.0, 4.9, 1.0, 1.0])
    seconds = timing.warm_until_flat(lambda: next(times), group=2, flat=0.02, max_s=1e9)
    assert seconds == [10.0, 8.0, 6.0, 5.0, 5.0, 5.0, 5.0, 4.9]


def test_warm_up_takes_two_groups_at_least_and_stops_at_its_time_limit() -> None:
    assert timing.warm_until_flat(lambda: 1.0, group=3, max_s=1e9) == [1.0] * 6
    clock = SimpleNamespace(now=0.0)

    def falling() -> float:  # ever faster, so only the limit stops it
        clock.now += 1.0
        return 1 / clock.now

    seconds = timing.warm_until_flat(falling, group=2, max_s=5.0, clock=lambda: clock.now)
    assert len(seconds) == 6  # the group that ends past 5 s is the last


@pytest.mark.parametrize(
    ("host_s", "device_s", "bound"),
    [(1.0, 1.0, True), (0.9, 1.0, True), (0.89, 1.0, False), (2.0, 1.0, True), (0.1, 1.0, False)],
)
def test_a_row_is_launch_bound_when_the_host_takes_90_percent_of_the_device_time(
    host_s: float, device_s: float, bound: bool
) -> None:
    assert timing.launch_bound(host_s, device_s) is bound


class FakeEvent:
    """A CUDA event on a fake device clock: each record reads it."""

    def __init__(self, device: SimpleNamespace) -> None:
        self.device = device
        self.at = math.nan

    def record(self, stream: int = 0) -> None:
        self.at = self.device.now

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, stop: FakeEvent) -> float:
        return (stop.at - self.at) * 1e3  # milliseconds, as CUDA reports them


def test_the_event_timer_reports_host_and_device_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    device = SimpleNamespace(now=0.0)
    host = SimpleNamespace(now=100.0)
    monkeypatch.setattr("impls._cuda_events.time.perf_counter", lambda: host.now)
    timer = EventTimer((FakeEvent(device), FakeEvent(device)))

    def call(queue_s: float, run_s: float) -> None:
        host.now += queue_s
        device.now += run_s

    times = timer.time(call, 0.002, run_s=0.005)
    assert times.host_s == pytest.approx(0.002)
    assert times.device_s == pytest.approx(0.005)


class FakeTimer:
    """Hands out given CallTimes, calling the timed function each time."""

    def __init__(self, times: list[CallTimes]) -> None:
        self.times = iter(times)
        self.calls: list[tuple[Any, ...]] = []

    def time(self, call: Any, *args: Any, **kwargs: Any) -> CallTimes:
        call(*args, **kwargs)
        self.calls.append(args)
        return next(self.times)


def test_gpu_rounds_keep_each_rounds_host_and_device_time_and_flag_launch_bound_rows() -> None:
    made = iter(range(10))
    timer = FakeTimer([CallTimes(0.9e-3, 1e-3), CallTimes(1.1e-3, 1e-3), CallTimes(1e-3, 1.2e-3)])
    synchronized: list[int] = []
    rounds = timing.GpuRounds(
        lambda ctx: None,
        lambda: ((next(made),), {}),
        rounds=3,
        timer=timer,
        synchronize=lambda: synchronized.append(1),
        warm_calls=7,
    )
    for _ in range(rounds.rounds):
        args, kwargs = rounds.setup()  # type: ignore[misc]
        rounds.target(*args, **kwargs)
    rounds.cpu_use()
    info = rounds.info()
    assert timer.calls == [(0,), (1,), (2,)]  # a fresh argument for every round
    assert len(synchronized) == 3  # every round waits for all of the backend's streams
    assert info["host_s"] == pytest.approx(1e-3)
    assert info["device_s"] == pytest.approx(1e-3)
    assert info["device_times"] == pytest.approx([1e-3, 1e-3, 1.2e-3])
    assert info["launch_bound"] is True
    assert info["untimed_calls"] == 7


class FakeGpuBackend(impls.Backend):
    """A GPU backend whose calls take no time, timed by a fake event timer."""

    name: ClassVar[str] = "fake_gpu"
    device: ClassVar[str] = "gpu"
    saved_by_reference: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.synchronized = 0

    def _forward(self, x: Any, w: Any, b: Any, geom: Any) -> tuple[Any, Any]:
        return np.zeros(geom.y_shape, x.dtype), None

    def _backward(self, dy: Any, saved: Any, geom: Any) -> tuple[Any, Any, Any]:
        return np.zeros(geom.x_shape), np.zeros(geom.w_shape), np.zeros(geom.c_out)

    def synchronize(self) -> None:
        self.synchronized += 1

    def device_timer(self) -> Any:
        # the first calls fall, then level off: 5 ms, 4 ms, then 3 ms for good
        levels = [5e-3] * 5 + [4e-3] * 5 + [3e-3] * 1000
        return FakeTimer([CallTimes(1e-4, t) for t in levels])


class FakeBenchmark:
    """pytest-benchmark's fixture, as far as the harness uses it."""

    enabled = True

    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}
        self.rounds = 0
        self.stats = SimpleNamespace(stats=SimpleNamespace(data=[]))

    def pedantic(self, target: Any, setup: Any = None, rounds: int = 1) -> None:
        for _ in range(rounds):
            given = setup() if setup else None
            args, kwargs = given if given else ((), {})
            target(*args, **kwargs)
            self.stats.stats.data.append(3e-3)
            self.rounds += 1


def test_a_gpu_case_runs_back_to_back_after_warming_until_flat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_settling(*args: Any) -> float:
        raise AssertionError("a GPU benchmark never waits for the CPU to settle")

    measured: list[int] = []

    def peak_extra(call: Any, outputs: int) -> dict[str, Any]:
        measured.append(outputs)
        return {"peak_extra_bytes": 123}

    monkeypatch.setattr(timing, "settle", no_settling)
    monkeypatch.setattr(timing.gpu_memory, "peak_extra", peak_extra)
    backend, benchmark = FakeGpuBackend(), FakeBenchmark()
    conv = resnet50_convs(n=1)[-1]
    case = Case("fake_gpu", "step", conv)
    # the sizing visit: the inputs made, two untimed calls, then warm until flat
    sizing = timing.size_case(backend, case)
    assert sizing.per_call_s == pytest.approx(3e-3)
    # 5 ms, 4 ms, 3 ms, 3 ms: the fourth group is no faster than the third
    assert sizing.calls == 2 + 4 * timing.GPU_WARM_GROUP
    assert backend.synchronized == 3 + 4 * timing.GPU_WARM_GROUP
    sized = backend.synchronized
    wanted = timing.Estimates(PRESETS["gpu"]).rounds(sizing.per_call_s)
    # a trial's visit: fresh inputs, warm until flat again, the peak memory, the rounds
    rounds = timing.time_visit(benchmark, backend, case, wanted, device_memory=True)
    assert isinstance(rounds, timing.GpuRounds)
    assert rounds.warm_calls == 4 * timing.GPU_WARM_GROUP
    assert benchmark.rounds == rounds.rounds == wanted >= PRESETS["gpu"].min_rounds
    assert measured == [output_bytes(conv)]
    assert benchmark.extra_info["peak_extra_bytes"] == 123
    info = rounds.info()
    assert info["device_s"] == pytest.approx(3e-3)
    assert info["launch_bound"] is False
    # the inputs made, each warm-up call and each round
    assert backend.synchronized - sized == 1 + rounds.warm_calls + rounds.rounds
    # a later trial's visit measures no memory again
    timing.time_visit(FakeBenchmark(), backend, case, wanted)
    assert measured == [output_bytes(conv)]


# memory


class FakeManager:
    """numba-cuda's memory manager as the tracker sees it: ``memalloc`` and ``allocations``."""

    def __init__(self) -> None:
        self.allocations: dict[int, SimpleNamespace] = {}
        self.next = 0

    def memalloc(self, size: int) -> SimpleNamespace:
        self.next += 1
        memory = SimpleNamespace(size=size, key=self.next)
        self.allocations[self.next] = memory
        return memory

    def free(self, memory: SimpleNamespace) -> None:
        del self.allocations[memory.key]


def test_the_numba_tracker_sees_the_peak_of_live_bytes_since_its_reset() -> None:
    manager = FakeManager()
    before = manager.memalloc(1000)  # live before the reset: not the call's
    with gpu_memory.NumbaPeak(manager) as tracker:
        tracker.reset()
        a = manager.memalloc(100)
        b = manager.memalloc(200)
        manager.free(a)
        manager.free(before)  # a free of older memory never makes the peak negative
        c = manager.memalloc(50)
        assert tracker.extra() == 300  # a and b were live together
        manager.free(b)
        manager.free(c)
        tracker.reset()
        assert tracker.extra() == 0
    assert "memalloc" not in vars(manager)  # the class's own again: timed calls pay nothing
    manager.memalloc(10_000)
    assert tracker.extra() == 0


def test_peak_extra_resets_both_allocators_before_the_measured_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manager = FakeManager()
    torch_cuda = SimpleNamespace(allocated=0, peak=0, resets=0)

    def alloc_torch(size: int) -> None:
        torch_cuda.allocated += size
        torch_cuda.peak = max(torch_cuda.peak, torch_cuda.allocated)

    fake_torch = SimpleNamespace(
        synchronize=lambda: None,
        reset_peak_memory_stats=lambda: setattr(torch_cuda, "peak", torch_cuda.allocated),
        memory_allocated=lambda: torch_cuda.allocated,
        max_memory_allocated=lambda: torch_cuda.peak,
    )
    monkeypatch.setattr(gpu_memory, "_numba_manager", lambda: manager)
    monkeypatch.setattr(gpu_memory, "_torch_cuda", lambda: fake_torch)
    calls = SimpleNamespace(count=0)

    def step() -> None:
        calls.count += 1
        if calls.count == 1:  # a one-time buffer, kept: the first call is not measured
            manager.memalloc(10_000)
            alloc_torch(5_000)
        work = manager.memalloc(800)
        alloc_torch(300)
        manager.free(work)
        torch_cuda.allocated -= 300

    found = gpu_memory.peak_extra(step, outputs_bytes=100)
    assert calls.count == 2
    assert found["numba_peak_bytes"] == 800
    assert found["torch_peak_bytes"] == 300
    assert found["peak_extra_bytes"] == 800 + 300 - 100
    assert found["outputs_bytes"] == 100


# the peak


def test_the_fma_loop_computes_what_it_is_credited_with() -> None:
    """On the simulator where there is no GPU: the value of every chain, summed per thread."""
    out = np.zeros(8, np.float32)
    gpu_peaks.fma_kernel[2, 4](gpu_peaks.FMA_CONSTANTS, 3, out)
    scale, shift, spread = gpu_peaks.FMA_CONSTANTS.astype(np.float64)
    a0 = spread * np.arange(8)
    chains = [a0, a0 + shift, a0 - shift, a0 * scale, (a0 + shift) * scale,
              (a0 - shift) * scale, a0 * scale + shift, a0 + scale]  # fmt: skip
    for _ in range(3):
        chains = [a * scale + shift for a in chains]
    np.testing.assert_allclose(out, sum(chains), rtol=1e-5)


def test_the_fma_loop_compiles_to_fused_multiply_adds_in_registers() -> None:
    """NVVM and ptxas for sm_90, without a GPU: every chain an fma.rn.f32, nothing spilled;
    under a numpy without np.row_stack too (numpy 2.5, as on the H200 machine)."""
    code = (
        "import json\n"
        "import numpy as np\n"
        "if hasattr(np, 'row_stack'):\n"
        "    del np.row_stack\n"
        "from numba import cuda, types\n"
        "from benchmarks.gpu_peaks import _fma_loop\n"
        "from tests.gpu_compile import assemble, ptxas_path\n"
        "ptxas = ptxas_path()\n"
        "sig = (types.float32[::1], types.int64, types.float32[::1])\n"
        "ptx, _ = cuda.compile_ptx(_fma_loop, sig, cc=(9, 0))\n"
        "figures = assemble(ptx, (9, 0), ptxas, None) if ptxas else None\n"
        "print(json.dumps({'fma': ptx.count('fma.rn.f32'), 'figures': figures}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if done.returncode and "NVVM" in done.stderr:
        pytest.skip(f"no NVVM here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["fma"] >= gpu_peaks.FMA_CHAINS
    if found["figures"] is None:
        pytest.skip("no ptxas here")
    assert found["figures"]["stack"] == 0
    assert found["figures"]["spill_stores"] == 0


# on a real GPU (benchmarks/gpu_run.sh runs these there)


@real_gpu
def test_gpu_event_timer_times_a_kernel_that_waits() -> None:
    from numba import cuda

    out = cuda.device_array(1, np.float32)
    constants = cuda.to_device(gpu_peaks.FMA_CONSTANTS)
    kernel = gpu_peaks.fma_kernel[1, 32]
    kernel(constants, 10, out)
    short = EventTimer().time(kernel, constants, 1000, out)
    long = EventTimer().time(kernel, constants, 100_000, out)
    assert 0 < short.device_s < long.device_s
    assert long.host_s < long.device_s  # queueing a launch does not wait for it


@real_gpu
def test_gpu_numba_tracker_sees_device_arrays_made_in_the_call() -> None:
    from numba import cuda

    def step() -> None:
        a = cuda.device_array(1 << 20, np.float32)  # 4 MiB
        b = cuda.device_array(1 << 18, np.float32)  # 1 MiB
        cuda.synchronize()
        del a, b

    found = gpu_memory.peak_extra(step, outputs_bytes=0)
    assert found["numba_peak_bytes"] == 5 * 2**20


@real_gpu
def test_gpu_peaks_are_measured_with_tf32_off() -> None:
    found = gpu_peaks.measure()
    assert found["tf32"] is False
    assert not found["errors"], found["errors"]
    entry = found["float32"]
    assert entry["peak_gflops"] == max(entry["matmul_gflops"], entry["fma_gflops"]) > 0

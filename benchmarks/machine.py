"""The machine a run measures: thread settings, free memory, CPU use, and its JSON description."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import Settings

#: a benchmark is contended when other processes took, on average over its rounds, more than
#: this many cores beyond those its threads leave free: then BLAS, numba and torch threads
#: wait for a core at every barrier, and times grow 10-300x (the oversubscription collapse)
CONTENDED_CORES = 0.25


def apply_threads(threads: int) -> Any:
    """Set BLAS, numba and torch to ``threads``; returns the threadpoolctl limiter to undo BLAS."""
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=threads)
    if "numba" in sys.modules:
        import numba

        # set_num_threads starts numba's thread pool (an OpenMP runtime beside torch's): only
        # where the run asks for fewer threads than numba would use anyway
        if threads < getattr(numba.config, "NUMBA_NUM_THREADS", threads):
            numba.set_num_threads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return limiter


def usable_cpus() -> list[int]:
    """The numbers of the CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def default_threads() -> int:
    """The cores this process may run on."""
    return len(usable_cpus())


@dataclass(frozen=True)
class CpuSample:
    """Counters at one moment: the clock, this process's CPU time, its CPUs' busy time."""

    wall: float
    #: CPU seconds of this process, every thread
    own: float
    #: busy CPU seconds of the CPUs this process may run on, every process (steal included)
    busy: float
    #: the 1-minute load average
    load: float

    @classmethod
    def now(cls) -> CpuSample:
        import psutil

        per_cpu = psutil.cpu_times(percpu=True)
        cpus = [per_cpu[i] for i in usable_cpus() if i < len(per_cpu)]
        # guest time is counted in user time already; idle and iowait are not busy
        busy = sum(
            sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0)
            - getattr(t, "guest_nice", 0.0)
            for t in cpus
        )  # fmt: skip
        return cls(time.perf_counter(), time.process_time(), busy, psutil.getloadavg()[0])


@dataclass(frozen=True)
class CpuUse:
    """What this process and every other one did with its CPUs between two samples."""

    wall_s: float
    own_cpu_s: float
    #: CPU seconds that other processes (and the hypervisor, as steal) took on our CPUs
    others_cpu_s: float
    load_before: float
    load_after: float
    cores: int

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample) -> CpuUse:
        own = after.own - before.own
        others = max(after.busy - before.busy - own, 0.0)
        return cls(
            after.wall - before.wall, own, others, before.load, after.load, len(usable_cpus())
        )

    @property
    def others_cores(self) -> float:
        """How many cores other processes took, on average."""
        return self.others_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def contended(self, threads: int) -> bool:
        """Whether others took cores that ``threads`` threads of ours needed (CONTENDED_CORES)."""
        free = max(self.cores - threads, 0)
        return self.others_cores > free + CONTENDED_CORES

    @classmethod
    def quiet_check(cls, seconds: float) -> CpuUse:
        """What other processes take of the machine over ``seconds``, idle meanwhile."""
        before = CpuSample.now()
        time.sleep(seconds)
        return cls.between(before, CpuSample.now())

    def info(self, threads: int) -> dict[str, Any]:
        """The fields a benchmark's ``extra_info`` keeps."""
        return {
            "wall_s": self.wall_s,
            "own_cpu_s": self.own_cpu_s,
            "others_cpu_s": self.others_cpu_s,
            "others_cores": self.others_cores,
            "cores": self.cores,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "contended": self.contended(threads),
        }


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


def measured_machine(settings: Settings, measure: bool) -> dict[str, Any]:
    """:func:`machine_extras`, with (``measure``) the machine's compute peaks and, where the
    run times a GPU backend on a real GPU, the GPU's: before any benchmark, so no library's
    pool is warm for it."""
    import impls

    from .matrix import contenders
    from .options import gpu_backend

    machine = machine_extras(settings.threads)
    if not measure:
        return machine
    from . import peaks  # imports numba: not before the conftest configured it

    preset = settings.preset
    machine["peaks"] = peaks.measure(
        settings.threads, **(peaks.QUICK if preset.quick_peaks else {})
    )
    names = settings.backends or impls.backend_names()
    if gpu_backend(contenders(names, preset)[0]):
        from . import gpu_peaks

        machine["gpu_peaks"] = gpu_peaks.measure()
    return machine

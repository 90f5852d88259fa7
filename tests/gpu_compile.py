"""Compile every kernel the GPU backends launch for real GPUs, and read ptxas's resource figures.

Run it as a program, never under numba's CUDA simulator (which accepts code the real compiler
rejects): ``python -m tests.gpu_compile`` prints a table, ``--json`` what the tests read.
Each GPU backend runs forward and backward on the conformance grid and the benchmark shapes
with host arrays standing in for device arrays, so no GPU is needed: every kernel launch is
recorded (kernel, argument types as numba types them, threads per block) instead of made.
Each distinct launch is then compiled by NVVM for sm_70, sm_80 and sm_90, with the options
the kernel was jitted with, and assembled by ptxas, whose figures give the registers, shared
memory, local memory (stack frame and spills) and the theoretical occupancy; the PTX
itself is searched for floating-point atomics, whose sums depend on the order blocks finish.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import impls
from tests.support import CASES, DTYPES, Case, declines

#: the architectures every kernel must compile for: Volta, Ampere, Hopper
ARCHS = ((7, 0), (8, 0), (9, 0))

#: benchmark-sized cases: launch choices (grids, K splits) can depend on the size
BENCH_CASES = [
    Case("bench-default-16px", (8, 16, 16, 32), (3, 3, 32, 32), padding="SAME"),
    Case("bench-default-224px", (8, 224, 224, 32), (3, 3, 32, 32), padding="SAME"),
    Case("bench-stride2", (8, 64, 64, 32), (3, 3, 32, 32), stride=2, padding="SAME"),
    Case("bench-k1", (8, 64, 64, 32), (1, 1, 32, 32), padding="SAME"),
    Case("bench-k5", (8, 64, 64, 32), (5, 5, 32, 32), padding="SAME"),
    Case("bench-reference", (16, 56, 56, 64), (3, 3, 64, 64), padding="SAME"),
]


@dataclass(frozen=True)
class SmLimits:
    """Per-SM limits of one architecture, as the CUDA occupancy calculator uses them."""

    max_warps: int
    max_blocks: int
    registers: int
    #: registers are allocated per warp in units of this many
    register_unit: int
    #: warps are granted registers in groups of this many
    warp_granularity: int
    #: the largest shared-memory carveout, bytes
    shared: int
    shared_unit: int
    #: shared memory the system reserves per block, bytes
    shared_reserved: int


SM_LIMITS = {
    (7, 0): SmLimits(64, 32, 65536, 256, 4, 96 * 1024, 256, 0),
    (8, 0): SmLimits(64, 32, 65536, 256, 4, 164 * 1024, 128, 1024),
    (9, 0): SmLimits(64, 32, 65536, 256, 4, 228 * 1024, 128, 1024),
}


def occupancy(registers: int, shared: int, threads: int, cc: tuple[int, int]) -> float:
    """Theoretical occupancy: resident warps per SM over the most an SM holds.

    Parameters
    ----------
    registers : registers per thread, as ptxas reports them
    shared : static shared memory per block, bytes
    threads : threads per block
    cc : compute capability (major, minor)
    """
    sm = SM_LIMITS[cc]
    warps = math.ceil(threads / 32)
    per_warp = math.ceil(registers * 32 / sm.register_unit) * sm.register_unit
    warps_by_registers = sm.registers // per_warp // sm.warp_granularity * sm.warp_granularity
    per_block = math.ceil((shared + sm.shared_reserved) / sm.shared_unit) * sm.shared_unit
    blocks = min(
        sm.max_blocks,
        sm.max_warps // warps,
        warps_by_registers // warps if registers else sm.max_blocks,
        sm.shared // per_block if shared else sm.max_blocks,
    )
    return blocks * warps / sm.max_warps


@dataclass(frozen=True)
class Launch:
    """One kernel launch as the backend made it."""

    backend: str
    kernel: Any
    argtypes: tuple[Any, ...]
    threads: int


def _dispatcher_class() -> type:
    from numba import cuda

    def noop() -> None:
        pass

    return type(cuda.jit(noop))


class DeviceStandIn(np.ndarray):
    """A host array standing in for a device array: what the recorded host code touches."""

    def copy_to_host(self, ary: Any = None, stream: Any = 0) -> np.ndarray:
        return np.array(self)

    def copy_to_device(self, ary: Any, stream: Any = 0) -> None:
        self[...] = ary

    def is_c_contiguous(self) -> bool:
        return bool(self.flags.c_contiguous)


def _stand_in(a: Any) -> DeviceStandIn:
    return np.array(a, copy=True).view(DeviceStandIn)


@dataclass(frozen=True)
class DeviceStandInInfo:
    """What ``cuda.get_current_device()`` answers while recording for one architecture."""

    compute_capability: tuple[int, int]

    @property
    def name(self) -> str:
        return f"stand-in sm_{self.compute_capability[0]}{self.compute_capability[1]}"


@contextlib.contextmanager
def recording(backend: str, cc: tuple[int, int], launches: list[Launch]) -> Iterator[None]:
    """Record numba.cuda launches into ``launches`` instead of making them, as on a GPU of
    compute capability ``cc``; no device needed."""
    from numba import cuda

    dispatcher = _dispatcher_class()

    def configure(kernel: Any, griddim: Any, blockdim: Any, stream: Any = 0, sharedmem: Any = 0):  # type: ignore[no-untyped-def]
        threads = math.prod(blockdim) if isinstance(blockdim, tuple) else int(blockdim)

        def launch(*args: Any) -> None:
            argtypes = tuple(kernel.typeof_pyval(a) for a in args)
            launches.append(Launch(backend, kernel, argtypes, threads))

        return launch

    fakes = {
        "is_available": lambda: True,
        "get_current_device": lambda: DeviceStandInInfo(cc),
        "synchronize": lambda: None,
        "device_array": lambda shape, dtype=np.float64, *args, **kwargs: np.empty(
            shape, dtype
        ).view(DeviceStandIn),
        "to_device": lambda obj, *args, **kwargs: _stand_in(obj),
        "as_cuda_array": lambda obj, *args, **kwargs: np.asarray(obj).view(DeviceStandIn),
    }
    saved = {name: getattr(cuda, name) for name in fakes}
    saved_configure = dispatcher.configure
    try:
        for name, fake in fakes.items():
            setattr(cuda, name, fake)
        dispatcher.configure = configure  # type: ignore[attr-defined]
        yield
    finally:
        for name, real in saved.items():
            setattr(cuda, name, real)
        dispatcher.configure = saved_configure  # type: ignore[attr-defined]


def _run_case(backend: impls.Backend, case: Case, dtype: Any, strided: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.w_shape[3]).astype(dtype)
    if strided:
        # a device array that is a strided view, not a contiguous buffer
        x_dev = backend.to_device(np.concatenate([x, x]))[::2]
    else:
        x_dev = backend.to_device(x)
    _, ctx = backend.forward(x_dev, backend.to_device(w), backend.to_device(b), **case.kwargs)
    dy = backend.to_device(np.ones(ctx.geom.y_shape, dtype))
    backend.backward(dy, ctx)


def record(backend: impls.Backend, cc: tuple[int, int]) -> list[Launch]:
    """Every kernel launch the backend makes on the recording cases, both dtypes, on a GPU of
    compute capability ``cc``."""
    launches: list[Launch] = []
    with recording(backend.name, cc, launches):
        ok, reason = backend.available()
        if not ok:
            raise LookupError(reason)
        for case in [*CASES, *BENCH_CASES]:
            for dtype in DTYPES:
                if declines(backend, case, dtype):
                    continue
                _run_case(backend, case, dtype, strided=False)
        case = CASES[1]
        for dtype in DTYPES:
            _run_case(backend, case, dtype, strided=True)
    return launches


def module_kernels(backend: impls.Backend) -> list[str]:
    """Names of the kernels defined at module level by a backend's module and by the impls
    modules it imports from (``_cuda_blas``). Device functions
    (``cuda.jit(device=True)``) are not kernels: they compile as part of the kernels that call
    them."""
    own = sys.modules[type(backend).__module__]
    sources = {
        getattr(obj, "__module__", None) or "" for obj in vars(own).values() if callable(obj)
    }
    modules = [own, *(sys.modules[name] for name in sorted(sources) if name.startswith("impls."))]
    dispatcher = _dispatcher_class()
    return sorted(
        name
        for module in dict.fromkeys(modules)
        for name, obj in vars(module).items()
        if isinstance(obj, dispatcher) and not obj.targetoptions.get("device")
    )


def kernel_label(kernel: Any) -> str:
    """The kernel's name, with the settings a kernel factory closed over (bools, ints, strs)."""
    func = kernel.py_func
    name = func.__qualname__.replace(".<locals>", "")
    cells = zip(func.__code__.co_freevars, func.__closure__ or (), strict=True)
    settings = [
        f"{var}={cell.cell_contents!r}"
        for var, cell in cells
        if isinstance(cell.cell_contents, bool | int | str)
    ]
    return f"{name}({', '.join(settings)})" if settings else name


def ptxas_path() -> str | None:
    """ptxas from the nvcc wheel (the ``cuda`` extra), else from PATH."""
    try:
        from cuda.pathfinder import find_nvidia_binary_utility

        found = find_nvidia_binary_utility("ptxas")
    except Exception:
        found = None
    return found or shutil.which("ptxas")


#: a floating-point atomic in PTX: sums that depend on which block gets there first
_FLOAT_ATOMIC = re.compile(r"\b(?:atom|red)(?:\.\w+)*\.f(?:16|32|64)\b")

_FIGURES = {
    "registers": r"Used (\d+) registers",
    "shared": r"(\d+) bytes smem",
    "stack": r"(\d+) bytes stack frame",
    "spill_stores": r"(\d+) bytes spill stores",
    "spill_loads": r"(\d+) bytes spill loads",
}


def assemble(ptx: str, cc: tuple[int, int], ptxas: str, max_registers: int | None) -> dict:
    """ptxas's resource figures for one kernel's PTX."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "kernel.ptx"
        source.write_text(ptx)
        command = [ptxas, f"-arch=sm_{cc[0]}{cc[1]}", "-v", "-o", str(source.with_suffix(".o"))]
        if max_registers:
            command.append(f"--maxrregcount={max_registers}")
        done = subprocess.run([*command, str(source)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ptxas failed: {done.stderr.strip()}")
    figures = {}
    for key, pattern in _FIGURES.items():
        found = re.search(pattern, done.stderr)
        figures[key] = int(found.group(1)) if found else 0
    return figures


def compile_launch(launch: Launch, cc: tuple[int, int], ptxas: str) -> dict:
    """Compile one recorded launch for ``cc`` and assemble it; errors are returned, not raised."""
    from numba import cuda

    options = launch.kernel.targetoptions
    accepted = inspect.signature(cuda.compile_ptx).parameters
    forwarded = {
        key: options[key]
        for key in ("debug", "lineinfo", "fastmath", "opt", "launch_bounds")
        if key in options and key in accepted
    }
    result: dict[str, Any] = {
        "backend": launch.backend,
        "kernel": kernel_label(launch.kernel),
        "argtypes": ", ".join(str(t) for t in launch.argtypes),
        "threads": launch.threads,
        "arch": f"sm_{cc[0]}{cc[1]}",
    }
    try:
        ptx, _ = cuda.compile_ptx(launch.kernel.py_func, launch.argtypes, cc=cc, **forwarded)
        figures = assemble(ptx, cc, ptxas, options.get("max_registers"))
    except Exception as exc:
        message = str(exc).strip().splitlines()
        result["error"] = f"{type(exc).__name__}: {' '.join(message[:3])}"
        return result
    result.update(figures)
    result["float_atomics"] = len(_FLOAT_ATOMIC.findall(ptx))
    result["occupancy"] = occupancy(figures["registers"], figures["shared"], launch.threads, cc)
    return result


def toolchain() -> tuple[str | None, list[tuple[int, int]], str]:
    """ptxas's path, the ARCHS this NVVM compiles for, and why something is missing ('' if not)."""
    from numba import cuda, types

    ptxas = ptxas_path()
    if ptxas is None:
        return None, [], "ptxas not found: pip install -e '.[cuda]' brings it (the nvcc wheel)"

    def probe(out: Any) -> None:
        out[0] = 0

    archs, failures = [], {}
    for cc in ARCHS:
        try:
            cuda.compile_ptx(probe, (types.float32[::1],), cc=cc)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            failures.setdefault(f"{type(exc).__name__}: {first}", []).append(f"sm_{cc[0]}{cc[1]}")
        else:
            archs.append(cc)
    missing = "; ".join(f"{', '.join(where)}: {why}" for why, where in failures.items())
    return ptxas, archs, missing


def gpu_backends(module: str | None) -> list[impls.Backend]:
    """Every GPU backend in ``impls``, or the one Backend subclass ``module`` defines."""
    if module is None:
        found = [impls.get_backend(name) for name in impls.backend_names()]
        return [b for b in found if b.device == "gpu"]
    loaded = importlib.import_module(module)
    return [
        cls()
        for _, cls in inspect.getmembers(loaded, inspect.isclass)
        if issubclass(cls, impls.Backend) and cls.__module__ == loaded.__name__
    ]


def check(module: str | None = None) -> dict[str, Any]:
    """Record, compile and assemble every GPU backend's kernels; a JSON-ready summary."""
    ptxas, archs, missing = toolchain()
    summary: dict[str, Any] = {
        "toolchain": {
            "ptxas": ptxas,
            "archs": [f"sm_{a}{b}" for a, b in archs],
            "missing": missing,
        },
        "backends": {},
        "kernels": [],
    }
    distinct: dict[tuple[Any, ...], Launch] = {}
    for backend in gpu_backends(module):
        entry: dict[str, Any] = {"launches": 0, "skipped": "", "error": "", "never_launched": []}
        summary["backends"][backend.name] = entry
        # record for each architecture: a backend may choose kernels by the GPU it runs on
        launched = set()
        for cc in ARCHS:
            try:
                launches = record(backend, cc)
            except LookupError as exc:
                entry["skipped"] = f"unavailable: {exc}"
                break
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                break
            entry["launches"] += len(launches)
            launched |= {launch.kernel.py_func.__name__ for launch in launches}
            for launch in launches:
                key = (cc, id(launch.kernel), launch.argtypes, launch.threads)
                distinct.setdefault(key, launch)
        else:
            entry["never_launched"] = [
                name for name in module_kernels(backend) if name not in launched
            ]
    if ptxas is None:
        return summary
    for (cc, *_), launch in distinct.items():
        if cc in archs:
            summary["kernels"].append(compile_launch(launch, cc, ptxas))
    return summary


def table(summary: dict[str, Any]) -> str:
    """A markdown table of the figures, one row per kernel, argument types and architecture."""
    lines = [
        "| kernel | dtype | threads | arch | registers | shared | local | occupancy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["kernels"]:
        dtype = "float64" if "float64" in row["argtypes"] else "float32"
        if "error" in row:
            lines.append(
                f"| {row['kernel']} | {dtype} | {row['threads']} | {row['arch']} | "
                f"error: {row['error'][:80]} | | | |"
            )
            continue
        local = row["stack"] + row["spill_stores"] + row["spill_loads"]
        lines.append(
            f"| {row['kernel']} | {dtype} | {row['threads']} | {row['arch']} | "
            f"{row['registers']} | {row['shared']} B | {local} B | {row['occupancy']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.gpu_compile", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--backend-module", help="check the Backend subclass of this module instead of impls/"
    )
    args = parser.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        parser.exit(2, "python -m tests.gpu_compile: error: unset NUMBA_ENABLE_CUDASIM\n")
    summary = check(args.backend_module)
    if args.json:
        json.dump(summary, sys.stdout, indent=1, default=str)
    else:
        print(json.dumps({k: v for k, v in summary.items() if k != "kernels"}, indent=1))
        print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

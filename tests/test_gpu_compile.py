"""Every kernel the GPU backends launch compiles for real GPUs: no local memory, no float atomics.

The simulator these tests otherwise run on accepts code the real compiler rejects, so
``tests/gpu_compile.py`` records each GPU backend's launches and compiles them with NVVM and
ptxas for sm_70, sm_80 and sm_90, in a process of its own with the simulator off. Without
the compiler (the ``cuda`` extra) these tests skip, unless IM2COL_BENCH_REQUIRE_GPU_COMPILER
is set (as CI does), where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import impls
from impls import numba_cuda
from tests.gpu_compile import ARCHS

ROOT = Path(__file__).parent.parent
REQUIRE = "IM2COL_BENCH_REQUIRE_GPU_COMPILER"
ARCH_IDS = [f"sm_{major}{minor}" for major, minor in ARCHS]


def run_check(*args: str) -> dict[str, Any]:
    """``python -m tests.gpu_compile --json``'s summary, run with the simulator off."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "tests.gpu_compile", "--json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def need_compiler(summary: dict[str, Any], arch: str | None = None) -> None:
    """Skip (or fail, where CI requires the compiler) when it cannot compile for ``arch``."""
    toolchain = summary["toolchain"]
    if toolchain["ptxas"] and (arch in toolchain["archs"] if arch else toolchain["archs"]):
        return
    reason = toolchain["missing"] or f"this NVVM does not compile for {arch}"
    if os.environ.get(REQUIRE):
        pytest.fail(f"{REQUIRE} is set, but the GPU compiler is missing: {reason}")
    pytest.skip(f"no GPU compiler ({reason}); pip install -e '.[cuda]' brings it")


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    found = run_check()
    need_compiler(found)
    return found


def rows_for(summary: dict[str, Any], arch: str) -> list[dict[str, Any]]:
    need_compiler(summary, arch)
    rows = [row for row in summary["kernels"] if row["arch"] == arch]
    assert rows, f"no kernel was recorded for {arch}"
    return rows


def describe(row: dict[str, Any]) -> str:
    return f"{row['backend']}: {row['kernel']}({row['argtypes']}) on {row['arch']}"


def test_every_gpu_backend_is_recorded(summary: dict[str, Any]) -> None:
    gpu_names = [n for n in impls.backend_names() if impls.get_backend(n).device == "gpu"]
    assert sorted(summary["backends"]) == sorted(gpu_names)
    for name, entry in summary["backends"].items():
        assert not entry["error"], f"recording {name}'s launches failed: {entry['error']}"
        assert entry["launches"] or entry["skipped"], f"{name} launched no kernel"
    assert summary["backends"]["numba_cuda"]["launches"], "numba_cuda was not recorded"


def test_every_module_kernel_is_launched(summary: dict[str, Any]) -> None:
    """A kernel no recording case reaches would escape the compile check."""
    for name, entry in summary["backends"].items():
        assert not entry["never_launched"], f"{name} never launched {entry['never_launched']}"


@pytest.mark.parametrize("arch", ARCH_IDS)
def test_every_kernel_compiles(summary: dict[str, Any], arch: str) -> None:
    failed = [f"{describe(r)}: {r['error']}" for r in rows_for(summary, arch) if "error" in r]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("arch", ARCH_IDS)
def test_no_kernel_uses_local_memory(summary: dict[str, Any], arch: str) -> None:
    spilled = [
        f"{describe(r)}: {r['stack']} B stack, {r['spill_stores']} B spill stores"
        for r in rows_for(summary, arch)
        if "error" not in r and (r["stack"] or r["spill_stores"] or r["spill_loads"])
    ]
    assert not spilled, "\n".join(spilled)


@pytest.mark.parametrize("arch", ARCH_IDS)
def test_no_kernel_sums_with_float_atomics(summary: dict[str, Any], arch: str) -> None:
    """Atomic sums depend on which block finishes first: two calls could differ in the bits."""
    racy = [describe(r) for r in rows_for(summary, arch) if r.get("float_atomics")]
    assert not racy, "\n".join(racy)


def test_check_catches_each_fault() -> None:
    """The check can fail: a planted backend breaks each rule, and each break is reported."""
    found = run_check("--backend-module", "tests.fixtures.faulty_gpu_kernels")
    need_compiler(found)
    for arch in found["toolchain"]["archs"]:
        rows = {r["kernel"]: r for r in found["kernels"] if r["arch"] == arch}
        assert "shared.array" in rows["shape_not_constant"]["error"], arch
        assert rows["dynamic_local_array"]["stack"] > 0, arch
        assert rows["spills_registers"]["spill_stores"] > 0, arch
        assert rows["float_atomic"]["float_atomics"] > 0, arch


def test_numba_cuda_says_when_the_toolkit_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver without NVVM/nvrtc: unavailable with the reason, not an error at first launch."""

    class Device:
        compute_capability = (9, 0)

    def no_nvrtc(*args: Any, **kwargs: Any) -> None:
        raise OSError('Failure finding "libnvrtc.so.13 or libnvrtc.so.12"')

    cuda = numba_cuda.cuda
    monkeypatch.setattr(numba_cuda, "SIMULATED", False)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "get_current_device", Device)
    monkeypatch.setattr(cuda, "compile_ptx", no_nvrtc, raising=False)
    numba_cuda._toolkit_missing.cache_clear()
    try:
        ok, reason = impls.get_backend("numba_cuda").available()
    finally:
        numba_cuda._toolkit_missing.cache_clear()
    assert not ok
    assert "libnvrtc" in reason
    assert ".[cuda]" in reason


def test_kernels_compile_under_a_numpy_without_row_stack(summary: dict[str, Any]) -> None:
    """numpy 2.5 removed np.row_stack, which numba-cuda 0.30 overloads at its first compile."""
    script = (
        "import numpy as np\n"
        "if hasattr(np, 'row_stack'):\n"
        "    del np.row_stack\n"
        "from numba import types\n"
        "from impls import numba_cuda\n"
        "def probe(out):\n"
        "    out[0] = 0\n"
        "numba_cuda.cuda.compile_ptx(probe, (types.float32[::1],), cc=(9, 0))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]

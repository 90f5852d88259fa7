"""The machine's own limits at the run's thread count: compute peaks and memory bandwidth.

Compute: a square matrix product through numpy's BLAS, and a loop of fused multiply-adds on
independent register accumulators (a numba kernel, one job per thread on the backends' own
workers); the higher of the two, per dtype, is the run's peak. Bandwidth: the STREAM triad
a = b + s * c on arrays far beyond the last-level cache, counted as STREAM counts it.
Reference: McCalpin, "Memory Bandwidth and Machine Balance in Current High Performance
Computers" (1995); Williams, Waterman & Patterson, "Roofline" (CACM 2009).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from impls._parallel import run_jobs
from impls._tiles import ROWS, VECTORS, kernel, lanes, register_tile, tile_lanes

#: the dtypes a run measures peaks for
DTYPES = ("float32", "float64")
#: side of the square matrix product per dtype: about 0.08 s a call at 2 AVX-512 cores
MATMUL_SIZES = {"float32": 2048, "float64": 1536}
#: timed calls of each measurement; the best one counts (the least disturbed)
REPEATS = 3
#: seconds each FMA loop call aims at
FMA_SECONDS = 0.05
#: float64 items of each triad array: 32 MiB each, 96 MiB in all, beyond any LLC here
TRIAD_ITEMS = 1 << 22
TRIAD_REPEATS = 8
#: what a quick measurement changes (the smoke preset's): smaller products, shorter loops;
#: the triad keeps its size, which must stay beyond the caches
QUICK: dict[str, Any] = {"matmul_sizes": {"float32": 512, "float64": 384}, "fma_seconds": 0.005}


def best_seconds(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    """The fastest of ``repeats`` timed calls, after one untimed call."""
    call()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_gflops(dtype: str, n: int, repeats: int = REPEATS) -> float:
    """GFLOP/s of an (n, n) @ (n, n) product of ``dtype`` through numpy's BLAS (2 n^3 FLOPs)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    return 2 * n**3 / best_seconds(lambda: np.matmul(a, b, out=out), repeats) / 1e9


@kernel
def _fma_loop(seed, iterations):  # type: ignore[no-untyped-def]
    """acc = acc * seed[0] + seed[1] on a (ROWS, lanes) register tile, ``iterations`` times.

    Each of the ROWS * VECTORS vectors is its own dependency chain, enough to keep every FMA
    unit busy through its latency; |seed[0]| < 1 keeps the values bounded. Returns their sum,
    so the loop cannot be left out.
    """
    nr = lanes(seed, VECTORS)
    acc = numba.carray(register_tile(seed, ROWS, VECTORS), (ROWS, nr))
    scale, shift = seed[0], seed[1]
    for i in range(ROWS):
        for j in range(nr):
            acc[i, j] = seed[j]
    # the rows spelled out, as in impls._tiles.madd_rows: LLVM unrolls the loop over j and
    # keeps every index constant, so the tile stays in registers
    for _ in range(iterations):
        for j in range(nr):
            acc[0, j] = acc[0, j] * scale + shift
            acc[1, j] = acc[1, j] * scale + shift
            acc[2, j] = acc[2, j] * scale + shift
            acc[3, j] = acc[3, j] * scale + shift
            acc[4, j] = acc[4, j] * scale + shift
            acc[5, j] = acc[5, j] * scale + shift
    total = 0.0
    for i in range(ROWS):
        for j in range(nr):
            total += acc[i, j]
    return total


def fma_gflops(
    dtype: str, threads: int, seconds: float = FMA_SECONDS, repeats: int = REPEATS
) -> float:
    """GFLOP/s of the FMA loop on ``threads`` jobs at once (2 FLOPs per multiply-add)."""
    seed = np.linspace(0.5, 0.9, tile_lanes(dtype, VECTORS)).astype(dtype)
    per_iteration = 2 * ROWS * tile_lanes(dtype, VECTORS)
    _fma_loop(seed, 1)  # compile (or load from numba's cache)
    probe = 1 << 16
    iterations = max(probe, int(probe * seconds / best_seconds(lambda: _fma_loop(seed, probe), 1)))

    def loops() -> None:
        run_jobs([lambda: _fma_loop(seed, iterations)] * threads, blas=False)

    return threads * iterations * per_iteration / best_seconds(loops, repeats) / 1e9


@kernel
def _triad(a, b, c, scale, start, stop):  # type: ignore[no-untyped-def]
    """a[start:stop] = b[start:stop] + scale * c[start:stop]."""
    for i in range(start, stop):
        a[i] = b[i] + scale * c[i]


def triad_gbs(threads: int, items: int = TRIAD_ITEMS, repeats: int = TRIAD_REPEATS) -> float:
    """GB/s of the STREAM triad on float64 arrays of ``items``, split over ``threads`` jobs.

    Bytes per pass are STREAM's: 3 arrays of 8-byte items (b and c read, a written); the
    write-allocate read of a, which the hardware also does, is not counted.
    """
    a = np.zeros(items)
    b = np.full(items, 1.0)
    c = np.full(items, 2.0)
    bounds = [items * k // threads for k in range(threads + 1)]
    jobs = [
        lambda start=start, stop=stop: _triad(a, b, c, 3.0, start, stop)
        for start, stop in itertools.pairwise(bounds)
    ]
    seconds = best_seconds(lambda: run_jobs(jobs, blas=False), repeats)
    return 3 * 8 * items / seconds / 1e9


def measure(
    threads: int,
    *,
    matmul_sizes: dict[str, int] | None = None,
    fma_seconds: float = FMA_SECONDS,
    triad_items: int = TRIAD_ITEMS,
) -> dict[str, Any]:
    """Every limit, for the run's JSON; BLAS, numba and torch must already be at ``threads``.

    Returns ``{"float32": {...}, "float64": {...}, "bandwidth_gbs": ..., ...}``; each dtype's
    entry has ``matmul_gflops``, ``fma_gflops``, and ``peak_gflops`` from ``peak_source``, the
    higher of the two.
    """
    sizes = {**MATMUL_SIZES, **(matmul_sizes or {})}
    started = time.perf_counter()
    result: dict[str, Any] = {"threads": threads}
    for dtype in DTYPES:
        rates = {
            "matmul": matmul_gflops(dtype, sizes[dtype]),
            "fma": fma_gflops(dtype, threads, fma_seconds),
        }
        source = max(rates, key=lambda name: rates[name])
        result[dtype] = {
            "matmul_gflops": rates["matmul"],
            "matmul_size": sizes[dtype],
            "fma_gflops": rates["fma"],
            "peak_gflops": rates[source],
            "peak_source": source,
        }
    result["bandwidth_gbs"] = triad_gbs(threads, triad_items)
    result["method"] = {
        "matmul": f"numpy matmul of two square matrices, best of {REPEATS}",
        "fma": (
            f"numba loop of fused multiply-adds on {ROWS * VECTORS} independent vector "
            f"accumulators, one job per thread, best of {REPEATS}"
        ),
        "bandwidth": (
            f"STREAM triad a = b + s * c, float64, 3 arrays of {triad_items * 8 / 2**20:g} MiB, "
            f"{threads} jobs, best of {TRIAD_REPEATS}; 24 bytes counted per item (b, c read, "
            "a written; not the write-allocate read of a)"
        ),
    }
    result["seconds"] = time.perf_counter() - started
    return result

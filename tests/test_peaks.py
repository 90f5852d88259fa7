"""The machine's limits measured in every run: what is measured, how, and which is the peak."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import peaks
from impls._tiles import ROWS, VECTORS, tile_lanes


@pytest.fixture(scope="module")
def measured() -> dict:
    """Every limit at tiny sizes: a few milliseconds, not a measurement worth keeping."""
    return peaks.measure(
        1, matmul_sizes={"float32": 64, "float64": 48}, fma_seconds=0.001, triad_items=1 << 12
    )


@pytest.mark.parametrize("dtype", peaks.DTYPES)
def test_each_dtype_has_a_matmul_and_an_fma_rate_and_the_higher_is_the_peak(
    measured: dict, dtype: str
) -> None:
    entry = measured[dtype]
    rates = {"matmul": entry["matmul_gflops"], "fma": entry["fma_gflops"]}
    assert all(math.isfinite(r) and r > 0 for r in rates.values())
    assert entry["peak_source"] == max(rates, key=lambda name: rates[name])
    assert entry["peak_gflops"] == max(rates.values())


def test_bandwidth_and_the_methods_are_recorded(measured: dict) -> None:
    assert math.isfinite(measured["bandwidth_gbs"])
    assert measured["bandwidth_gbs"] > 0
    assert measured["threads"] == 1
    assert "24 bytes counted per item" in measured["method"]["bandwidth"]
    assert set(measured["method"]) == {"matmul", "fma", "bandwidth"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fma_loop_does_the_multiply_adds_it_is_credited_with(dtype: type) -> None:
    seed = np.linspace(0.5, 0.9, tile_lanes(dtype, VECTORS)).astype(dtype)
    acc = np.tile(seed, (ROWS, 1)).astype(np.float64)
    for _ in range(7):
        acc = acc * seed[0] + seed[1]
    assert peaks._fma_loop(seed, 7) == pytest.approx(acc.sum(), rel=1e-5)


def test_the_triad_writes_b_plus_s_times_c_in_its_range_only() -> None:
    a, b, c = np.zeros(10), np.arange(10.0), np.full(10, 2.0)
    peaks._triad(a, b, c, 3.0, 2, 7)
    np.testing.assert_array_equal(a, [0, 0, 8, 9, 10, 11, 12, 0, 0, 0])

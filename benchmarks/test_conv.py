"""The benchmarks; ``benchmarks/plugin.py`` parametrizes them with the preset's matrix."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Harness
from benchmarks.matrix import BlasCase, Case


def test_backend_pass_on_config(benchmark: Any, harness: Harness, case: Case) -> None:
    harness.time_case(benchmark, case)


def test_blas_limit_on_config(benchmark: Any, harness: Harness, blas_case: BlasCase) -> None:
    harness.time_blas(benchmark, blas_case)

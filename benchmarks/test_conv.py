"""The benchmarks; benchmarks/plugin.py parametrizes them with the matrix and the trials."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import Harness
from benchmarks.matrix import BlasCase, Case


def test_backend_pass_on_config(benchmark: Any, harness: Harness, case: Case, trial: int) -> None:
    harness.visit(benchmark, case, trial)


def test_blas_limit_on_config(
    benchmark: Any, harness: Harness, blas_case: BlasCase, trial: int
) -> None:
    harness.visit(benchmark, blas_case, trial)

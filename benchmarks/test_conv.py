"""Benchmarks; the matrix of cases comes from ``conftest.py`` and ``benchmarks/harness.py``."""

from __future__ import annotations

from benchmarks.harness import Case, Conv, Harness


def test_backend_pass_on_config(benchmark, harness: Harness, case: Case) -> None:
    harness.time_case(benchmark, case)


def test_blas_limit_on_config(benchmark, harness: Harness, limit_conv: Conv) -> None:
    harness.time_blas_limit(benchmark, limit_conv)

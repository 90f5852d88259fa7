"""Worker threads for the backends that split a call into jobs: one per BLAS thread."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from threadpoolctl import ThreadpoolController


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@cache
def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(size, thread_name_prefix="impls-worker")


def worker_count() -> int:
    """As many workers as BLAS has threads, so the harness's thread limit still holds."""
    infos = _blas().select(user_api="blas").info()
    return max(1, min(info["num_threads"] for info in infos)) if infos else 1


def run_jobs(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs on at most ``worker_count()`` threads, each with single-threaded BLAS.

    The BLAS limit is process-wide while the jobs run, so nothing else should call BLAS
    from another thread meanwhile.
    """
    size = min(len(jobs), worker_count())
    if size == 1:
        return [job() for job in jobs]
    with _blas().limit(limits=1, user_api="blas"):
        return [future.result() for future in [_pool(size).submit(job) for job in jobs]]

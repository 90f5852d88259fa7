"""Backends called from several threads at once: right answers, thread settings left as found."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from impls import _parallel
from impls._parallel import SharedSetting, run_jobs, worker_count
from tests.support import (
    Case,
    assert_close,
    declines,
    make_inputs,
    run_backend,
    usable_backend,
)

ROOT = Path(__file__).resolve().parents[1]
THREADS = 4
#: large enough that tiled_im2col, winograd and numba_direct split every call over workers
CASE = Case("threads", (2, 36, 36, 8), (3, 3, 8, 8), padding="SAME")
SIMULATOR = "numba's CUDA simulator runs one kernel launch at a time; a real GPU runs this test"


@pytest.fixture
def blas_threads() -> int:
    """BLAS's thread count, with no thread in control of it, as in a fresh process.

    threadpoolctl (3.8 here) lets one thread at a time change OpenBLAS's process-wide count, and
    the harness's limit gives that control to the main thread; entering and leaving a limit
    gives it up again, so that the threads the tests start can take it.
    """
    with threadpool_limits(limits=None):
        pass
    return worker_count()


def thread_settings() -> dict[str, Any]:
    """Every thread setting a backend could change: BLAS and OpenMP pools, workers, numba, torch."""
    # numba's first, as it loads numba's threading layer (an OpenMP pool, say)
    settings: dict[str, Any] = {"numba": numba.get_num_threads(), "worker_count": worker_count()}
    settings.update((info["filepath"], info["num_threads"]) for info in threadpool_info())
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        cudnn = torch.backends.cudnn
        settings["torch"] = torch.get_num_threads()
        settings["cudnn"] = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic)
    return settings


def check_concurrent_calls(backend_name: str) -> str:
    """Call the backend from THREADS threads at once; "ok", or the reason it cannot run here.

    Raises AssertionError on a wrong result or a thread setting left changed. Also run in a
    child process, under another numba threading layer.
    """
    backend = usable_backend(backend_name)
    if backend.simulated():
        return SIMULATOR
    if reason := declines(backend, CASE, np.float32):
        return f"{backend_name} declines {CASE.id}: {reason}"
    x, w, b = make_inputs(CASE, np.float32)
    # one call first: it compiles, and loads every library the backend uses
    expected = run_backend(backend, x, w, b, dy_seed=1, **CASE.kwargs)
    before = thread_settings()
    start = threading.Barrier(THREADS)
    results: list[tuple[np.ndarray, ...]] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            start.wait()
            for _ in range(10):
                results.append(run_backend(backend, x, w, b, dy_seed=1, **CASE.kwargs))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert thread_settings() == before
    for result in results:
        for name, got, want in zip(("y", "dx", "dw", "db"), result, expected, strict=True):
            assert_close(got, want, np.float32, f"{backend_name} {name} from {THREADS} threads")
    return "ok"


def test_concurrent_calls_are_right_and_leave_thread_settings_alone(
    backend_name: str, blas_threads: int
) -> None:
    if (outcome := check_concurrent_calls(backend_name)) != "ok":
        pytest.skip(outcome)


def test_concurrent_calls_never_abort_under_numba_workqueue(backend_name: str) -> None:
    """workqueue, numba's fallback layer without TBB or OpenMP, aborts on concurrent launches."""
    if usable_backend(backend_name).simulated():
        pytest.skip(SIMULATOR)
    script = (
        "import numba\n"
        "from tests.test_threads import check_concurrent_calls\n"
        f"print(check_concurrent_calls({backend_name!r}))\n"
        "print(numba.config.THREADING_LAYER)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "NUMBA_THREADING_LAYER": "workqueue"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outcome, layer = result.stdout.splitlines()[-2:]
    assert layer == "workqueue"
    if outcome != "ok":
        pytest.skip(outcome)


def test_workers_stay_available_while_another_call_runs(blas_threads: int) -> None:
    if blas_threads < 2:
        pytest.skip("BLAS runs one thread here, so calls never split into jobs")
    inside, release = threading.Event(), threading.Event()

    def blocking_job() -> None:
        inside.set()
        release.wait(30)

    other_call = threading.Thread(target=run_jobs, args=([blocking_job, lambda: None],))
    other_call.start()
    try:
        assert inside.wait(30)
        during = worker_count()
    finally:
        release.set()
        other_call.join()
    assert during == blas_threads
    assert worker_count() == blas_threads


def test_overlapping_calls_restore_blas_whichever_ends_first(
    blas_threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if blas_threads < 2:
        pytest.skip("BLAS runs one thread here, so calls never split into jobs")
    before = thread_settings()
    # the second call counts its workers as if just before the first one limited BLAS: the
    # overlap that a busy process hits by chance
    monkeypatch.setattr(_parallel, "worker_count", lambda: blas_threads)
    inside = [threading.Event(), threading.Event()]
    release = [threading.Event(), threading.Event()]

    def blocking_job(k: int) -> None:
        inside[k].set()
        release[k].wait(30)

    calls = [
        threading.Thread(target=run_jobs, args=([partial(blocking_job, k), lambda: None],))
        for k in range(2)
    ]
    try:
        for k, call in enumerate(calls):
            call.start()
            assert inside[k].wait(30)
    finally:
        # the first call in ends first: not the order in which with-statements nest
        for k, call in enumerate(calls):
            release[k].set()
            call.join()
    assert thread_settings() == before


def overlapping(enter: Any, calls: int = 2) -> None:
    """``calls`` threads enter ``enter()`` one after another, then leave in the same order."""
    inside = [threading.Event() for _ in range(calls)]
    release = [threading.Event() for _ in range(calls)]

    def call(k: int) -> None:
        with enter():
            inside[k].set()
            release[k].wait(30)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(calls)]
    try:
        for k, thread in enumerate(threads):
            thread.start()
            assert inside[k].wait(30)
    finally:
        for k, thread in enumerate(threads):
            release[k].set()
            thread.join()


def test_a_shared_setting_is_on_from_the_first_call_in_to_the_last_out() -> None:
    events: list[str] = []

    @contextmanager
    def setting() -> Iterator[None]:
        events.append("on")
        yield
        events.append("off")

    shared = SharedSetting(setting)
    overlapping(shared, calls=3)
    assert events == ["on", "off"]


def test_cudnn_flags_are_restored_after_overlapping_calls() -> None:
    """torch_cudnn's flags are process-wide; this runs without a GPU too."""
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e .[peers])")
    from impls.torch_cudnn import cudnn_settings

    cudnn = torch.backends.cudnn
    before = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic)
    overlapping(SharedSetting(cudnn_settings))
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == before

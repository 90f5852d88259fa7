"""Parallel work safe to start from any thread: worker jobs on single-threaded BLAS, numba launches.

Backends may be called from several threads at once, and process-wide state makes that
delicate: OpenBLAS's thread count (a threadpoolctl limit saves the value it replaces, so two
overlapping limits that end out of order leave BLAS at one thread for good), numba's
``workqueue`` threading layer (two concurrent parallel launches abort the process), and any
other setting a backend applies around its calls (``SharedSetting``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from functools import cache, partial, wraps
from typing import Any, TypeVar

import numba
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

T = TypeVar("T")

#: numba threading layers that take parallel launches from several threads at once; the third,
#: workqueue (numba's fallback where neither TBB nor OpenMP is found), aborts the process instead
THREADSAFE_LAYERS = frozenset({"tbb", "omp"})


@cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@cache
def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(size, thread_name_prefix="impls-worker")


@cache
def _blas_libraries() -> tuple[Any, ...]:
    return tuple(_blas().select(user_api="blas").lib_controllers)


def _blas_threads() -> int:
    # each library's own getter (a C call), not info(), which builds a dict per library: a
    # few microseconds that every call of a small layer paid several times
    counts = [lib.get_num_threads() for lib in _blas_libraries()]
    return max(1, min(counts)) if counts else 1


class _SerialBlas:
    """One "BLAS runs single-threaded" limit shared by all callers whose jobs overlap.

    The first caller in sets the limit and restores what it found when its own jobs end, in
    its own thread (recent threadpoolctl, 3.8 here, lets only one thread at a time change
    OpenBLAS's process-wide count). Callers that come in meanwhile ride along and never touch
    it, so no caller can restore a value another one set.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._found = 1

    def threads(self) -> int:
        """BLAS threads as set outside our jobs, even while some caller's jobs run."""
        with self._lock:
            return self._found if self._held else _blas_threads()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            first = not self._held
            if first:
                self._held = True
                self._found = _blas_threads()
        if not first:
            # BLAS is at one thread until the first caller's jobs end, then back as found:
            # slower for the rest of these jobs, never wrong
            yield
            return
        try:
            with _blas().limit(limits=1, user_api="blas"):
                yield
        finally:
            with self._lock:
                self._held = False


_SERIAL_BLAS = _SerialBlas()
_LAUNCH_LOCK = threading.Lock()


def worker_count() -> int:
    """As many workers as BLAS has threads, so the harness's thread limit still holds."""
    return _SERIAL_BLAS.threads()


#: multiply-adds below which a call's work stays on the calling thread: handing a job to a
#: worker costs tens of microseconds, more than the time a second core saves on less
MIN_MACS_PER_WORKER = 1 << 22
#: jobs per worker for a call that is split: the threads take them as they finish, so a core
#: that is slower (shared with another process, or dealt the costlier part of the layer)
#: does fewer of them instead of holding the whole call up
JOBS_PER_WORKER = 4


def split(total: int, macs: int) -> list[tuple[int, int]]:
    """``total`` work items as contiguous (start, stop) ranges, JOBS_PER_WORKER per worker.

    ``macs`` is the call's multiply-adds: a job gets at least MIN_MACS_PER_WORKER of them,
    and a call of less than two jobs' worth is one range, run on the calling thread.
    """
    jobs = min(worker_count() * JOBS_PER_WORKER, total, macs // MIN_MACS_PER_WORKER)
    jobs = 1 if jobs < 2 or worker_count() < 2 else jobs
    bounds = [total * k // jobs for k in range(jobs + 1)]
    return list(itertools.pairwise(bounds))


def splits_past_workers(total: int, macs: int) -> bool:
    """Whether ``split(total, macs)`` gives some worker of two or more a second job."""
    return len(split(total, macs)) > worker_count() >= 2


class PartialSums:
    """Zeroed buffers of one shape, one per thread whose jobs add into one, and their sum.

    A reduction split over jobs (dw, summed over pixels): each job adds its range's share into
    the buffer of the thread that runs it, made on that thread's first job. Jobs of one call
    that run on one thread never run at once, so they can add into one buffer; there are at
    most as many buffers as threads, however many jobs.
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self._shape, self._dtype = shape, dtype
        self._buffers: dict[int, NDArray[Any]] = {}

    def jobs(
        self, add: Callable[[NDArray[Any], int, int], None], total: int, macs: int
    ) -> list[Callable[[], None]]:
        """A job per range (start, stop) of ``split(total, macs)``, each calling
        ``add(buffer, start, stop)`` with the buffer of the thread that runs it."""
        return [partial(self._add, add, start, stop) for start, stop in split(total, macs)]

    def total(self, dtype: Any = None) -> NDArray[Any]:
        """The buffers summed (in ``dtype``, or theirs), once the jobs have run."""
        return np.sum(list(self._buffers.values()), axis=0, dtype=dtype)

    def _add(self, add: Callable[[NDArray[Any], int, int], None], start: int, stop: int) -> None:
        key = threading.get_ident()
        if key not in self._buffers:
            # only this thread adds this key
            self._buffers[key] = np.zeros(self._shape, dtype=self._dtype)
        add(self._buffers[key], start, stop)


def run_jobs(jobs: Sequence[Callable[[], Any]], *, blas: bool = True) -> list[Any]:
    """Run the jobs on at most ``worker_count()`` threads, the calling thread one of them.

    Each thread takes the next job not yet taken until none is left, so the calling thread
    works instead of waiting, and one job fewer is handed over (each hand-over costs about
    10-20 us, which shows in a small layer's call). With ``blas`` (for jobs that call BLAS),
    BLAS runs single-threaded while the jobs run; the limit is process-wide, so BLAS called
    meanwhile from another thread is single-threaded too (slower, never wrong), and the
    setting found is always restored. Jobs that never call BLAS (numba kernels) pass
    ``blas=False`` and skip setting it (another 15 us).
    """
    size = min(len(jobs), worker_count())
    if size == 1:
        return [job() for job in jobs]
    results: list[Any] = [None] * len(jobs)
    pending = iter(range(len(jobs)))
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                k = next(pending, None)
            if k is None:
                return
            results[k] = jobs[k]()

    with _SERIAL_BLAS.held() if blas else nullcontext():
        helpers = [_pool(size - 1).submit(drain) for _ in range(size - 1)]
        try:
            drain()
        finally:
            # every job has ended before this call returns or raises
            wait(helpers)
        for helper in helpers:
            helper.result()
    return results


def _layer_is_threadsafe() -> bool:
    try:
        return numba.threading_layer() in THREADSAFE_LAYERS
    except ValueError:  # no layer is chosen before the first parallel launch
        return False


def threadsafe_parallel(kernel: Callable[..., T]) -> Callable[..., T]:
    """``kernel`` (a numba ``parallel=True`` function), safe to call from several threads.

    Under a thread-safe layer (TBB, OpenMP) calls run side by side; under workqueue they take
    turns, which is slower but never aborts the process.
    """

    @wraps(kernel)
    def launch(*args: Any) -> T:
        if _layer_is_threadsafe():
            return kernel(*args)
        with _LAUNCH_LOCK:
            return kernel(*args)

    return launch


class SharedSetting:
    """A process-wide setting that overlapping calls share: on for the first, off after the last.

    ``make()`` returns a context manager that applies the setting and restores what it found
    (``torch.backends.cudnn.flags``, say); it is entered when the first call comes in and left
    when the last one goes, whatever their order, so that no call restores a value another
    one set, or loses the setting while it still runs.
    """

    def __init__(self, make: Callable[[], AbstractContextManager[Any]]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._users = 0
        self._stack = ExitStack()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._stack.enter_context(self._make())
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._stack.close()

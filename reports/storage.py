"""Where saved runs, their reports and the index live on disk, and how they are written.

Every write goes to a temporary file beside its target and is renamed into place, so a full
disk or a crash leaves the previous file whole. A new run never takes an existing run's name.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the index is rebuilt without a lock
    fcntl = None  # type: ignore[assignment]

#: the folder of a report directory that holds the runs' JSON and HTML
RUNS = "runs"
#: the page in a report directory that lists every saved run
INDEX = "index.html"


def _write_temp(directory: Path, name: str, text: str) -> Path:
    """``text`` in a new hidden file of ``directory``, flushed to disk."""
    while True:
        temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            # mode 0o666 less the umask, as for any file the user writes
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(temp)
        raise
    return temp


def write_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` in one step: readers see the old file or the new one."""
    path = Path(path)
    temp = _write_temp(path.parent, path.name, text)
    try:
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    return path


def write_new(directory: str | Path, stem: str, suffix: str, text: str) -> Path:
    """Write ``text`` to ``stem + suffix`` in ``directory``, or to ``stem-2``, ``stem-3``, ...

    The first name that no file has is taken in one step (a hard link of a finished
    temporary file), so two runs that finish in the same second both keep their file.
    """
    directory = Path(directory)
    temp = _write_temp(directory, stem + suffix, text)
    try:
        for number in itertools.count(1):
            path = directory / (f"{stem}{suffix}" if number == 1 else f"{stem}-{number}{suffix}")
            try:
                os.link(temp, path)
            except FileExistsError:
                continue
            return path
    finally:
        os.unlink(temp)
    raise AssertionError("unreachable")  # pragma: no cover


def check_writable(report_dir: str | Path) -> Path:
    """Create ``report_dir/runs`` and write a file there; OSError if either fails."""
    runs = Path(report_dir) / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    os.unlink(_write_temp(runs, "write-test", "im2col-bench write test\n"))
    return runs


@contextlib.contextmanager
def index_lock(report_dir: str | Path) -> Iterator[None]:
    """Hold the report directory's lock, so two runs never rebuild the index at once."""
    if fcntl is None:
        yield
        return
    with open(Path(report_dir) / ".index.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reported_runs(report_dir: str | Path) -> list[Path]:
    """Every run JSON in ``report_dir/runs`` that has its HTML report beside it, by name."""
    runs = Path(report_dir) / RUNS
    return sorted(p for p in runs.glob("*.json") if p.with_suffix(".html").is_file())

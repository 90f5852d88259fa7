"""Where saved runs, their reports and the index live on disk, and how they are written.

Every write to a regular file goes to a temporary file beside it and is renamed into place,
so a full disk or a crash leaves the previous file whole; a device or a pipe (``/dev/null``,
``/dev/stdout``) is written to directly and never replaced. A new run never takes an existing
run's name. Errors name the file asked for, never the temporary one.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import stat
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


def _naming(path: Path, exc: OSError) -> OSError:
    """``exc`` as an OSError of the same kind about ``path`` (not a temporary file)."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _under_dev_or_proc(path: Path) -> bool:
    """Whether ``path`` is named under /dev or /proc: ``/dev/stdout`` leads to whatever the
    shell opened, a regular file too, which must be written to, not replaced."""
    return os.path.abspath(path).startswith(("/dev/", "/proc/"))


def write_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` in one step: readers see the old file or the new one.

    A symbolic link is written through (its target is replaced, the link stays). A character
    device or a pipe (``/dev/null``, ``/dev/stdout``, a FIFO) is written to directly, never
    replaced; a directory, socket or block device is refused.

    Raises
    ------
    OSError
        Naming ``path``, when it cannot be written.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG  # a new file, or a link to one
    except OSError as exc:
        raise _naming(path, exc) from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or _under_dev_or_proc(path):
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise _naming(path, exc) from None
        return path
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file, a device or a pipe", str(path))
    target = Path(os.path.realpath(path))
    try:
        temp = _write_temp(target.parent, target.name, text)
    except OSError as exc:
        raise _naming(path, exc) from None
    try:
        os.replace(temp, target)
    except BaseException as exc:
        os.unlink(temp)
        if isinstance(exc, OSError):
            raise _naming(path, exc) from None
        raise
    return path


def write_new(directory: str | Path, stem: str, suffix: str, text: str) -> Path:
    """Write ``text`` to ``stem + suffix`` in ``directory``, or to ``stem-2``, ``stem-3``, ...

    The first name that no file has is taken in one step (a hard link of a finished
    temporary file), so two runs that finish in the same second both keep their file.
    """
    directory = Path(directory)
    try:
        temp = _write_temp(directory, stem + suffix, text)
    except OSError as exc:
        raise _naming(directory / f"{stem}{suffix}", exc) from None
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
    """Create ``report_dir/runs`` and write a file there; OSError if either fails.

    A report directory (or its ``runs``) that is a symbolic link to nothing is an OSError
    that says so (mkdir says "File exists").
    """
    runs = Path(report_dir) / RUNS
    for folder in (Path(report_dir), runs):
        if folder.is_symlink() and not folder.exists():
            raise FileNotFoundError(
                errno.ENOENT, f"a symbolic link to {os.readlink(folder)}, which does not exist"
            )
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

"""Each backend's true peak extra memory of a forward + backward, measured in a child process.

tracemalloc sees numpy's allocations only; numba's and torch's go around it. The process's
resident high-water mark sees them all, so a child process per backend builds a
configuration's inputs, resets the mark (``/proc/self/clear_refs``), runs one forward +
backward and reads it again: the growth, less the outputs y, dx, dw and db, is what the
backend needed beyond its inputs and outputs. One child measures a backend's configurations
from the smallest up, each after a warm-up step at batch 1 (JIT compilation, thread pools)
and one at its own size (a library's one-time buffers: the steady state is measured),
and with glibc's mmap threshold fixed, so the large buffers of one configuration go back to
the system before the next one is measured. The child writes its results to a file of their
own, so nothing a backend prints can corrupt them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .matrix import Case, Conv

if TYPE_CHECKING:
    from impls import Backend

#: Linux's per-process counters: the resident set now and its high-water mark, and the file
#: whose "5" resets the mark to the resident set now
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
#: allocations from this many bytes (a page) up are mapped and unmapped on their own (glibc), so
#: a freed buffer leaves the resident set instead of staying in the heap, where the measured
#: step would reuse it unseen (at 128 KiB, tiled_im2col's blocks at 32 px read 0.88 MiB of
#: its 2.2 MiB formula; at a page, 1.87 MiB)
MMAP_THRESHOLD = 1 << 12
#: mallopt's parameter number for it
M_MMAP_THRESHOLD = -3
METHOD = (
    "resident high-water mark growth over one forward + backward in a child process, after "
    "one at the same size, less the outputs y, dx, dw, db"
)


def supported() -> tuple[bool, str]:
    """Whether this system can reset and read a process's high-water mark, and if not, why."""
    if not STATUS.exists() or not CLEAR_REFS.exists():
        return False, "needs Linux's /proc/self/status and /proc/self/clear_refs"
    return True, ""


def resident() -> tuple[int, int]:
    """Bytes resident now and at the high-water mark since the last reset (VmRSS, VmHWM)."""
    fields = {}
    for line in STATUS.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def _libc_call(name: str, *args: int) -> None:
    """Call glibc's ``name`` where there is one (a no-op on other C libraries)."""
    path = ctypes.util.find_library("c")
    function = getattr(ctypes.CDLL(path), name, None) if path else None
    if function is not None:
        function(*args)


def reset_high_water() -> int:
    """Hand freed heap memory back, reset the high-water mark; the bytes resident now."""
    _libc_call("malloc_trim", 0)
    CLEAR_REFS.write_text("5")
    return resident()[0]


def output_bytes(conv: Conv) -> int:
    """Bytes of y, dx, dw and db: what any backend must allocate for a forward + backward."""
    geom = conv.geometry()
    items = sum(math.prod(shape) for shape in (geom.y_shape, geom.x_shape, geom.w_shape))
    return (items + geom.c_out) * conv.itemsize


def measure_in_process(
    backend: Backend, convs: Iterable[Conv], threads: int
) -> Iterator[dict[str, Any]]:
    """In this process (the child): one result per configuration, smallest first.

    Each result: ``conv`` (its id), ``peak_extra_bytes``, ``resident_before``,
    ``high_water`` and ``outputs_bytes``.
    """
    from .machine import apply_threads
    from .timing import make_target

    apply_threads(threads)
    _libc_call("mallopt", M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    for conv in sorted(convs, key=lambda c: (c.pixels, c.geometry().flops_forward)):
        warm, _ = make_target(backend, Case(backend.name, "step", replace(conv, n=1)))
        warm()
        del warm
        step, _ = make_target(backend, Case(backend.name, "step", conv))
        # one untimed step at the full size first: a library's one-time buffers (measured: the
        # seeds' first call at 32 px grew by 26 MiB, every later one by 18, twice the column
        # matrix) are not the step's working memory, as its timing leaves them out too
        step()
        before = reset_high_water()
        step()
        high = resident()[1]
        del step
        outputs = output_bytes(conv)
        yield {
            "conv": conv.id,
            "peak_extra_bytes": max(high - before - outputs, 0),
            "resident_before": before,
            "high_water": high,
            "outputs_bytes": outputs,
        }


def measure(
    backend: Backend, convs: list[Conv], threads: int, timeout_s: float = 600.0
) -> dict[str, dict[str, Any]]:
    """Each configuration's measurement, by its id, from a child process for ``backend``.

    The child imports the module that defines the backend's class first, so a backend that a
    plugin adds to ``impls`` is found there too. A configuration the child could not measure
    (it failed, ran out of time or memory, was killed) maps to ``{"memory_error": why}``; the
    ones measured before it keep their numbers.
    """
    ok, why = supported()
    if not ok:
        return {conv.id: {"memory_error": why} for conv in convs}
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    fd, results_path = tempfile.mkstemp(prefix="im2col-bench-memory-", suffix=".jsonl")
    os.close(fd)
    spec = {
        "backend": backend.name,
        "module": type(backend).__module__,
        "threads": threads,
        "convs": [asdict(c) for c in convs],
        "results": results_path,
    }
    try:
        failure = _run_child(spec, env, root, timeout_s)
        results = _read_results(Path(results_path), {c.id for c in convs})
    finally:
        os.unlink(results_path)
    failure = failure or "the child process ended without its result"
    results.update({c.id: {"memory_error": failure} for c in convs if c.id not in results})
    return results


def _run_child(spec: dict[str, Any], env: dict[str, str], root: str, timeout_s: float) -> str:
    """Run the child on ``spec``; why it failed, or "" when it exited cleanly.

    Its output is never read as results: what a backend prints goes nowhere, and the last
    line of its error output says why it failed.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__],
            input=json.dumps(spec),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            cwd=root,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return f"child process ran over {timeout_s:g} s"
    except OSError as exc:
        return f"child process could not start: {exc}"
    if not done.returncode:
        return ""
    code = done.returncode
    failure = f"child process exited with {code}"
    if code < 0:
        failure = f"child process killed by signal {-code}"
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return f"{failure}{': ' + last[:300] if last else ''}"


def _read_results(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The child's results, by configuration id: each whole line that is one of ``wanted``'s
    results (a line cut short by a killed child is left out)."""
    results = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("conv") in wanted:
            results[row.pop("conv")] = {**row, "memory_method": METHOD}
    return results


def main() -> None:
    """The child: read the spec on stdin, append a JSON line per configuration as measured
    to the spec's results file."""
    import impls

    spec = json.load(sys.stdin)
    importlib.import_module(spec["module"])
    convs = [Conv(**fields) for fields in spec["convs"]]
    backend = impls.get_backend(spec["backend"])
    with open(spec["results"], "a", encoding="utf-8") as results:
        for row in measure_in_process(backend, convs, spec["threads"]):
            results.write(json.dumps(row) + "\n")
            results.flush()


if __name__ == "__main__":
    main()

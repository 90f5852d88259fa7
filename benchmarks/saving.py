"""Saving a run: the memory children, the JSON (whole even under Ctrl-C), its report, the index."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import duet, runjson
from .matrix import Case

if TYPE_CHECKING:
    from .harness import Harness

#: seconds a memory child may take beyond its backend's step calls (imports, JIT caches)
MEMORY_CHILD_S = 120.0


class CtrlC:
    """Ctrl-C in a benchmark run: the first press stops the run, as usual; a press after it,
    or while the run is being saved, is held until the run's JSON is whole, then delivered.
    A SIGTERM (a CI job's timeout, ``kill``) counts as a press: the run is saved, interrupted.
    """

    #: the signals that stop a run as Ctrl-C does
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.presses = 0
        self.held = 0
        self.holding = False
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if previous not in (signal.SIG_IGN, None):  # an ignored signal stays ignored
                self.previous[signum] = signal.signal(signum, self.press)

    def press(self, signum: int, frame: Any) -> None:
        self.presses += 1
        if self.presses == 1 and not self.holding:
            raise KeyboardInterrupt
        self.held += 1

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold every press while the block runs; a held one is a KeyboardInterrupt after it."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            self.uninstall()
            if self.held:
                raise KeyboardInterrupt

    def uninstall(self) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}


def measure_memory(harness: Harness) -> None:
    """Each timed CPU step's true peak extra memory, in a child process per backend.

    After the timing, so no child runs beside a benchmark. A Ctrl-C stops it, and the run
    is saved with what was measured (interrupted). Whatever else goes wrong costs only the
    memory: each step not measured keeps why in ``memory_error``, shown in the report.
    """
    from . import memory

    steps: dict[str, list[Any]] = {}
    for result in harness.results.values():
        if result.timed and result.wants_memory:
            steps.setdefault(result.case.backend, []).append(result)  # type: ignore[union-attr]
    if not steps:
        return
    harness.terminal.line(
        f"im2col-bench: measuring the memory of {len(steps)} backends, a child process each"
    )
    for name, results in steps.items():
        convs = [r.case.conv for r in results]
        # each configuration runs twice (batch 1, then whole) after the child's imports
        timeout = MEMORY_CHILD_S + 10 * sum(r.median_s() for r in results)
        try:
            measured = memory.measure(
                duet.get_backend(name), convs, harness.settings.threads, timeout
            )
        except KeyboardInterrupt:
            harness.interrupted = True
            return
        except Exception as exc:  # a bug here must not cost the run
            measured = {c.id: {"memory_error": f"{type(exc).__name__}: {exc}"} for c in convs}
        why = {measured[c.id]["memory_error"] for c in convs if "memory_error" in measured[c.id]}
        for result in results:
            result.extra.update(measured[result.case.conv.id])
        for reason in sorted(why):
            harness.terminal.line(f"im2col-bench: memory of {name} not measured: {reason}")


def save(harness: Harness, exitstatus: int) -> None:
    """Save the run's JSON, then its report and the index; the JSON survives a Ctrl-C."""
    import pytest

    if not any(r.timed and isinstance(r.case, Case) for r in harness.results.values()):
        harness.ctrl_c.uninstall()
        if harness.results or harness.failed:
            harness.outcome = "no backend was timed, so no run was saved"
        return
    harness.interrupted |= harness.ctrl_c.presses > 0 or exitstatus == pytest.ExitCode.INTERRUPTED
    if not harness.interrupted:
        measure_memory(harness)
    report_dir = harness.settings.report_dir
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:40]
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{node}_{harness.settings.preset.name}"
    run_json: Path | None = None
    harness.outcome = "the run could not be saved"
    try:
        with harness.ctrl_c.hold():
            from reports import load_report, update_index, write_report
            from reports.storage import RUNS, write_new

            text = json.dumps(runjson.run_json(harness), indent=1, default=str)
            run_json = write_new(report_dir / RUNS, stem, ".json", text)
            harness.saved = run_json
        html = run_json.with_suffix(".html")
        harness.outcome = f"the run is in {run_json}; the report failed"
        harness.report = load_report([run_json])
        write_report(harness.report, html)
        (harness.verdicts,) = harness.report.verdicts.values()
        update_index(report_dir, harness.report)
        harness.outcome = str(html)
    except KeyboardInterrupt:
        harness.outcome = (
            "interrupted before the run was saved"
            if run_json is None
            else f"report interrupted; rebuild it: python -m reports build {run_json} -o "
            f"{run_json.with_suffix('.html')}"
        )
    except Exception as exc:  # a report bug must not hide the run's JSON
        harness.outcome = f"{harness.outcome} ({type(exc).__name__}: {exc})"

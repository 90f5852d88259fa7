"""Reports of saved benchmark runs: ``load(paths) -> DataFrame``, ``plot_*(df) -> Figure``,
``load_report(paths) -> Report``, ``render(report) -> html``; ``python -m reports
build|compare`` on the command line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .compare import compare, parse_threshold
from .data import ReportInputError, RunSource, headline, load, load_runs, read_run
from .goals import GOALS, Goal, Verdict, judge
from .html import render
from .index import index_entries, render_index, update_index
from .plots import (
    PLOTS,
    Plot,
    plot_accuracy,
    plot_gflops,
    plot_memory,
    plot_network,
    plot_roofline,
    plot_scaling,
    plot_speedup,
    plot_threads,
    plot_yardstick,
)
from .report import Report, check_output, load_report
from .storage import write_atomic

__all__ = [
    "GOALS",
    "PLOTS",
    "Goal",
    "Plot",
    "Report",
    "ReportInputError",
    "Verdict",
    "build_report",
    "compare",
    "headline",
    "index_entries",
    "judge",
    "load",
    "load_report",
    "load_runs",
    "parse_threshold",
    "plot_accuracy",
    "plot_gflops",
    "plot_memory",
    "plot_network",
    "plot_roofline",
    "plot_scaling",
    "plot_speedup",
    "plot_threads",
    "plot_yardstick",
    "read_run",
    "render",
    "render_index",
    "update_index",
    "write_report",
]


def write_report(report: Report, out: str | Path) -> Path:
    """Write the HTML page of ``report`` (:func:`load_report`) to ``out``.

    Raises
    ------
    ReportInputError
        If ``out`` is one of the report's runs (it would be overwritten) or ends with a slash.
    """
    return write_atomic(check_output(out, report.paths), render(report))


def build_report(paths: Sequence[RunSource], out: str | Path) -> dict[str, list[Verdict]]:
    """Write the HTML report of ``paths`` to ``out``; return each run's judged goals.

    ``paths``: run files, or runs already read by :func:`read_run` (not read again).

    Raises
    ------
    ReportInputError
        If a run is unusable, ``out`` is one of the runs (it would be overwritten) or ends
        with a slash.
    """
    check_output(out, paths)
    report = load_report(paths)
    write_report(report, out)
    return report.verdicts

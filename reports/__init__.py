"""Reports of saved benchmark runs: ``load(paths) -> DataFrame``, ``plot_*(df) -> Figure``,
``render(...) -> html``; ``python -m reports build|compare`` on the command line."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .compare import compare, parse_threshold
from .data import ReportInputError, headline, load, load_runs, read_run
from .goals import GOALS, Goal, Verdict, judge
from .html import index_entries, render, render_index
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
from .storage import INDEX, index_lock, write_atomic

__all__ = [
    "GOALS",
    "PLOTS",
    "Goal",
    "Plot",
    "ReportInputError",
    "Verdict",
    "build_report",
    "compare",
    "headline",
    "judge",
    "load",
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
]


def build_report(paths: Sequence[str | Path], out: str | Path) -> dict[str, list[Verdict]]:
    """Write the HTML report of ``paths`` to ``out``; return each run's judged goals.

    Raises
    ------
    ReportInputError
        If a run is unusable, ``out`` is one of the runs (it would be overwritten) or ends
        with a slash.
    """
    if str(out).endswith(("/", os.sep)):
        raise ReportInputError(f"{out}: names a folder; give the report's file name")
    out = Path(out)
    for path in paths:
        if out.exists() and Path(path).exists() and out.samefile(path):
            raise ReportInputError(f"{out}: is one of the runs to read; choose another output")
    df = load(paths)
    runs = load_runs(paths)
    verdicts = {run: judge(df[df["run"] == run]) for run in runs["run"]}
    title = (
        f"im2col-bench: {runs['run'].iloc[0]} ({runs['preset'].iloc[0]})"
        if len(runs) == 1
        else f"im2col-bench: {len(runs)} runs side by side"
    )
    write_atomic(out, render(df, runs, verdicts, title))
    return verdicts


def update_index(report_dir: str | Path) -> Path:
    """Rewrite ``report_dir/index.html`` listing every saved run, newest first."""
    report_dir = Path(report_dir)
    with index_lock(report_dir):
        return write_atomic(report_dir / INDEX, render_index(index_entries(report_dir)))

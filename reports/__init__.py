"""Reports of saved benchmark runs: ``load(paths) -> DataFrame``, ``plot_*(df) -> Figure``,
``render(...) -> html``; ``python -m reports build|compare`` on the command line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .compare import compare, parse_threshold
from .data import ReportInputError, Target, headline, load, load_runs, read_run, targets
from .html import index_entries, render, render_index
from .plots import (
    PLOTS,
    plot_gflops,
    plot_memory,
    plot_scaling,
    plot_speedup,
    plot_yardstick,
)

__all__ = [
    "PLOTS",
    "ReportInputError",
    "Target",
    "build_report",
    "compare",
    "headline",
    "load",
    "load_runs",
    "parse_threshold",
    "plot_gflops",
    "plot_memory",
    "plot_scaling",
    "plot_speedup",
    "plot_yardstick",
    "read_run",
    "render",
    "render_index",
    "targets",
    "update_index",
]


def build_report(paths: Sequence[str | Path], out: str | Path) -> list[str]:
    """Write the HTML report of ``paths`` to ``out``; return the target lines, one per run."""
    df = load(paths)
    runs = load_runs(paths)
    figures = {name: plot(df) for name, plot in PLOTS.items()}
    title = "im2col-bench: " + ", ".join(f"{r.run} ({r.preset})" for r in runs.itertuples())
    Path(out).write_text(render(df, runs, figures, title), encoding="utf-8")
    multi = len(runs) > 1
    return [
        (f"{run}: " if multi else "") + target.line()
        for run in runs["run"]
        for target in targets(df[df["run"] == run])
    ]


def update_index(report_dir: str | Path) -> Path:
    """Rewrite ``report_dir/index.html`` listing every saved run, newest first."""
    report_dir = Path(report_dir)
    index = report_dir / "index.html"
    index.write_text(render_index(index_entries(report_dir)), encoding="utf-8")
    return index

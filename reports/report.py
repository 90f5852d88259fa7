"""A report's model: the runs read once, loaded and derived, judged and checked, ready to render.

Everything the page shows that takes computing is computed here (or by the module this calls:
data, goals, article); reports/html.py only lays it out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .article import Claim, check_article
from .data import (
    ReportInputError,
    RunSource,
    contenders,
    headline,
    json_object,
    load,
    load_runs,
    read_run,
)
from .goals import Verdict, judge
from .plots import role_order


@dataclass(frozen=True)
class Report:
    """What one report shows, each part computed once."""

    #: every benchmark of every run (:func:`reports.data.load`)
    frame: pd.DataFrame
    #: one row per run (:func:`reports.data.load_runs`)
    runs: pd.DataFrame
    #: each run's judged goals, by run label
    verdicts: dict[str, list[Verdict]]
    #: each run's checked claims of the article, by run label
    claims: dict[str, list[Claim]]
    #: each run's timed backends: how many of how many (``9 of 11``), and their names
    backends: dict[str, tuple[str, str]]
    #: per run and pass, the fastest contender (:func:`reports.data.headline`)
    headline: pd.DataFrame
    #: the contenders (seeds and ours) timed in any run, by name
    contenders: list[str]
    title: str
    #: the file each run was read from, None for one given already read
    paths: tuple[Path | None, ...]


def load_report(sources: Sequence[RunSource]) -> Report:
    """Read each run once (a path; a run already read by :func:`read_run` is not read again),
    load, derive, judge and check it.

    Raises
    ------
    ReportInputError
        If a run is unusable, or none is given.
    """
    runs_read = [s if isinstance(s, dict) else read_run(s) for s in sources]
    frame, runs = load(runs_read), load_runs(runs_read)
    labels = [str(label) for label in runs["run"]]
    title = (
        f"im2col-bench: {labels[0]} ({runs['preset'].iloc[0]})"
        if len(runs) == 1
        else f"im2col-bench: {len(runs)} runs side by side"
    )
    return Report(
        frame=frame,
        runs=runs,
        verdicts={run: judge(frame[frame["run"] == run]) for run in labels},
        claims={
            str(run["run"]): check_article(
                frame[frame["run"] == run["run"]], json_object(run["im2col_bench"]).get("dx_check")
            )
            for _, run in runs.iterrows()
        },
        backends={run: timed_backends(frame, run) for run in labels},
        headline=headline(frame),
        contenders=sorted(set(contenders(frame[frame["status"] == "ok"])["backend"])),
        title=title,
        paths=tuple(None if isinstance(s, dict) else Path(s) for s in sources),
    )


def timed_backends(df: pd.DataFrame, run: str) -> tuple[str, str]:
    """How many of a run's backends were timed (``9 of 11``), and their names, ours first."""
    mine = df[(df["run"] == run) & (df["backend"] != "")]
    ok = sorted(set(mine.loc[mine["status"] == "ok", "backend"]), key=role_order(mine))
    return f"{len(ok)} of {mine['backend'].nunique()}", ", ".join(ok)


def check_output(out: str | Path, sources: Sequence[RunSource | None]) -> Path:
    """``out`` as the report's file; ReportInputError where it names a folder or one of the
    runs' files (it would be overwritten)."""
    if str(out).endswith(("/", os.sep)):
        raise ReportInputError(f"{out}: names a folder; give the report's file name")
    out = Path(out)
    for path in sources:
        if isinstance(path, dict) or path is None:
            continue
        if out.exists() and Path(path).exists() and out.samefile(path):
            raise ReportInputError(f"{out}: is one of the runs to read; choose another output")
    return out

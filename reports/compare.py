"""Changes in medians between two saved runs, benchmark by benchmark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .data import read_run


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10; ValueError on anything else or a negative value."""
    value = float(text.strip().removesuffix("%"))
    if value < 0:
        raise ValueError(f"threshold must be >= 0, got {text!r}")
    return value / 100


def _medians(path: str | Path) -> pd.Series:
    run = read_run(path)
    return pd.Series(
        {
            b.get("fullname") or b["name"]: b["stats"]["median"]
            for b in run["benchmarks"]
            if b.get("stats")
        },
        dtype=float,
    )


def compare(old: str | Path, new: str | Path, threshold: float) -> pd.DataFrame:
    """Benchmarks of both runs with old and new medians, the change and whether it regressed.

    Returns
    -------
    DataFrame
        Index: benchmark full name. Columns: old, new, change (new / old - 1), regressed
        (change > threshold). Benchmarks in only one run are left out.
    """
    table = pd.concat({"old": _medians(old), "new": _medians(new)}, axis=1, join="inner")
    table["change"] = table["new"] / table["old"] - 1
    table["regressed"] = table["change"] > threshold
    return table.sort_values("change", ascending=False)

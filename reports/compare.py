"""Changes in medians between two saved runs, benchmark by benchmark."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .data import benchmark_names, read_run


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10; ValueError unless it is a finite percentage above zero."""
    value = float(text.strip().removesuffix("%"))
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"threshold must be a finite percentage above 0, got {text!r}")
    return value / 100


def medians(path: str | Path) -> pd.Series:
    """Each benchmark's median in seconds, by full name (read_run refuses unusable medians)."""
    run = read_run(path)
    values = [b["stats"]["median"] for b in run["benchmarks"]]
    return pd.Series(dict(zip(benchmark_names(run), values, strict=True)), dtype=float)


def compare(old: str | Path, new: str | Path, threshold: float) -> pd.DataFrame:
    """Every benchmark of OLD with its old and new medians, the change and whether it regressed.

    Returns
    -------
    DataFrame
        Index: benchmark full name. Columns: old, new (NaN where NEW lacks the benchmark),
        change (new / old - 1), regressed (change > threshold), missing (not in NEW).
        Benchmarks only NEW has are left out.
    """
    table = pd.concat({"old": medians(old), "new": medians(new)}, axis=1, join="outer")
    table = table[table["old"].notna()].copy()
    table["change"] = table["new"] / table["old"] - 1
    table["regressed"] = table["change"] > threshold
    table["missing"] = table["new"].isna()
    return table.sort_values(["missing", "change"], ascending=False)

"""Changes between two saved runs, benchmark by benchmark, with their intervals and significance.

A benchmark counts as slower only when the change is significant and its time grew by more
than the threshold. Runs of trials are judged by their trials (Welch's t test and interval on
the logarithms of the trial medians: what varies between trials is in the test); runs
without trials by their rounds (Mann-Whitney U).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from .data import benchmark_names, machine, read_run
from .stats import SIGNIFICANCE, Rounds, median_interval, p_slower, ratio_interval, subsampled


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10; ValueError unless it is a finite percentage above zero."""
    value = float(text.strip().removesuffix("%"))
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"threshold must be a finite percentage above 0, got {text!r}")
    return value / 100


def _benchmarks(run: dict[str, Any]) -> pd.DataFrame:
    """Each benchmark's median and rounds, by full name (read_run refuses unusable medians)."""
    return pd.DataFrame(
        {
            "median": [float(b["stats"]["median"]) for b in run["benchmarks"]],
            "times": [
                Rounds(b["stats"].get("data"), (b.get("extra_info") or {}).get("round_trial"))
                for b in run["benchmarks"]
            ],
            "contended": [
                (b.get("extra_info") or {}).get("contended") is True for b in run["benchmarks"]
            ],
        },
        index=benchmark_names(run),
    )


def compare(old: str | Path, new: str | Path, threshold: float) -> pd.DataFrame:
    """Every benchmark of OLD with its old and new medians, the change and whether it regressed.

    Returns
    -------
    DataFrame
        Index: benchmark full name. Columns: old, new (NaN where NEW lacks the benchmark),
        change (new / old - 1) with change_low, change_high (its 95% interval, NaN where a
        run kept no rounds), p (the one-sided p-value of "NEW is slower"), trials (both
        sides judged by their trials, Welch's t; else by their rounds, Mann-Whitney U),
        regressed (p below the significance level and change above the threshold; without
        rounds on both sides, the change alone decides), contended (either run's row was),
        subsampled (either side has more rounds than the statistics use), missing (not in NEW).
        Benchmarks only NEW has are left out.
    """
    before, after = _benchmarks(read_run(old)), _benchmarks(read_run(new))
    for frame in (before, after):  # a run of trials: its time is over its trials
        frame["median"] = [
            median_interval(t).value if t.by_trial() is not None else m
            for t, m in zip(frame["times"], frame["median"], strict=True)
        ]
    table = pd.DataFrame({"old": before["median"], "new": after["median"].reindex(before.index)})
    table["change"] = table["new"] / table["old"] - 1
    lows, highs, pvalues = [], [], []
    for name in table.index:
        old_times = before.at[name, "times"]
        new_times = after.at[name, "times"] if name in after.index else None
        ratio = ratio_interval(new_times, old_times, paired=False)
        lows.append(ratio.low - 1)
        highs.append(ratio.high - 1)
        pvalues.append(p_slower(old_times, new_times))
    table["change_low"], table["change_high"], table["p"] = lows, highs, pvalues
    table["trials"] = [
        before.at[name, "times"].by_trial() is not None
        and name in after.index
        and after.at[name, "times"].by_trial() is not None
        for name in table.index
    ]
    table["subsampled"] = [
        subsampled(before.at[name, "times"])
        or (name in after.index and subsampled(after.at[name, "times"]))
        for name in table.index
    ]
    table["contended"] = before["contended"] | after["contended"].reindex(
        before.index, fill_value=False
    )
    significant = (table["p"] < SIGNIFICANCE) | table["p"].isna()
    table["regressed"] = (table["change"] > threshold) & significant
    table["missing"] = table["new"].isna()
    return table.sort_values(["missing", "change"], ascending=False)


def machine_differences(old: str | Path, new: str | Path) -> list[str]:
    """What differs between the machines of two runs: CPU, vector extensions, BLAS and its
    kernel, cores, threads. A field that one run did not record is not compared."""
    before, after = machine(read_run(old)), machine(read_run(new))
    return [
        f"{what} {before[what]} vs {after[what]}"
        for what in before
        if before[what] and after[what] and before[what] != after[what]
    ]

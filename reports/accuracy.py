"""Each backend's error against the float64 reference, beside its time: the table, the frontier.

The harness stores ``error_y``, ``error_dx`` and ``error_dw`` in every timed pass's
``extra_info`` (benchmarks/accuracy.py). A pass's error is that of the outputs it computes:
y for forward, dx and dw for backward, all three for a step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.runfile import PASS_ORDER, RESNET

from .data import SHAPE_KEYS, timed
from .network import network_rows, network_totals

#: the stored errors, one per output
ERRORS = ("error_y", "error_dx", "error_dw")
#: the outputs each pass computes
PASS_ERRORS = {
    "forward": ("error_y",),
    "backward": ("error_dx", "error_dw"),
    "step": ERRORS,
}
METRIC = "largest |error| against the float64 reference, over the largest |reference value|"


def errors(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` with ERRORS as numbers (NaN where not measured) and ``error``: the
    worst of those its pass computes (NaN for a pass that computes none)."""
    df = df.copy()
    for column in ERRORS:
        df[column] = pd.to_numeric(df[column], errors="coerce") if column in df else np.nan
    df["error"] = np.nan
    for pass_, columns in PASS_ERRORS.items():
        at = df["pass"] == pass_
        df.loc[at, "error"] = df.loc[at, list(columns)].max(axis=1, skipna=False)
    return df


def error_text(value: float) -> str:
    """An error in two significant digits: ``6.6e-06``; "" where unknown."""
    return "" if pd.isna(value) else f"{value:.2g}" if value >= 1e-2 else f"{value:.1e}"


def case_errors(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run, backend and shape with its three errors and their worst (``error``)."""
    rows = errors(timed(df, None)).dropna(subset=list(ERRORS), how="all")
    keys = ["run", "backend", "role", *SHAPE_KEYS]
    found = rows.groupby(keys, sort=False)[list(ERRORS)].max().reset_index()
    found["error"] = found[list(ERRORS)].max(axis=1)
    return found


def worst_errors(df: pd.DataFrame) -> pd.DataFrame:
    """Per run and backend: its worst error over every shape, and where (config and h).

    Returns
    -------
    DataFrame
        Columns: run, backend, role, dtype, error, error_y, error_dx, error_dw, config, h.
    """
    found = case_errors(df)
    if found.empty:
        return found
    worst = found.loc[found.groupby(["run", "backend", "dtype"])["error"].idxmax()]
    return worst[["run", "backend", "role", "dtype", "error", *ERRORS, "config", "h"]]


def frontier(points: pd.DataFrame) -> pd.DataFrame:
    """The points no other is both faster than and at least as accurate as: the fastest at
    each accuracy, sorted by error (``points`` has columns error and median)."""
    ordered = points.sort_values(["error", "median"])
    fastest_before = ordered["median"].cummin().shift(fill_value=np.inf)
    return ordered[ordered["median"] < fastest_before]


def network_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Per run, network, backend and pass: the whole-network time (``median``) and the worst
    error over the network's layers, of the backend itself or, on a layer it declines, of
    the backend of ours that stands in for it (reports/network.py).

    Returns
    -------
    DataFrame
        Columns: run, network, backend, role, pass, median, error, where, label.
    """
    totals = network_totals(df).dropna(subset=["total"])
    rows = errors(network_rows(df))
    found = []
    for _, total in totals.iterrows():
        at = rows[
            (rows["run"] == total["run"])
            & (rows["network"] == total["network"])
            & (rows["pass"] == total["pass"])
        ]
        mine = at[at["backend"] == total["backend"]]
        declined = mine.loc[mine["reason"].str.startswith("declined"), "config"]
        helper = at[(at["backend"] == total["stand_in"]) & at["config"].isin(declined)]
        used = pd.concat([mine[mine["status"] == "ok"], helper[helper["status"] == "ok"]])
        error = used["error"].max(skipna=False) if not used.empty else np.nan
        if pd.notna(error):
            found.append(
                {
                    **total[["run", "network", "backend", "role", "pass", "label"]].to_dict(),
                    "median": total["total"],
                    "error": error,
                    "where": f"{total['network']}, whole network",
                }
            )
    columns = ["run", "network", "backend", "role", "pass", "median", "error", "where", "label"]
    return pd.DataFrame(found, columns=columns)


def accuracy_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The points the time-against-error figure draws, every pass: per run, its first real
    network as a whole (:func:`network_accuracy`) where it has one; otherwise the
    configuration where most backends have an error and a time (the resnet layer first among
    equals, then the most work). ``where`` says which."""
    networks = network_accuracy(df)
    networks = networks[networks["error"] > 0]
    rows = errors(timed(df, None)).dropna(subset=["error"])
    rows = rows[rows["error"] > 0]
    picked = []
    for run, in_run in rows.groupby("run", sort=False):
        whole = networks[networks["run"] == run]
        if not whole.empty:
            picked.append(whole[whole["network"] == sorted(set(whole["network"]))[0]])
            continue
        shapes = in_run.groupby(SHAPE_KEYS, sort=False).agg(
            backends=("backend", "nunique"), flops=("flops", "max")
        )
        shapes = shapes.reset_index()
        shapes["is_resnet"] = shapes["config"] == RESNET
        best = shapes.sort_values(["backends", "is_resnet", "flops"]).iloc[-1]
        at = in_run
        for key in SHAPE_KEYS:
            at = at[at[key] == best[key]]
        picked.append(at.assign(where=f"{best['config']} {best['h']:.0f} px", label=at["backend"]))
    if not picked:
        return rows.assign(where="", label=rows["backend"])
    out = pd.concat(picked)
    return out[out["pass"].isin(PASS_ORDER)]

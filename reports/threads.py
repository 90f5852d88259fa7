"""Thread scaling: each backend's speedup at each thread count of ``--threads 1,2,...``.

The run's own count is in its conv rows; the other counts of the list are in rows of kind
"threads", the same cases timed again there. A backend's time at a count is the sum of its
medians over the configurations it was timed on at every count (each weighted by its count
in a real network), so a count that lost a configuration to the budget changes nothing.
"""

from __future__ import annotations

import pandas as pd

from benchmarks.runfile import PASSES, pass_rank

from .stats import weighted_sum_interval

SCALING_COLUMNS = ["run", "backend", "role", "pass", "threads", "base_threads", "speedup",
                   "speedup_low", "speedup_high", "configs"]  # fmt: skip


def scaling_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The timed rows of the runs that timed several thread counts, with ``threads`` and
    ``weight`` as numbers."""
    ok = df[df["kind"].isin(["conv", "threads"]) & (df["status"] == "ok")]
    ok = ok[ok["pass"].isin(PASSES)].assign(threads=df.get("threads", pd.NA))
    runs = set(ok.loc[ok["kind"] == "threads", "run"])
    rows = ok[ok["run"].isin(runs)].copy()
    rows["threads"] = pd.to_numeric(rows["threads"], errors="coerce")
    weight = rows["weight"] if "weight" in rows else pd.Series(1, index=rows.index)
    rows["weight"] = pd.to_numeric(weight, errors="coerce").fillna(1)
    return rows.dropna(subset=["threads"])


def thread_scaling(df: pd.DataFrame) -> pd.DataFrame:
    """Per run, backend, pass and thread count: the speedup over the fewest threads timed,
    with its 95% bootstrap interval, over the configurations timed at every count.

    Returns
    -------
    DataFrame
        Columns: :data:`SCALING_COLUMNS`; the fewest threads' own row has speedup 1.
    """
    found = []
    rows = scaling_rows(df)
    for (run, backend, pass_), group in rows.groupby(["run", "backend", "pass"], sort=False):
        counts = sorted(set(group["threads"]))
        if len(counts) < 2:
            continue
        configs = set.intersection(
            *(set(group.loc[group["threads"] == t, "config"]) for t in counts)
        )
        if not configs:
            continue
        common = group[group["config"].isin(configs)]
        base = common[common["threads"] == counts[0]]
        base_parts = [(r["times"], r["weight"]) for _, r in base.iterrows()]
        base_sum = float((base["median"] * base["weight"]).sum())
        for threads in counts:
            at = common[common["threads"] == threads]
            ratio = weighted_sum_interval(
                base_parts, [(r["times"], r["weight"]) for _, r in at.iterrows()]
            )
            found.append(
                {
                    "run": run, "backend": backend, "role": group["role"].iloc[0],
                    "pass": pass_, "threads": int(threads), "base_threads": int(counts[0]),
                    "speedup": base_sum / float((at["median"] * at["weight"]).sum()),
                    "speedup_low": ratio.low, "speedup_high": ratio.high,
                    "configs": len(configs),
                }
            )  # fmt: skip
    return pd.DataFrame(found, columns=SCALING_COLUMNS)


def scaling_table(df: pd.DataFrame) -> pd.DataFrame:
    """The speedup at the most threads as text, a row per backend, a column per pass (and
    run): ``1.8x [1.7, 1.9] at 2 threads``."""
    found = thread_scaling(df)
    if found.empty:
        return pd.DataFrame()
    most = found.loc[found.groupby(["run", "backend", "pass"], sort=False)["threads"].idxmax()]
    multi = most["run"].nunique() > 1
    most = most.assign(
        column=most["pass"] + (" | " + most["run"] if multi else ""),
        order=most["pass"].map(pass_rank),
        text=[
            f"{r['speedup']:.2f}x"
            + ("" if pd.isna(r["speedup_low"]) else f" [{r['speedup_low']:.2f}, "
               f"{r['speedup_high']:.2f}]")
            + f" at {r['threads']} over {r['base_threads']}"
            for _, r in most.iterrows()
        ],
    )  # fmt: skip
    columns = most.sort_values(["order", "run"])["column"].unique()
    wide = most.pivot_table(index="backend", columns="column", values="text", aggfunc="first")
    return wide.reindex(columns=columns).fillna("")

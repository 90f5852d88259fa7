"""Real networks in a run: each backend's time over all of a network's layers, and per layer.

A network's layers are the rows whose ``network`` is set (benchmarks/networks.py), each with
its ``weight``: how many of the network's layers share its shape. A backend's whole-network
time is the weighted sum of its medians over every layer, with a bootstrap interval over the
layers' rounds. Where a backend declines a layer (Winograd on a 1x1, strided or 7x7 layer),
the backend of ours that is fastest over those layers stands in, and the figure says so.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from .data import PASS_ORDER, YARDSTICK
from .stats import Interval, weighted_sum_interval

#: dw sums over N * OH * OW products; under this many, it is reduction-bound (too little work
#: per output to fill the vector units and the threads)
REDUCTION_BOUND = 256
#: the passes a whole-network figure is given for
NETWORK_PASSES = ("forward", "backward", "step")

TOTAL_COLUMNS = [
    "run", "network", "backend", "role", "pass", "total", "low", "high", "layers", "own",
    "stand_in", "missing", "vs_yardstick", "vs_low", "vs_high", "label",
]  # fmt: skip


def network_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The conv rows of real networks' layers, timed or not, with ``weight`` a number."""
    if "network" not in df:
        return df.iloc[0:0].assign(network="", weight=1)
    rows = df[(df["kind"] == "conv") & (df["network"].fillna("").astype(str) != "")].copy()
    rows["weight"] = pd.to_numeric(rows["weight"], errors="coerce").fillna(1)
    return rows[rows["pass"].isin(NETWORK_PASSES)]


def stand_in(rows: pd.DataFrame, backend: str) -> str | None:
    """The backend of ours that stands in for ``backend`` where it declines a layer of one
    network and run: of those timed on every such layer and pass, the fastest over those
    layers' steps (weighted by count); None where it declines none, or none qualifies."""
    mine = rows[rows["backend"] == backend]
    declined = mine[mine["reason"].str.startswith("declined")]
    if declined.empty:
        return None
    needed = set(zip(declined["config"], declined["pass"], strict=True))
    ours = rows[(rows["role"] == "ours") & (rows["status"] == "ok") & (rows["backend"] != backend)]
    totals = {}
    for name, theirs in ours.groupby("backend"):
        if needed <= set(zip(theirs["config"], theirs["pass"], strict=True)):
            steps = theirs[theirs["config"].isin(declined["config"]) & (theirs["pass"] == "step")]
            totals[str(name)] = float((steps["median"] * steps["weight"]).sum())
    return min(totals, key=lambda name: totals[name]) if totals else None


def composed(rows: pd.DataFrame, backend: str, helper: str | None) -> tuple[list[pd.Series], int]:
    """``backend``'s row on each layer and pass of one network and run, ``helper``'s where
    ``backend`` declines the layer; and how many layer-passes have neither."""
    picked, missing = [], 0
    for _, at in rows.groupby(["config", "pass"], sort=False):
        own = at[(at["backend"] == backend) & (at["status"] == "ok")]
        mine = at[at["backend"] == backend]
        declined = not mine.empty and mine["reason"].iloc[0].startswith("declined")
        theirs = at[(at["backend"] == helper) & (at["status"] == "ok")]
        if not own.empty:
            picked.append(own.iloc[0])
        elif declined and not theirs.empty:
            picked.append(theirs.iloc[0])
        else:
            missing += 1
    return picked, missing


def network_totals(df: pd.DataFrame) -> pd.DataFrame:
    """Per run, network, backend and pass: the whole-network time and its 95% interval, and
    its ratio to torch_conv2d's with that ratio's interval.

    Returns
    -------
    DataFrame
        Columns: :data:`TOTAL_COLUMNS`. total, low and high are NaN where a layer has neither
        the backend's time nor a stand-in's (``missing`` layers); ``own`` counts the layers
        timed with the backend itself, ``stand_in`` names the backend of ours that stands in
        for the layers it declines (:func:`stand_in`), and ``label`` is the backend's name
        with the stand-in's (``winograd + tiled_im2col``).
    """
    found = []
    rows = network_rows(df)
    for (run, network), in_net in rows.groupby(["run", "network"], sort=False):
        layers = in_net["config"].nunique()
        #: torch_conv2d's (rounds, weight) and medians' sum per pass; none where incomplete
        yardstick: dict[str, tuple[list[tuple[Any, float]], float]] = {}
        for pass_, at in in_net.groupby("pass", sort=False):
            picked, missing = composed(at, YARDSTICK, None)
            if picked and not missing:
                yardstick[pass_] = ([(r["times"], r["weight"]) for r in picked], _sum(picked))
        for backend in sorted(set(in_net.loc[in_net["status"] == "ok", "backend"])):
            role = in_net.loc[in_net["backend"] == backend, "role"].iloc[0]
            helper = stand_in(in_net, backend)
            for pass_, at in in_net.groupby("pass", sort=False):
                picked, missing = composed(at, backend, helper)
                parts = [(r["times"], r["weight"]) for r in picked]
                total = versus = Interval(math.nan)
                if not missing:
                    # the medians' sum, whose interval is NaN where the rounds were not saved
                    total = Interval(_sum(picked), *_bounds(weighted_sum_interval(parts)))
                if not missing and pass_ in yardstick:
                    theirs, their_sum = yardstick[pass_]
                    ratio = weighted_sum_interval(parts, theirs)
                    versus = Interval(total.value / their_sum, *_bounds(ratio))
                found.append(
                    {
                        "run": run, "network": network, "backend": backend, "role": role,
                        "pass": pass_, "total": total.value, "low": total.low,
                        "high": total.high, "layers": layers,
                        "own": sum(r["backend"] == backend for r in picked),
                        "stand_in": helper or "", "missing": missing,
                        "vs_yardstick": versus.value, "vs_low": versus.low,
                        "vs_high": versus.high,
                        "label": backend + (f" + {helper}" if helper else ""),
                    }
                )  # fmt: skip
    return pd.DataFrame(found, columns=TOTAL_COLUMNS)


def _natural(name: str) -> list[Any]:
    """Sort key in the model's order: ``layer1.1.conv1`` before ``layer1.10.conv1``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _sum(rows: list[pd.Series]) -> float:
    """The weighted sum of the rows' medians."""
    return float(sum(r["median"] * r["weight"] for r in rows))


def _bounds(interval: Interval) -> tuple[float, float]:
    return interval.low, interval.high


def winners(df: pd.DataFrame) -> pd.DataFrame:
    """Per run, network and pass: the backend (or composition) with the smallest complete
    whole-network time, a row of :func:`network_totals` each."""
    totals = network_totals(df).dropna(subset=["total"])
    if totals.empty:
        return totals
    best = totals.groupby(["run", "network", "pass"], sort=False)["total"].idxmin()
    return totals.loc[best]


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def totals_table(df: pd.DataFrame) -> pd.DataFrame:
    """The whole-network times as text: a row per backend (its stand-ins named), a column
    per pass (and network and run), ``1.2 s [1.1, 1.3], 0.9x torch_conv2d``."""
    totals = network_totals(df)
    if totals.empty:
        return pd.DataFrame()
    multi = totals["run"].nunique() > 1 or totals["network"].nunique() > 1

    def cell(row: pd.Series) -> str:
        if pd.isna(row["total"]):
            return f"not timed on {row['missing']} layer-passes"
        text = _time(row["total"])
        if pd.notna(row["low"]):
            text += f" [{_time(row['low'])}, {_time(row['high'])}]"
        if pd.notna(row["vs_yardstick"]) and row["backend"] != YARDSTICK:
            ratio = Interval(row["vs_yardstick"], row["vs_low"], row["vs_high"])
            text += f"; {ratio.text()} {YARDSTICK}"
        return text

    totals["text"] = [cell(r) for _, r in totals.iterrows()]
    totals["order"] = totals["pass"].map({p: i for i, p in enumerate(PASS_ORDER)})
    totals["column"] = totals["pass"] + (
        " | " + totals["network"] + " " + totals["run"] if multi else ""
    )
    columns = totals.sort_values(["network", "run", "order"])["column"].unique()
    wide = totals.pivot_table(index="label", columns="column", values="text", aggfunc="first")
    return wide.reindex(columns=columns).fillna("")


def layer_table(df: pd.DataFrame, network: str, pass_: str = "step") -> pd.DataFrame:
    """One network's layers as text, in the network's order: shape, count, dw's reduction
    depth N*OH*OW (marked reduction-bound under :data:`REDUCTION_BOUND`), and each backend's
    median on ``pass_`` (the fastest starred; "-" where not timed)."""
    rows = network_rows(df)
    rows = rows[(rows["network"] == network) & (rows["pass"] == pass_)]
    if rows.empty:
        return pd.DataFrame()
    out = []
    for config, at in sorted(rows.groupby("config"), key=lambda item: _natural(str(item[0]))):
        first = at.iloc[0]
        out_h = (first["h"] + 2 * int(first["padding"]) - first["kh"]) // first["stride"] + 1
        depth = int(first["n"] * out_h * out_h)
        line: dict[str, Any] = {
            "layer": str(config).removeprefix(f"{network}."),
            "shape": f"N={first['n']:.0f} {first['h']:.0f}px {first['c_in']:.0f}->"
            f"{first['c_out']:.0f} {first['kh']:.0f}x{first['kh']:.0f} s{first['stride']:.0f}",
            "x": f"{first['weight']:.0f}",
            "N*OH*OW": f"{depth}" + (" (dw reduction-bound)" if depth < REDUCTION_BOUND else ""),
        }
        ok = at[at["status"] == "ok"]
        fastest = ok.loc[ok["median"].idxmin(), "backend"] if not ok.empty else None
        for _, row in at.iterrows():
            line[row["backend"]] = (
                ("★ " if row["backend"] == fastest else "") + _time(row["median"])
                if row["status"] == "ok"
                else "-"
            )
        out.append(line)
    return pd.DataFrame(out).set_index("layer").fillna("")

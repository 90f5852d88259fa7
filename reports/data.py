"""Saved pytest-benchmark runs as DataFrames: one row per benchmark, one row per run.

Every derived number (speedup, GFLOP/s, % of the limit, targets) is computed here from the
JSON alone, so a report can be rebuilt from saved runs on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the baseline every speedup is measured against
BASELINE = "naive_loop"
#: the production yardstick of issue 4
YARDSTICK = "torch_conv2d"
PASS_ORDER = ("forward", "backward", "step", "transfer")
SHAPE_KEYS = ["config", "n", "h", "c_in", "c_out", "kh", "stride", "dtype"]


class ReportInputError(ValueError):
    """A file that cannot be read as a pytest-benchmark run with results."""


def read_run(path: str | Path) -> dict[str, Any]:
    """The parsed JSON of one saved run; ReportInputError when it is not a usable run."""
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: not JSON ({type(exc).__name__})") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("benchmarks"), list)
        and isinstance(data.get("machine_info"), dict)
    ):
        raise ReportInputError(f"{path}: not a pytest-benchmark JSON file")
    if not any(isinstance(b, dict) and b.get("stats") for b in data["benchmarks"]):
        raise ReportInputError(f"{path}: the run has no results")
    return data


def _run_labels(runs: list[dict[str, Any]]) -> list[str]:
    """Machine names, with the date added where one machine made several runs."""
    nodes = [str(r["machine_info"].get("node") or "unknown") for r in runs]
    labels = [
        f"{node} {str(r.get('datetime', ''))[:16]}" if nodes.count(node) > 1 else node
        for node, r in zip(nodes, runs, strict=True)
    ]
    return [f"{lab} #{i + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]


def _read_all(paths: Iterable[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    runs = [read_run(p) for p in paths]
    if not runs:
        raise ReportInputError("no runs given")
    return list(zip(_run_labels(runs), runs, strict=True))


def load(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Every benchmark of every run, timed or skipped or failed, one row each.

    Returns
    -------
    DataFrame
        Columns: run, kind ("conv" or "blas_limit"), backend, role, device, pass, config,
        n, h, c_in, c_out, kh, stride, dtype, flops, cols_bytes, peak_bytes, median, iqr,
        rounds, gflops, status ("ok", "skipped", "failed"), reason, name; plus speedup,
        speedup_extrapolated, limit_gflops, pct_limit from :func:`derive`.
    """
    rows = []
    for label, run in _read_all(paths):
        for bench in run["benchmarks"]:
            info = bench.get("extra_info") or {}
            stats = bench.get("stats") or {}
            rows.append(
                {
                    **info,
                    "run": label,
                    "kind": info.get("kind", "conv"),
                    "name": bench.get("fullname") or bench.get("name"),
                    "median": stats.get("median"),
                    "iqr": stats.get("iqr"),
                    "rounds": stats.get("rounds"),
                    "peak_bytes": info.get("peak_extra_bytes"),
                    "status": "ok",
                    "reason": "",
                }
            )
        extra = run.get("im2col_bench") or {}
        for status in ("skipped", "failed"):
            rows += [
                {**rec, "run": label, "kind": rec.get("kind", "conv"), "status": status}
                for rec in extra.get(status, [])
            ]
    return derive(pd.DataFrame(rows))


def load_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: machine, BLAS, versions, GPU, threads, preset and what was left out."""
    rows = []
    for label, run in _read_all(paths):
        info = run["machine_info"]
        extra = run.get("im2col_bench") or {}
        blas = "; ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('num_threads')} threads)"
            for b in info.get("blas") or []
        )
        rows.append(
            {
                "run": label,
                "node": info.get("node"),
                "datetime": run.get("datetime"),
                "cpu": (info.get("cpu") or {}).get("brand_raw") or info.get("processor"),
                "cores": (info.get("cpu") or {}).get("count"),
                "system": f"{info.get('system')} {info.get('release')}",
                "python": info.get("python_version"),
                "blas": blas or "unknown",
                "numpy": info.get("numpy_version"),
                "numba": info.get("numba_version"),
                "numba_cuda": info.get("numba_cuda_version"),
                "torch": info.get("torch_version"),
                "gpu": info.get("gpu", "unknown"),
                "threads": info.get("threads"),
                "preset": extra.get("preset", "unknown"),
                "interrupted": bool(extra.get("interrupted")),
                "wall_s": extra.get("wall_s"),
                "left_out": extra.get("left_out", []),
                "commit": (run.get("commit_info") or {}).get("id"),
            }
        )
    return pd.DataFrame(rows)


def derive(df: pd.DataFrame) -> pd.DataFrame:
    """Add GFLOP/s, the BLAS limit and % of it, and the speedup over the baseline."""
    df = df.copy()
    for col in ["backend", "role", "device", "pass", "config", "dtype", "reason", "name"]:
        df[col] = df[col].fillna("").astype(str) if col in df else ""
    for col in [
        "n",
        "h",
        "c_in",
        "c_out",
        "kh",
        "stride",
        "flops",
        "cols_bytes",
        "peak_bytes",
        "median",
        "iqr",
        "rounds",
    ]:
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    df["gflops"] = df["flops"] / df["median"] / 1e9
    limits = df[(df["kind"] == "blas_limit") & (df["status"] == "ok")]
    default_limit = limits[limits["config"] != "reference"].groupby("run")["gflops"].max()
    df["limit_gflops"] = df["run"].map(default_limit)
    df["pct_limit"] = 100 * df["gflops"] / df["limit_gflops"]
    df["speedup"] = np.nan
    df["speedup_extrapolated"] = False
    conv = df[df["kind"] == "conv"]
    for _, group in conv.groupby(["run", "pass", *SHAPE_KEYS[:1]], sort=False):
        base = baseline_times(group)
        speedup = base.reindex(group.index)["time"] / group["median"]
        df.loc[group.index, "speedup"] = speedup
        df.loc[group.index, "speedup_extrapolated"] = base.reindex(group.index)["extrapolated"]
    df["speedup_extrapolated"] = df["speedup_extrapolated"].fillna(False).astype(bool)
    return df


def baseline_times(group: pd.DataFrame) -> pd.DataFrame:
    """The baseline's time for each row's shape: measured, or extrapolated from its other sizes.

    The extrapolation fits time = a * flops^e on the baseline's measured rows of the same
    run, pass and configuration (two or more sizes needed).
    """
    keys = SHAPE_KEYS[1:]
    measured = group[(group["backend"] == BASELINE) & (group["status"] == "ok")]
    known = {tuple(r[k] for k in keys): r["median"] for _, r in measured.iterrows()}
    fit = None
    if measured["flops"].nunique() >= 2:
        fit = np.polyfit(np.log(measured["flops"]), np.log(measured["median"]), 1)
    out = []
    for idx, row in group.iterrows():
        key = tuple(row[k] for k in keys)
        if key in known:
            out.append((idx, known[key], False))
        elif fit is not None and row["flops"] > 0:
            out.append((idx, float(np.exp(np.polyval(fit, np.log(row["flops"])))), True))
        else:
            out.append((idx, np.nan, False))
    return pd.DataFrame(out, columns=["index", "time", "extrapolated"]).set_index("index")


def timed(df: pd.DataFrame, config: str | None = "default") -> pd.DataFrame:
    """The conv rows that were timed, optionally of one configuration."""
    ok = df[(df["kind"] == "conv") & (df["status"] == "ok")]
    return ok if config is None else ok[ok["config"] == config]


def series_label(df: pd.DataFrame) -> pd.Series:
    """The backend's name, with the machine added when the frame holds several runs."""
    if df["run"].nunique() > 1:
        return df["backend"] + " @ " + df["run"]
    return df["backend"]


def contenders(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of our own and the seeded strategies: never the peers or the oracle."""
    return df[df["role"].isin(["ours", "seed"])]


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Per run and pass: the fastest contender at the largest size all contenders share."""
    rows = []
    sweep = contenders(timed(df))
    for (run, pass_), group in sweep.groupby(["run", "pass"], sort=False):
        racers = group[group["backend"] != BASELINE]
        if racers.empty:
            racers = group
        shared = set.intersection(*(set(g["h"]) for _, g in racers.groupby("backend")))
        if not shared:
            continue
        at = racers[racers["h"] == max(shared)]
        best = at.loc[at["median"].idxmin()]
        rows.append(
            {
                "run": run,
                "pass": pass_,
                "size": int(best["h"]),
                "backend": best["backend"],
                "median": best["median"],
                "speedup": best["speedup"],
                "extrapolated": bool(best["speedup_extrapolated"]),
            }
        )
    return pd.DataFrame(
        rows, columns=["run", "pass", "size", "backend", "median", "speedup", "extrapolated"]
    )


def scaling_exponents(df: pd.DataFrame) -> pd.Series:
    """Fitted exponent e of time = a * pixels^e per (run, backend, pass) of the default sweep."""
    sweep = timed(df)
    out = {}
    for key, group in sweep.groupby(["run", "backend", "pass"]):
        if group["h"].nunique() >= 2:
            out[key] = np.polyfit(np.log(group["h"] ** 2), np.log(group["median"]), 1)[0]
    return pd.Series(out, dtype=float)


@dataclass(frozen=True)
class Target:
    """One issue-4 target, its measured ratio, and whether it is met (None: not measured)."""

    name: str
    goal: str
    ratio: float | None
    met: bool | None
    detail: str

    def __post_init__(self) -> None:
        # plain floats and bools, not numpy scalars, for printing and comparing
        if self.ratio is not None:
            object.__setattr__(self, "ratio", float(self.ratio))
        if self.met is not None:
            object.__setattr__(self, "met", bool(self.met))

    def line(self) -> str:
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[self.met]
        ratio = "" if self.ratio is None else f" (measured {self.ratio:.3g}x)"
        return f"{self.name}: {verdict}{ratio} - goal: {self.goal}; {self.detail}"


def _at(df: pd.DataFrame, backend: str, pass_: str, config: str, h: int | None = None) -> Any:
    rows = df[(df["backend"] == backend) & (df["pass"] == pass_) & (df["config"] == config)]
    if h is not None:
        rows = rows[rows["h"] == h]
    return None if rows.empty else rows.iloc[0]


def targets(df: pd.DataFrame) -> list[Target]:
    """The four issue-4 targets, judged on one run's rows."""
    ok = timed(df, None)
    ours = ok[ok["role"] == "ours"]
    ref_limit = df[
        (df["kind"] == "blas_limit") & (df["config"] == "reference") & (df["status"] == "ok")
    ]
    out = []

    torch_step = _at(ok, YARDSTICK, "step", "reference")
    our_step = ours[(ours["pass"] == "step") & (ours["config"] == "reference")]
    if torch_step is None or our_step.empty:
        out.append(
            Target(
                "T1 fastest ours, forward+backward, reference shape",
                "<= 1.5x torch_conv2d",
                None,
                None,
                "needs torch_conv2d and a backend of ours on the reference shape",
            )
        )
    else:
        best = our_step.loc[our_step["median"].idxmin()]
        ratio = best["median"] / torch_step["median"]
        out.append(
            Target(
                "T1 fastest ours, forward+backward, reference shape",
                "<= 1.5x torch_conv2d",
                ratio,
                ratio <= 1.5,
                f"{best['backend']} vs torch_conv2d",
            )
        )

    wino = _at(ok, "winograd", "forward", "reference")
    torch_fwd = _at(ok, YARDSTICK, "forward", "reference")
    if wino is None or torch_fwd is None:
        out.append(
            Target(
                "T2 winograd forward, reference shape",
                "<= 1x torch_conv2d",
                None,
                None,
                "needs winograd and torch_conv2d on the reference shape",
            )
        )
    else:
        ratio = wino["median"] / torch_fwd["median"]
        out.append(
            Target(
                "T2 winograd forward, reference shape",
                "<= 1x torch_conv2d",
                ratio,
                ratio <= 1.0,
                "winograd vs torch_conv2d",
            )
        )

    tiled = _at(ok, "tiled_im2col", "forward", "reference")
    tiled_step = _at(ok, "tiled_im2col", "step", "reference")
    if tiled is None or ref_limit.empty:
        out.append(
            Target(
                "T3 tiled_im2col forward, reference shape",
                "<= 1.25x the plain BLAS product; peak memory <= 1/8 im2col buffer",
                None,
                None,
                "needs tiled_im2col and the BLAS limit on the reference shape",
            )
        )
    else:
        ratio = tiled["median"] / ref_limit["median"].min()
        mem = None
        if tiled_step is not None and pd.notna(tiled_step["peak_bytes"]):
            mem = tiled_step["peak_bytes"] / tiled_step["cols_bytes"]
        mem_text = "peak memory not measured" if mem is None else f"peak memory {mem:.3g}x buffer"
        met = ratio <= 1.25 and (mem is not None and mem <= 1 / 8)
        out.append(
            Target(
                "T3 tiled_im2col forward, reference shape",
                "<= 1.25x the plain BLAS product; peak memory <= 1/8 im2col buffer",
                ratio,
                met,
                f"time vs BLAS product; {mem_text}",
            )
        )

    fwd128 = ours[(ours["pass"] == "forward") & (ours["config"] == "default") & (ours["h"] == 128)]
    if fwd128.empty or fwd128["speedup"].isna().all():
        out.append(
            Target(
                "T4 fastest ours, forward, 128x128",
                ">= 100x naive_loop",
                None,
                None,
                "needs naive_loop (measured or extrapolated) and ours at 128x128",
            )
        )
    else:
        best = fwd128.loc[fwd128["median"].idxmin()]
        ratio = float(best["speedup"])
        how = "extrapolated naive_loop" if best["speedup_extrapolated"] else "measured naive_loop"
        out.append(
            Target(
                "T4 fastest ours, forward, 128x128",
                ">= 100x naive_loop",
                ratio,
                ratio >= 100,
                f"{best['backend']} vs {how}",
            )
        )
    return out

"""Saved pytest-benchmark runs as DataFrames: one row per benchmark, one row per run.

Every derived number (speedup, GFLOP/s, % of the limit) is computed here from the JSON alone,
so a report can be rebuilt from saved runs on any machine.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the baseline every speedup is measured against
BASELINE = "naive_loop"
#: the production library the goals compare with
YARDSTICK = "torch_conv2d"
#: the configuration of a ResNet stage-2 layer, where the goals are judged
RESNET = "resnet"
PASS_ORDER = ("forward", "backward", "step", "transfer")
SHAPE_KEYS = ["config", "n", "h", "c_in", "c_out", "kh", "stride", "dtype"]
#: what the harness's first JSON format called the ResNet configuration
_OLD_CONFIG_NAMES = {"reference": RESNET}


class ReportInputError(ValueError):
    """A file that cannot be read as a pytest-benchmark run with results."""


def read_run(path: str | Path) -> dict[str, Any]:
    """The parsed JSON of one saved run; ReportInputError when it is not a usable run.

    Every benchmark must be an object whose ``stats`` hold a positive, finite median, and
    whose ``extra_info``, if any, is an object; anything else is refused rather than drawn.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReportInputError(f"{path}: not JSON ({type(exc).__name__})") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("benchmarks"), list)
        and isinstance(data.get("machine_info"), dict)
    ):
        raise ReportInputError(f"{path}: not a pytest-benchmark JSON file")
    if not data["benchmarks"]:
        raise ReportInputError(f"{path}: the run has no results")
    for number, bench in enumerate(data["benchmarks"], 1):
        problem = _benchmark_problem(bench)
        if problem:
            raise ReportInputError(f"{path}: benchmark {number}: {problem}")
    extra = data.get("im2col_bench", {})
    if not isinstance(extra, dict) or not all(
        isinstance(extra.get(key, []), list)
        and all(isinstance(rec, dict) for rec in extra.get(key, []))
        for key in ("skipped", "failed", "left_out")
    ):
        raise ReportInputError(f"{path}: 'im2col_bench' must hold lists of objects")
    return data


def _benchmark_problem(bench: Any) -> str | None:
    """What makes one entry of a run's ``benchmarks`` unusable, or None."""
    if not isinstance(bench, dict):
        return f"not an object but {type(bench).__name__}"
    name = bench.get("fullname") or bench.get("name")
    if not isinstance(name, str):
        return "no name"
    if not isinstance(bench.get("extra_info", {}), dict):
        return f"{name}: extra_info is not an object"
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        return f"{name}: stats is not an object"
    if not is_positive_time(stats.get("median")):
        return f"{name}: median {stats.get('median')!r} is not a positive, finite number"
    return None


def is_positive_time(value: Any) -> bool:
    """Whether ``value`` is a usable time in seconds: a finite number above zero."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def benchmark_names(run: dict[str, Any]) -> list[str]:
    """Each benchmark's full name, as the current harness names it (in a run of any format)."""
    names = [str(b.get("fullname") or b.get("name")) for b in run["benchmarks"]]
    if (run.get("im2col_bench") or {}).get("format", 1) == 1:
        # the first format's "reference-56px" case id is "resnet-56px" now
        names = [re.sub(r"(?<=[\[-])reference-(?=\d+px\])", "resnet-", n) for n in names]
    return names


def _run_labels(runs: list[dict[str, Any]]) -> list[str]:
    """Machine names, with the date where one machine made several runs: ``vm 11-26 16:51``."""
    nodes = [str(r["machine_info"].get("node") or "unknown") for r in runs]
    labels = [
        f"{node} {str(r.get('datetime', ''))[5:16].replace('T', ' ')}"
        if nodes.count(node) > 1
        else node
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
        extra = run.get("im2col_bench") or {}
        records = [
            {
                **(bench.get("extra_info") or {}),
                "name": name,
                "median": bench["stats"]["median"],
                "iqr": bench["stats"].get("iqr"),
                "rounds": bench["stats"].get("rounds"),
                "status": "ok",
                "reason": "",
            }
            for name, bench in zip(benchmark_names(run), run["benchmarks"], strict=True)
        ]
        records += [{**rec, "status": "skipped"} for rec in extra.get("skipped", [])]
        records += [{**rec, "status": "failed"} for rec in extra.get("failed", [])]
        renamed = _OLD_CONFIG_NAMES if extra.get("format", 1) == 1 else {}
        for rec in records:
            config = rec.get("config")
            rows.append(
                {
                    **rec,
                    "run": label,
                    "kind": rec.get("kind", "conv"),
                    "config": renamed.get(config, config) if isinstance(config, str) else config,
                    "peak_bytes": rec.get("peak_extra_bytes"),
                }
            )
    return derive(pd.DataFrame(rows))


def load_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per run: machine, BLAS, versions, GPU, threads, preset and what was left out."""
    rows = []
    for label, run in _read_all(paths):
        info = run["machine_info"]
        extra = run.get("im2col_bench") or {}
        cpu = _object(info.get("cpu"))
        pools = info.get("blas") if isinstance(info.get("blas"), list) else []
        blas = "; ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('num_threads')} threads)"
            for b in pools
            if isinstance(b, dict)
        )
        rows.append(
            {
                "run": label,
                # the whole records, for reports.runinfo to describe
                "machine_info": info,
                "im2col_bench": extra,
                "node": info.get("node"),
                "datetime": run.get("datetime"),
                "cpu": cpu.get("brand_raw") or info.get("processor"),
                "cores": cpu.get("count"),
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
                "commit": _object(run.get("commit_info")).get("id"),
            }
        )
    return pd.DataFrame(rows)


def _object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: machine info is shown, not trusted."""
    return value if isinstance(value, dict) else {}


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
    default_limit = limits[limits["config"] != RESNET].groupby("run")["gflops"].max()
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

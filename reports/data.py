"""Saved pytest-benchmark runs as DataFrames: one row per benchmark, one row per run.

Every derived number (speedup, GFLOP/s, % of the peak, intensity, intervals, flags) is computed here
from the JSON alone, so a report can be rebuilt from saved runs on any machine.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import runfile
from benchmarks.runfile import (
    COUNT_FIELDS,
    COUNT_RANGE,
    RESNET,
    SHAPE_FIELDS,
    SHAPE_RANGE,
    SWEEP,
    ordered_passes,
)
from benchmarks.runfile import PASS_ORDER as PASS_ORDER  # where reports/network.py finds it

from . import runinfo
from .runinfo import machine as machine  # where reports/compare.py finds it
from .stats import (
    TIME_RANGE,
    Interval,
    Rounds,
    is_noisy,
    median_interval,
    ratio_interval,
    trials_agreeing,
)

#: the baseline every speedup is measured against
BASELINE = "naive_loop"
#: the production library the goals compare with
YARDSTICK = "torch_conv2d"
#: the production library a GPU backend is compared with
GPU_YARDSTICK = "torch_cudnn"
#: each device's yardstick: a row's time is compared with its own device's library
YARDSTICKS = {"cpu": YARDSTICK, "gpu": GPU_YARDSTICK}
SHAPE_KEYS = ["config", "n", "h", "c_in", "c_out", "kh", "stride", "dtype"]


#: the run file's format, under the name benchmarks/harness.py imports it by; new code uses
#: benchmarks.runfile.FORMAT (to go once the harness does)


class ReportInputError(ValueError):
    """A file that cannot be read as a pytest-benchmark run with results."""


#: integers of more digits are read as floats (inf past 1e308), so that no field holds a
#: number that numpy, pandas or math cannot convert
_INT_DIGITS = 18


def _json_int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= _INT_DIGITS else float(text)


def read_run(path: str | Path) -> dict[str, Any]:
    """The parsed JSON of one saved run; ReportInputError when it is not a usable run.

    The one gate every reader goes through: every benchmark must be an object with a unique
    name whose ``stats`` hold a median of :data:`~reports.stats.TIME_RANGE` seconds and whose
    ``extra_info``, if any, is an object; each row's (timed, skipped, failed) shape and count
    fields must be integers in range; the format must be one this version reads. Anything
    else is refused rather than drawn. Integers of more than 18 digits are read as floats.
    """
    path = Path(path)
    if not path.exists():
        leads = " (a symbolic link that leads nowhere)" if path.is_symlink() else ""
        raise ReportInputError(f"{path}: no such file{leads}")
    if not path.is_file():
        raise ReportInputError(f"{path}: not a regular file")
    try:
        # utf-8-sig: a byte-order mark (an editor on Windows) is not part of the JSON
        data = json.loads(path.read_text(encoding="utf-8-sig"), parse_int=_json_int)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReportInputError(f"{path}: not JSON ({type(exc).__name__})") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("benchmarks"), list)
        and isinstance(data.get("machine_info"), dict)
    ):
        raise ReportInputError(f"{path}: not a pytest-benchmark JSON file")
    if not data["benchmarks"]:
        raise ReportInputError(f"{path}: the run has no results")
    extra = data.get("im2col_bench", {})
    if not isinstance(extra, dict) or not all(
        isinstance(extra.get(key, []), list)
        and all(isinstance(rec, dict) for rec in extra.get(key, []))
        for key in ("skipped", "failed", "left_out")
    ):
        raise ReportInputError(f"{path}: 'im2col_bench' must hold lists of objects")
    version = runfile.format_of(data)
    if not (_is_int(version) and runfile.OLDEST_FORMAT <= version <= runfile.FORMAT):
        raise ReportInputError(
            f"{path}: format {_short(version)} is not one this version reads "
            f"({runfile.OLDEST_FORMAT} to {runfile.FORMAT}); update im2col-bench to read it"
        )
    for number, bench in enumerate(data["benchmarks"], 1):
        problem = _benchmark_problem(bench)
        if problem:
            raise ReportInputError(f"{path}: benchmark {number}: {problem}")
    for key in ("skipped", "failed"):
        for number, rec in enumerate(extra.get(key, []), 1):
            problem = _row_problem(rec)
            if problem:
                raise ReportInputError(f"{path}: {key} row {number}: {problem}")
    names = benchmark_names(data)
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ReportInputError(f"{path}: benchmark {twice} is listed more than once")
    return data


def _short(value: Any) -> str:
    """``value``'s repr, cut to a few dozen characters for a one-line message."""
    return reprlib.repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _row_problem(row: dict[str, Any]) -> str | None:
    """What makes a row's shape or count field unusable (neither null nor an integer in
    range), or None."""
    for fields, (low, high) in ((SHAPE_FIELDS, SHAPE_RANGE), (COUNT_FIELDS, COUNT_RANGE)):
        for field in fields:
            value = row.get(field)
            # a whole float (a byte count that went through a float) reads as its integer
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            in_range = whole and low <= value <= high  # type: ignore[operator]
            if value is not None and (isinstance(value, bool) or not in_range):
                return f"{field} {_short(value)} is not an integer in [{low}, {high}]"
    return None


def _benchmark_problem(bench: Any) -> str | None:
    """What makes one entry of a run's ``benchmarks`` unusable, or None."""
    if not isinstance(bench, dict):
        return f"not an object but {type(bench).__name__}"
    name = bench.get("fullname") or bench.get("name")
    if not isinstance(name, str):
        return "no name"
    extra_info = bench.get("extra_info", {})
    if not isinstance(extra_info, dict):
        return f"{name}: extra_info is not an object"
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        return f"{name}: stats is not an object"
    if not is_plausible_time(stats.get("median")):
        median, (low, high) = _short(stats.get("median")), TIME_RANGE
        return f"{name}: median {median} is not a positive, finite number in [{low:g}, {high:g}] s"
    rounds = stats.get("rounds")
    if rounds is not None and not (_is_int(rounds) and 0 <= rounds <= COUNT_RANGE[1]):
        return f"{name}: rounds {_short(rounds)} is not a count"
    if not isinstance(stats.get("data", []), (list, type(None))):
        return f"{name}: data is not a list of rounds"
    problem = _row_problem(extra_info or {})
    if problem is None and (extra_info or {}).get("h") is None:
        problem = "no image size h in extra_info"
    return f"{name}: {problem}" if problem else None


def is_plausible_time(value: Any) -> bool:
    """Whether ``value`` is a usable time in seconds: a number in :data:`TIME_RANGE`."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and TIME_RANGE[0] <= value <= TIME_RANGE[1]
    )


def benchmark_names(run: dict[str, Any]) -> list[str]:
    """Each benchmark's full name, as the current harness names it (in a run of any format)."""
    version = runfile.format_of(run)
    return [
        runfile.migrated_name(str(b.get("fullname") or b.get("name")), version)
        for b in run["benchmarks"]
    ]


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


#: a run to load: its file, or its JSON already read by :func:`read_run`
RunSource = str | Path | dict[str, Any]


def _read_all(sources: Iterable[RunSource]) -> list[tuple[str, dict[str, Any]]]:
    runs = [s if isinstance(s, dict) else read_run(s) for s in sources]
    if not runs:
        raise ReportInputError("no runs given")
    return list(zip(_run_labels(runs), runs, strict=True))


def load(paths: Iterable[RunSource]) -> pd.DataFrame:
    """Every benchmark of every run, timed or skipped or failed, one row each.

    ``paths``: each run's file, or its JSON already read by :func:`read_run` (then it is not
    read again).

    Returns
    -------
    DataFrame
        Columns: run, kind ("conv" or "blas_limit"), backend, role, device, pass, config,
        n, h, c_in, c_out, kh, stride, dtype, flops, cols_bytes, traffic_bytes, peak_bytes
        (measured true memory), memory_error (why it was not measured, or ""),
        memory_estimate_bytes, median, iqr, rounds, times (every
        round's seconds, or None), others_cores, load_before, load_after, the run's
        limits for the row's dtype (:func:`machine_limits`), status ("ok", "skipped",
        "failed"), reason, name; plus the columns of :func:`derive`.
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
                "times": Rounds(
                    bench["stats"].get("data"), (bench.get("extra_info") or {}).get("round_trial")
                ),
                "status": "ok",
                "reason": "",
            }
            for name, bench in zip(benchmark_names(run), run["benchmarks"], strict=True)
        ]
        records += [{**rec, "status": "skipped"} for rec in extra.get("skipped", [])]
        records += [{**rec, "status": "failed"} for rec in extra.get("failed", [])]
        version = runfile.format_of(run)
        for rec in records:
            config = rec.get("config")
            rows.append(
                {
                    **rec,
                    **machine_limits(run, rec.get("dtype"), rec.get("device")),
                    "run": label,
                    "kind": rec.get("kind", "conv"),
                    "config": runfile.migrated_config(config, version),
                    "peak_bytes": rec.get("peak_extra_bytes"),
                }
            )
    return derive(pd.DataFrame(rows))


def load_runs(paths: Iterable[RunSource]) -> pd.DataFrame:
    """One row per run: machine, BLAS and its kernel, vector extensions, versions, GPU, threads,
    preset and what was left out; ``described``, the run in words (:func:`runinfo.describe`).
    ``paths`` as for :func:`load`."""
    rows = []
    for label, run in _read_all(paths):
        info = run["machine_info"]
        extra = run.get("im2col_bench") or {}
        cpu = json_object(info.get("cpu"))
        pools = info.get("blas") if isinstance(info.get("blas"), list) else []
        blas = "; ".join(
            f"{b.get('internal_api')} {b.get('version')} ({b.get('num_threads')} threads)"
            for b in pools
            if isinstance(b, dict)
        )
        fields = runinfo.machine(run)
        rows.append(
            {
                "run": label,
                # the whole records, for what reads more of them
                "machine_info": info,
                "im2col_bench": extra,
                "described": runinfo.describe(info, json_object(extra)),
                "node": info.get("node"),
                "datetime": run.get("datetime"),
                "cpu": cpu.get("brand_raw") or info.get("processor"),
                "cores": cpu.get("count"),
                "system": f"{info.get('system')} {info.get('release')}",
                "python": info.get("python_version"),
                "blas": blas or "unknown",
                "blas_kernel": fields["BLAS kernel"] or "unknown",
                "vector_extensions": fields["vector extensions"] or "unknown",
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
                "commit": json_object(run.get("commit_info")).get("id"),
            }
        )
    return pd.DataFrame(rows)


def machine_limits(run: dict[str, Any], dtype: Any, device: Any = "cpu") -> dict[str, Any]:
    """The limits a run measured for ``dtype`` on a row's ``device``: peak_gflops and its
    peak_source ("fma" or "matmul"), matmul_gflops, and the triad's bandwidth_gbs (the
    CPU's only); empty for a run without them. A GPU row's are the GPU's (``gpu_peaks``)."""
    info = json_object(run["machine_info"])
    key = "gpu_peaks" if device == "gpu" else "peaks"
    limits = json_object(info.get(key))
    entry = json_object(limits.get(str(dtype)))
    return {
        "peak_gflops": entry.get("peak_gflops"),
        "peak_source": entry.get("peak_source"),
        "matmul_gflops": entry.get("matmul_gflops"),
        "bandwidth_gbs": limits.get("bandwidth_gbs"),
    }


def json_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: machine info is shown, not trusted."""
    return value if isinstance(value, dict) else {}


def derive(df: pd.DataFrame) -> pd.DataFrame:
    """Add GFLOP/s, the shares of the measured peak and of the BLAS limit, the arithmetic
    intensity and its roof, intervals, flags, and the ratios with intervals.

    Added columns: gflops; pct_peak (of the run's measured peak for the row's dtype);
    intensity (FLOPs over the backend's modelled traffic_bytes), roof_gflops (the roofline
    at that intensity: min(peak, bandwidth x intensity)) and pct_roof; limit_gflops and
    pct_limit (of one big im2col + GEMM, timed in the run); median_low, median_high (the median's
    95% interval), spread (its half-width over the median), contended, noisy, flag
    ("contended", "noisy" or ""); speedup over the baseline with speedup_low,
    speedup_high and speedup_extrapolated; vs_yardstick (time over the yardstick's of the
    row's device, :data:`YARDSTICKS`, at the same shape) with vs_yardstick_low,
    vs_yardstick_high; host_s and device_s (a GPU row's median host time to queue a call and
    device time between its events) and launch_bound (True where the host's time reaches the
    device's, as the harness judged it). A ratio's interval is NaN where
    a side has no rounds or the baseline is extrapolated.
    """
    df = df.copy()
    for col in [
        "backend", "role", "device", "pass", "config", "dtype", "reason", "name", "peak_source",
        "memory_error",
    ]:  # fmt: skip
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
        "memory_estimate_bytes",
        "traffic_bytes",
        "peak_gflops",
        "matmul_gflops",
        "bandwidth_gbs",
        "median",
        "iqr",
        "rounds",
        "others_cores",
        "load_before",
        "load_after",
        "host_s",
        "device_s",
    ]:
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    if "times" not in df:
        df["times"] = None
    launch_bound = df["launch_bound"] if "launch_bound" in df else pd.Series(False, index=df.index)
    df["launch_bound"] = launch_bound.map(lambda v: v is True)
    df = _add_flags(df)
    df["gflops"] = df["flops"] / df["median"] / 1e9
    df["pct_peak"] = 100 * df["gflops"] / df["peak_gflops"]
    df["intensity"] = df["flops"] / df["traffic_bytes"].where(df["traffic_bytes"] > 0)
    df["roof_gflops"] = np.minimum(df["peak_gflops"], df["bandwidth_gbs"] * df["intensity"])
    df["pct_roof"] = 100 * df["gflops"] / df["roof_gflops"]
    limits = df[(df["kind"] == "blas_limit") & (df["status"] == "ok")]
    default_limit = limits[limits["config"] != RESNET].groupby("run")["gflops"].max()
    df["limit_gflops"] = df["run"].map(default_limit)
    df["pct_limit"] = 100 * df["gflops"] / df["limit_gflops"]
    df["speedup"] = np.nan
    df["speedup_extrapolated"] = False
    for col in (
        "speedup_low",
        "speedup_high",
        "vs_yardstick",
        "vs_yardstick_low",
        "vs_yardstick_high",
    ):
        df[col] = np.nan
    conv = df[df["kind"] == "conv"]
    for _, group in conv.groupby(["run", "pass", *SHAPE_KEYS[:1]], sort=False):
        base = baseline_times(group)
        speedup = base.reindex(group.index)["time"] / group["median"]
        df.loc[group.index, "speedup"] = speedup
        df.loc[group.index, "speedup_extrapolated"] = base.reindex(group.index)["extrapolated"]
        ratios: list[tuple[str, str, bool, str | None]] = [(BASELINE, "speedup", True, None)]
        ratios += [(name, "vs_yardstick", False, device) for device, name in YARDSTICKS.items()]
        for name, column, inverted, device in ratios:
            for idx, ratio in _ratios(group, name, inverted, device).items():
                df.loc[idx, [column, f"{column}_low", f"{column}_high"]] = [
                    ratio.value,
                    ratio.low,
                    ratio.high,
                ]
    df["speedup_extrapolated"] = df["speedup_extrapolated"].fillna(False).astype(bool)
    _add_duet(df)
    return df


#: how a duet's old twin of backend NAME is named (benchmarks.duet.OLD_SUFFIX)
OLD_SUFFIX = "@old"


def _add_duet(df: pd.DataFrame) -> None:
    """vs_old with vs_old_low, vs_old_high: a row's time over its old twin's (``NAME@old``,
    timed in the same trials by ``--duet``), paired by trial; NaN where it has none."""
    for col in ("vs_old", "vs_old_low", "vs_old_high"):
        df[col] = np.nan
    ok = df[(df["status"] == "ok") & (df["kind"] == "conv")]
    if not ok["backend"].str.endswith(OLD_SUFFIX).any():
        return
    keys = ["run", "pass", *SHAPE_KEYS]
    twins = {
        (r["backend"].removesuffix(OLD_SUFFIX), *(r[k] for k in keys)): r
        for _, r in ok[ok["backend"].str.endswith(OLD_SUFFIX)].iterrows()
    }
    for idx, row in ok.iterrows():
        twin = twins.get((row["backend"], *(row[k] for k in keys)))
        if twin is not None:
            ratio = ratio_interval(row["times"], twin["times"])
            df.loc[idx, ["vs_old", "vs_old_low", "vs_old_high"]] = [
                ratio.value,
                ratio.low,
                ratio.high,
            ]


def _add_flags(df: pd.DataFrame) -> pd.DataFrame:
    """Each timed row's median interval, spread, and contended / noisy flags."""
    intervals = [
        median_interval(times) if status == "ok" else Interval(np.nan)
        for times, status in zip(df["times"], df["status"], strict=True)
    ]
    # a run of trials: a row's time is the geometric mean of its trial medians
    df["median"] = [
        i.value if _has_trials(times) and np.isfinite(i.value) else m
        for i, times, m in zip(intervals, df["times"], df["median"], strict=True)
    ]
    agreeing = [trials_agreeing(times) for times in df["times"]]
    df["trials"] = [n for _, n in agreeing]
    df["trials_agreeing"] = [a for a, _ in agreeing]
    df["median_low"] = [i.low for i in intervals]
    df["median_high"] = [i.high for i in intervals]
    df["spread"] = [i.half_width for i in intervals]
    contended = df["contended"] if "contended" in df else pd.Series(False, index=df.index)
    df["contended"] = contended.map(lambda v: v is True)
    df["noisy"] = [is_noisy(i) for i in intervals]
    df["flag"] = [flag(c, n) for c, n in zip(df["contended"], df["noisy"], strict=True)]
    return df


def _has_trials(times: Any) -> bool:
    return isinstance(times, Rounds) and times.by_trial() is not None


def flag(contended: bool, noisy: bool) -> str:
    """A timed row's flag: "contended" (other processes took its cores) before "noisy"."""
    return "contended" if contended else "noisy" if noisy else ""


def _ratios(
    group: pd.DataFrame, name: str, inverted: bool, device: str | None = None
) -> dict[Any, Interval]:
    """Each timed row's ratio to backend ``name``'s row of the same shape, with its interval.

    ``inverted``: name's time over the row's (a speedup); otherwise the row's over name's.
    With ``device``, only that device's rows get one. The value is the ratio of the medians;
    the interval is NaN where a side has no rounds.
    """
    keys = SHAPE_KEYS[1:]
    ok = group[group["status"] == "ok"]
    theirs = {tuple(r[k] for k in keys): r for _, r in ok[ok["backend"] == name].iterrows()}
    out = {}
    for idx, row in ok.iterrows():
        if device is not None and (row["device"] or "cpu") != device:
            continue
        other = theirs.get(tuple(row[k] for k in keys))
        if other is None:
            continue
        top, bottom = (other, row) if inverted else (row, other)
        ratio = ratio_interval(top["times"], bottom["times"])
        out[idx] = Interval(top["median"] / bottom["median"], ratio.low, ratio.high)
    return out


def ratio_flag(*rows: pd.Series) -> str:
    """The flag of a ratio: "contended" or "noisy" if a row it rests on is (contended first)."""
    flags = {str(row.get("flag") or "") for row in rows}
    return "contended" if "contended" in flags else "noisy" if "noisy" in flags else ""


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


def flagged_names(run: RunSource) -> list[str]:
    """The full names of a saved run's timed benchmarks that are contended or noisy; ``run``
    as for :func:`load`."""
    df = load([run])
    return df[(df["status"] == "ok") & (df["flag"] != "")]["name"].tolist()


def timed(df: pd.DataFrame, config: str | None = SWEEP) -> pd.DataFrame:
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


HEADLINE_COLUMNS = [
    "run",
    "pass",
    "size",
    "backend",
    "median",
    "median_low",
    "median_high",
    "speedup",
    "speedup_low",
    "speedup_high",
    "baseline_fastest",
    "tied",
    "same_size",
    "flag",
]


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Per run and pass: the fastest contender at a size that every contender reached.

    The size is the largest at which every contender was timed in every pass (same_size
    True), or, where the passes share none, the largest every contender of that pass
    reached. The speedup over the baseline is measured at that size, never extrapolated;
    where the baseline itself is fastest, baseline_fastest is True and the speedup is 1.
    tied names the contenders not significantly slower than the fastest (the interval of
    their time over its time reaches 1), comma-separated. flag is "contended" or "noisy"
    when the fastest row or the baseline's row is.

    Returns
    -------
    DataFrame
        Columns: :data:`HEADLINE_COLUMNS`; one row per run and pass that has such a size.
    """
    rows = []
    for run, in_run in contenders(timed(df)).groupby("run", sort=False):
        passes = ordered_passes(in_run["pass"])
        reached = {p: _reached_by_all(in_run[in_run["pass"] == p]) for p in passes}
        everywhere = set.intersection(*reached.values()) if reached else set()
        for pass_ in passes:
            sizes = everywhere or reached[pass_]
            if not sizes:
                continue
            at = in_run[(in_run["pass"] == pass_) & (in_run["h"] == max(sizes))]
            best = at.loc[at["median"].idxmin()]
            base = at[at["backend"] == BASELINE]
            fastest = best["backend"] == BASELINE
            tied = [
                row["backend"]
                for _, row in at.sort_values("median").iterrows()
                if row["backend"] != best["backend"]
                and ratio_interval(row["times"], best["times"]).low <= 1
            ]
            rows.append(
                {
                    "run": run,
                    "pass": pass_,
                    "size": int(best["h"]),
                    "backend": best["backend"],
                    "median": best["median"],
                    "median_low": best["median_low"],
                    "median_high": best["median_high"],
                    "speedup": 1.0 if fastest else best["speedup"],
                    "speedup_low": np.nan if fastest else best["speedup_low"],
                    "speedup_high": np.nan if fastest else best["speedup_high"],
                    "baseline_fastest": bool(fastest),
                    "tied": ", ".join(tied),
                    "same_size": bool(everywhere),
                    "flag": ratio_flag(best, *(r for _, r in base.iterrows())),
                }
            )
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS)


def _reached_by_all(rows: pd.DataFrame) -> set[int]:
    """The image sizes at which every backend in ``rows`` was timed."""
    return set.intersection(*(set(g["h"].astype(int)) for _, g in rows.groupby("backend")))


def scaling_exponents(df: pd.DataFrame) -> pd.Series:
    """Fitted exponent e of time = a * pixels^e per (run, backend, pass) of the default sweep."""
    sweep = timed(df)
    out = {}
    for key, group in sweep.groupby(["run", "backend", "pass"]):
        if group["h"].nunique() >= 2:
            out[key] = np.polyfit(np.log(group["h"] ** 2), np.log(group["median"]), 1)[0]
    return pd.Series(out, dtype=float)

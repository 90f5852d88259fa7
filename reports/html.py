"""One self-contained HTML page per report: inline SVG, inline CSS, no script, no network."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import pandas as pd

from benchmarks.runfile import BATCH, PASS_ORDER, RESNET, RESNET50, SWEEP, pass_rank

from .accuracy import ERRORS, case_errors, error_text, errors
from .article import Claim
from .data import BASELINE, SHAPE_KEYS, YARDSTICKS
from .goals import Verdict
from .network import REDUCTION_BOUND, layer_table, network_rows
from .plots import PLOTS, ROLE_LINES, ROLE_TITLES, role_order, style
from .report import Report
from .stats import AGREE, MAX_ROUNDS, NOISY_HALF_WIDTH, Interval
from .trials import render_duet, render_trials

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 90em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.45em; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
#results td { white-space: nowrap; }
#results td.t, #results td.fastest, #errors td.t {
  text-align: right; font-variant-numeric: tabular-nums; }
#results th.b { white-space: nowrap; }
#results tr.pass th { background: #e8e8e8; font-size: 1.05em; }
td.fastest { background: #d8f5d0; font-weight: bold; }
td.skipped, td.na { color: #999; text-align: center; } td.failed { color: #b00; }
small { color: #666; font-weight: normal; }
.met, .v-holds { color: #070; font-weight: bold; }
.notmet, .v-fails { color: #b00; font-weight: bold; }
.v-partly { color: #a60; font-weight: bold; } .v-none { color: #777; }
.extra { font-style: italic; color: #a60; }
.note { color: #444; max-width: 60em; }
#index td.when, #index td.duration, #index td.preset { white-space: nowrap; }
details summary { cursor: pointer; color: #035; margin: 0.4em 0; }
figure { margin: 0.5em 0; } svg { max-width: 100%; height: auto; }
.flag, td.contended, td.noisy { color: #a60; }
.trust { border-left: 4px solid #a60; padding-left: 0.5em; }
"""
#: the CSS class of each verdict of the article's claims
VERDICT_CLASS = {
    "holds": "v-holds",
    "does not hold": "v-fails",
    "partly": "v-partly",
    "not measured": "v-none",
}
#: how a role's line looks in the plots, as a CSS border
ROLE_BORDERS = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "double"}


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _shape(row: pd.Series) -> str:
    return (
        f"{row['config']}: N={row['n']:.0f} {row['h']:.0f}x{row['h']:.0f} "
        f"{row['c_in']:.0f}->{row['c_out']:.0f} {row['kh']:.0f}x{row['kh']:.0f} "
        f"s{row['stride']:.0f} {row['dtype']}"
    )


def _size(row: pd.Series) -> str:
    """The shape in a few characters: ``64px`` in the sweep, ``stride2 64px`` for a one-factor
    row, ``resnet50 3x3 64->64 s1 56px`` for a ResNet-50 layer, ``batch N=8 56px``."""
    size = f"{row['h']:.0f}px"
    if row["config"] == SWEEP:
        return size
    if row["config"] == RESNET50:
        layer = f"{row['kh']:.0f}x{row['kh']:.0f} {row['c_in']:.0f}->{row['c_out']:.0f}"
        return f"{RESNET50} {layer} s{row['stride']:.0f} {size}"
    if row["config"] == BATCH:
        return f"{BATCH} N={row['n']:.0f} {size}"
    return f"{row['config']} {size}"


def _config_group(config: str) -> int:
    """Where a configuration's rows sort: the sweep, then the one-factor rows, then the
    resnet layer."""
    return 0 if config == SWEEP else 2 if config == RESNET else 1


def _launch_line(row: pd.Series) -> str | None:
    """A GPU row's host and device time per call, and whether the launches bound it."""
    if pd.isna(row.get("host_s")) or pd.isna(row.get("device_s")):
        return None
    bound = (
        "bound by the host's launches (the GPU waits for them)"
        if row["launch_bound"]
        else "the GPU is the bound"
    )
    return (
        f"host {_fmt_time(row['host_s'])} to queue a call, device "
        f"{_fmt_time(row['device_s'])} between its events: {bound}"
    )


def _title(lines: Iterable[str]) -> str:
    """A ``title`` attribute: a tooltip, one line per entry."""
    return escape("\n".join(lines)).replace("\n", "&#10;")


def _interval(row: pd.Series) -> tuple[float, float] | None:
    """The median's 95% interval where the run has one (``median_low``/``ci_low`` columns)."""
    for low, high in (("median_low", "median_high"), ("ci_low", "ci_high")):
        if low in row and high in row and pd.notna(row[low]) and pd.notna(row[high]):
            return float(row[low]), float(row[high])
    return None


def _ratio(value: float, low: float, high: float) -> str:
    """A ratio with its interval: ``13.1x [12.6, 13.5]``."""
    return Interval(value, low, high).text()


def _time_interval(row: pd.Series) -> str:
    """A median time with its interval: ``27 ms [26.5 ms, 27.6 ms]``."""
    if pd.isna(row["median_low"]):
        return f"{_fmt_time(row['median'])} [no interval]"
    low, high = _fmt_time(row["median_low"]), _fmt_time(row["median_high"])
    return f"{_fmt_time(row['median'])} [{low}, {high}]"


def _details(row: pd.Series) -> list[str]:
    """Everything measured about one timed row, a line each: the cell's tooltip."""
    lines = [f"{row['backend']}, {row['pass']}, {_shape(row)}"]
    lines.append(f"median {_fmt_time(row['median'])}")
    interval = _interval(row)
    if interval:
        lines.append(f"95% interval {_fmt_time(interval[0])} to {_fmt_time(interval[1])}")
    if pd.notna(row["iqr"]):
        lines.append(f"IQR {_fmt_time(row['iqr'])}, {row['rounds']:.0f} rounds")
    if row.get("trials", 0) >= 2:
        lines.append(
            f"{row['trials_agreeing']:.0f} of {row['trials']:.0f} trials within "
            f"+-{100 * AGREE:g}% of the time"
        )
    if pd.notna(row["gflops"]) and row["flops"] > 0:
        pct = "" if pd.isna(row["pct_peak"]) else f", {row['pct_peak']:.0f}% of the machine's peak"
        lines.append(f"{row['gflops']:.3g} GFLOP/s{pct}")
        if pd.notna(row["roof_gflops"]):
            lines.append(
                f"{row['intensity']:.3g} FLOP/byte: the roof there is "
                f"{row['roof_gflops']:.3g} GFLOP/s ({row['pct_roof']:.0f}% of it reached)"
            )
        if pd.notna(row["pct_limit"]):
            lines.append(f"{row['pct_limit']:.0f}% of one big im2col + GEMM")
    if pd.notna(row["speedup"]):
        if row["speedup_extrapolated"]:
            lines.append(
                f"{row['speedup']:.3g}x as fast as {BASELINE} (against its extrapolated time)"
            )
        else:
            speedup = _ratio(row["speedup"], row["speedup_low"], row["speedup_high"])
            lines.append(f"{speedup} as fast as {BASELINE}")
    yardstick = YARDSTICKS.get(str(row.get("device") or "cpu"), "")
    if pd.notna(row.get("vs_yardstick")) and row["backend"] != yardstick:
        ratio = _ratio(row["vs_yardstick"], row["vs_yardstick_low"], row["vs_yardstick_high"])
        lines.append(f"{ratio} the time of {yardstick}")
    launch = _launch_line(row)
    if launch:
        lines.append(launch)
    measured = [
        f"{name.removeprefix('error_')} {error_text(row[name])}"
        for name in ERRORS
        if pd.notna(row.get(name))
    ]
    if measured:
        lines.append(f"error against float64: {', '.join(measured)}")
    if str(row.get("flag") or ""):
        lines.append(f"flagged: {row['flag']}")
    return lines


def _cell(row: pd.Series, fastest: bool) -> str:
    """One number: the median, with the half-width of its interval where there is one."""
    if row["status"] == "failed":
        return f"<td class='failed' title='{_title([row['reason']])}'>failed</td>"
    if row["status"] != "ok":
        return f"<td class='skipped' title='{_title([row['reason']])}'>&ndash;</td>"
    text = escape(_fmt_time(row["median"]))
    interval = _interval(row)
    if interval:
        half = max(interval[1] - row["median"], row["median"] - interval[0]) / row["median"]
        text += f" <small>&plusmn;{100 * half:.0f}%</small>"
    if str(row.get("flag") or ""):
        text += " &#9888;"
    if bool(row.get("launch_bound", False)):
        text += " <small class='launch'>L</small>"
    star = "&#9733; " if fastest else ""
    cls = "fastest" if fastest else "t"
    return f"<td class='{cls}' title='{_title(_details(row))}'>{star}{text}</td>"


def _backend_header(backend: str, role: str) -> str:
    look = style(backend, role)
    border = ROLE_BORDERS.get(ROLE_LINES.get(role, "-"), "solid")
    return (
        f"<th class='b' style='border-bottom: 4px {border} {look['color']}' "
        f"title='{escape(ROLE_TITLES.get(role, role))}'>{escape(backend)}</th>"
    )


def render_table(df: pd.DataFrame) -> str:
    """The median of every timed backend x shape x pass, one number per cell.

    A column per backend that was timed at all, a row per pass and shape (and run) where at
    least one backend was; the fastest cell of a row is marked, and everything else measured
    is in each cell's tooltip and in :func:`render_details`.
    """
    conv = df[df["kind"] == "conv"].copy()
    ok = conv[conv["status"] == "ok"]
    if ok.empty:
        return "<p>No backend was timed.</p>"
    roles = dict(zip(ok["backend"], ok["role"], strict=True))
    columns = sorted(roles, key=role_order(ok))
    multi = conv["run"].nunique() > 1
    conv = conv[conv["backend"].isin(columns)]
    conv["order"] = conv["pass"].map(pass_rank)
    # the sweep by size, then the one-factor rows, then the resnet layer
    conv["group"] = conv["config"].map(_config_group)
    conv["cost"] = conv["n"] * conv["h"] ** 2 * conv["kh"] ** 2 * conv["c_in"] * conv["c_out"]
    head = "".join(_backend_header(c, roles[c]) for c in columns)
    lead = "<th>shape</th>" + ("<th>run</th>" if multi else "")
    out = [f"<table id='results'><tr>{lead}{head}</tr>"]
    width = len(columns) + (2 if multi else 1)
    for pass_, by_pass in conv.sort_values(["order", "group", "cost", "config"]).groupby(
        "pass", sort=False
    ):
        rows_out = []
        for (_, _, run), group in by_pass.groupby(["group", "cost", "run"], sort=False):
            for _, at in group.groupby(SHAPE_KEYS, sort=False, dropna=False):
                timed_here = at[at["status"] == "ok"]
                if timed_here.empty:
                    continue
                fastest = timed_here.loc[timed_here["median"].idxmin(), "backend"]
                first = at.iloc[0]
                cells = []
                for column in columns:
                    rows = at[at["backend"] == column]
                    cells.append(
                        _cell(rows.iloc[0], column == fastest)
                        if not rows.empty
                        else "<td class='na'></td>"
                    )
                label = f"<td title='{_title([_shape(first)])}'>{escape(_size(first))}</td>"
                run_cell = f"<td>{escape(str(run))}</td>" if multi else ""
                rows_out.append(f"<tr>{label}{run_cell}{''.join(cells)}</tr>")
        if rows_out:
            out.append(f"<tr class='pass'><th colspan='{width}'>{escape(str(pass_))}</th></tr>")
            out += rows_out
    out.append("</table>")
    return "\n".join(out)


def render_errors(df: pd.DataFrame) -> str:
    """Each backend's worst error against float64 (of y, dx and dw) per shape, a column per
    backend as in the results table; "" for a run without errors."""
    found = case_errors(df)
    if found.empty:
        return ""
    columns = sorted(set(found["backend"]), key=role_order(found))
    roles = dict(zip(found["backend"], found["role"], strict=True))
    multi = found["run"].nunique() > 1
    found["group"] = found["config"].map(_config_group)
    found["cost"] = found["n"] * found["h"] ** 2 * found["kh"] ** 2 * found["c_in"] * found["c_out"]
    head = "".join(_backend_header(c, roles[c]) for c in columns)
    out = [f"<table id='errors'><tr><th>shape</th>{'<th>run</th>' if multi else ''}{head}</tr>"]
    for _, at in found.sort_values(["group", "cost", "config", "run"]).groupby(
        ["group", "cost", "config", "run"], sort=False
    ):
        first = at.iloc[0]
        cells = []
        for column in columns:
            rows = at[at["backend"] == column]
            if rows.empty:
                cells.append("<td class='na'></td>")
                continue
            row = rows.iloc[0]
            tip = [f"{name.removeprefix('error_')} {error_text(row[name])}" for name in ERRORS]
            cells.append(f"<td class='t' title='{_title(tip)}'>{error_text(row['error'])}</td>")
        label = f"<td title='{_title([_shape(first)])}'>{escape(_size(first))}</td>"
        run_cell = f"<td>{escape(str(first['run']))}</td>" if multi else ""
        out.append(f"<tr>{label}{run_cell}{''.join(cells)}</tr>")
    out.append("</table>")
    return (
        "<p class='note'>The largest error of y, dx and dw against the float64 reference, "
        "on the inputs each backend was timed on, relative to the largest magnitude of the "
        "float64 result (hover a cell for the three).</p>" + "\n".join(out)
    )


def render_details(df: pd.DataFrame) -> str:
    """Every timed row with all its numbers, in a collapsed section: no script needed."""
    ok = errors(df[(df["kind"] != "blas_limit") & (df["status"] == "ok")])
    if ok.empty:
        return ""
    ok["order"] = ok["pass"].map(pass_rank)
    ok = ok.sort_values(["order", "config", "h", "backend", "run"])
    multi = ok["run"].nunique() > 1
    has_interval = any(c in ok for c in ("median_low", "ci_low"))
    has_flag = "flag" in ok
    head = ["pass", "shape", *(["run"] if multi else []), "backend", "median"]
    head += ["95% interval"] if has_interval else []
    head += ["IQR", "rounds", "GFLOP/s", "% of peak", "FLOP/byte", "% of one im2col + GEMM"]
    head += [f"speedup over {BASELINE}", "error vs float64"]
    has_gpu = bool(ok["device_s"].notna().any()) if "device_s" in ok else False
    head += ["host / device per call (GPU)"] if has_gpu else []
    head += ["flag"] if has_flag else []
    rows = []
    for _, row in ok.iterrows():
        interval = _interval(row)
        speedup = "" if pd.isna(row["speedup"]) else f"{row['speedup']:.3g}x"
        speedup += " (extrapolated)" if speedup and row["speedup_extrapolated"] else ""
        at = f" at {row['threads']:.0f} threads" if row["kind"] == "threads" else ""
        cells = [row["pass"] + at, _size(row), *([row["run"]] if multi else []), row["backend"]]
        cells.append(_fmt_time(row["median"]))
        if has_interval:
            cells.append(
                f"{_fmt_time(interval[0])} to {_fmt_time(interval[1])}" if interval else ""
            )
        cells += [
            _fmt_time(row["iqr"]) if pd.notna(row["iqr"]) else "",
            f"{row['rounds']:.0f}" if pd.notna(row["rounds"]) else "",
            f"{row['gflops']:.3g}" if row["flops"] > 0 else "",
            f"{row['pct_peak']:.0f}%" if pd.notna(row["pct_peak"]) and row["flops"] > 0 else "",
            f"{row['intensity']:.3g}" if pd.notna(row["intensity"]) else "",
            f"{row['pct_limit']:.0f}%" if pd.notna(row["pct_limit"]) and row["flops"] > 0 else "",
            speedup,
            error_text(row["error"]),
        ]
        if has_gpu:
            cells.append(
                f"{_fmt_time(row['host_s'])} / {_fmt_time(row['device_s'])}"
                + (" (launch-bound)" if row["launch_bound"] else "")
                if pd.notna(row["device_s"]) and pd.notna(row["host_s"])
                else ""
            )
        cells += [str(row["flag"] or "")] if has_flag else []
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return (
        f"<details id='all-numbers'><summary>Every timed row with all its numbers ({len(rows)} "
        "rows: median, IQR, rounds, GFLOP/s, share of the peak, intensity, speedup, error)"
        "</summary>"
        "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
        + "".join(rows) + "</table></details>"
    )  # fmt: skip


def _where(group: pd.DataFrame, everything: pd.DataFrame) -> str:
    """Which cases a reason covers, compactly: "every case", or shapes with their passes."""
    if len(group) == len(everything):
        return "every case"
    parts = []
    for (_, _, label), at in group.groupby(["config", "h", "size"], sort=True):
        passes = sorted(set(at["pass"]), key=lambda p: (p not in PASS_ORDER, p))
        parts.append(f"{label} ({', '.join(passes)})")
    return "; ".join(parts)


def render_not_timed(df: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Each backend and reason once: left out, unavailable, declined, skipped or failed, and
    timed steps whose memory was not measured."""
    multi = len(runs) > 1
    items = []
    for _, run in runs.iterrows():
        for rec in run["left_out"]:
            items.append((run["run"], "left out", rec.get("backend", ""), rec.get("reason", ""),
                          "every case"))  # fmt: skip
    bad = df[df["status"] != "ok"].copy()
    bad["size"] = [
        _size(r) if r["kind"] != "blas_limit" else f"BLAS limit {r['config']} {r['h']:.0f}px"
        for _, r in bad.iterrows()
    ]
    order = role_order(df[df["backend"] != ""])
    bad["rank"] = bad["backend"].map(lambda b: order(b) if b else (9, ""))
    for (run, backend, status, reason), group in bad.sort_values("rank").groupby(
        ["run", "backend", "status", "reason"], sort=False
    ):
        everything = df[(df["run"] == run) & (df["backend"] == backend)]
        items.append((run, status, backend or "(BLAS limit)", reason, _where(group, everything)))
    unmeasured = df[(df["status"] == "ok") & (df["memory_error"] != "")].copy()
    unmeasured["size"] = [_size(r) for _, r in unmeasured.iterrows()]
    for (run, backend, reason), group in unmeasured.groupby(
        ["run", "backend", "memory_error"], sort=False
    ):
        everything = df[(df["run"] == run) & (df["backend"] == backend)]
        items.append((run, "memory not measured", backend, reason, _where(group, everything)))
    if not items:
        return "<p>Every backend was timed on every case.</p>"
    head = (["run"] if multi else []) + ["backend", "status", "reason", "cases"]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td class='failed'>{escape(str(v))}</td>" if v == "failed" else
            f"<td>{escape(str(v))}</td>"
            for v in ([run] if multi else []) + [backend, status, reason, where]
        )
        + "</tr>"
        for run, status, backend, reason, where in items
    )  # fmt: skip
    return (
        "<table id='not-timed'><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + f"</tr>{rows}</table>"
    )


def render_runs(runs: pd.DataFrame, backends: dict[str, tuple[str, str]]) -> str:
    """What tells the runs apart, a column per run: CPU, vector extensions, BLAS, threads...;
    ``backends``: each run's timed backends (:func:`reports.report.timed_backends`)."""
    fields = [
        ("date", lambda run, d: str(run["datetime"] or "")[:16].replace("T", " ")),
        ("machine", lambda run, d: d["machine"]),
        ("CPU", lambda run, d: d["cpu"]),
        ("vector extensions", lambda run, d: d["vector"]),
        ("BLAS", lambda run, d: d["blas"]),
        ("cores and threads", lambda run, d: d["cores"]),
        ("measured peak and bandwidth", lambda run, d: d["limits"]),
        ("GPU", lambda run, d: d["gpu"]),
        ("preset", lambda run, d: d["preset"]),
        ("duration", lambda run, d: d["duration"]),
        ("backends timed", lambda run, d: ": ".join(backends[run["run"]])),
        ("state", lambda run, d: d["interrupted"]),
    ]
    described = [(run, run["described"]) for _, run in runs.iterrows()]
    out = ["<table id='runs'><tr><th></th>"]
    out += [f"<th>{escape(str(run['run']))}</th>" for run, _ in described]
    out.append("</tr>")
    for name, value in fields:
        cells = []
        for run, facts in described:
            text = escape(value(run, facts))
            cls = " class='notmet'" if text == "interrupted" else ""
            cells.append(f"<td{cls}>{text}</td>")
        out.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def render_versions(runs: pd.DataFrame) -> str:
    """Software versions and the rest of the machine info, collapsed."""
    shown = runs.drop(
        columns=["left_out", "machine_info", "im2col_bench", "described"], errors="ignore"
    ).set_index("run")
    rows = "".join(
        f"<tr><th>{escape(str(key))}</th>"
        + "".join(f"<td>{escape(str(v))}</td>" for v in values)
        + "</tr>"
        for key, values in shown.T.iterrows()
    )
    head = "".join(f"<th>{escape(str(c))}</th>" for c in shown.index)
    return (
        "<details><summary>Software versions and the rest of the machine info</summary>"
        f"<table id='machines'><tr><th></th>{head}</tr>{rows}</table></details>"
    )


def render_headline(rows: pd.DataFrame, multi: bool) -> str:
    """The headline's rows (:func:`reports.data.headline`), a line each; ``multi``: name the
    run in each."""
    if rows.empty:
        return "<p>No contender (seed or ours) was timed on the default sweep.</p>"
    items = []
    for _, row in rows.iterrows():
        where = f"at {row['size']}x{row['size']} ({escape(_time_interval(row))})"
        if row["baseline_fastest"]:
            speed = f"no contender beats {BASELINE} here"
        elif pd.isna(row["speedup"]):
            speed = f"no {BASELINE} time to compare with"
        elif not row["speedup_low"] > 1:
            speedup = _ratio(row["speedup"], row["speedup_low"], row["speedup_high"])
            speed = f"{escape(speedup)} the speed of {BASELINE}: not clearly faster"
        else:
            speedup = _ratio(row["speedup"], row["speedup_low"], row["speedup_high"])
            speed = f"<b>{escape(speedup)}</b> faster than {BASELINE}"
        if row["tied"]:
            speed += f"; tied within the intervals with {escape(row['tied'])}"
        if row["flag"]:
            speed += f" <span class='flag'>(\u26a0 {escape(row['flag'])})</span>"
        run = f" on {escape(str(row['run']))}" if multi else ""
        items.append(
            f"<li>{escape(row['pass'])}{run}: <b>{escape(row['backend'])}</b> is fastest "
            f"{where}, {speed}</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def render_goals(verdicts: dict[str, list[Verdict]]) -> str:
    """Each run's goals: what is compared, the verdict, the ratio with its interval, the bound."""
    items = []
    for run, found in verdicts.items():
        for verdict in found:
            cls = {True: "met", False: "notmet", None: "flag" if verdict.flag else ""}
            ratio = f" at {verdict.measured}" if verdict.measured else ""
            prefix = f"{escape(run)}: " if len(verdicts) > 1 else ""
            goal = verdict.goal
            items.append(
                f"<li>{prefix}{escape(goal.name)}: <span class='{cls[verdict.met]}'>"
                f"{escape(verdict.state)}</span>"
                f"{escape(ratio)}. Goal: {escape(goal.bound)} at the {escape(goal.config)} "
                f"configuration; {escape(verdict.detail)}.</li>"
            )
    return (
        "<p>Each ratio is shown with its 95% interval; a goal is met or not met only when "
        "the whole interval says so.</p><ul id='goals'>" + "".join(items) + "</ul>"
    )


def render_trust(df: pd.DataFrame) -> str:
    """How many timed rows are contended or noisy, what that means and what to do; "" if none."""
    rows = df[df["status"] == "ok"]
    contended, noisy = int(rows["contended"].sum()), int((rows["flag"] == "noisy").sum())
    if not (contended or noisy):
        return ""
    return (
        f"<p class='trust' id='trust'>&#9888; {contended} of {len(rows)} timed rows are "
        f"<b>contended</b> (other processes took the cores their threads needed) and {noisy} "
        f"are <b>noisy</b> (the 95% interval of the median is wider than "
        f"&plusmn;{100 * NOISY_HALF_WIDTH:g}%); they are marked &#9888; below, and a goal "
        "that rests on one is inconclusive. For numbers you can trust, run on a quiet "
        "machine, or with <code>--threads 1</code> (a busy core then stalls no thread pool), "
        "or rerun just these rows with <code>--rerun-flagged RUN.json</code>.</p>"
    )


def _frame(table: pd.DataFrame, table_id: str = "") -> str:
    """A small table of text cells, its index as the first column."""
    if table.empty:
        return ""
    ident = f" id='{escape(table_id)}'" if table_id else ""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in ["", *table.columns])
    rows = "".join(
        f"<tr><th>{escape(str(index))}</th>"
        + "".join(f"<td>{escape(str(v))}</td>" for v in values)
        + "</tr>"
        for index, values in zip(table.index, table.to_numpy(), strict=True)
    )
    return f"<table{ident}><tr>{head}</tr>{rows}</table>"


def render_article(claims: dict[str, list[Claim]]) -> str:
    """The article's claims, each with its verdict and the numbers of every run."""
    runs = list(claims)
    if not runs:
        return ""
    out = ["<table id='article'><tr><th>the article says</th>"]
    out.append("<th>run</th>" if len(runs) > 1 else "")
    out.append("<th>verdict</th><th>what the run measured</th></tr>")
    for number, said in enumerate(c.said for c in claims[runs[0]]):
        for i, run in enumerate(runs):
            claim = claims[run][number]
            said_cell = f"<td rowspan='{len(runs)}'>{escape(said)}</td>" if i == 0 else ""
            run_cell = f"<td>{escape(run)}</td>" if len(runs) > 1 else ""
            verdict = VERDICT_CLASS.get(claim.verdict, "")
            out.append(
                f"<tr>{said_cell}{run_cell}<td class='{verdict}'>{escape(claim.verdict)}</td>"
                f"<td>{escape(claim.found)}{_frame(claim.table)}</td></tr>"
            )
    out.append("</table>")
    return "".join(out)


def _figures(df: pd.DataFrame) -> str:
    parts = []
    for plot in PLOTS:
        parts.append(f"<h2>{escape(plot.title)}</h2>")
        if plot.note:
            parts.append(f"<p class='note'>{escape(plot.note)}</p>")
        parts.append(f"<figure id='plot-{escape(plot.name)}'>{plot.svg(df)}</figure>")
        if plot.table is not None:
            parts.append(_frame(plot.table(df), f"table-{plot.name}"))
    return "".join(parts)


def render_layers(df: pd.DataFrame) -> str:
    """Each real network's layers with every backend's step time, per run; "" for none."""
    rows = network_rows(df)
    parts = []
    for (run, network), at in rows.groupby(["run", "network"], sort=False):
        on = f" ({escape(str(run))})" if df["run"].nunique() > 1 else ""
        parts.append(f"<h3>{escape(str(network))}{on}</h3>")
        parts.append(_frame(layer_table(at, str(network)), f"layers-{network}"))
    if not parts:
        return ""
    return (
        "<h2>Real networks, layer by layer</h2><p class='note'>Each distinct convolution "
        "layer once, named after its first occurrence in torchvision's model, with x: how "
        "many of the network's layers share its shape (its weight in the whole-network "
        "figure), and each backend's median forward + backward time; &#9733; marks the "
        "fastest, - a layer not timed (declined, too slow: see Not timed). N*OH*OW is the "
        f"depth of dw's reduction; under {REDUCTION_BOUND} dw is reduction-bound (too little "
        "work per weight to keep the vector units and threads busy).</p>" + "".join(parts)
    )


def render(report: Report) -> str:
    """The whole report page, of what :func:`reports.report.load_report` computed."""
    df, runs, title = report.frame, report.runs, report.title
    interrupted = runs[runs["interrupted"]]["run"].tolist()
    warn = (
        (
            f"<p class='notmet'>Interrupted run(s): {escape(', '.join(interrupted))}; "
            "this report shows what finished.</p>"
        )
        if interrupted
        else ""
    )
    ours = report.contenders
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
{warn}
{render_runs(runs, report.backends)}
{render_trust(df)}
{render_trials(runs, df)}
<h2>Headline</h2>
<p>Fastest contender (seeds and ours: {escape(", ".join(ours) or "none")}; peers excluded)
per pass, at the largest image size every contender reached (in every pass where possible),
with its median and its speedup over {BASELINE}, each with its 95% interval.</p>
{render_headline(report.headline, df["run"].nunique() > 1)}
{render_duet(df)}
<h2>The article's claims, checked</h2>
<p class='note'>What the source article says about speed (and how it computes dx), against
this run's numbers. im2col's share is its time alone (the backends that expose it) over the
whole forward pass at the same shape.</p>
{render_article(report.claims)}
<h2>Goals</h2>
<p class='note'>What this project promises, each a ratio of two medians at the resnet
configuration, or, on the GPU, of two times summed over the distinct ResNet-50 layers at
batch 128 (each layer once); the GPU's peak is the higher of a float32 cuBLAS product and a
numba.cuda FMA loop, measured in the run. Float32 is IEEE float32 on both sides: TF32 is off
for cuDNN and for the peak's product.</p>
{render_goals(report.verdicts)}
{_figures(df)}
{render_layers(df)}
<h2>Results</h2>
<p class='note'>The median time of each backend per pass and shape; &#9733; and green mark the
fastest of a row. Hover a cell for its interval, IQR, rounds, GFLOP/s, share of the machine's
measured peak, arithmetic intensity and speedup; all of them are also in the table under it.
&ndash; is a case not timed (the reason is in its tooltip and in the next section). On a
GPU, <small>L</small> marks a row bound by the host's launches: the host took at least 90% of
the GPU's time to queue each call, so the GPU waited for Python, not the other way round. A column's
underline is its colour in the plots: solid ours, dashed the article's seeds, dotted the
libraries. A benchmark of more than {MAX_ROUNDS:,} rounds has its intervals from a random
{MAX_ROUNDS:,} of them.</p>
{render_table(df)}
{render_errors(df)}
{render_details(df)}
<h2>Not timed</h2>
{render_not_timed(df, runs)}
<h2>Machines</h2>
{render_versions(runs)}
</body></html>
"""

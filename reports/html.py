"""One self-contained HTML page per report: inline SVG, inline CSS, no network."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pandas as pd

from .data import BASELINE, PASS_ORDER, YARDSTICK, contenders, headline, timed
from .goals import Verdict
from .plots import PLOTS
from .stats import NOISY_HALF_WIDTH, Interval
from .storage import reported_runs

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
td.fastest { background: #d8f5d0; font-weight: bold; }
td.skipped, td.failed { color: #888; }
td.failed { color: #b00; }
.met { color: #070; font-weight: bold; } .notmet { color: #b00; font-weight: bold; }
.extra { font-style: italic; color: #a60; }
.flag, td.contended, td.noisy { color: #a60; }
.trust { border-left: 4px solid #a60; padding-left: 0.5em; }
figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _shape(row: pd.Series) -> str:
    return (
        f"{row['config']}: N={row['n']:.0f} {row['h']:.0f}x{row['h']:.0f} "
        f"{row['c_in']:.0f}->{row['c_out']:.0f} {row['kh']:.0f}x{row['kh']:.0f} "
        f"s{row['stride']:.0f} {row['dtype']}"
    )


def _ratio(value: float, low: float, high: float) -> str:
    """A ratio with its interval: ``13.1x [12.6, 13.5]``."""
    return Interval(value, low, high).text()


def _time_interval(row: pd.Series) -> str:
    """A median time with its interval: ``27 ms [26.5 ms, 27.6 ms]``."""
    if pd.isna(row["median_low"]):
        return f"{_fmt_time(row['median'])} [no interval]"
    low, high = _fmt_time(row["median_low"]), _fmt_time(row["median_high"])
    return f"{_fmt_time(row['median'])} [{low}, {high}]"


def _cell(row: pd.Series) -> str:
    if row["status"] != "ok":
        return escape(f"{row['status']}: {row['reason']}")
    parts = [f"{_time_interval(row)} (IQR {_fmt_time(row['iqr'])}, {row['rounds']:.0f} rounds)"]
    if row["flag"]:
        parts.append(f"\u26a0 {row['flag']}")
    if pd.notna(row["speedup"]):
        if row["speedup_extrapolated"]:
            parts.append(f"{row['speedup']:.3g}x vs {BASELINE} extrapolated")
        else:
            speedup = _ratio(row["speedup"], row["speedup_low"], row["speedup_high"])
            parts.append(f"{speedup} vs {BASELINE}")
    if pd.notna(row["vs_yardstick"]) and row["backend"] != YARDSTICK:
        ratio = _ratio(row["vs_yardstick"], row["vs_yardstick_low"], row["vs_yardstick_high"])
        parts.append(f"{ratio} the time of {YARDSTICK}")
    if pd.notna(row["gflops"]) and row["flops"] > 0:
        pct = "" if pd.isna(row["pct_limit"]) else f" ({row['pct_limit']:.0f}% of limit)"
        parts.append(f"{row['gflops']:.3g} GFLOP/s{pct}")
    return "<br>".join(escape(p) for p in parts)


def render_table(df: pd.DataFrame) -> str:
    """Median, IQR, rounds, speedup, GFLOP/s and % of limit per backend x shape x pass."""
    conv = df[df["kind"] == "conv"].copy()
    if conv.empty:
        return "<p>No conv benchmarks.</p>"
    multi = conv["run"].nunique() > 1
    conv["column"] = conv["backend"] + (" @ " + conv["run"] if multi else "")
    columns = sorted(conv["column"].unique())
    conv["order"] = conv["pass"].map({p: i for i, p in enumerate(PASS_ORDER)})
    conv["shape"] = conv.apply(_shape, axis=1)
    conv["cost"] = conv["n"] * conv["h"] ** 2 * conv["kh"] ** 2 * conv["c_in"] * conv["c_out"]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    out = [f"<table id='results'><tr><th>pass</th><th>shape</th>{head}</tr>"]
    for (_, _, shape), group in conv.groupby(["order", "cost", "shape"], sort=True):
        ok = group[group["status"] == "ok"]
        fastest = ok.loc[ok["median"].idxmin(), "column"] if not ok.empty else None
        cells = []
        for column in columns:
            rows = group[group["column"] == column]
            if rows.empty:
                cells.append("<td></td>")
                continue
            row = rows.iloc[0]
            cls = "fastest" if column == fastest else row["flag"] or row["status"]
            star = "&#9733; " if column == fastest else ""
            cells.append(f"<td class='{cls}'>{star}{_cell(row)}</td>")
        out.append(
            f"<tr><td>{escape(group['pass'].iloc[0])}</td><td>{escape(shape)}</td>"
            f"{''.join(cells)}</tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def render_headline(df: pd.DataFrame) -> str:
    rows = headline(df)
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
        run = f" on {escape(str(row['run']))}" if df["run"].nunique() > 1 else ""
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
            ratio = "" if verdict.ratio is None else f" at {verdict.interval.text()}"
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


def render_machines(runs: pd.DataFrame) -> str:
    shown = runs.drop(columns=["left_out"]).set_index("run").T
    out = ["<table id='machines'><tr><th></th>"]
    out += [f"<th>{escape(str(c))}</th>" for c in shown.columns]
    out.append("</tr>")
    for key, values in shown.iterrows():
        out.append(
            f"<tr><th>{escape(str(key))}</th>"
            + "".join(f"<td>{escape(str(v))}</td>" for v in values)
            + "</tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_problems(df: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Every skipped or failed configuration with its reason, grouped by backend and reason."""
    items = []
    for _, run in runs.iterrows():
        for rec in run["left_out"]:
            items.append(
                (
                    run["run"],
                    "left out",
                    rec.get("backend", ""),
                    rec.get("reason", ""),
                    "all configurations",
                )
            )
    bad = df[df["status"] != "ok"]
    for (run, status, backend, reason), group in bad.groupby(
        ["run", "status", "backend", "reason"], sort=True
    ):
        which = ", ".join(
            sorted(
                {
                    f"{r['pass']} {r['config']} {r['h']:.0f}px"
                    if r["kind"] == "conv"
                    else f"BLAS limit {r['config']}"
                    for _, r in group.iterrows()
                }
            )
        )
        items.append((run, status, backend or "(blas limit)", reason, which))
    if not items:
        return "<p>Nothing was skipped and nothing failed.</p>"
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in item) + "</tr>" for item in items
    )
    return (
        "<table id='problems'><tr><th>run</th><th>status</th><th>backend</th><th>reason</th>"
        f"<th>configurations</th></tr>{rows}</table>"
    )


def render(
    df: pd.DataFrame, runs: pd.DataFrame, verdicts: dict[str, list[Verdict]], title: str
) -> str:
    """The whole report page; ``verdicts`` maps each run to its judged goals."""
    backends = sorted(set(timed(df, None)["backend"]) | set(df["backend"]) - {""})
    interrupted = runs[runs["interrupted"]]["run"].tolist()
    warn = (
        (
            f"<p class='notmet'>Interrupted run(s): {escape(', '.join(interrupted))}; "
            "this report shows what finished.</p>"
        )
        if interrupted
        else ""
    )
    figs = "".join(
        f"<h2>{escape(plot.title)}</h2>"
        + (f"<p>{escape(plot.note)}</p>" if plot.note else "")
        + f"<figure id='plot-{escape(plot.name)}'>{plot.svg(df)}</figure>"
        for plot in PLOTS
    )
    ours = sorted(set(contenders(df[df["status"] == "ok"])["backend"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{escape(title)}</h1>
{warn}
{render_trust(df)}
<h2>Headline</h2>
<p>Fastest contender (seeds and ours: {escape(", ".join(ours) or "none")}; peers excluded)
per pass, at the largest image size every contender reached (in every pass where possible),
with its median and its speedup over {BASELINE}, each with its 95% interval.</p>
{render_headline(df)}
<h2>Goals</h2>
{render_goals(verdicts)}
<p>Backends in this report: {escape(", ".join(backends))}.</p>
{figs}
<h2>Results</h2>
<p>Median with its 95% interval, IQR and rounds per backend, shape and pass; &#9733; marks
the fastest cell of a row, &#9888; a contended or noisy one. Speedups over {BASELINE} and
ratios to {YARDSTICK} carry their 95% interval; speedups against an extrapolated
{BASELINE} time are marked "extrapolated" and have none.</p>
{render_table(df)}
<h2>Machines</h2>
{render_machines(runs)}
<h2>Skipped and failed</h2>
{render_problems(df, runs)}
</body></html>
"""


def render_index(entries: list[dict[str, str]]) -> str:
    """A page linking every saved run, newest first; entries carry href, when, node, preset."""
    rows = "".join(
        f"<tr><td><a href='{escape(e['href'])}'>{escape(e['when'])}</a></td>"
        f"<td>{escape(e['node'])}</td><td>{escape(e['preset'])}</td>"
        f"<td>{escape(e['benchmarks'])}</td></tr>"
        for e in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>im2col-bench runs</title>
<style>{CSS}</style></head><body><h1>im2col-bench runs (newest first)</h1>
<table><tr><th>run</th><th>machine</th><th>preset</th><th>benchmarks</th></tr>{rows}</table>
</body></html>
"""


def index_entries(report_dir: Path) -> list[dict[str, str]]:
    """Every run in ``report_dir/runs`` that has a report, newest first."""
    entries = []
    for path in reported_runs(report_dir):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            when = str(run.get("datetime", ""))
            node = str(run["machine_info"].get("node", ""))
            preset = str((run.get("im2col_bench") or {}).get("preset", ""))
            count = str(len(run.get("benchmarks", [])))
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            continue
        href = f"runs/{path.with_suffix('.html').name}"
        entries.append(
            {"href": href, "when": when, "node": node, "preset": preset, "benchmarks": count}
        )
    return sorted(entries, key=lambda e: (e["when"], e["href"]), reverse=True)

"""The report's account of how its numbers were obtained: the trials, the drift probe, the duet."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .data import OLD_SUFFIX, json_object
from .plots import PANEL_H, PANEL_W, Plot
from .stats import AGREE, CONFIDENCE


def trials_of(run: pd.Series) -> dict[str, Any]:
    """A run's record of its trials (count, seed, probes); {} for a run made before trials."""
    return json_object(json_object(run.get("im2col_bench")).get("trials"))


def how_obtained(run: pd.Series, rows: pd.DataFrame) -> str:
    """One sentence: how a run's numbers were obtained (trials, rounds, pairing)."""
    trials = trials_of(run)
    count = trials.get("count")
    rounds = rows["rounds"].median() if len(rows) else float("nan")
    rounds_text = f"{rounds:.0f}" if pd.notna(rounds) else "some"
    if not isinstance(count, int) or count < 2:
        return (
            f"Each case was timed in one visit of {rounds_text} rounds (median over rows), after "
            "untimed calls; a row's time is the median of its rounds and its 95% interval a "
            "bootstrap over them, so it does not include what changes between minutes."
        )
    per_trial = rounds / count if pd.notna(rounds) else float("nan")
    per_trial_text = f"{per_trial:.0f}" if pd.notna(per_trial) else "some"
    return (
        f"After a sizing pass (untimed calls: JIT compilation, the rounds' size, the skip "
        f"decisions), each of {count} trials visited every case once in its own random order "
        f"(seed {trials.get('seed')}), with fresh inputs, for about {per_trial_text} rounds; "
        "the backends of one configuration and pass ran back to back, their order reversed "
        "every other trial. A row's time is the geometric mean of its trial medians and its "
        f"{100 * CONFIDENCE:g}% interval Student's t over the trials; a ratio of two rows is "
        "the geometric mean of the trials' ratios (paired), with the same interval."
    )


def probe_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Each run's drift probe per trial: run, trial, probe_s, at_s (seconds into the run)."""
    rows = [
        {"run": run["run"], **json_object(probe)}
        for _, run in runs.iterrows()
        for probe in trials_of(run).get("probes", []) or []
    ]
    frame = pd.DataFrame(rows, columns=["run", "trial", "probe_s", "at_s"])
    frame["probe_s"] = pd.to_numeric(frame["probe_s"], errors="coerce")
    frame["trial"] = pd.to_numeric(frame["trial"], errors="coerce")
    return frame.dropna(subset=["probe_s", "trial"])


def plot_probe(probes: pd.DataFrame) -> Figure:
    """The drift probe's time against the trial, a line per run."""
    fig = Figure(figsize=(PANEL_W * 1.4, PANEL_H))
    ax = fig.add_subplot()
    for run, rows in probes.groupby("run", sort=False):
        ax.plot(rows["trial"], 1e6 * rows["probe_s"], marker="o", label=str(run))
    ax.set_xlabel("trial")
    ax.set_ylabel("probe time (µs)")
    ax.set_xticks(sorted(set(probes["trial"].astype(int))))
    ax.set_ylim(bottom=0)
    ax.set_title("drift probe: a 192x192 float32 product, median of 21 calls")
    if probes["run"].nunique() > 1:
        ax.legend(fontsize="small")
    return fig


def render_trials(runs: pd.DataFrame, df: pd.DataFrame) -> str:
    """The report's "How the numbers were obtained" section: the sentence per run, how many
    rows agree with all their trials, and the drift probe of each trial."""
    parts = ["<h2 id='trials'>How the numbers were obtained</h2>"]
    ok = df[df["status"] == "ok"]
    for _, run in runs.iterrows():
        rows = ok[ok["run"] == run["run"]]
        label = f"<b>{escape(str(run['run']))}</b>: " if len(runs) > 1 else ""
        parts.append(f"<p>{label}{escape(how_obtained(run, rows))}</p>")
        with_trials = rows[rows["trials"] >= 2] if "trials" in rows else rows.iloc[:0]
        if len(with_trials):
            agree = int((with_trials["trials_agreeing"] == with_trials["trials"]).sum())
            parts.append(
                f"<p class='note'>{agree} of {len(with_trials)} rows have every trial's median "
                f"within &plusmn;{100 * AGREE:g}% of their time (each cell's tooltip says how "
                "many of its trials do).</p>"
            )
    probes = probe_rows(runs)
    if len(probes):
        parts.append(
            "<p class='note'>The drift probe, a fixed small BLAS product timed at the start of "
            "every trial: how the machine's speed moved between trials. It is shown, never "
            "divided out.</p>"
        )
        plot = Plot("probe", "drift probe", "", lambda _: plot_probe(probes))
        parts.append(f"<figure id='plot-probe'>{plot.svg(df)}</figure>")
    return "".join(parts)


def render_duet(df: pd.DataFrame) -> str:
    """The duet's paired ratios: each backend's time over its old version's; "" without one."""
    if "vs_old" not in df or df["vs_old"].isna().all():
        return ""
    rows = df[df["vs_old"].notna()].sort_values(["backend", "pass", "config", "h"])
    body = "".join(
        f"<tr><td>{escape(str(r['backend']))}</td><td>{escape(str(r['pass']))}</td>"
        f"<td>{escape(str(r['config']))} {r['h']:.0f}px</td>"
        f"<td>{_ratio_text(r['vs_old'], r['vs_old_low'], r['vs_old_high'])}</td>"
        f"<td>{_verdict(r['vs_old_low'], r['vs_old_high'])}</td></tr>"
        for _, r in rows.iterrows()
    )
    return (
        "<h2 id='duet'>Duet: this version against the old one</h2><p class='note'>Each "
        f"backend's time over its old version's (<code>NAME{OLD_SUFFIX}</code>), both timed in "
        "the same trials, back to back; the geometric mean of the trials' ratios with its "
        f"{100 * CONFIDENCE:g}% interval. Below 1: this version is faster.</p>"
        "<table><tr><th>backend</th><th>pass</th><th>shape</th><th>new / old</th>"
        f"<th>verdict</th></tr>{body}</table>"
    )


def _ratio_text(value: float, low: float, high: float) -> str:
    bounds = "[no interval]" if np.isnan(low) else f"[{low:.3g}, {high:.3g}]"
    return f"{value:.3g}x {bounds}"


def _verdict(low: float, high: float) -> str:
    if np.isnan(low):
        return "unknown"
    if high < 1:
        return "faster"
    if low > 1:
        return "slower"
    return "no clear change"

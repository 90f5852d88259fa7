"""The run's closing lines on the terminal, each within 100 columns: who was fastest, the goals.

Printed from the saved run's frame (:func:`reports.load`) and its judged goals, so every line
is true of the run that was made: a goal the run could not measure says what it lacked.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

import pandas as pd

from reports.accuracy import error_text, worst_errors
from reports.data import BASELINE, YARDSTICK, contenders, timed
from reports.goals import BLAS_PRODUCT, FASTEST_OURS, IM2COL_BUFFER, MEASURED_PEAK, Verdict
from reports.network import winners
from reports.stats import Interval
from reports.threads import thread_scaling

from .matrix import PRESETS
from .runfile import BATCH, RESNET, SWEEP, ordered_passes, pass_rank

#: the terminal width every line fits
WIDTH = 100
#: characters of a backend's name in the table; longer names are cut
NAME = 17


def _wrap(text: str, indent: str = "  ", width: int = WIDTH) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]


def _speedup(row: pd.Series) -> str:
    if pd.isna(row["speedup"]):
        return "-"
    return ("~" if row["speedup_extrapolated"] else "") + f"{row['speedup']:.3g}x"


def fastest_table(df: pd.DataFrame) -> list[str]:
    """Per size of the sweep (and the resnet layer), per pass: the fastest seed or backend of
    ours, and its speedup over the baseline ("~" where the baseline's time is extrapolated)."""
    rows = contenders(timed(df, None))
    rows = rows[rows["config"].isin([SWEEP, RESNET])]
    passes = ordered_passes(rows["pass"])
    if rows.empty or not passes:
        return []
    cell = NAME + 9
    lines = [
        f"fastest of the seeds and ours, and its speedup over {BASELINE} "
        "(~: against its extrapolated time)",
        f"{'size':<8}" + "".join(f"{p:<{cell}}" for p in passes).rstrip(),
    ]
    shapes = rows.drop_duplicates(["config", "h"]).sort_values(["config", "h"], key=_sweep_first)
    for _, shape in shapes.iterrows():
        at = rows[(rows["config"] == shape["config"]) & (rows["h"] == shape["h"])]
        label = f"{shape['h']:.0f}px" if shape["config"] == SWEEP else str(shape["config"])
        cells = []
        for pass_ in passes:
            here = at[at["pass"] == pass_]
            if here.empty:
                cells.append(f"{'-':<{cell}}")
                continue
            best = here.loc[here["median"].idxmin()]
            name = str(best["backend"])
            name = name if len(name) <= NAME else name[: NAME - 1] + "~"
            cells.append(f"{name:<{NAME}} {_speedup(best):>7} ")
        lines.append((f"{label:<8}" + "".join(cells)).rstrip())
    return lines


def _sweep_first(column: pd.Series) -> pd.Series:
    return column.map(lambda v: (v != SWEEP) if isinstance(v, str) else v)


def why_not_measured(verdict: Verdict, df: pd.DataFrame) -> str:
    """What the run lacked for a goal it could not judge, in a few words."""
    goal = verdict.goal
    conv = df[df["kind"] == "conv"]
    if goal.config not in set(conv["config"]):
        having = [p.name for p in PRESETS.values() if goal.config in {c.label for c in p.convs()}]
        hint = f"; --preset {having[0]} has it" if having else ""
        return f"this run has no {goal.config} configuration{hint}"
    sides = [goal.subject]
    if goal.against not in (BLAS_PRODUCT, IM2COL_BUFFER, MEASURED_PEAK):
        sides.append(goal.against)
    for side in sides:
        if side == FASTEST_OURS:
            if conv[conv["role"] == "ours"].empty:
                return "no backend of ours in this run"
            continue
        rows = conv[conv["backend"] == side]
        if rows.empty:
            return f"{side} was not in this run"
        at = rows[(rows["config"] == goal.config) & (rows["pass"] == goal.pass_)]
        if not (at["status"] == "ok").any():
            reasons = at.loc[at["status"] != "ok", "reason"]
            return f"{side}: {reasons.iloc[0]}" if not reasons.empty else f"{side}: not timed"
    return verdict.detail


def goal_lines(verdicts: Iterable[Verdict], df: pd.DataFrame) -> list[str]:
    """A line per measured goal (state, ratio, bound); the others grouped by what the run lacked."""
    verdicts = list(verdicts)
    if not verdicts:
        return []
    config = verdicts[0].goal.config
    lines = [f"goals (at the {config} configuration unless said)"]
    missing: dict[str, list[str]] = {}
    for verdict in verdicts:
        goal = verdict.goal
        name = goal.name + ("" if goal.config == config else f" at {goal.config}")
        if verdict.ratio is None:
            missing.setdefault(why_not_measured(verdict, df), []).append(name)
            continue
        lines += _wrap(f"  {verdict.state}: {name} at {verdict.measured} ({goal.bound})", "      ")
    for why, names in missing.items():
        lines += _wrap(f"  not measured ({why}): {'; '.join(names)}", "      ")
    return lines


def not_timed_line(df: pd.DataFrame) -> list[str]:
    """How many cases each backend missed, and the kind of reason ("unavailable", "too slow")."""
    missed = df[(df["kind"] != "blas_limit") & (df["status"] != "ok")]
    if missed.empty:
        return []
    kinds = missed["status"].where(missed["status"] == "failed", missed["reason"])
    kinds = kinds.str.split(":").str[0]
    counts = missed.assign(why=kinds).groupby(["backend", "why"], sort=False).size()
    parts = [f"{backend} {n} ({why})" for (backend, why), n in counts.items()]
    return _wrap("not timed: " + ", ".join(parts) + "; the reasons are in the report")


def launch_bound_line(df: pd.DataFrame) -> list[str]:
    """How many of each GPU backend's timed rows the host's launches bound, and up to which
    batch of the batch sweep; [] for a run without GPU rows."""
    gpu = timed(df, None)
    gpu = gpu[gpu["device"] == "gpu"]
    if gpu.empty:
        return []
    parts = []
    for backend, rows in gpu.groupby("backend", sort=True):
        bound = rows[rows["launch_bound"]]
        batches = bound.loc[bound["config"] == BATCH, "n"]
        upto = f", batch sweep up to N={batches.max():.0f}" if not batches.empty else ""
        parts.append(f"{backend} {len(bound)} of {len(rows)}{upto}")
    return _wrap("bound by the host's launches (GPU rows): " + "; ".join(parts))


def network_lines(df: pd.DataFrame) -> list[str]:
    """Per real network: the fastest whole-network time of each pass, and its ratio to
    torch_conv2d's with the ratio's interval."""
    best = winners(df)
    lines = []
    for (run, network), at in best.groupby(["run", "network"], sort=False):
        parts = []
        for _, row in at.sort_values("pass", key=lambda p: p.map(pass_rank)).iterrows():
            ratio = Interval(row["vs_yardstick"], row["vs_low"], row["vs_high"])
            versus = "" if pd.isna(ratio.value) else f", {ratio.text()} {YARDSTICK}"
            parts.append(f"{row['pass']} {row['label']}{versus}")
        where = f" ({run})" if df["run"].nunique() > 1 else ""
        lines += _wrap(f"{network} whole network{where}, fastest: {'; '.join(parts)}")
    return lines


def accuracy_lines(df: pd.DataFrame) -> list[str]:
    """The worst error against float64 of ours, and the most accurate of ours, per dtype."""
    worst = worst_errors(df)
    if worst.empty:
        return []
    worst = worst[worst["role"] == "ours"]
    lines = []
    for dtype, at in worst.groupby("dtype"):
        high, low = at.loc[at["error"].idxmax()], at.loc[at["error"].idxmin()]
        lines += _wrap(
            f"error against float64 ({dtype}, worst of y, dx, dw): largest of ours "
            f"{high['backend']} {error_text(high['error'])}; smallest {low['backend']} "
            f"{error_text(low['error'])}"
        )
    return lines


def thread_lines(df: pd.DataFrame) -> list[str]:
    """Each backend's step speedup at the most threads over the fewest."""
    found = thread_scaling(df)
    found = found[found["pass"] == "step"]
    if found.empty:
        return []
    most = found.loc[found.groupby(["run", "backend"], sort=False)["threads"].idxmax()]
    first = most.iloc[0]
    parts = [f"{r['backend']} {r['speedup']:.2f}x" for _, r in most.iterrows()]
    return _wrap(
        f"thread scaling, step at {first['threads']} threads over {first['base_threads']}: "
        + ", ".join(parts)
    )


def summary_lines(df: pd.DataFrame, verdicts: Iterable[Verdict], interrupted: bool) -> list[str]:
    """Every closing line of a run, before the report's path."""
    lines = []
    if interrupted:
        lines.append("the run was interrupted: these lines cover what finished")
    lines += fastest_table(df)
    lines += goal_lines(verdicts, df)
    lines += launch_bound_line(df)
    lines += network_lines(df)
    lines += accuracy_lines(df)
    lines += thread_lines(df)
    lines += not_timed_line(df)
    return lines

"""Figures of a loaded run: each :class:`Plot` draws one from the frame of :func:`reports.load`.

Every backend has one colour and one marker (:func:`style`), in every figure of every report;
the line style says its role (ours solid, the article's seeds dashed, library peers dotted),
and merged runs get a row of panels each, never a colour of their own. A plot carries its own
title and note; figures are drawn without pyplot, so no global matplotlib state is touched.
"""

from __future__ import annotations

import io
import math
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from benchmarks.runfile import BATCH, RESNET, RESNET50, SWEEP, ordered_passes, pass_rank

from .accuracy import accuracy_rows, frontier
from .data import (
    BASELINE,
    GPU_YARDSTICK,
    YARDSTICK,
    scaling_exponents,
    timed,
)
from .goals import GOALS
from .network import network_totals, totals_table
from .stats import Interval
from .threads import scaling_table, thread_scaling

#: text stays text in the SVG (smaller, searchable), and names are never read as math ($...$)
STYLE: dict[str, Any] = {"svg.fonttype": "none", "text.parse_math": False}

#: each known backend's colour and marker: ours in strong colours, seeds in warm ones, peers
#: in greys; the same in every report, whichever backends a run has
PALETTE: dict[str, tuple[str, str]] = {
    "tiled_im2col": ("#1f77b4", "o"),
    "winograd": ("#2ca02c", "s"),
    "numba_direct": ("#9467bd", "D"),
    "indirect_im2col": ("#393b79", "d"),
    "mec": ("#637939", "p"),
    "naive_loop": ("#d62728", "v"),
    "batched_im2col": ("#ff7f0e", "^"),
    "strided_tensordot": ("#8c564b", "<"),
    "numba_loop": ("#e377c2", ">"),
    "numba_cuda": ("#bcbd22", "P"),
    "torch_conv2d": ("#000000", "X"),
    "torch_unfold": ("#7f7f7f", "*"),
    "torch_cudnn": ("#17becf", "h"),
    "reference": ("#555555", "."),
}
#: a backend PALETTE does not know (a new file in impls/) gets one of these, by a hash of its
#: name (crc32: the same in every process, unlike ``hash``)
SPARE_COLOURS = ("#aec7e8", "#98df8a", "#c5b0d5", "#ff9896", "#ffbb78", "#c49c94", "#f7b6d2")
SPARE_MARKERS = ("p", "H", "d", "8", "1", "2", "3", "4")
#: the line style of each role, and its heading in the legends
ROLE_LINES = {"ours": "-", "seed": "--", "peer": ":", "oracle": "-."}
ROLE_TITLES = {
    "ours": "ours (solid)",
    "seed": "the article's seeds (dashed)",
    "peer": "libraries (dotted)",
    "oracle": "oracle (dash-dot)",
}
#: the width of one panel and the height of one row of panels, in inches
PANEL_W, PANEL_H = 4.3, 3.3
#: panels per row in the memory figure
MEMORY_COLUMNS = 5


def style(backend: str, role: str = "ours") -> dict[str, Any]:
    """The colour, marker and line style of ``backend``: the same wherever it is drawn."""
    if backend in PALETTE:
        colour, marker = PALETTE[backend]
    else:
        key = zlib.crc32(backend.encode())
        colour = SPARE_COLOURS[key % len(SPARE_COLOURS)]
        marker = SPARE_MARKERS[key // len(SPARE_COLOURS) % len(SPARE_MARKERS)]
    return {
        "color": colour,
        "marker": marker,
        "linestyle": ROLE_LINES.get(role, "-"),
        "linewidth": 2.0 if role == "ours" else 1.5,
        "markersize": 6,
    }


# ticks


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks (1, 2, 5 or 1, 10 for wide ranges) from one below ``lo`` to one above ``hi``."""
    decades = math.log10(hi / lo)
    mantissas = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    step = max(1, math.ceil(decades / 6)) if decades > 3 else 1
    # a step further than needed each way, so a decade skipped by the step still has one
    first, last = math.floor(math.log10(lo)) - step, math.ceil(math.log10(hi)) + step
    ladder = sorted(
        float(f"{m * 10.0**e:.12g}")
        for e in range(first, last + 1)
        if e % step == 0
        for m in mantissas
    )
    below = max(t for t in ladder if t < lo * 0.999)
    above = min(t for t in ladder if t > hi * 1.001)
    return [t for t in ladder if below <= t <= above]


def plain(value: float) -> str:
    """A tick label without exponents: 0.5, 1, 20, 1000."""
    return np.format_float_positional(float(f"{value:.3g}"), trim="-")


def seconds(value: float) -> str:
    """A time tick label in a unit that keeps it short: 50 µs, 2 ms, 1 s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale * 0.999:
            return f"{plain(value / scale)} {unit}"
    return f"{plain(value / 1e-9)} ns"


def _log_axis(
    axes: Sequence[Axes],
    values: Iterable[float],
    label: Callable[[float], str] = plain,
    axis: str = "y",
) -> None:
    """A shared log axis with plain labelled ticks, one below and one above every value."""
    finite = [v for v in values if np.isfinite(v) and v > 0]
    if not finite:
        return
    lo, hi = min(finite), max(finite)
    if hi / lo < 1.5:  # a flat series still gets a tick on each side
        lo, hi = lo / 1.3, hi * 1.3
    ticks = _nice_ticks(lo, hi)
    margin = (ticks[-1] / ticks[0]) ** 0.03
    for ax in axes:
        x = axis == "x"
        (ax.set_xscale if x else ax.set_yscale)("log")
        (ax.set_xlim if x else ax.set_ylim)(ticks[0] / margin, ticks[-1] * margin)
        (ax.set_xticks if x else ax.set_yticks)(ticks, [label(t) for t in ticks])
        (ax.xaxis if x else ax.yaxis).set_minor_formatter(NullFormatter())


def _size_axis(axes: Sequence[Axes], sizes: Iterable[float]) -> None:
    """A log x axis labelled with the image sizes themselves."""
    ticks = sorted({int(s) for s in sizes if np.isfinite(s)})
    if not ticks:
        return
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(ticks[0] / 1.15, ticks[-1] * 1.15)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelsize=8)


# layout


def _passes(df: pd.DataFrame) -> list[str]:
    return ordered_passes(df["pass"])


def _runs(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["run"]))


def _grid(runs: list[str], columns: list[str], title: str) -> tuple[Figure, dict]:
    """A figure with a panel per (run, column), axes shared; panels keyed by (run, column)."""
    fig = Figure(
        figsize=(max(PANEL_W * len(columns), 8.0), PANEL_H * len(runs) + 1.6),
        layout="constrained",
    )
    grid = fig.subplots(len(runs), len(columns), squeeze=False, sharex=True, sharey=True)
    fig.suptitle(title)
    panels = {}
    for i, run in enumerate(runs):
        for j, column in enumerate(columns):
            ax = grid[i][j]
            ax.set_title(f"{column} | {run}" if len(runs) > 1 else column, fontsize=10)
            ax.grid(True, which="major", alpha=0.35)
            ax.grid(True, which="minor", alpha=0.12)
            panels[run, column] = ax
    return fig, panels


def _empty(title: str, message: str) -> Figure:
    fig = Figure(figsize=(8.0, 2.0), layout="constrained")
    ax = fig.subplots()
    fig.suptitle(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _roles(df: pd.DataFrame) -> dict[str, str]:
    """Each backend of ``df`` and its role."""
    return dict(zip(df["backend"], df["role"].replace("", "ours"), strict=True))


def _legend(fig: Figure, backends: dict[str, str], extras: Sequence[tuple[Any, str]] = ()) -> None:
    """One legend for the whole figure, below its panels: a column per role, headed by it."""
    blank = Line2D([], [], linestyle="none")
    columns = []
    for role, heading in ROLE_TITLES.items():
        names = sorted(name for name, r in backends.items() if r == role)
        if names:
            entries = [(Line2D([], [], **style(n, role)), n) for n in names]
            columns.append([(blank, heading), *entries])
    if extras:
        columns.append([(blank, "lines"), *extras])
    if not columns:
        return
    rows = max(len(c) for c in columns)
    entries = [e for c in columns for e in c + [(blank, "")] * (rows - len(c))]
    legend = fig.legend(
        [h for h, _ in entries],
        [label for _, label in entries],
        loc="outside lower center",
        ncols=len(columns),
        fontsize=8,
        frameon=False,
        handlelength=3,
    )
    headings = {c[0][1] for c in columns}
    for text in legend.get_texts():
        if text.get_text() in headings:
            text.set_fontweight("bold")


def _series(ax: Axes, where: str, x: Any, y: Any, backend: str, role: str, **extra: Any) -> Line2D:
    """One backend's line on ``ax``, styled by :func:`style`.

    Its SVG group's id is ``series:<backend>:<where>``, so a reader (or a test) can find
    every line of a backend in a report.
    """
    (line,) = ax.plot(x, y, **{**style(backend, role), **extra})
    line.set_gid(re.sub(r"[^\w:.-]", "_", f"series:{backend}:{where}"))
    return line


# the figures


def plot_speedup(df: pd.DataFrame) -> Figure:
    """Speedup over naive_loop against image size, a panel per pass and run."""
    title = f"Speedup over {BASELINE} (higher is faster; hollow: against its extrapolated time)"
    sweep = timed(df).dropna(subset=["speedup"])
    sweep = sweep[sweep["backend"] != BASELINE]
    if sweep.empty:
        return _empty(title, f"no speedups: {BASELINE} has no measurements in this run")
    fig, panels = _grid(_runs(sweep), _passes(sweep), title)
    for (run, pass_), ax in panels.items():
        rows = sweep[(sweep["run"] == run) & (sweep["pass"] == pass_)]
        for backend, group in rows.groupby("backend"):
            group = group.sort_values("h")
            role = group["role"].iloc[0]
            gid = f"speedup:{run}:{pass_}"
            measured = group[~group["speedup_extrapolated"]]
            _series(ax, gid, measured["h"], measured["speedup"], str(backend), role)
            extra = group[group["speedup_extrapolated"]]
            if not extra.empty:
                joined = pd.concat([measured.tail(1), extra])
                _series(
                    ax, gid + ":extrapolated", joined["h"], joined["speedup"], str(backend),
                    role, alpha=0.5, markerfacecolor="white",
                )  # fmt: skip
        ax.axhline(1, color="grey", linewidth=1)
    axes = list(panels.values())
    _log_axis(axes, [1.0, *sweep["speedup"]])
    _size_axis(axes, sweep["h"])
    _labels(panels, "image size (pixels per side)", f"speedup over {BASELINE}")
    baseline = Line2D([], [], color="grey", linewidth=1)
    _legend(fig, _roles(sweep), [(baseline, f"{BASELINE} (1x)")])
    return fig


def plot_scaling(df: pd.DataFrame) -> Figure:
    """Median time against image size, log-log; the fitted exponents are in the plot's table."""
    title = "Median time against image size (lower is faster)"
    sweep = timed(df)
    if sweep.empty:
        return _empty(title, "no timed rows in the default sweep")
    fig, panels = _grid(_runs(sweep), _passes(sweep), title)
    for (run, pass_), ax in panels.items():
        rows = sweep[(sweep["run"] == run) & (sweep["pass"] == pass_)]
        for backend, group in rows.groupby("backend"):
            group = group.sort_values("h")
            gid = f"scaling:{run}:{pass_}"
            _series(ax, gid, group["h"], group["median"], str(backend), group["role"].iloc[0])
    axes = list(panels.values())
    _log_axis(axes, sweep["median"], seconds)
    _size_axis(axes, sweep["h"])
    _labels(panels, "image size (pixels per side)", "median time")
    _legend(fig, _roles(sweep))
    return fig


def exponents_table(df: pd.DataFrame) -> pd.DataFrame:
    """The fitted e of time ~ pixels^e: a row per backend, a column per pass (and run)."""
    exponents = scaling_exponents(df)
    if exponents.empty:
        return pd.DataFrame()
    table = exponents.rename_axis(["run", "backend", "pass"]).rename("e").reset_index()
    multi = table["run"].nunique() > 1
    table["column"] = table["pass"] + (" | " + table["run"] if multi else "")
    table["order"] = table["pass"].map(pass_rank)
    columns = table.sort_values(["order", "run"])["column"].unique()
    wide = table.pivot(index="backend", columns="column", values="e")[columns]
    wide = wide.loc[sorted(wide.index, key=role_order(timed(df, None)))]
    return wide.map(lambda e: "" if pd.isna(e) else f"{e:.2f}")


def plot_gflops(df: pd.DataFrame) -> Figure:
    """GFLOP/s against image size, under the machine's measured peak; one big im2col + GEMM
    as a second line."""
    title = "GFLOP/s against image size (higher is faster)"
    sweep = timed(df)
    sweep = sweep[sweep["flops"] > 0]
    if sweep.empty:
        return _empty(title, "no timed rows in the default sweep")
    fig, panels = _grid(_runs(sweep), _passes(sweep), title)
    lines: dict[str, tuple[dict[str, Any], str]] = {
        "peak_gflops": ({"color": "black", "linewidth": 1.4}, "the machine's measured peak"),
        "limit_gflops": (
            {"color": "black", "linestyle": "-.", "linewidth": 1.2},
            "one big im2col + GEMM (a float32 BLAS product)",
        ),
    }
    levels = {column: sweep.groupby("run")[column].first() for column in lines}
    for (run, pass_), ax in panels.items():
        rows = sweep[(sweep["run"] == run) & (sweep["pass"] == pass_)]
        for backend, group in rows.groupby("backend"):
            group = group.sort_values("h")
            gid = f"gflops:{run}:{pass_}"
            _series(ax, gid, group["h"], group["gflops"], str(backend), group["role"].iloc[0])
        for column, (line_style, _) in lines.items():
            if pd.notna(levels[column].get(run)):
                ax.axhline(levels[column][run], **line_style)
    axes = list(panels.values())
    _log_axis(axes, [*sweep["gflops"], *(v for s in levels.values() for v in s.dropna())])
    _size_axis(axes, sweep["h"])
    _labels(panels, "image size (pixels per side)", "GFLOP/s")
    extras = [
        (Line2D([], [], **line_style), label)
        for column, (line_style, label) in lines.items()
        if levels[column].notna().any()
    ]
    _legend(fig, _roles(sweep), extras)
    return fig


def memory_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """The rows the memory figure draws, the column of its x axis and that axis's label: the
    default sweep by image size, or where a run has none measured, the batch sweep by batch."""
    rows = timed(df).dropna(subset=["peak_bytes"])
    if not rows.empty:
        return rows, "h", "image size"
    return timed(df, BATCH).dropna(subset=["peak_bytes"]), "n", "batch size N"


def plot_memory(df: pd.DataFrame) -> Figure:
    """Peak extra memory of forward+backward: a small panel per backend (and run)."""
    title = "Peak extra memory of forward + backward against the full im2col buffer"
    rows, x, xlabel = memory_rows(df)
    if rows.empty:
        return _empty(title, "no memory measurements in this run")
    runs, backends = _runs(rows), sorted(set(rows["backend"]), key=role_order(rows))
    cols = min(MEMORY_COLUMNS, len(backends))
    per_run = math.ceil(len(backends) / cols)
    fig = Figure(
        figsize=(max(2.3 * cols, 8.0), 2.2 * per_run * len(runs) + 1.6), layout="constrained"
    )
    grid = fig.subplots(per_run * len(runs), cols, squeeze=False, sharex=True, sharey=True)
    fig.suptitle(title)
    buffer_style: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1}
    estimate_style: dict[str, Any] = {"color": "grey", "linestyle": ":", "linewidth": 1.5}
    mib = 2.0**20
    used = []
    for i, run in enumerate(runs):
        buffer = rows[rows["run"] == run].groupby(x)["cols_bytes"].first().sort_index()
        for j, backend in enumerate(backends):
            ax = grid[i * per_run + j // cols][j % cols]
            used.append(ax)
            ax.set_title(backend + (f" | {run}" if len(runs) > 1 else ""), fontsize=9)
            ax.grid(True, which="major", alpha=0.35)
            ax.plot(buffer.index, buffer / mib, **buffer_style)
            group = rows[(rows["run"] == run) & (rows["backend"] == backend)].sort_values(x)
            estimate = group.dropna(subset=["memory_estimate_bytes"])
            ax.plot(estimate[x], estimate["memory_estimate_bytes"] / mib, **estimate_style)
            seen = group[group["peak_bytes"] > 0]
            if not seen.empty:
                role = group["role"].iloc[0]
                gid = f"memory:{run}"
                _series(ax, gid, seen[x], seen["peak_bytes"] / mib, backend, role)
            message = (
                "not timed"
                if group.empty
                else "no growth seen\nbeyond the outputs"
                if seen.empty
                else "no growth seen at some sizes"
                if len(seen) < len(group)
                else ""
            )
            if message:
                ax.text(0.5, 0.1, message, transform=ax.transAxes, ha="center", va="bottom",
                        fontsize=8, color="#a33")  # fmt: skip
    for ax in (ax for row in grid for ax in row if ax not in used):
        ax.set_axis_off()
    positive = rows.loc[rows["peak_bytes"] > 0, "peak_bytes"]
    estimates = rows["memory_estimate_bytes"].dropna()
    _log_axis(used, [*(positive / mib), *(rows["cols_bytes"] / mib), *(estimates / mib)])
    _size_axis(used, rows[x])
    for ax in used:
        ax.tick_params(axis="x", labelbottom=True)
    for j in range(len(backends)):
        # the lowest panel of each column of a run's block
        if j + cols >= len(backends):
            for i in range(len(runs)):
                grid[i * per_run + j // cols][j % cols].set_xlabel(xlabel)
    for row in grid:
        row[0].set_ylabel("MiB")
    extras = [(Line2D([], [], **buffer_style), "full im2col buffer")]
    if not estimates.empty:
        extras.append((Line2D([], [], **estimate_style), "the backend's memory_estimate"))
    _legend(fig, _roles(rows), extras)
    return fig


def plot_yardstick(df: pd.DataFrame) -> Figure:
    """At the ResNet shape: each contender's time over torch_conv2d's and over one im2col + GEMM."""
    title = (
        f"ResNet layer: time / {YARDSTICK} (filled) and time / one big im2col + GEMM (hollow); "
        "lower is faster"
    )
    ref = timed(df, RESNET)
    ours = ref[ref["role"].isin(["ours", "seed"])]
    if ours.empty:
        return _empty(title, "the resnet configuration is not in this run")
    limits = (
        df[(df["kind"] == "blas_limit") & (df["config"] == RESNET) & (df["status"] == "ok")]
        .groupby("run")["gflops"]
        .max()
    )
    order = sorted(set(ours["backend"]), key=role_order(ours), reverse=True)
    fig, panels = _grid(_runs(ours), _passes(ours), title)
    values = [1.0]
    for (run, pass_), ax in panels.items():
        at = ours[(ours["run"] == run) & (ours["pass"] == pass_)]
        torch = ref[(ref["run"] == run) & (ref["backend"] == YARDSTICK) & (ref["pass"] == pass_)]
        torch_time = torch["median"].min() if not torch.empty else np.nan
        limit = limits.get(run, np.nan)
        for _, row in at.iterrows():
            y = order.index(row["backend"])
            marker = style(row["backend"], row["role"])
            vs_torch = row["median"] / torch_time
            vs_limit = row["median"] / (row["flops"] / (limit * 1e9))
            gid = f"yardstick:{run}:{pass_}"
            for value, fill in ((vs_torch, marker["color"]), (vs_limit, "white")):
                if np.isfinite(value):
                    _series(
                        ax, gid, [value], [y], row["backend"], row["role"],
                        linestyle="none", markerfacecolor=fill, markersize=8,
                    )  # fmt: skip
                    values.append(value)
        ax.axvline(1, color="grey", linewidth=1)
        ax.set_yticks(range(len(order)), order, fontsize=8)
        ax.set_ylim(-0.6, len(order) - 0.4)
    _log_axis(list(panels.values()), values, axis="x")
    _labels(panels, "ratio (1 = as fast)", "")
    filled = Line2D([], [], marker="o", color="grey", linestyle="none")
    hollow = Line2D([], [], marker="o", color="grey", markerfacecolor="white", linestyle="none")
    _legend(
        fig,
        _roles(ours),
        [
            (filled, f"time / {YARDSTICK}"),
            (hollow, "time / one big im2col + GEMM (the time at its GFLOP/s)"),
        ],
    )
    return fig


def plot_batch(df: pd.DataFrame) -> Figure:
    """Median time against batch size at one layer, log-log; hollow where the host's
    launches bound the row (the GPU waited for them)."""
    title = "Median time against batch size (lower is faster; hollow: bound by the host's launches)"
    rows = timed(df, BATCH)
    if rows.empty:
        return _empty(title, "no batch sweep in this run (the gpu preset times one)")
    fig, panels = _grid(_runs(rows), _passes(rows), title)
    for (run, pass_), ax in panels.items():
        at = rows[(rows["run"] == run) & (rows["pass"] == pass_)]
        for backend, group in at.groupby("backend"):
            group = group.sort_values("n")
            role, gid = group["role"].iloc[0], f"batch:{run}:{pass_}"
            _series(ax, gid, group["n"], group["median"], str(backend), role)
            bound = group[group["launch_bound"]]
            if not bound.empty:
                _series(
                    ax, f"{gid}:launch-bound", bound["n"], bound["median"], str(backend), role,
                    linestyle="none", markerfacecolor="white", markersize=9,
                )  # fmt: skip
    axes = list(panels.values())
    _log_axis(axes, rows["median"], seconds)
    _size_axis(axes, rows["n"])
    first = rows.iloc[0]
    layer = f"{first['h']:.0f}x{first['h']:.0f}, {first['c_in']:.0f}->{first['c_out']:.0f}"
    _labels(panels, f"batch size N ({layer}, {first['kh']:.0f}x{first['kh']:.0f})", "median time")
    hollow = Line2D([], [], marker="o", color="grey", markerfacecolor="white", linestyle="none")
    _legend(fig, _roles(rows), [(hollow, "bound by the host's launches")])
    return fig


def layer_label(row: pd.Series) -> str:
    """A ResNet-50 layer in a few characters: ``3x3 64->64 s1 56px``."""
    return (
        f"{row['kh']:.0f}x{row['kh']:.0f} {row['c_in']:.0f}->{row['c_out']:.0f} "
        f"s{row['stride']:.0f} {row['h']:.0f}px"
    )


def _layer_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ResNet-50 layers' GPU rows with a ratio to cuDNN, cuDNN's own left out, labelled,
    in the network's order (the largest images first)."""
    rows = timed(df, RESNET50)
    rows = rows[(rows["device"] == "gpu") & (rows["backend"] != GPU_YARDSTICK)]
    rows = rows.dropna(subset=["vs_yardstick"]).copy()
    rows["layer"] = [layer_label(row) for _, row in rows.iterrows()]
    return rows.sort_values(
        ["h", "stride", "kh", "c_in", "c_out"], ascending=[False, True, False, True, True]
    )


def plot_layers(df: pd.DataFrame) -> Figure:
    """Each GPU backend's time over cuDNN's on every ResNet-50 layer, with its interval."""
    title = f"ResNet-50 layers: time / {GPU_YARDSTICK}, with its 95% interval (lower is faster)"
    rows = _layer_rows(df)
    if rows.empty:
        return _empty(title, f"no ResNet-50 layer timed beside {GPU_YARDSTICK} in this run")
    layers = list(dict.fromkeys(rows["layer"]))
    backends = sorted(set(rows["backend"]), key=role_order(rows))
    fig, panels = _grid(_runs(rows), _passes(rows), title)
    fig.set_figheight(0.22 * len(layers) * len(_runs(rows)) + 2.5)
    goal_style: dict[str, Any] = {"color": "#a33", "linestyle": "--", "linewidth": 1}
    values = [1.0]
    for (run, pass_), ax in panels.items():
        at = rows[(rows["run"] == run) & (rows["pass"] == pass_)]
        for k, backend in enumerate(backends):
            mine = at[at["backend"] == backend]
            if mine.empty:
                continue
            y = [
                layers.index(label) + 0.25 * (k - (len(backends) - 1) / 2)
                for label in mine["layer"]
            ]
            look = style(backend, mine["role"].iloc[0])
            ax.hlines(y, mine["vs_yardstick_low"], mine["vs_yardstick_high"], color=look["color"])
            _series(
                ax, f"layers:{run}:{pass_}", mine["vs_yardstick"], y, backend,
                mine["role"].iloc[0], linestyle="none",
            )  # fmt: skip
            values += [*mine["vs_yardstick"], *mine["vs_yardstick_low"], *mine["vs_yardstick_high"]]
        ax.axvline(1, color="grey", linewidth=1)
        for goal in GOALS:
            if goal.layers and goal.against == GPU_YARDSTICK and goal.pass_ == pass_:
                ax.axvline(goal.at_most, **goal_style)
                values.append(goal.at_most)
        ax.set_yticks(range(len(layers)), layers, fontsize=7)
        ax.set_ylim(len(layers) - 0.5, -0.5)
    _log_axis(list(panels.values()), values, axis="x")
    _labels(panels, f"time / {GPU_YARDSTICK}'s (1 = as fast)", "")
    line = Line2D([], [], color="grey", linewidth=1)
    extras = [
        (line, f"{GPU_YARDSTICK} (1x); bars: 95% interval"),
        (Line2D([], [], **goal_style), "the goal on the summed time"),
    ]
    _legend(fig, _roles(rows), extras)
    return fig


def layers_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per ResNet-50 layer, each GPU backend's time over cuDNN's per pass with its interval
    (L: bound by the host's launches), and its forward's share of the GPU's peak."""
    rows = _layer_rows(df)
    if rows.empty:
        return pd.DataFrame()
    multi = rows["run"].nunique() > 1
    table: dict[str, dict[str, str]] = {}
    for _, row in rows.iterrows():
        who = f"{row['backend']}" + (f" @ {row['run']}" if multi else "")
        ratio = Interval(row["vs_yardstick"], row["vs_yardstick_low"], row["vs_yardstick_high"])
        text = ratio.text() + (" L" if row["launch_bound"] else "")
        table.setdefault(f"{row['pass']}: {who} / {GPU_YARDSTICK}", {})[row["layer"]] = text
        if row["pass"] == "forward" and pd.notna(row["pct_peak"]):
            table.setdefault(f"forward: {who}, % of peak", {})[row["layer"]] = (
                f"{row['pct_peak']:.0f}%"
            )
    order = list(dict.fromkeys(rows["layer"]))
    return pd.DataFrame(table).reindex(order).fillna("")


def roofline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The timed rows the roofline draws: the resnet configuration where a run has it, else the
    default sweep's largest size; only rows with an intensity and a measured peak."""
    rows = df[(df["kind"] == "conv") & (df["status"] == "ok") & (df["device"] != "gpu")]
    rows = rows.dropna(subset=["intensity", "gflops", "peak_gflops", "bandwidth_gbs"])
    picked = []
    for _, run_rows in rows.groupby("run", sort=False):
        at = run_rows[run_rows["config"] == RESNET]
        if at.empty:
            sweep = run_rows[run_rows["config"] == SWEEP]
            at = sweep[sweep["h"] == sweep["h"].max()]
        picked.append(at)
    return pd.concat(picked) if picked else rows


def plot_roofline(df: pd.DataFrame) -> Figure:
    """GFLOP/s against arithmetic intensity, log-log, under the run's measured roof."""
    title = "Roofline: GFLOP/s against FLOPs per byte moved (the roof is the machine's limit)"
    rows = roofline_rows(df)
    if rows.empty:
        return _empty(title, "no run here measured the machine's peak and bandwidth")
    fig, panels = _grid(_runs(rows), _passes(rows), title)
    roof_style: dict[str, Any] = {"color": "black", "linewidth": 1.4}
    gemm_style: dict[str, Any] = {"color": "black", "linestyle": ":", "linewidth": 1}
    xs, ys = list(rows["intensity"]), list(rows["gflops"])
    for _, run_rows in rows.groupby("run", sort=False):
        first = run_rows.iloc[0]
        peak, bandwidth = first["peak_gflops"], first["bandwidth_gbs"]
        xs += [peak / bandwidth / 4, peak / bandwidth * 2]
        ys += [peak, *run_rows["matmul_gflops"].dropna()]
    lo, hi = min(xs) / 2, max(xs) * 2
    for (run, pass_), ax in panels.items():
        at = rows[(rows["run"] == run) & (rows["pass"] == pass_)]
        run_rows = rows[rows["run"] == run]
        if not run_rows.empty:
            first = run_rows.iloc[0]
            peak, bandwidth = first["peak_gflops"], first["bandwidth_gbs"]
            grid = np.geomspace(lo, hi, 200)
            ax.plot(grid, np.minimum(peak, bandwidth * grid), **roof_style)
            if pd.notna(first.get("matmul_gflops")):
                ax.axhline(first["matmul_gflops"], **gemm_style)
        for _, row in at.iterrows():
            _series(
                ax, f"roofline:{run}:{pass_}", [row["intensity"]], [row["gflops"]],
                row["backend"], row["role"], linestyle="none", markersize=8,
            )  # fmt: skip
    axes = list(panels.values())
    _log_axis(axes, [lo, hi], axis="x")
    _log_axis(axes, ys)
    shapes = rows["config"] + " " + rows["h"].astype(int).astype(str) + " px"
    config = ", ".join(sorted(set(shapes)))
    _labels(panels, f"FLOPs per byte of modelled traffic ({config})", "GFLOP/s")
    extras = [
        (Line2D([], [], **roof_style), "roof: min(peak, bandwidth x intensity)"),
        (Line2D([], [], **gemm_style), "square matrix product (BLAS)"),
    ]
    _legend(fig, _roles(rows), extras)
    return fig


def _decade(value: float) -> str:
    """A tick label on powers of ten only (``1e-06``); the ticks between them stay unlabelled."""
    exponent = math.log10(value)
    return f"1e{round(exponent):03d}" if abs(exponent - round(exponent)) < 1e-9 else ""


def plot_accuracy(df: pd.DataFrame) -> Figure:
    """Median time against the error of the pass's outputs, log-log, with the frontier: the
    fastest backend at each accuracy. A panel per pass and run, at one configuration."""
    title = "Time against error (lower left is better; the line: fastest at each accuracy)"
    rows = accuracy_rows(df)
    if rows.empty:
        return _empty(title, "no errors against the float64 reference in this run")
    title += f": {'; '.join(dict.fromkeys(rows['where']))}"
    fig, panels = _grid(_runs(rows), _passes(rows), title)
    front_style: dict[str, Any] = {"color": "grey", "linewidth": 1.2, "drawstyle": "steps-post"}
    for (run, pass_), ax in panels.items():
        at = rows[(rows["run"] == run) & (rows["pass"] == pass_)]
        for _, row in at.iterrows():
            _series(
                ax, f"accuracy:{run}:{pass_}", [row["error"]], [row["median"]], row["backend"],
                row["role"], linestyle="none", markersize=8,
            )  # fmt: skip
        best = frontier(at)
        if len(best) > 1:
            ax.plot(best["error"], best["median"], **front_style)
    axes = list(panels.values())
    _log_axis(axes, rows["error"], _decade, axis="x")
    _log_axis(axes, rows["median"], seconds)
    _labels(panels, "max relative error against float64", "median time")
    _legend(fig, _roles(rows), [(Line2D([], [], **front_style), "fastest at each accuracy")])
    return fig


def plot_network(df: pd.DataFrame) -> Figure:
    """Each backend's whole-network time with its 95% interval: a panel per pass, a row of
    panels per network (and run); a backend that declines layers is drawn with the backend of
    ours that stood in for them, named on its label."""
    title = "Whole network: time over every layer, weighted by its count (lower is faster)"
    totals = network_totals(df).dropna(subset=["total"])
    if totals.empty:
        return _empty(title, "no real network's layers were timed in this run")
    totals["panel"] = totals["network"] + (
        " | " + totals["run"] if totals["run"].nunique() > 1 else ""
    )
    order = sorted(set(totals["label"]), key=lambda label: role_order(totals)(label.split()[0]))
    order.reverse()
    fig, panels = _grid(_runs(totals.rename(columns={"run": "_", "panel": "run"})),
                        _passes(totals), title)  # fmt: skip
    torch_style: dict[str, Any] = {"color": "grey", "linewidth": 1}
    for (panel, pass_), ax in panels.items():
        at = totals[(totals["panel"] == panel) & (totals["pass"] == pass_)]
        for _, row in at.iterrows():
            y = order.index(row["label"])
            line = _series(
                ax, f"network:{panel}:{pass_}", [row["total"]], [y], row["backend"], row["role"],
                linestyle="none", markersize=8,
            )  # fmt: skip
            if pd.notna(row["low"]):
                ax.plot([row["low"], row["high"]], [y, y], color=line.get_color(), linewidth=2)
        torch = at[at["backend"] == YARDSTICK]
        if not torch.empty:
            ax.axvline(torch["total"].iloc[0], **torch_style)
        ax.set_yticks(range(len(order)), order, fontsize=8)
        ax.set_ylim(-0.6, len(order) - 0.4)
    _log_axis(list(panels.values()), [*totals["total"], *totals["low"].dropna(),
                                      *totals["high"].dropna()], seconds, axis="x")  # fmt: skip
    _labels(panels, "whole-network time (95% interval)", "")
    _legend(fig, _roles(totals), [(Line2D([], [], **torch_style), f"{YARDSTICK}'s time")])
    return fig


def plot_threads(df: pd.DataFrame) -> Figure:
    """Speedup over the fewest threads against the thread count, a panel per pass and run,
    with the ideal (linear) speedup as a line."""
    title = "Thread scaling: speedup over the fewest threads (the dashed line is linear)"
    found = thread_scaling(df)
    if found.empty:
        return _empty(title, "this run timed one thread count (--threads 1,2,... times several)")
    fig, panels = _grid(_runs(found), _passes(found), title)
    ideal_style: dict[str, Any] = {"color": "grey", "linestyle": "--", "linewidth": 1}
    counts = sorted(set(found["threads"]))
    for (run, pass_), ax in panels.items():
        at = found[(found["run"] == run) & (found["pass"] == pass_)]
        for backend, group in at.groupby("backend"):
            group = group.sort_values("threads")
            gid = f"threads:{run}:{pass_}"
            _series(
                ax, gid, group["threads"], group["speedup"], str(backend), group["role"].iloc[0]
            )
        base = found["base_threads"].min()
        ax.plot(counts, [t / base for t in counts], **ideal_style)
        ax.set_xticks(counts, [str(t) for t in counts])
        ax.set_xlim(counts[0] - 0.3, counts[-1] + 0.3)
    base = found["base_threads"].min()
    _log_axis(list(panels.values()), [*found["speedup"], *(t / base for t in counts)])
    _labels(panels, "threads", "speedup")
    _legend(fig, _roles(found), [(Line2D([], [], **ideal_style), "linear speedup")])
    return fig


def role_order(df: pd.DataFrame) -> Callable[[str], tuple[int, str]]:
    """Sort key: ours first, then the seeds, then the peers; by name within a role."""
    roles = _roles(df)
    rank = {role: i for i, role in enumerate(ROLE_TITLES)}
    return lambda backend: (rank.get(roles.get(backend, "ours"), 0), backend)


def _labels(panels: dict, xlabel: str, ylabel: str) -> None:
    """Axis labels on the outer panels only."""
    runs = list(dict.fromkeys(run for run, _ in panels))
    columns = list(dict.fromkeys(column for _, column in panels))
    for (run, column), ax in panels.items():
        if run == runs[-1]:
            ax.set_xlabel(xlabel)
        if column == columns[0]:
            ax.set_ylabel(ylabel)


@dataclass(frozen=True)
class Plot:
    """One figure of the report, with the title and note the report shows above it."""

    #: the figure's id in the report ("plot-<name>")
    name: str
    #: the report's heading for this figure
    title: str
    #: what a reader must know to read it right ("" for nothing)
    note: str
    draw: Callable[[pd.DataFrame], Figure]
    #: numbers that belong with the figure, shown below it (None for none)
    table: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    def svg(self, df: pd.DataFrame) -> str:
        """The figure of ``df`` as an inline ``<svg>`` element."""
        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
            fig = self.draw(df)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
        text = buf.getvalue()
        return text[text.index("<svg") :]


PLOTS = (
    Plot("speedup", f"Speedup over {BASELINE}", "", plot_speedup),
    Plot(
        "scaling",
        "Time against image size",
        "Below the figure: each backend's fitted exponent e of time ~ pixels^e "
        "(1 is linear in the pixel count).",
        plot_scaling,
        exponents_table,
    ),
    Plot(
        "gflops",
        "GFLOP/s against the machine's peak",
        "The solid line is the machine's float32 peak, measured at the start of the run (the "
        "higher of a large square BLAS product and a loop of fused multiply-adds). The "
        "dash-dot line is one big im2col + GEMM: a float32 BLAS product with the shape of the "
        "default configuration's im2col product, timed in the same run, not a ceiling. "
        "Winograd is credited with the direct method's FLOPs while doing fewer multiplies, "
        "so it can pass both.",
        plot_gflops,
    ),
    Plot(
        "roofline",
        "Roofline: how close each backend comes to the machine's limits",
        "Each backend at its arithmetic intensity: the pass's FLOPs over the bytes its "
        "traffic model says it moves (inputs, weights and outputs once; the column matrix "
        "too where a backend writes it whole). The roof is the measured peak, or the STREAM "
        "triad's bandwidth times the intensity where that is lower: a point far below it is "
        "limited by neither. The dotted line is a large square BLAS product.",
        plot_roofline,
    ),
    Plot(
        "memory",
        "Peak memory against the im2col buffer",
        "One panel per backend, so no line hides another. Each point is the growth of the "
        "resident high-water mark over one forward + backward, in a child process per "
        "backend, less the outputs y, dx, dw and db: numba's and torch's allocations "
        "included. A GPU backend's point is the peak of the bytes live in numba-cuda's and "
        "torch's own allocators over one forward + backward (after one untimed), less the "
        "outputs: their caches do not count. The dotted line is the backend's memory_estimate "
        "(its formula, or the conservative default of the full column matrix and its "
        "gradient). A run without the image-size sweep (the gpu preset) is drawn against the "
        "batch size of its batch sweep.",
        plot_memory,
    ),
    Plot(
        "batch",
        "Time against batch size on the GPU: where the launches stop being the bound",
        "One layer (ResNet-50's stage-2 3x3) at batch 1 to 128. A hollow point is bound by "
        "the host: Python took at least 90% of the GPU's time (between two CUDA events) to "
        "queue the call, so the GPU waited; where the line is flat the launches set the time, "
        "where it rises with the batch the GPU does.",
        plot_batch,
    ),
    Plot(
        "layers",
        f"ResNet-50 layers on the GPU against {GPU_YARDSTICK}",
        "Every distinct 3x3 and 1x1 convolution of torchvision's ResNet-50 (stride on the 3x3) "
        f"at batch 128, float32 with TF32 off on both sides: each GPU backend's time over "
        f"{GPU_YARDSTICK}'s on the same layer, with the ratio's 95% interval; the dashed line is "
        "the goal, judged on the time summed over the layers. Below: the "
        "ratios (L: bound by the host's launches) and each forward's share of the GPU's "
        "measured float32 peak.",
        plot_layers,
        layers_table,
    ),
    Plot(
        "yardstick",
        "Yardstick: the resnet configuration (N=16, 56x56, 64->64, 3x3)",
        "",
        plot_yardstick,
    ),
    Plot(
        "accuracy",
        "Accuracy against speed",
        "Each backend's largest error against the float64 reference on the inputs it was "
        "timed on (y for forward, dx and dw for backward, all three for a step; relative to "
        "the largest magnitude of the float64 result), measured once outside the timing. The "
        "staircase joins the backends that no other beats on both time and error.",
        plot_accuracy,
    ),
    Plot(
        "network",
        "Real networks: the whole network",
        "Each backend's time over every distinct convolution layer of the network, each "
        "weighted by how many of its layers share that shape (forward, backward, and both), "
        "at the batches of the per-layer table; the bar is the 95% bootstrap interval over "
        "the layers' rounds. Where a backend declines a layer (Winograd on 1x1, strided or "
        "7x7 layers) the fastest backend of ours on that layer stands in, and the label names "
        "it: winograd + tiled_im2col is winograd with tiled_im2col for what it declines. "
        "Below: each time, its interval and its ratio to torch_conv2d's.",
        plot_network,
        totals_table,
    ),
    Plot(
        "threads",
        "Thread scaling",
        "Each backend's time at the fewest threads of --threads over its time at each count "
        "(the sum over the configurations timed at every count; 95% intervals in the table "
        "below). The dashed line is a speedup equal to the thread ratio; a backend below it "
        "has a serial part, or threads that wait on memory or on each other.",
        plot_threads,
        scaling_table,
    ),
)

"""Figures of a loaded run: each :class:`Plot` draws one from the frame of :func:`reports.load`.

A plot carries its own title and note; figures are drawn without pyplot, so no global
matplotlib state is touched.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .data import BASELINE, PASS_ORDER, RESNET, YARDSTICK, scaling_exponents, series_label, timed

#: text stays text in the SVG (smaller, searchable), and names are never read as math ($...$)
STYLE: dict[str, Any] = {"svg.fonttype": "none", "text.parse_math": False}


def _passes(df: pd.DataFrame) -> list[str]:
    present = set(df["pass"])
    return [p for p in PASS_ORDER if p in present]


def _panels(n: int, title: str) -> tuple[Figure, list]:
    fig = Figure(figsize=(max(4.6 * n, 8.0), 5.6))
    axes = fig.subplots(1, max(n, 1), squeeze=False)
    fig.suptitle(title)
    return fig, list(axes[0])


def _empty(title: str, message: str) -> Figure:
    fig, (ax,) = _panels(1, title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _size_ticks(ax: Axes, sizes: pd.Series) -> None:
    """Label a log x axis with the image sizes themselves, not powers of ten."""
    ticks = sorted(set(sizes.dropna().astype(int)))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def _finish(fig: Figure, axes: list) -> Figure:
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            # below the panel, so no line is hidden behind it
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_speedup(df: pd.DataFrame) -> Figure:
    """Speedup over naive_loop against image size, a panel per pass; extrapolated points hollow."""
    title = f"Speedup over {BASELINE} (hollow, dashed: against its extrapolated time)"
    sweep = timed(df).dropna(subset=["speedup"])
    sweep = sweep[sweep["backend"] != BASELINE]
    if sweep.empty:
        return _empty(title, f"no speedups: {BASELINE} has no measurements in this run")
    passes = _passes(sweep)
    fig, axes = _panels(len(passes), title)
    sweep = sweep.assign(label=series_label(sweep))
    for ax, pass_ in zip(axes, passes, strict=True):
        for label, group in sweep[sweep["pass"] == pass_].groupby("label"):
            group = group.sort_values("h")
            measured = group[~group["speedup_extrapolated"]]
            line = ax.plot(measured["h"], measured["speedup"], marker="o", label=label)[0]
            extra = group[group["speedup_extrapolated"]]
            if not extra.empty:
                joined = pd.concat([measured.tail(1), extra])
                ax.plot(joined["h"], joined["speedup"], linestyle="--", color=line.get_color())
                ax.plot(
                    extra["h"],
                    extra["speedup"],
                    marker="o",
                    linestyle="none",
                    markerfacecolor="white",
                    color=line.get_color(),
                )
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            title=pass_,
            xlabel="image size (pixels per side)",
            ylabel=f"speedup over {BASELINE}",
        )
        _size_ticks(ax, sweep["h"])
    return _finish(fig, axes)


def plot_scaling(df: pd.DataFrame) -> Figure:
    """Median time against pixel count, log-log, each backend's fitted exponent in the legend."""
    title = "Time against pixels per image (time ~ pixels^e)"
    sweep = timed(df)
    if sweep.empty:
        return _empty(title, "no timed rows in the default sweep")
    exponents = scaling_exponents(df)
    passes = _passes(sweep)
    fig, axes = _panels(len(passes), title)
    multi = sweep["run"].nunique() > 1
    for ax, pass_ in zip(axes, passes, strict=True):
        for (run, backend), group in sweep[sweep["pass"] == pass_].groupby(["run", "backend"]):
            group = group.sort_values("h")
            name = f"{backend} @ {run}" if multi else backend
            e = exponents.get((run, backend, pass_))
            label = name if e is None or np.isnan(e) else f"{name} (e={e:.2f})"
            ax.plot(group["h"] ** 2, group["median"], marker="o", label=label)
        ax.set(
            xscale="log",
            yscale="log",
            title=pass_,
            xlabel="pixels per image (H x W)",
            ylabel="median time (s)",
        )
    return _finish(fig, axes)


def plot_gflops(df: pd.DataFrame) -> Figure:
    """GFLOP/s against image size, the measured BLAS limit as a line, best % of it in the legend."""
    title = "GFLOP/s against image size (dotted: a plain BLAS product of the im2col size)"
    sweep = timed(df)
    sweep = sweep[sweep["flops"] > 0]
    if sweep.empty:
        return _empty(title, "no timed rows in the default sweep")
    passes = _passes(sweep)
    fig, axes = _panels(len(passes), title)
    multi = sweep["run"].nunique() > 1
    limits = sweep.groupby("run")["limit_gflops"].first()
    for ax, pass_ in zip(axes, passes, strict=True):
        for (run, backend), group in sweep[sweep["pass"] == pass_].groupby(["run", "backend"]):
            group = group.sort_values("h")
            name = f"{backend} @ {run}" if multi else backend
            best = group["pct_limit"].max()
            label = name if np.isnan(best) else f"{name} (best {best:.0f}% of limit)"
            ax.plot(group["h"], group["gflops"], marker="o", label=label)
        for run, limit in limits.items():
            if pd.notna(limit):
                ax.axhline(
                    limit,
                    color="black",
                    linestyle=":",
                    label=f"BLAS limit {limit:.1f} GFLOP/s" + (f" @ {run}" if multi else ""),
                )
        ax.set(
            xscale="log",
            yscale="log",
            title=pass_,
            xlabel="image size (pixels per side)",
            ylabel="GFLOP/s",
        )
        _size_ticks(ax, sweep["h"])
    return _finish(fig, axes)


def plot_memory(df: pd.DataFrame) -> Figure:
    """Peak extra memory of forward+backward per backend, next to the full im2col buffer."""
    title = "Peak extra memory of forward+backward (beyond outputs) vs the im2col buffer"
    rows = timed(df).dropna(subset=["peak_bytes"])
    if rows.empty:
        return _empty(title, "no memory measurements in this run")
    fig, axes = _panels(1, title)
    ax = axes[0]
    rows = rows.assign(label=series_label(rows))
    for label, group in rows.groupby("label"):
        group = group.sort_values("h")
        ax.plot(group["h"], group["peak_bytes"].clip(lower=1) / 2**20, marker="o", label=label)
    buffer = rows.groupby("h")["cols_bytes"].first().sort_index()
    ax.plot(
        buffer.index,
        buffer / 2**20,
        color="black",
        linewidth=2.5,
        linestyle="--",
        label="full im2col buffer",
    )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="image size (pixels per side)",
        ylabel="MiB (tracemalloc: numpy only)",
    )
    _size_ticks(ax, rows["h"])
    return _finish(fig, axes)


def plot_yardstick(df: pd.DataFrame) -> Figure:
    """At the ResNet shape: each contender's time over torch_conv2d's and over the BLAS limit."""
    title = f"ResNet shape: time / {YARDSTICK} and time / BLAS limit (lower is better)"
    ref = timed(df, RESNET)
    ours = ref[ref["role"].isin(["ours", "seed"])]
    if ours.empty:
        return _empty(title, "the resnet configuration is not in this run")
    limits = (
        df[(df["kind"] == "blas_limit") & (df["config"] == RESNET) & (df["status"] == "ok")]
        .groupby("run")["gflops"]
        .max()
    )
    passes = _passes(ours)
    fig, axes = _panels(len(passes), title)
    for ax, pass_ in zip(axes, passes, strict=True):
        at = ours[ours["pass"] == pass_].assign(label=lambda d: series_label(d))
        torch = ref[(ref["backend"] == YARDSTICK) & (ref["pass"] == pass_)]
        torch_time = at["run"].map(torch.groupby("run")["median"].min())
        limit_time = at["flops"] / (at["run"].map(limits) * 1e9)
        pos = np.arange(len(at))
        ax.bar(pos - 0.2, at["median"] / torch_time, width=0.4, label=f"time / {YARDSTICK}")
        ax.bar(pos + 0.2, at["median"] / limit_time, width=0.4, label="time / BLAS limit")
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_xticks(pos, at["label"], rotation=30, ha="right", fontsize=8)
        ax.set(title=pass_, ylabel="ratio (1 = as fast)", yscale="log")
    return _finish(fig, axes)


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

    def svg(self, df: pd.DataFrame) -> str:
        """The figure of ``df`` as an inline ``<svg>`` element."""
        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
            fig = self.draw(df)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None})
        text = buf.getvalue()
        return text[text.index("<svg") :]


PLOTS = (
    Plot("speedup", f"Speedup over {BASELINE}", "", plot_speedup),
    Plot("scaling", "Time against pixel count", "", plot_scaling),
    Plot(
        "gflops",
        "GFLOP/s against the BLAS limit",
        "The dotted line is a plain float32 BLAS product with the shape of the default "
        "configuration's im2col product, timed in the same run: what one big im2col + GEMM "
        "can reach, not a hardware ceiling. Cache-blocked products, and Winograd (credited "
        "with the direct method's FLOPs while doing fewer multiplies), can pass it.",
        plot_gflops,
    ),
    Plot(
        "memory",
        "Peak memory against the im2col buffer",
        "tracemalloc sees numpy's allocations only: memory that numba or torch allocate "
        "themselves does not show, so those backends read near zero.",
        plot_memory,
    ),
    Plot(
        "yardstick",
        "Yardstick: the resnet configuration (N=16, 56x56, 64->64, 3x3)",
        "",
        plot_yardstick,
    ),
)

"""The goals the suite holds its backends to, as data rows, and the one function that judges them.

The terminal and the HTML report both print from the :class:`Verdict` objects of
:func:`judge`; a new goal is one more row in :data:`GOALS`. A goal is judged by the 95%
interval of its ratio, never by the ratio alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from benchmarks.runfile import RESNET, RESNET50

from .data import GPU_YARDSTICK, SHAPE_KEYS, YARDSTICK, ratio_flag, timed
from .stats import Interval, ratio_interval, sum_ratio_interval

#: a goal's subject that stands for whichever backend of ours is fastest
FASTEST_OURS = "fastest of ours"
#: a goal's yardstick: the plain float32 BLAS product of the im2col size, timed in the run
BLAS_PRODUCT = "the plain BLAS product"
#: a goal's yardstick: the bytes of the full im2col matrix; the subject's peak memory is compared
IM2COL_BUFFER = "the im2col buffer"
#: a goal's yardstick: the time the pass's FLOPs take at the float32 peak the run measured on
#: the subject's device; the goal bounds the subject's share of that peak from below
MEASURED_PEAK = "the measured float32 peak"


@dataclass(frozen=True)
class Goal:
    """One promise: the subject's median (or peak memory) over the yardstick's is bounded."""

    #: what is compared, in plain words
    name: str
    #: the backend measured, or FASTEST_OURS
    subject: str
    #: the pass both sides are measured on
    pass_: str
    #: a backend's name, BLAS_PRODUCT, or IM2COL_BUFFER (then the subject's peak memory counts)
    against: str
    #: the goal is met when subject / against is at most this
    at_most: float
    #: the configuration both sides are measured on
    config: str = RESNET
    #: judged on the sum over every shape of the configuration that both sides have (a
    #: network's layers, each counted once), not on one shape
    layers: bool = False

    @property
    def bound(self) -> str:
        if self.against == MEASURED_PEAK:
            return f"at least {100 / self.at_most:g}% of {MEASURED_PEAK}"
        return f"at most {self.at_most:g}x {self.against}"


GOALS = (
    Goal("fastest of ours, forward + backward", FASTEST_OURS, "step", YARDSTICK, 1.5),
    Goal("winograd forward", "winograd", "forward", YARDSTICK, 1.0),
    Goal("tiled_im2col forward", "tiled_im2col", "forward", BLAS_PRODUCT, 1.25),
    Goal("tiled_im2col peak extra memory", "tiled_im2col", "step", IM2COL_BUFFER, 1 / 8),
    Goal("numba_cuda forward + backward", "numba_cuda", "step", GPU_YARDSTICK, 3.0),
    Goal(
        "numba_cuda forward + backward, ResNet-50 layers at batch 128",
        "numba_cuda",
        "step",
        GPU_YARDSTICK,
        1.5,
        config=RESNET50,
        layers=True,
    ),
    Goal(
        "numba_cuda forward, ResNet-50 layers at batch 128, against the GPU's peak",
        "numba_cuda",
        "forward",
        MEASURED_PEAK,
        1 / 0.4,
        config=RESNET50,
        layers=True,
    ),
)


@dataclass(frozen=True)
class Verdict:
    """A goal judged on one run: the measured ratio and its interval, or None when a side was
    not measured.

    The goal is met when the whole interval is within the bound, not met when the whole
    interval is beyond it, and inconclusive when the interval straddles it, when it is
    unknown, or when a row it rests on is contended or noisy (``flag``).
    """

    goal: Goal
    ratio: float | None
    #: which backend was measured against what, or what the run lacks
    detail: str
    #: the ratio's 95% interval; NaN when it is unknown
    ci_low: float = math.nan
    ci_high: float = math.nan
    #: "contended" or "noisy" when a row the ratio rests on is, else ""
    flag: str = ""

    @property
    def met(self) -> bool | None:
        """True or False when the verdict is certain; None when inconclusive or not measured."""
        if self.ratio is None or self.flag or not self.interval.known:
            return None
        if self.ci_high <= self.goal.at_most:
            return True
        if self.ci_low > self.goal.at_most:
            return False
        return None

    @property
    def interval(self) -> Interval:
        return Interval(math.nan if self.ratio is None else self.ratio, self.ci_low, self.ci_high)

    @property
    def state(self) -> str:
        """met, not met, inconclusive (with why, where a flag is the reason), or not measured."""
        if self.ratio is None:
            return "not measured"
        if self.met is None:
            return f"inconclusive ({self.flag})" if self.flag else "inconclusive"
        return "met" if self.met else "not met"

    @property
    def measured(self) -> str:
        """What was measured, with its interval: the ratio (``1.3x [1.2, 1.4]``), or against
        the peak the share of it (``35% [34%, 36%] of the peak``); "" when nothing was."""
        if self.ratio is None:
            return ""
        if self.goal.against != MEASURED_PEAK:
            return self.interval.text()
        share = f"{100 / self.ratio:.0f}%"
        if self.interval.known:
            share += f" [{100 / self.ci_high:.0f}%, {100 / self.ci_low:.0f}%]"
        return f"{share} of the peak"

    def line(self) -> str:
        """The verdict as one line of text: what the terminal prints."""
        measured = f" at {self.measured}" if self.measured else ""
        return (
            f"{self.goal.name}: {self.state}{measured} "
            f"(goal: {self.goal.bound} at the {self.goal.config} configuration; {self.detail})"
        )


def judge(df: pd.DataFrame) -> list[Verdict]:
    """Every goal of :data:`GOALS`, judged on one run's rows from :func:`reports.load`."""
    return [_judge(goal, df) for goal in GOALS]


def _judge(goal: Goal, df: pd.DataFrame) -> Verdict:
    rows = timed(df, goal.config)
    rows = rows[rows["pass"] == goal.pass_]
    if goal.layers:
        return _judge_layers(goal, rows)
    if goal.subject == FASTEST_OURS:
        subjects = rows[rows["role"] == "ours"]
    else:
        subjects = rows[rows["backend"] == goal.subject]
    if goal.against == IM2COL_BUFFER:
        subjects = subjects.dropna(subset=["peak_bytes"])
        if subjects.empty:
            return Verdict(
                goal, None, f"no peak memory of {goal.subject} at {goal.config} in this run"
            )
        best = subjects.loc[subjects["peak_bytes"].idxmin()]
        ratio = _finite(best["peak_bytes"] / best["cols_bytes"])
        # one deterministic count of bytes: its interval is the value itself
        bounds = (math.nan, math.nan) if ratio is None else (ratio, ratio)
        return Verdict(
            goal, ratio, f"{best['backend']}, peak extra memory against the buffer", *bounds
        )
    if goal.against == BLAS_PRODUCT:
        yardsticks = df[
            (df["kind"] == "blas_limit") & (df["status"] == "ok") & (df["config"] == goal.config)
        ]
    else:
        yardsticks = rows[rows["backend"] == goal.against]
    for side, found in ((goal.subject, subjects), (goal.against, yardsticks)):
        if found.empty:
            return Verdict(
                goal, None, f"no {goal.pass_} time of {side} at {goal.config} in this run"
            )
    best = subjects.loc[subjects["median"].idxmin()]
    yardstick = yardsticks.loc[yardsticks["median"].idxmin()]
    ratio = _finite(best["median"] / yardstick["median"])
    interval = ratio_interval(best["times"], yardstick["times"])
    return Verdict(
        goal,
        ratio,
        f"{best['backend']} against {goal.against}",
        interval.low,
        interval.high,
        ratio_flag(best, yardstick),
    )


def _judge_layers(goal: Goal, rows: pd.DataFrame) -> Verdict:
    """The subject's time summed over the layers over the yardstick's, on the same layers."""
    keys = SHAPE_KEYS[1:]
    subjects = rows[rows["backend"] == goal.subject].drop_duplicates(keys)
    if subjects.empty:
        return Verdict(
            goal, None, f"no {goal.pass_} time of {goal.subject} at {goal.config} in this run"
        )
    if goal.against == MEASURED_PEAK:
        # the time at the peak is a number, not a measurement with rounds
        peaks = subjects["peak_gflops"].dropna()
        if peaks.empty:
            return Verdict(goal, None, f"no measured peak for {goal.subject}'s device in this run")
        at_peak = float(subjects["flops"].sum() / (peaks.iloc[0] * 1e9))
        interval = sum_ratio_interval(list(subjects["times"]), at_peak)
        ratio = _finite(subjects["median"].sum() / at_peak)
        detail = (
            f"{goal.subject} over {len(subjects)} layers, the peak {peaks.iloc[0]:.0f} GFLOP/s "
            f"({subjects['peak_source'].iloc[0]}); time over the time at the peak "
            f"{interval.text()}"
        )
        return Verdict(
            goal, ratio, detail, interval.low, interval.high, ratio_flag(*_rows(subjects))
        )
    theirs = rows[rows["backend"] == goal.against].drop_duplicates(keys)
    both = subjects.merge(theirs, on=keys, suffixes=("", "_yardstick"))
    if both.empty:
        return Verdict(
            goal,
            None,
            f"no layer at {goal.config} has a {goal.pass_} time of both sides in this run",
        )
    ratio = _finite(both["median"].sum() / both["median_yardstick"].sum())
    interval = sum_ratio_interval(list(both["times"]), list(both["times_yardstick"]))
    missing = len(set(map(tuple, subjects[keys].to_numpy()))) - len(both)
    detail = f"{goal.subject} against {goal.against}, summed over {len(both)} layers"
    detail += f" ({missing} layers of {goal.subject} without a yardstick)" if missing else ""
    flags = [*_rows(subjects), *_rows(theirs)]
    return Verdict(goal, ratio, detail, interval.low, interval.high, ratio_flag(*flags))


def _rows(frame: pd.DataFrame) -> list[pd.Series]:
    return [row for _, row in frame.iterrows()]


def _finite(value: Any) -> float | None:
    return float(value) if math.isfinite(value) else None

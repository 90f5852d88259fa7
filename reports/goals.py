"""The goals the suite holds its backends to, as data rows, and the one function that judges them.

The terminal and the HTML report both print from the :class:`Verdict` objects of
:func:`judge`; a new goal is one more row in :data:`GOALS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .data import RESNET, YARDSTICK, timed

#: a goal's subject that stands for whichever backend of ours is fastest
FASTEST_OURS = "fastest of ours"
#: a goal's yardstick: the plain float32 BLAS product of the im2col size, timed in the run
BLAS_PRODUCT = "the plain BLAS product"
#: a goal's yardstick: the bytes of the full im2col matrix; the subject's peak memory is compared
IM2COL_BUFFER = "the im2col buffer"


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

    @property
    def bound(self) -> str:
        return f"at most {self.at_most:g}x {self.against}"


GOALS = (
    Goal("fastest of ours, forward + backward", FASTEST_OURS, "step", YARDSTICK, 1.5),
    Goal("winograd forward", "winograd", "forward", YARDSTICK, 1.0),
    Goal("tiled_im2col forward", "tiled_im2col", "forward", BLAS_PRODUCT, 1.25),
    Goal("tiled_im2col peak extra memory", "tiled_im2col", "step", IM2COL_BUFFER, 1 / 8),
    Goal("numba_cuda forward + backward", "numba_cuda", "step", "torch_cudnn", 3.0),
)


@dataclass(frozen=True)
class Verdict:
    """A goal judged on one run: the measured ratio, or None when a side was not measured."""

    goal: Goal
    ratio: float | None
    #: which backend was measured against what, or what the run lacks
    detail: str

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.ratio <= self.goal.at_most

    @property
    def state(self) -> str:
        return {True: "met", False: "not met", None: "not measured"}[self.met]

    def line(self) -> str:
        """The verdict as one line of text: what the terminal prints."""
        measured = "" if self.ratio is None else f" at {self.ratio:.3g}x"
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
        return Verdict(goal, ratio, f"{best['backend']}, tracemalloc peak against the buffer")
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
    ratio = _finite(best["median"] / yardsticks["median"].min())
    return Verdict(goal, ratio, f"{best['backend']} against {goal.against}")


def _finite(value: Any) -> float | None:
    return float(value) if math.isfinite(value) else None

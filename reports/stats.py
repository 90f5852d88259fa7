"""Confidence intervals and significance tests on a benchmark's trials or rounds, via scipy.stats.

A run of several trials (benchmarks/trials.py) is judged by the variation *between its
trials*: a row's time is the geometric mean of its trial medians, and its 95% interval is
Student's t interval of their logarithms, so it includes what changed over the minutes
between trials. A ratio of two rows of one run is *paired*: the two were timed seconds apart
in every trial, so it is the geometric mean of the trials' ratios, with the t interval of
their logarithms; a sum over a network's layers is summed within each trial first. Two
different runs are not paired: their change is Welch's t interval and test on the trial
medians' logarithms.

Rounds without trials (a run of one trial, or made before trials) keep the earlier
statistics: every interval is a percentile bootstrap (:func:`scipy.stats.bootstrap`) of a
median or of a ratio of two medians, resampling each benchmark's rounds independently, with
a fixed seed so a rebuilt report shows the same intervals. "Is there a difference" is the one-sided
Mann-Whitney U test (:func:`scipy.stats.mannwhitneyu`), exact for small samples. A benchmark
of more than :data:`MAX_ROUNDS` rounds is resampled and tested through a random subsample of
that many (fixed seed): its interval is a little wider than all its rounds would give, and
its memory and time stay bounded (2000 resamples of 25 million rounds would need 373 GiB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: the confidence of every interval
CONFIDENCE = 0.95
#: bootstrap resamples per interval
RESAMPLES = 2000
#: a difference counts when the test's p-value is below this
SIGNIFICANCE = 0.05
#: a row is noisy when the interval of its median reaches further than this from it
NOISY_HALF_WIDTH = 0.10
#: the most rounds of one benchmark an interval or a test uses: more are subsampled
MAX_ROUNDS = 10_000
#: resamples the bootstrap holds in memory at once (BATCH x MAX_ROUNDS floats: 8 MB)
BATCH = 100
#: the times in seconds a round or a median can plausibly take: from a nanosecond to 11 days
TIME_RANGE = (1e-9, 1e6)


#: a row agrees with its trials when its trial medians lie within this share of its time
AGREE = 0.10


@dataclass(frozen=True)
class Rounds:
    """A benchmark's rounds in seconds and the trial of each, as its run's JSON keeps them."""

    times: Any
    #: the trial of each round; None for a run made before trials
    trials: Any = None

    def by_trial(self) -> dict[int, np.ndarray] | None:
        """Each trial's plausible rounds (:data:`TIME_RANGE`), by trial; None unless the rounds
        carry a trial each and come from two trials or more."""
        times, trials = self.times, self.trials
        if not isinstance(times, (list, tuple, np.ndarray)):
            return None
        if not isinstance(trials, (list, tuple, np.ndarray)) or len(trials) != len(times):
            return None
        out: dict[int, list[float]] = {}
        for t, trial in zip(times, trials, strict=True):
            if _is_time(t) and TIME_RANGE[0] <= t <= TIME_RANGE[1] and _is_trial(trial):
                out.setdefault(int(trial), []).append(float(t))
        return {k: np.array(v) for k, v in sorted(out.items())} if len(out) >= 2 else None

    def trial_medians(self) -> dict[int, float] | None:
        """Each trial's median, by trial; None as for :meth:`by_trial`."""
        by_trial = self.by_trial()
        if by_trial is None:
            return None
        return {k: float(np.median(v)) for k, v in by_trial.items()}


def _is_trial(value: Any) -> bool:
    return bool(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0)


def _trial_medians(*rows: Any) -> list[dict[int, float]] | None:
    """Each row's trial medians, over the trials every row has; None unless every row carries
    trials and two or more are common to all."""
    medians = [r.trial_medians() if isinstance(r, Rounds) else None for r in rows]
    known = [m for m in medians if m is not None]
    if len(known) < len(rows) or not known:
        return None
    common = set.intersection(*(set(m) for m in known))
    if len(common) < 2:
        return None
    return [{k: m[k] for k in sorted(common)} for m in known]


def t_interval(values: Any) -> Interval:
    """exp of the mean of log(values), with Student's t interval of that mean (95%).

    The geometric mean of positive values (a trial's median or ratio), and how far it is
    known given how much they vary; NaN bounds under two values.
    """
    logs = np.log(np.asarray(values, dtype=float))
    value = float(np.exp(logs.mean()))
    if len(logs) < 2:
        return Interval(value)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(logs) - 1) * stats.sem(logs)
    return Interval(value, float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half)))


def trials_agreeing(rounds: Any) -> tuple[int, int]:
    """How many of a row's trial medians lie within :data:`AGREE` of its time, and how many
    trials it has; (0, 0) for rounds without trials."""
    medians = rounds.trial_medians() if isinstance(rounds, Rounds) else None
    if medians is None:
        return 0, 0
    value = t_interval(list(medians.values())).value
    agree = sum(abs(m / value - 1) <= AGREE for m in medians.values())
    return agree, len(medians)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval; low and high are NaN when unknown."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def known(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def half_width(self) -> float:
        """Half the interval's width relative to the value: 0.05 is +-5%; NaN when unknown."""
        if not self.known or self.value == 0:
            return math.nan
        return (self.high - self.low) / (2 * abs(self.value))

    def text(self, unit: str = "x") -> str:
        """``1.23x [1.10, 1.31]``, or ``1.23x [no interval]`` when it is unknown."""
        bounds = f"[{self.low:.3g}, {self.high:.3g}]" if self.known else "[no interval]"
        return f"{self.value:.3g}{unit} {bounds}"


def rounds_of(values: Any) -> np.ndarray:
    """The times of :data:`TIME_RANGE` in ``values`` (a list from a run's JSON, or None) as
    floats, at most :data:`MAX_ROUNDS` of them (a subsample drawn with a fixed seed).

    Anything else (a missing or malformed list, text, an integer past 64 bits) is left out.
    """
    if isinstance(values, Rounds):
        values = values.times
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        return np.empty(0)
    times = np.fromiter(
        (v if _is_time(v) else math.nan for v in values),
        dtype=float,
        count=len(values),
    )  # fmt: skip
    times = times[(times >= TIME_RANGE[0]) & (times <= TIME_RANGE[1])]
    if len(times) > MAX_ROUNDS:
        chosen = np.random.default_rng(0).choice(len(times), MAX_ROUNDS, replace=False)
        times = times[np.sort(chosen)]
    return times


def _is_time(value: Any) -> bool:
    """Whether ``value`` is a float (numpy's too) or an integer that fits in 64 bits."""
    if isinstance(value, (float, np.floating)):
        return True
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return integer and abs(int(value)) < 2**63


def subsampled(values: Any) -> bool:
    """Whether :func:`rounds_of` keeps only a subsample of ``values``' rounds."""
    if isinstance(values, Rounds):
        values = values.times
    return isinstance(values, (list, tuple, np.ndarray)) and len(values) > MAX_ROUNDS


def _median_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(a, axis=axis) / np.median(b, axis=axis)


def _bootstrap(samples: tuple[np.ndarray, ...], statistic: Any) -> tuple[float, float]:
    if any(len(s) < 2 for s in samples):
        return math.nan, math.nan
    if all(np.ptp(s) == 0 for s in samples):  # every resample gives the same value
        value = float(statistic(*samples))
        return value, value
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        batch=BATCH,
        rng=np.random.default_rng(0),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def median_interval(rounds: Any) -> Interval:
    """A row's time with its interval: over its trials (:func:`t_interval` of the trial
    medians) where it has two or more, else the median of ``rounds`` with its bootstrap
    interval (NaN bounds under two rounds)."""
    medians = _trial_medians(rounds)
    if medians is not None:
        return t_interval(list(medians[0].values()))
    times = rounds_of(rounds)
    if not len(times):
        return Interval(math.nan)
    low, high = _bootstrap((times,), np.median)
    return Interval(float(np.median(times)), low, high)


def ratio_interval(numerator: Any, denominator: Any, paired: bool = True) -> Interval:
    """numerator's time over denominator's, with its interval.

    Two rows of one run's trials (``paired``): the geometric mean of the trials' ratios
    and its t interval. Two different runs' trials (not ``paired``): the ratio of their
    geometric means and Welch's t interval of the difference of their logarithms. Rounds
    without trials: median(numerator) / median(denominator) with a two-sample bootstrap
    interval, each side's rounds resampled on their own.
    """
    medians = _trial_medians(numerator, denominator) if paired else None
    if medians is not None:
        top, bottom = medians
        return t_interval([top[k] / bottom[k] for k in top])
    if not paired:
        unpaired = _welch(numerator, denominator)
        if unpaired is not None:
            return unpaired[0]
    a, b = rounds_of(numerator), rounds_of(denominator)
    if not (len(a) and len(b)):
        return Interval(math.nan)
    low, high = _bootstrap((a, b), _median_ratio)
    return Interval(float(np.median(a) / np.median(b)), low, high)


def sum_ratio_interval(numerators: Sequence[Any], denominator: Sequence[Any] | float) -> Interval:
    """The sum of the numerators' medians over the denominators' (or over a number), with its
    bootstrap interval: a network's time over another's, layer by layer
    (:func:`weighted_sum_interval` with every weight 1); NaN where a list has no rounds.
    """
    if not numerators:
        return Interval(math.nan)
    parts = [(values, 1.0) for values in numerators]
    if isinstance(denominator, (int, float)):
        if denominator == 0:
            return Interval(math.nan)
        total = weighted_sum_interval(parts)
        return Interval(*(bound / denominator for bound in (total.value, total.low, total.high)))
    if not len(denominator):
        return Interval(math.nan)
    return weighted_sum_interval(parts, [(values, 1.0) for values in denominator])


def _welch(after: Any, before: Any) -> tuple[Interval, float] | None:
    """after's time over before's, two runs' trials: the ratio of the geometric means of
    their trial medians, Welch's t interval of it, and the one-sided p-value of "after is
    slower"; None unless both sides have two trials or more."""
    sides = [r.trial_medians() if isinstance(r, Rounds) else None for r in (after, before)]
    if any(side is None for side in sides):
        return None
    a, b = (np.log(list(side.values())) for side in sides)  # type: ignore[union-attr]
    diff = float(a.mean() - b.mean())
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no variation: the difference is exact
        return Interval(math.exp(diff), math.exp(diff), math.exp(diff)), float(diff <= 0)
    test = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    low, high = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return Interval(math.exp(diff), math.exp(low), math.exp(high)), float(test.pvalue)


def p_slower(before: Any, after: Any) -> float:
    """p-value of "``after`` is slower than ``before``", two different runs, one-sided.

    With trials on both sides: Welch's t test on the logarithms of the trial medians. Else
    the Mann-Whitney U test on the rounds, NaN when either side has fewer than two rounds
    (with three rounds a side the smallest possible p-value is 0.05; five a side reach 0.004).
    """
    unpaired = _welch(after, before)
    if unpaired is not None:
        return unpaired[1]
    a, b = rounds_of(before), rounds_of(after)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(stats.mannwhitneyu(b, a, alternative="greater").pvalue)


def is_noisy(interval: Interval) -> bool:
    """Whether a median's interval is wider than :data:`NOISY_HALF_WIDTH` either side."""
    return interval.known and interval.half_width > NOISY_HALF_WIDTH


def weighted_sum_interval(
    parts: Sequence[tuple[Any, float]], over: Sequence[tuple[Any, float]] = ()
) -> Interval:
    """sum(weight * median(rounds)) over ``parts`` (divided by the same sum over ``over`` when
    given), with its interval: with trials, the sum (or the quotient) is taken within each
    trial and judged by :func:`t_interval` over the trials; else a bootstrap, every
    benchmark's rounds resampled on their own.

    Parameters
    ----------
    parts, over : sequences of (rounds, weight), one per benchmark: a whole network's layers,
        each weighted by how many layers share its shape

    Returns
    -------
    Interval
        NaN bounds where a benchmark has fewer than two rounds; NaN if one has none.
    """
    weights_all = [weight for _, weight in [*parts, *over]]
    medians = _trial_medians(*(rounds for rounds, _ in [*parts, *over])) if parts else None
    if medians is not None:
        per_trial = []
        for trial in medians[0]:
            sums = [w * m[trial] for w, m in zip(weights_all, medians, strict=True)]
            top, bottom = sum(sums[: len(parts)]), sum(sums[len(parts) :])
            per_trial.append(top / bottom if over else top)
        return t_interval(per_trial)
    samples = [rounds_of(rounds) for rounds, _ in [*parts, *over]]
    if not all(len(s) for s in samples):
        return Interval(math.nan)
    weights = np.array([weight for _, weight in [*parts, *over]], dtype=float)
    split = len(parts)

    def statistic(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        medians = [np.median(s, axis=axis) for s in resampled]
        top = sum(w * m for w, m in zip(weights[:split], medians[:split], strict=True))
        bottom = sum(w * m for w, m in zip(weights[split:], medians[split:], strict=True))
        return top / bottom if over else top  # type: ignore[no-any-return]

    value = float(statistic(*samples))
    low, high = _bootstrap(tuple(samples), statistic)
    return Interval(value, low, high)

"""Confidence intervals and significance tests on a benchmark's rounds, through scipy.stats.

Every interval is a percentile bootstrap (:func:`scipy.stats.bootstrap`) of a median or of
a ratio of two medians, resampling each benchmark's rounds independently, with a fixed seed
so a rebuilt report shows the same intervals. "Is there a difference" is the one-sided
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
    """The median of ``rounds`` with its bootstrap interval (NaN bounds under two rounds)."""
    times = rounds_of(rounds)
    if not len(times):
        return Interval(math.nan)
    low, high = _bootstrap((times,), np.median)
    return Interval(float(np.median(times)), low, high)


def ratio_interval(numerator: Any, denominator: Any) -> Interval:
    """median(numerator) / median(denominator) with its two-sample bootstrap interval.

    Each side's rounds are resampled on their own: the two were timed as separate
    benchmarks, so no round of one is paired with a round of the other.
    """
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


def p_slower(before: Any, after: Any) -> float:
    """p-value of "``after``'s rounds are slower than ``before``'s" (Mann-Whitney U, one-sided).

    NaN when either side has fewer than two rounds. With three rounds a side the smallest
    possible p-value is 0.05: no difference can be significant; five a side reach 0.004.
    """
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
    given), with its bootstrap interval: every benchmark's rounds resampled on their own.

    Parameters
    ----------
    parts, over : sequences of (rounds, weight), one per benchmark: a whole network's layers,
        each weighted by how many layers share its shape

    Returns
    -------
    Interval
        NaN bounds where a benchmark has fewer than two rounds; NaN if one has none.
    """
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

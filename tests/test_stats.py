"""The statistics under every verdict: intervals of medians and ratios, and the slowdown test.

Known inputs with intervals known in closed form (tiny samples whose bootstrap distribution
can be enumerated, large samples against the normal approximation of a median), and the
exact Mann-Whitney p-values of fully separated samples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports.stats import (
    NOISY_HALF_WIDTH,
    Interval,
    is_noisy,
    median_interval,
    p_slower,
    ratio_interval,
    rounds_of,
)

#: a median's standard error is sqrt(pi / 2) * sigma / sqrt(n) for a normal sample
MEDIAN_SE = math.sqrt(math.pi / 2)
Z95 = 1.959964


def test_two_rounds_give_the_enumerated_bootstrap_interval() -> None:
    # resamples of (1, 3): medians 1, 2, 3 with chances 1/4, 1/2, 1/4: the 95% interval is [1, 3]
    interval = median_interval([1.0, 3.0])
    assert (interval.value, interval.low, interval.high) == (2.0, 1.0, 3.0)


def test_identical_rounds_give_a_zero_width_interval() -> None:
    interval = median_interval([0.5] * 7)
    assert (interval.value, interval.low, interval.high) == (0.5, 0.5, 0.5)
    assert interval.half_width == 0


def test_a_median_interval_matches_the_normal_theory_on_a_large_sample() -> None:
    sigma, n = 1.0, 400
    rounds = np.random.default_rng(1).normal(10.0, sigma, n)
    interval = median_interval(rounds)
    expected = Z95 * MEDIAN_SE * sigma / math.sqrt(n)  # 0.123
    assert interval.low < np.median(rounds) < interval.high
    assert (interval.high - interval.low) / 2 == pytest.approx(expected, rel=0.25)


def test_a_ratio_interval_matches_the_normal_theory_on_large_samples() -> None:
    rng = np.random.default_rng(2)
    n = 300
    slow, fast = rng.normal(10.0, 0.1, n), rng.normal(5.0, 0.05, n)
    interval = ratio_interval(slow, fast)
    # each median is off by 1.2533 * 1% / sqrt(n) relative; the ratio by sqrt(2) times that
    relative = math.sqrt(2) * MEDIAN_SE * 0.01 / math.sqrt(n)
    assert interval.value == pytest.approx(2.0, rel=0.01)
    assert interval.half_width == pytest.approx(Z95 * relative, rel=0.25)
    assert interval.low < interval.value < interval.high


def test_a_ratio_interval_scales_with_its_numerator() -> None:
    a, b = [1.0, 1.2, 0.9, 1.1, 1.05], [2.0, 2.1, 1.9, 2.3, 2.2]
    once, thrice = ratio_interval(a, b), ratio_interval([3 * t for t in a], b)
    assert (thrice.value, thrice.low, thrice.high) == pytest.approx(
        (3 * once.value, 3 * once.low, 3 * once.high)
    )


def test_intervals_are_reproducible() -> None:
    rounds = [1.0, 1.3, 0.8, 1.1, 1.25, 0.95]
    assert median_interval(rounds) == median_interval(rounds)
    assert ratio_interval(rounds, rounds[::-1]) == ratio_interval(rounds, rounds[::-1])


@pytest.mark.parametrize("rounds", [[], [1.0], None, "1.0", [math.nan, 1.0]])
def test_under_two_usable_rounds_there_is_no_interval(rounds: object) -> None:
    interval = median_interval(rounds)
    assert not interval.known
    assert not is_noisy(interval)
    assert math.isnan(ratio_interval(rounds, [1.0, 2.0]).low)
    assert "[no interval]" in Interval(1.0).text()


def test_rounds_of_keeps_positive_finite_numbers_only() -> None:
    assert rounds_of([1.0, 0, -2.0, math.inf, math.nan, True, "3", None, 2]).tolist() == [1.0, 2.0]


def test_fully_separated_rounds_give_the_exact_mann_whitney_p_value() -> None:
    before, after = [1.0, 1.1, 1.2, 1.3, 1.4], [2.0, 2.1, 2.2, 2.3, 2.4]
    # one ordering of the ten rounds in C(10, 5) = 252 puts every new round above every old one
    assert p_slower(before, after) == pytest.approx(1 / 252)
    assert p_slower(after, before) == pytest.approx(1.0)


def test_three_rounds_a_side_can_never_be_significant() -> None:
    assert p_slower([1.0, 1.1, 1.2], [9.0, 9.1, 9.2]) == pytest.approx(1 / 20)


def test_one_round_a_side_has_no_p_value() -> None:
    assert math.isnan(p_slower([1.0], [2.0, 3.0]))


@pytest.mark.parametrize(
    ("low", "high", "noisy"),
    [(0.95, 1.05, False), (0.91, 1.09, False), (0.85, 1.12, True), (0.99, 1.3, True)],
)
def test_a_median_is_noisy_when_its_interval_reaches_past_the_threshold(
    low: float, high: float, noisy: bool
) -> None:
    assert NOISY_HALF_WIDTH == 0.10
    assert is_noisy(Interval(1.0, low, high)) is noisy


def test_an_interval_reads_as_value_and_bounds() -> None:
    assert Interval(1.234, 1.1, 1.31).text() == "1.23x [1.1, 1.31]"

"""Trials: the order of the visits, the statistics over trials, paired ratios and compare.

Crafted runs with a known drift between trials and a known slowdown: the statistics must
absorb the drift (no verdict from it) and still see the slowdown; no test looks at a timing.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reports
from benchmarks import trials
from benchmarks.matrix import BlasCase, Case, sweep_conv
from reports.stats import Rounds, median_interval, p_slower, ratio_interval, t_interval
from tests.test_reports import bench, synthetic_run, write

# the order of the visits


def _visits(count: int) -> list[tuple[Case | BlasCase, int]]:
    cases: list[Case | BlasCase] = [
        Case(name, pass_, sweep_conv(size))
        for size in (8, 16, 24)
        for pass_ in ("forward", "step")
        for name in ("a", "b", "c")
    ]
    cases.append(BlasCase(sweep_conv(16)))
    return [(case, trial) for trial in range(count + 1) for case in cases]


def test_sizing_comes_first_in_the_given_order_then_every_case_once_a_trial() -> None:
    visits = _visits(3)
    order = trials.visit_order(visits, 3, seed=7)
    assert sorted(order) == list(range(len(visits)))
    per_trial = len(visits) // 4
    assert order[:per_trial] == list(range(per_trial))  # the sizing pass, as given
    for trial in (1, 2, 3):
        chunk = order[trial * per_trial : (trial + 1) * per_trial]
        assert {visits[i][1] for i in chunk} == {trial}
        assert sorted(visits[i][0].id for i in chunk) == sorted(c.id for c, t in visits if t == 0)


def test_a_pair_runs_back_to_back_its_order_reversed_every_other_trial() -> None:
    visits = _visits(2)
    order = trials.visit_order(visits, 2, seed=1)
    seen: dict[int, list[list[str]]] = {1: [], 2: []}
    for trial in (1, 2):
        keys = [trials.pair_key(visits[i][0]) for i in order if visits[i][1] == trial]
        # each pair's cases are contiguous: the key changes once per pair
        changes = sum(a != b for a, b in itertools.pairwise(keys))
        assert changes == len(set(keys)) - 1
        for key in dict.fromkeys(keys):
            names = [
                getattr(visits[i][0], "backend", "blas")
                for i in order
                if visits[i][1] == trial and trials.pair_key(visits[i][0]) == key
            ]
            seen[trial].append(names)
    # the BLAS product pairs with the forward of its configuration
    assert any("blas" in names and len(names) == 4 for names in seen[1])
    by_members = {frozenset(n): n for n in seen[1]}
    for names in seen[2]:
        assert names == by_members[frozenset(names)][::-1]


def test_each_trial_has_its_own_order_and_a_seed_repeats_it() -> None:
    visits = _visits(3)
    order = trials.visit_order(visits, 3, seed=11)
    assert order == trials.visit_order(visits, 3, seed=11)
    assert order != trials.visit_order(visits, 3, seed=12)
    per_trial = len(visits) // 4
    pairs = [
        [trials.pair_key(visits[i][0]) for i in order[t * per_trial : (t + 1) * per_trial]]
        for t in (1, 2, 3)
    ]
    firsts = [list(dict.fromkeys(p)) for p in pairs]
    assert firsts[0] != firsts[1]
    assert firsts[1] != firsts[2]


def test_a_benchmark_name_loses_its_trial() -> None:
    assert trials.without_trial("t[a-forward-default-8px-trial12]") == "t[a-forward-default-8px]"
    assert trials.without_trial("t[a-forward-default-8px-sizing]") == "t[a-forward-default-8px]"
    assert trials.without_trial("t[trial-forward-8px]") == "t[trial-forward-8px]"


# statistics over trials


def _rounds(trial_medians: list[float], per_trial: int = 5, spread: float = 0.01) -> Rounds:
    times, labels = [], []
    for trial, median in enumerate(trial_medians, start=1):
        times += [median * (1 + f) for f in np.linspace(-spread, spread, per_trial)]
        labels += [trial] * per_trial
    return Rounds(times, labels)


def test_a_rows_time_is_the_geometric_mean_of_its_trial_medians_with_a_t_interval() -> None:
    medians = [1.0, 1.2, 0.9]
    interval = median_interval(_rounds(medians))
    logs = np.log(medians)
    half = 4.302652729911275 * logs.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert interval.value == pytest.approx(math.exp(logs.mean()))
    assert (interval.low, interval.high) == pytest.approx(
        (math.exp(logs.mean() - half), math.exp(logs.mean() + half))
    )


def test_rounds_without_trials_keep_the_bootstrap_of_their_rounds() -> None:
    rounds = _rounds([1.0, 1.2, 0.9])
    alone = median_interval(rounds.times)
    assert alone.value == pytest.approx(float(np.median(rounds.times)))
    assert median_interval(Rounds(rounds.times, None)) == alone
    # one trial only: nothing to vary between, the rounds decide
    assert median_interval(_rounds([1.0])) == median_interval(_rounds([1.0]).times)


def test_a_paired_ratio_cancels_a_drift_both_sides_shared() -> None:
    """The machine ran 40% slower in one trial: two rows timed back to back both felt it;
    their paired ratio does not, though their own intervals are wide."""
    drift = [1.0, 1.4, 0.95, 1.1]
    ours = _rounds([0.8 * d for d in drift])
    theirs = _rounds([1.0 * d for d in drift])
    paired = ratio_interval(ours, theirs)
    assert paired.value == pytest.approx(0.8)
    assert paired.high - paired.low < 1e-9
    apart = ratio_interval(ours, theirs, paired=False)
    assert apart.value == pytest.approx(0.8)
    # unpaired, the drift is all noise
    assert apart.low < 0.65
    assert apart.high > 1.0
    assert median_interval(ours).half_width > 0.2


def test_t_interval_of_equal_values_is_exact() -> None:
    interval = t_interval([2.0, 2.0, 2.0])
    assert (interval.value, interval.low, interval.high) == pytest.approx((2.0, 2.0, 2.0))


def _trial_run(
    rng: np.random.Generator,
    scale: float = 1.0,
    trials_: int = 3,
    drift: float = 0.05,
    noise: float = 0.03,
) -> dict:
    """A run of 60 rows: each trial's machine speed drifts (``drift``, the same for every row
    of the trial), each row's trial median varies by ``noise`` around its time, and each
    trial has 5 rounds within 1% of it."""
    run = synthetic_run()
    entries = []
    shared = np.exp(rng.normal(0, drift, trials_))
    for i in range(60):
        base = 0.001 * (1 + i) * scale
        medians = base * shared * np.exp(rng.normal(0, noise, trials_))
        rounds = _rounds(list(medians))
        entry = bench(f"b{i % 6}", "ours", "forward", "default", float(np.median(rounds.times)))
        entry["fullname"] = f"test[b{i}-forward-default-8px]"
        entry["stats"]["data"] = list(rounds.times)
        entry["stats"]["rounds"] = len(rounds.times)
        entry["extra_info"]["round_trial"] = list(rounds.trials)
        entries.append(entry)
    run["benchmarks"] = entries
    return run


def _flagged(tmp_path: Path, old: dict[str, Any], new: dict[str, Any]) -> int:
    table = reports.compare(
        write(tmp_path / "old.json", old), write(tmp_path / "new.json", new), 0.1
    )
    return int(table["regressed"].sum())


@pytest.mark.parametrize(
    ("trials_", "drift", "noise"),
    [
        # 5 trials with 5% drift and 3% noise a trial; 3 trials with 2% and 2%. (3 trials at
        # 5% and 3% flag only 37 of 60 rows slowed by 20%: 4 degrees of freedom are too few)
        (5, 0.05, 0.03),
        (3, 0.02, 0.02),
    ],
)
def test_compare_of_two_runs_that_drifted_flags_no_row_but_a_real_slowdown_every_row(
    tmp_path: Path, trials_: int, drift: float, noise: float
) -> None:
    rng = np.random.default_rng(3)
    old, twin, slower = (_trial_run(rng, scale, trials_, drift, noise) for scale in (1.0, 1.0, 1.2))
    assert _flagged(tmp_path, old, twin) <= 3  # 5% of 60 at most
    assert _flagged(tmp_path, old, slower) >= 57


def test_pooled_rounds_call_two_slow_trials_a_slowdown_the_trials_do_not(tmp_path: Path) -> None:
    """The same code, the machine 12-13% slower in two of three trials: its pooled rounds'
    median moved +12% with every round significant; its trials say +8% [wide]."""
    old, new = synthetic_run(), synthetic_run()
    for run, medians in ((old, [1.0, 1.0, 1.0]), (new, [1.12, 1.13, 1.0])):
        rounds = _rounds([1e-3 * m for m in medians])
        entry = bench("b", "ours", "forward", "default", float(np.median(rounds.times)))
        entry["stats"]["data"] = list(rounds.times)
        entry["extra_info"]["round_trial"] = list(rounds.trials)
        run["benchmarks"] = [entry]
    assert _flagged(tmp_path, old, new) == 0
    for run in (old, new):
        del run["benchmarks"][0]["extra_info"]["round_trial"]
    assert _flagged(tmp_path, old, new) == 1


def test_welch_p_is_small_for_a_clear_slowdown_and_large_for_none() -> None:
    before = _rounds([1.0, 1.02, 0.98])
    assert p_slower(before, _rounds([1.2, 1.22, 1.19])) < 0.01
    assert p_slower(before, _rounds([1.01, 0.99, 1.0])) > 0.2
    assert p_slower(before, _rounds([0.8, 0.81, 0.79])) > 0.95

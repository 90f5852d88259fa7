"""The order of a run's visits: a sizing pass, then trials in seeded random orders.

A run first visits every case once, smallest first, untimed (the *sizing* pass: JIT
compilation, the calls that size the rounds, the skip decisions, the accuracy check). Then
each of its trials visits every sized case once more and times a share of its rounds. A
trial shuffles the *pairs* of the matrix (the cases of one configuration, pass and thread
count: the backends a ratio compares, and the BLAS product of a forward) with its own seeded
generator; within a pair the cases run back to back, in an order that reverses from one
trial to the next. So a ratio's two sides are timed seconds apart in every trial, each side
first as often as the other, and what changes over minutes lands between trials, where the
statistics see it (Abedi & Brecht, ICPE 2017; google benchmark's random interleaving).
"""

from __future__ import annotations

import random
import re
from collections.abc import Hashable, Sequence
from typing import Any

from .matrix import BlasCase, Case

#: trials a run makes unless --trials says otherwise
DEFAULT_TRIALS = 3
#: the trial number of the sizing pass
SIZING = 0
#: a benchmark's id ends with its trial: "-sizing" or "-trial2"
_TRIAL_ID = re.compile(r"-(sizing|trial\d+)(?=\]$)")


def trial_id(trial: int) -> str:
    """The id pytest gives a visit's trial: "sizing" for 0, else "trial<N>"."""
    return "sizing" if trial == SIZING else f"trial{trial}"


def without_trial(name: str) -> str:
    """A benchmark's name without its trial: the name a case keeps in the run's JSON."""
    return _TRIAL_ID.sub("", name)


def pair_key(case: Case | BlasCase) -> Hashable:
    """The pair a case belongs to: its configuration, pass and thread count; a BLAS product
    pairs with its configuration's forward."""
    if isinstance(case, BlasCase):
        return (case.conv, "forward", 0)
    return (case.conv, case.pass_, case.threads)


def visit_order(cases: Sequence[tuple[Case | BlasCase, int]], trials: int, seed: int) -> list[int]:
    """The order in which to visit ``cases`` (each a case and its trial), as indices.

    Sizing visits come first, in the order given; then trial 1, 2, ...: each trial's pairs in
    a random order from ``random.Random((seed, trial))``, and the cases of a pair in their
    given order on odd trials, reversed on even ones.
    """
    sizing = [i for i, (_, trial) in enumerate(cases) if trial == SIZING]
    order = list(sizing)
    for trial in range(1, trials + 1):
        pairs: dict[Hashable, list[int]] = {}
        for i, (case, t) in enumerate(cases):
            if t == trial:
                pairs.setdefault(pair_key(case), []).append(i)
        keys = list(pairs)
        random.Random(f"{seed}:{trial}").shuffle(keys)
        for key in keys:
            members = pairs[key]
            order += members if trial % 2 else members[::-1]
    return order


def describe(trials: int, seed: int, probes: list[dict[str, Any]]) -> dict[str, Any]:
    """The trials as run, for the run's JSON: their count, the seed, each trial's drift probe."""
    return {"count": trials, "seed": seed, "probes": probes}

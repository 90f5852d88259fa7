"""A case's sizing visit: JIT compilation, the calls that size its rounds, its accuracy."""

from __future__ import annotations

import time
from typing import Any

from . import duet, timing
from .accuracy import Accuracy
from .decisions import Decisions
from .matrix import PASSES, BlasCase, Case
from .results import CaseResult


def size(
    case: Case | BlasCase,
    row: dict[str, Any],
    decisions: Decisions,
    threads: int,
    accuracy: Accuracy,
) -> CaseResult:
    """Size a case the decisions let through: its untimed calls (the first compiles), its
    rounds per trial, its share of the session budget, and its error against the reference
    (outside the timing, and like compilation not counted in the budget)."""
    d = decisions
    if isinstance(case, BlasCase):
        sized = timing.size_blas(case)
        d.compile_s += max(sized.first_s - sized.second_s, 0.0)
        return CaseResult(case, row, sized, d.rounds(sized.per_call_s, threads))
    backend = duet.get_backend(case.backend)
    sized = timing.size_case(backend, case)
    d.compile_s += max(sized.first_s - sized.second_s, 0.0)
    d.estimates_at(threads).add(case, sized.per_call_s)
    d.plan(sized.per_call_s)
    result = CaseResult(case, row, sized, d.rounds(sized.per_call_s, threads))
    preset = d.settings.preset
    if case.pass_ in PASSES and preset.accuracy:
        started = time.perf_counter()
        result.extra.update(accuracy.measure(backend, case.conv))
        d.accuracy_s += time.perf_counter() - started
    # an old twin's module cannot be imported by the memory child under its own name
    twin = case.backend.endswith(duet.OLD_SUFFIX)
    memory = case.pass_ == "step" and backend.device == "cpu" and preset.memory
    result.wants_memory = memory and not (case.threads or twin)
    return result

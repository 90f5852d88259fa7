"""Whether a case is timed: its backend's availability, memory, the session budget, its time.

:class:`Decisions` is asked once per case, at its sizing visit; a case it skips is skipped in
every trial with the same reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import impls

from . import duet, timing
from .machine import available_memory
from .matrix import BlasCase, Case
from .options import Settings

#: skip reasons that hold for every case of a backend
BACKEND_WIDE = ("unavailable:", "runs on numba's CUDA simulator")
#: seconds a trial's visit costs beyond its rounds: settling, the untimed warm-up, the
#: pytest item (measured on 2 cores: 0.02-0.12 s), for the session budget's forecast
VISIT_OVERHEAD_S = 0.1


@dataclass
class Decisions:
    """The skip decisions of one run, and the session budget they share."""

    settings: Settings
    #: when the sizing pass started; the budget counts from here
    first_case_at: float | None = None
    #: seconds of JIT compilation (the first untimed call's time beyond the second's) and of
    #: accuracy checks so far: not counted in the session budget
    compile_s: float = 0.0
    accuracy_s: float = 0.0
    #: the forecast seconds of the trials of every case sized so far
    planned_s: float = 0.0
    #: the estimates of each thread count, from the cases sized so far
    estimates: dict[int, timing.Estimates] = field(default_factory=dict)

    def estimates_at(self, threads: int) -> timing.Estimates:
        """The fastest calls so far at ``threads``, to size and estimate the next cases."""
        if threads not in self.estimates:
            self.estimates[threads] = timing.Estimates(self.settings.preset)
        return self.estimates[threads]

    def skip_reason(self, case: Case, backend: impls.Backend) -> str | None:
        """Why this case is not timed, or None to time it."""
        untimed = backend.untimed_reason()
        if untimed:
            return untimed
        conv = case.conv
        declined = duet.declined(backend, conv.geometry(), np.dtype(conv.dtype))
        if declined:
            return f"declined: {declined}"
        needed = timing.memory_needed(backend, conv)
        if backend.device == "gpu":
            from . import gpu_memory

            free = gpu_memory.free_bytes()
            reason = None if free is None else self.memory_reason(needed, free, " of GPU memory")
        else:
            reason = self.memory_reason(needed)
        estimate = self.estimates_at(case.threads or self.settings.threads).estimate(case)
        forecast = self.forecast(estimate.seconds) if estimate is not None else 0.0
        reason = reason or self.budget_reason(forecast)
        if reason:
            return reason
        preset = self.settings.preset
        if estimate is not None and estimate.seconds > preset.max_call_s:
            return (
                f"too slow: {estimate.describe()}, over the {preset.name} preset's "
                f"{preset.max_call_s:g} s limit"
            )
        return None

    def memory_reason(
        self, needed: int, available: int | None = None, memory: str = ""
    ) -> str | None:
        """Why ``needed`` bytes are too many for ``available`` (the host's now by default)."""
        available = available_memory() if available is None else available
        share = self.settings.memory_share
        if needed <= share * available:
            return None
        return (
            f"too big: needs an estimated {needed / 2**30:.3g} GiB (inputs, outputs, working "
            f"memory), over {100 * share:g}% of the {available / 2**30:.3g} GiB{memory} "
            "available (--memory-limit moves the limit)"
        )

    def rounds(self, per_call_s: float, threads: int) -> int:
        """Rounds per trial of a sized case, from its time per call."""
        return self.estimates_at(threads).rounds(per_call_s, self.settings.trials)

    def forecast(self, per_call_s: float) -> float:
        """Seconds the trials of a case of ``per_call_s`` per call will take."""
        rounds = timing.Estimates(self.settings.preset).rounds(per_call_s, self.settings.trials)
        return self.settings.trials * ((rounds + 1) * per_call_s + VISIT_OVERHEAD_S)

    def plan(self, per_call_s: float) -> None:
        """Count a sized case's trials in the session budget."""
        self.planned_s += self.forecast(per_call_s)

    def spent_s(self) -> float:
        """Seconds the run has spent on the budget so far, and has planned for its trials."""
        started = self.first_case_at or time.perf_counter()
        spent = time.perf_counter() - started - self.compile_s - self.accuracy_s
        return spent + self.planned_s

    def budget_reason(self, forecast_s: float = 0.0) -> str | None:
        """Why a case whose trials take ``forecast_s`` no longer fits the session budget."""
        preset = self.settings.preset
        # each thread count of --threads gets the preset's budget
        budget = preset.session_budget_s * (1 + len(self.settings.scaling))
        if self.spent_s() + forecast_s <= budget:
            return None
        return (
            f"over budget: the {preset.name} preset's {budget:.0f} s session budget is "
            "spent or planned (JIT compilation and accuracy checks not counted)"
        )


def skip_prefix(case: Case | BlasCase, reason: str) -> str:
    """Who and where a skip line is about: the backend, and the pass and size unless the
    reason holds for the whole backend (then pytest folds its lines into one)."""
    if not isinstance(case, Case):
        return f"BLAS limit {case.conv.id}"
    if reason.startswith(BACKEND_WIDE):
        return case.backend
    return f"{case.backend} {case.pass_} {case.conv.id}"

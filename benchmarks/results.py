"""Each case's result, built once from its sizing and its trials' visits: one benchmark of the JSON.

pytest-benchmark times each visit as a benchmark of its own; :meth:`CaseResult.benchmark`
joins a case's visits into the one benchmark the run's JSON keeps: every round in
``stats.data``, in trial order, the trial of each round in ``extra_info["round_trial"]``, and
each visit's protocol and CPU use in ``extra_info["visits"]``.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass, field
from typing import Any

from pytest_benchmark.stats import Stats

from . import timing
from .matrix import BlasCase, Case


@dataclass
class Visit:
    """One trial's timing of a case: pytest-benchmark's stats and what the protocol saw."""

    trial: int
    #: pytest-benchmark's Metadata of the visit
    stats: Any
    #: the protocol as run and the CPU use over the rounds (a GPU's host and device times)
    info: dict[str, Any]

    @property
    def contended(self) -> bool:
        return self.info.get("contended") is True


@dataclass
class CaseResult:
    """A case's row, its sizing, and its visits; :meth:`benchmark` is its one JSON benchmark."""

    case: Case | BlasCase
    #: the case's fields in the JSON (benchmarks.matrix.result_row)
    row: dict[str, Any]
    sizing: timing.Sizing
    #: rounds each trial times
    rounds: int
    #: what the sizing visit measured beside the timing: the error against the reference
    extra: dict[str, Any] = field(default_factory=dict)
    visits: list[Visit] = field(default_factory=list)
    #: why a visit failed, once one did: the case is then failed, its visits dropped
    failed: str = ""
    #: whether its true peak memory is measured in a child process after the timing
    wants_memory: bool = False

    @property
    def timed(self) -> bool:
        return bool(self.visits) and not self.failed

    def add(self, trial: int, stats: Any, info: dict[str, Any]) -> None:
        self.visits.append(Visit(trial, stats, info))

    def contended(self) -> bool:
        """Whether other processes took the cores of half its visits or more: more than
        its trials can absorb."""
        hit = sum(v.contended for v in self.visits)
        return hit > 0 and 2 * hit >= len(self.visits)

    def median_s(self) -> float:
        """The median of every round of every visit."""
        return float(statistics.median(t for v in self.visits for t in v.stats.stats.data))

    def benchmark(self) -> Any:
        """pytest-benchmark's Metadata of the whole case: the first visit's, with every
        visit's rounds and the joined ``extra_info``."""
        first = self.visits[0].stats
        joined = copy.copy(first)
        joined.stats = Stats()
        round_trial: list[int] = []
        for visit in self.visits:
            joined.stats.data.extend(visit.stats.stats.data)
            round_trial += [visit.trial] * len(visit.stats.stats.data)
        joined.extra_info = {**first.extra_info, **self.extra_info(round_trial)}
        return joined

    def extra_info(self, round_trial: list[int]) -> dict[str, Any]:
        """The case's ``extra_info``: its row, sizing, extras, and its visits joined."""
        visits = [{"trial": v.trial, "rounds": len(v.stats.stats.data), **v.info} for v in self]
        for visit in visits:
            visit.pop("device_times", None)  # kept once, joined, below
        info: dict[str, Any] = {
            **self.row,
            **self.sizing.info(),
            **self.extra,
            "round_trial": round_trial,
            "visits": visits,
            "contended": self.contended(),
            "untimed_calls": self.sizing.calls + sum(v.info.get("untimed_calls", 0) for v in self),
        }
        # the CPU use of the case: the most other processes took in any visit
        cpu = max(self.visits, key=lambda v: v.info.get("others_cores", 0.0)).info
        for key in ("others_cores", "others_cpu_s", "cores", "load_before", "load_after"):
            if key in cpu:
                info[key] = cpu[key]
        device_times = [t for v in self for t in v.info.get("device_times", [])]
        if device_times:
            host_s = statistics.median(v.info["host_s"] for v in self)
            device_s = statistics.median(device_times)
            info.update(
                device_times=device_times,
                host_s=host_s,
                device_s=device_s,
                launch_bound=timing.launch_bound(host_s, device_s),
            )
        return info

    def __iter__(self) -> Any:
        return iter(self.visits)


def failure(report: Any) -> str:
    """The one line that says why a visit failed: its exception's message."""
    crash = getattr(report.longrepr, "reprcrash", None)
    return str(crash.message if crash else str(report.longrepr).strip().splitlines()[-1])

"""One benchmark run as one object: its settings and what it sized, timed, skipped and failed.

:class:`Harness` is registered with pytest's plugin manager by ``benchmarks/plugin.py``; its
``pytest_*`` methods are hooks. It asks benchmarks/decisions.py whether a case is timed,
benchmarks/trials.py in which order, benchmarks/timing.py how; benchmarks/results.py joins
a case's visits, benchmarks/saving.py saves the run, benchmarks/terminal.py prints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import impls

from . import duet, saving, sizing, timing, trials
from .accuracy import Accuracy
from .decisions import Decisions, skip_prefix
from .machine import CpuUse, apply_threads, machine_extras, measured_machine
from .matrix import BlasCase, Case, result_row
from .options import Settings
from .results import CaseResult, failure
from .schedule import Schedule, visit_of
from .terminal import Terminal

if TYPE_CHECKING:
    from reports import Verdict
    from reports.report import Report

#: seconds spent looking at the machine's load before the first benchmark
QUIET_CHECK_S = 0.5


class Harness:
    """The state of one run, registered with pytest's plugin manager; hooks are its methods."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.decisions = Decisions(settings)
        #: the run's backends: this version's, and with --duet the old version's twins
        self.duet = duet.for_run(settings.duet, settings.backends or impls.backend_names())
        self.terminal = Terminal(config)
        self.started = time.perf_counter()
        #: the thread count BLAS, numba and torch are set to now
        self.threads_now = settings.threads
        self.limiter: Any = None
        #: each backend's error against the float64 reference
        self.accuracy = Accuracy()
        #: every sized case's result, by case id, in the order they were sized
        self.results: dict[str, CaseResult] = {}
        self.skipped: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        #: which benchmarks the run collects, in which order it visits them
        self.schedule = Schedule(config, settings)
        #: the trial running now, and each trial's drift probe
        self.trial = trials.SIZING
        self.probes: list[dict[str, Any]] = []
        self.window = timing.CpuWindow()
        self.interrupted = False
        self.ctrl_c = saving.CtrlC()
        #: what machine_extras said when the timing started, with the machine's peaks
        self.machine: dict[str, Any] | None = None
        self.verdicts: list[Verdict] = []
        #: the saved run's report, loaded once
        self.report: Report | None = None
        #: what other processes took of the machine just before the first benchmark
        self.before_start: CpuUse | None = None
        #: the line printed last: the report's path, or why there is none
        self.outcome: str | None = None
        #: the run's JSON, once saved
        self.saved: Path | None = None

    # timing

    def start(self) -> None:
        """Set the thread count, now that the backends have imported numba and torch, and
        look at the machine and at what other processes take of it."""
        if self.limiter is None:
            self.limiter = apply_threads(self.settings.threads)
            # now, not when saving: the report's imports (scipy) load a BLAS of their own
            self.machine = measured_machine(self.settings, measure=self.schedule.timing_on)
        if self.decisions.first_case_at is None:
            self.before_start = CpuUse.quiet_check(QUIET_CHECK_S)
            self.decisions.first_case_at = time.perf_counter()
            if self.before_start.contended(self.settings.threads):
                self.terminal.line(
                    f"im2col-bench: other processes are using {self.before_start.others_cores:.1f}"
                    f" of {self.before_start.cores} cores: timings will be contended"
                )

    def visit(self, benchmark: Any, case: Case | BlasCase, trial: int) -> None:
        """Size a case (trial 0), or time one trial's visit of it."""
        if trial == trials.SIZING:
            self.size(benchmark, case)
            return
        result = self.results.get(case.id)
        if result is None or result.failed:
            benchmark.skipped = True
            pytest.skip("not timed: see the reason of its sizing visit")
        self.begin_trial(trial)
        threads = self.use_threads(getattr(case, "threads", 0) or self.settings.threads)
        self.prepare(benchmark, case)
        done: timing.Blocks | timing.GpuRounds | None
        if isinstance(case, Case):
            done = timing.time_visit(
                benchmark,
                duet.get_backend(case.backend),
                case,
                result.rounds,
                self.window,
                device_memory=not result.visits,
            )
        else:
            done = timing.time_blas(benchmark, case, result.rounds, self.window)
        if done is not None:
            use = done.cpu_use()
            result.add(trial, benchmark.stats, {**done.info(), **use.info(threads)})

    def size(self, benchmark: Any, case: Case | BlasCase) -> None:
        """The sizing visit: skip decisions, JIT, the calls that size the rounds, accuracy."""
        d = self.decisions
        if isinstance(case, BlasCase):
            reason = d.memory_reason(timing.blas_memory_needed(case))
        else:
            reason = d.skip_reason(case, duet.get_backend(case.backend))
        if reason:
            self.skipped.append(self.row(case, status="skipped", reason=reason))
            pytest.skip(f"{skip_prefix(case, reason)}: {reason}")
        threads = self.use_threads(getattr(case, "threads", 0) or self.settings.threads)
        self.prepare(benchmark, case)
        if not self.schedule.timing_on:
            if isinstance(case, Case):  # once, untimed, as a plain test
                timing.time_visit(benchmark, duet.get_backend(case.backend), case, 1)
            else:
                timing.time_blas(benchmark, case, 1)
            return
        self.results[case.id] = sizing.size(case, self.row(case), d, threads, self.accuracy)

    def begin_trial(self, trial: int) -> None:
        """At a trial's first visit: time the drift probe."""
        if trial == self.trial:
            return
        self.trial = trial
        self.use_threads(self.settings.threads)
        at_s = time.perf_counter() - self.started
        self.probes.append({"trial": trial, "probe_s": timing.probe_s(), "at_s": at_s})

    def row(self, case: Case | BlasCase, status: str = "ok", reason: str = "") -> dict[str, Any]:
        return result_row(case, threads=self.settings.threads, status=status, reason=reason)

    def prepare(self, benchmark: Any, case: Case | BlasCase) -> None:
        if isinstance(case, Case):
            benchmark.group = f"{case.pass_} {case.conv.id}"
        else:
            benchmark.group = "blas limit"
        # pytest-benchmark copies params into its JSON: plain text there, not our objects
        benchmark.params = {"case": case.id}
        benchmark.extra_info.update(self.row(case))

    def use_threads(self, threads: int) -> int:
        """Set BLAS, numba and torch to ``threads`` where they are set to another count."""
        if threads != self.threads_now and self.limiter is not None:
            self.limiter.restore_original_limits()
            self.limiter = apply_threads(threads)
            self.threads_now = threads
        return threads

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        try:
            return (yield)
        except KeyboardInterrupt:
            # pytest-benchmark warns of a fixture "not used at all" unless it was skipped
            benchmark = getattr(item, "funcargs", {}).get("benchmark")
            if benchmark is not None:
                benchmark.skipped = True
            raise

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        # tryfirst: the outermost wrapper, after pytest-benchmark's, which unmarks the fixture
        report = yield
        visit, timing_on = visit_of(item), self.schedule.timing_on
        benchmark = getattr(item, "funcargs", {}).get("benchmark")
        if visit is not None and visit[1] == trials.SIZING and timing_on and benchmark:
            benchmark.skipped = True  # sized without pytest-benchmark: its rounds come later
        if visit is not None and report.failed:
            case, trial = visit
            if benchmark is not None:  # its failure has its own line, not an unused fixture
                benchmark.skipped = True
            message = failure(report)
            result = self.results.get(case.id)
            if result is not None:  # its later trials skip it; its rounds are dropped
                result.failed = message
            where = (
                report.when if trial == trials.SIZING else f"{trials.trial_id(trial)} {report.when}"
            )
            self.failed.append(self.row(case, status="failed", reason=f"{where}: {message}"))
        return report

    # saving

    def pytest_sessionstart(self) -> None:
        if self.schedule.collects_benchmarks:
            self.ctrl_c.install()

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def pytest_benchmark_update_machine_info(self, machine_info: dict[str, Any]) -> None:
        machine_info.update(self.machine or machine_extras(self.settings.threads))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, exitstatus: int) -> Any:
        # first of all the session-finish hooks, to leave a second Ctrl-C the least time
        saving.save(self, exitstatus)
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Any:
        # outside pytest's own summary, so these lines come after its skip and failure lines
        result = yield
        self.terminal.summary(terminalreporter, self.saved, self.report, self.interrupted)
        return result

    def pytest_unconfigure(self) -> None:
        self.ctrl_c.uninstall()
        if self.limiter is not None:
            self.limiter.restore_original_limits()
        if self.outcome:
            self.terminal.line(self.outcome)

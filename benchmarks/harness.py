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

from . import duet, saving, timing, trials
from .accuracy import Accuracy
from .decisions import Decisions
from .machine import CpuSample, CpuUse, apply_threads, machine_extras
from .matrix import PASSES, BlasCase, Case, build_matrix, contenders, result_row
from .options import Settings, gpu_backend
from .results import CaseResult
from .runjson import case_key
from .terminal import Terminal

if TYPE_CHECKING:
    from reports import Verdict

#: the folder of this package: the benchmark modules that plain ``pytest`` leaves alone
BENCHMARKS_DIR = Path(__file__).parent
#: skip reasons that hold for every case of a backend
BACKEND_WIDE = ("unavailable:", "runs on numba's CUDA simulator")
#: seconds spent looking at the machine's load before the first benchmark
QUIET_CHECK_S = 0.5


class Harness:
    """The state of one run, registered with pytest's plugin manager; hooks are its methods."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.decisions = Decisions(settings)
        #: the run's backends: this version's, and with --duet the old version's twins
        self.duet = duet.Registry()
        if settings.duet is not None:
            try:
                self.duet = duet.Registry.load(
                    settings.duet, settings.backends or impls.backend_names()
                )
            except ValueError as exc:
                raise pytest.UsageError(f"--duet: {exc}") from None
        duet.activate(self.duet)
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
        self.left_out: dict[str, str] = {}
        #: the trial running now, and each trial's drift probe
        self.trial = trials.SIZING
        self.probes: list[dict[str, Any]] = []
        self.window = timing.CpuWindow()
        self.interrupted = False
        self.ctrl_c = saving.CtrlC()
        #: what machine_extras said when the timing started, with the machine's peaks
        self.machine: dict[str, Any] | None = None
        self.verdicts: list[Verdict] = []
        #: what other processes took of the machine just before the first benchmark
        self.before_start: CpuUse | None = None
        #: the line printed last: the report's path, or why there is none
        self.outcome: str | None = None
        #: the run's JSON, once saved
        self.saved: Path | None = None

    # which modules a run collects, and in which order it runs them

    @property
    def collects_benchmarks(self) -> bool:
        """Plain ``pytest`` runs the tests only; a benchmark flag or a named path adds these."""
        config = self.config
        return bool(
            config.getoption("benchmark_only", False)
            or config.getoption("benchmark_disable", False)
            or config.getoption("preset")
            or config.args_source == pytest.Config.ArgsSource.ARGS
        )

    @property
    def timing_on(self) -> bool:
        """Whether this run times benchmarks (not only collects them, or runs them once)."""
        config = self.config
        return not (
            config.option.collectonly
            or config.getoption("benchmark_skip", False)
            or config.getoption("benchmark_disable", False)
        )

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        if collection_path.is_relative_to(BENCHMARKS_DIR) and not self.collects_benchmarks:
            return True
        # tests/ holds no benchmarks; leaving it out keeps a broken test module from stopping a run
        tests = BENCHMARKS_DIR.parent / "tests"
        if self.config.getoption("benchmark_only", False) and collection_path.is_relative_to(tests):
            return True
        return None

    def pytest_report_header(self) -> str | None:
        if not self.collects_benchmarks:
            return "im2col-bench: benchmarks not collected; time them with --benchmark-only"
        if not self.config.getoption("benchmark_only", False):
            return None
        s = self.settings
        chosen = f" ({s.preset_chosen})" if s.preset_chosen else ""
        if s.duet is not None:
            only_new = (
                f"; only in this one: {', '.join(self.duet.missing)}" if self.duet.missing else ""
            )
            chosen += f", duet with the backends of {s.duet}{only_new}"
        return (
            f"im2col-bench: preset {s.preset.name}{chosen}, {s.threads} threads, {s.trials} "
            f"trials (seed {s.seed}), memory limit {100 * s.memory_share:g}% of available, "
            f"reports in {s.report_dir}"
        )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        s = self.settings
        if "case" in metafunc.fixturenames:
            names = s.backends or impls.backend_names()
            timed, self.left_out = contenders(names, s.preset)
            cases = build_matrix(s.preset, timed + duet.twins_of(timed), s.sizes, s.scaling)
            metafunc.parametrize("case", cases, ids=[c.id for c in cases])
        if "blas_case" in metafunc.fixturenames:
            blas: list[Any] = [BlasCase(conv) for conv in s.preset.limit_convs()]
            ids = [c.id for c in blas]
            if not blas:
                reason = f"the {s.preset.name} preset times no BLAS limit (a CPU product)"
                blas, ids = [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ["none"]
            metafunc.parametrize("blas_case", blas, ids=ids)
        if "trial" in metafunc.fixturenames:
            count = s.trials if self.timing_on else 0
            metafunc.parametrize("trial", range(count + 1), ids=trials.trial_id)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.settings.rerun is not None:
            flagged = {case_key(name) for name in self.settings.flagged}
            dropped = [item for item in items if case_key(item.nodeid) not in flagged]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = [item for item in items if case_key(item.nodeid) in flagged]
        visits = [(item, _visit_of(item)) for item in items]
        others = [item for item, visit in visits if visit is None]
        ours = [(item, visit) for item, visit in visits if visit is not None]
        order = trials.visit_order([v for _, v in ours], self.settings.trials, self.settings.seed)
        items[:] = others + [ours[i][0] for i in order]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.timing_on and any(_visit_of(item) for item in session.items):
            try:
                from reports.storage import check_writable

                check_writable(self.settings.report_dir)
            except OSError as exc:
                raise pytest.UsageError(
                    f"--report-dir {self.settings.report_dir}: cannot write there "
                    f"({exc.strerror or exc})"
                ) from None

    # timing

    def start(self) -> None:
        """Set the thread count, now that the backends have imported numba and torch, and
        look at what other processes take of the machine."""
        if self.limiter is None:
            self.limiter = apply_threads(self.settings.threads)
            # now, not when saving: the report's imports (scipy) load a BLAS of their own
            self.machine = machine_extras(self.settings.threads)
            if self.timing_on:
                # before any benchmark, so no library's pool is warm for it; the quiet check
                # below lets the BLAS threads of the products stop spinning
                from . import peaks  # imports numba: not before the conftest configured it

                preset = self.settings.preset
                self.machine["peaks"] = peaks.measure(
                    self.settings.threads, **(peaks.QUICK if preset.quick_peaks else {})
                )
                names = self.settings.backends or impls.backend_names()
                if gpu_backend(contenders(names, preset)[0]):
                    from . import gpu_peaks

                    self.machine["gpu_peaks"] = gpu_peaks.measure()
        if self.decisions.first_case_at is None:
            before = CpuSample.now()
            time.sleep(QUIET_CHECK_S)
            self.before_start = CpuUse.between(before, CpuSample.now())
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
        backend = duet.get_backend(case.backend) if isinstance(case, Case) else None
        if isinstance(case, BlasCase):
            reason = d.memory_reason(timing.blas_memory_needed(case))
        else:
            reason = d.skip_reason(case, duet.get_backend(case.backend))
        if reason:
            self.skipped.append(self.row(case, status="skipped", reason=reason))
            pytest.skip(f"{skip_prefix(case, reason)}: {reason}")
        threads = self.use_threads(getattr(case, "threads", 0) or self.settings.threads)
        self.prepare(benchmark, case)
        if not self.timing_on:
            if isinstance(case, Case) and backend is not None:
                timing.time_visit(benchmark, backend, case, 1)  # once, untimed, as a test
            else:
                benchmark.skipped = True
            return
        if isinstance(case, BlasCase):
            sizing = timing.size_blas(case)
        else:
            sizing = timing.size_case(duet.get_backend(case.backend), case)
            d.estimates_at(threads).add(case, sizing.per_call_s)
            d.plan(sizing.per_call_s)
        d.compile_s += max(sizing.first_s - sizing.second_s, 0.0)
        result = CaseResult(case, self.row(case), sizing, d.rounds(sizing.per_call_s, threads))
        if isinstance(case, Case) and backend is not None:
            preset = self.settings.preset
            if case.pass_ in PASSES and preset.accuracy:
                started = time.perf_counter()
                result.extra.update(self.accuracy.measure(backend, case.conv))
                d.accuracy_s += time.perf_counter() - started
            # an old twin's module cannot be imported by the memory child under its name
            twin = case.backend.endswith(duet.OLD_SUFFIX)
            result.wants_memory = (
                case.pass_ == "step" and backend.device == "cpu" and preset.memory
            ) and not (case.threads or twin)
        self.results[case.id] = result

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
        visit = _visit_of(item)
        benchmark = getattr(item, "funcargs", {}).get("benchmark")
        if visit is not None and visit[1] == trials.SIZING and self.timing_on and benchmark:
            benchmark.skipped = True  # sized without pytest-benchmark: its rounds come later
        if visit is not None and report.failed:
            case, trial = visit
            # its failure has its own line: no warning that the fixture went unused
            benchmark = getattr(item, "funcargs", {}).get("benchmark")
            if benchmark is not None:
                benchmark.skipped = True
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash else str(report.longrepr).strip().splitlines()[-1]
            where = report.when
            if trial != trials.SIZING:
                where = f"{trials.trial_id(trial)} {where}"
            result = self.results.get(case.id)
            if result is not None:  # its later trials skip it; its rounds are dropped
                result.failed = message
            self.failed.append(self.row(case, status="failed", reason=f"{where}: {message}"))
        return report

    # saving

    def pytest_sessionstart(self) -> None:
        if self.collects_benchmarks:
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
        self.terminal.summary(terminalreporter, self.saved, self.verdicts, self.interrupted)
        return result

    def pytest_unconfigure(self) -> None:
        self.ctrl_c.uninstall()
        if self.limiter is not None:
            self.limiter.restore_original_limits()
        if self.outcome:
            self.terminal.line(self.outcome)


def skip_prefix(case: Case | BlasCase, reason: str) -> str:
    """Who and where a skip line is about: the backend, and the pass and size unless the
    reason holds for the whole backend (then pytest folds its lines into one)."""
    if not isinstance(case, Case):
        return f"BLAS limit {case.conv.id}"
    if reason.startswith(BACKEND_WIDE):
        return case.backend
    return f"{case.backend} {case.pass_} {case.conv.id}"


def _visit_of(item: pytest.Item) -> tuple[Case | BlasCase, int] | None:
    """The benchmark case an item visits and its trial, or None for any other test."""
    params = getattr(item, "callspec", None)
    if params is None:
        return None
    case = params.params.get("case", params.params.get("blas_case"))
    if not isinstance(case, (Case, BlasCase)):
        return None
    return case, int(params.params.get("trial", trials.SIZING))

"""One benchmark run as one object: its settings, what it timed, skipped and failed, its saving.

:class:`Harness` is registered with pytest's plugin manager by ``benchmarks/plugin.py``; its
``pytest_*`` methods are hooks. Everything the report needs goes into pytest-benchmark's own
JSON, under the key ``im2col_bench``.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import impls

from . import timing
from .accuracy import METRIC, Accuracy
from .machine import CpuSample, CpuUse, apply_threads, available_memory, machine_extras
from .matrix import PASSES, BlasCase, Case, Conv, build_matrix, contenders, result_row
from .options import Settings, gpu_backend

if TYPE_CHECKING:  # reports imports pandas and matplotlib: only when a run is saved
    from reports import Verdict

#: the folder of this package: the benchmark modules that plain ``pytest`` leaves alone
BENCHMARKS_DIR = Path(__file__).parent
#: the benchmarks' module, as its tests are named from the repository's root
BENCHMARKS_MODULE = f"{BENCHMARKS_DIR.name}/test_conv.py"
#: skip reasons that hold for every case of a backend
BACKEND_WIDE = ("unavailable:", "runs on numba's CUDA simulator")
#: seconds spent looking at the machine's load before the first benchmark
QUIET_CHECK_S = 0.5
#: seconds a memory child may take beyond its backend's step calls (imports, JIT caches)
MEMORY_CHILD_S = 120.0


class CtrlC:
    """Ctrl-C in a benchmark run: the first press stops the run, as usual; a press after it,
    or while the run is being saved, is held until the run's JSON is whole, then delivered.
    A SIGTERM (a CI job's timeout, ``kill``) counts as a press: the run is saved, interrupted.
    """

    #: the signals that stop a run as Ctrl-C does
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.presses = 0
        self.held = 0
        self.holding = False
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.SIGNALS:
            previous = signal.getsignal(signum)
            if previous not in (signal.SIG_IGN, None):  # an ignored signal stays ignored
                self.previous[signum] = signal.signal(signum, self.press)

    def press(self, signum: int, frame: Any) -> None:
        self.presses += 1
        if self.presses == 1 and not self.holding:
            raise KeyboardInterrupt
        self.held += 1

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold every press while the block runs; a held one is a KeyboardInterrupt after it."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            self.uninstall()
            if self.held:
                raise KeyboardInterrupt

    def uninstall(self) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}


class Harness:
    """The state of one run, registered with pytest's plugin manager; hooks are its methods."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.estimates = timing.Estimates(settings.preset)
        #: the same at each other thread count of --threads
        self.scaling_estimates = {t: timing.Estimates(settings.preset) for t in settings.scaling}
        #: the thread count BLAS, numba and torch are set to now
        self.threads_now = settings.threads
        self.started = time.perf_counter()
        #: when the first benchmark started; the preset's session budget counts from here
        self.first_case_at: float | None = None
        #: seconds the first untimed calls took beyond the second (JIT compilation, mostly):
        #: not counted in the session budget, so a first run after an install or a change
        #: times as much as a run on a warm cache
        self.compile_s = 0.0
        #: each backend's error against the float64 reference, and the seconds spent on it
        #: (outside the timing and, like compilation, not counted in the session budget)
        self.accuracy = Accuracy()
        self.accuracy_s = 0.0
        #: pytest-benchmark's stats of every timed benchmark, in the order they ran
        self.benchmarks: list[Any] = []
        self.conv_timed = 0
        self.skipped: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self.left_out: dict[str, str] = {}
        self.interrupted = False
        self.ctrl_c = CtrlC()
        self.limiter: Any = None
        #: what machine_extras said when the timing started, with the machine's peaks
        self.machine: dict[str, Any] | None = None
        #: per CPU backend, each timed step's configuration, extra_info and median: their true
        #: memory is measured once the timing is over
        self.memory_cases: dict[str, list[tuple[Conv, dict[str, Any], float]]] = {}
        self.verdicts: list[Verdict] = []
        #: the flag ("contended", "noisy" or "") of every timed benchmark, once saved
        self.flags: list[str] = []
        #: what other processes took of the machine just before the first benchmark
        self.before_start: CpuUse | None = None
        #: the line printed last: the report's path, or why there is none
        self.outcome: str | None = None
        #: the run's JSON, once saved
        self.saved: Path | None = None

    # which modules a run collects

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
        return (
            f"im2col-bench: preset {s.preset.name}{chosen}, {s.threads} threads, "
            f"memory limit {100 * s.memory_share:g}% of available, reports in {s.report_dir}"
        )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "case" in metafunc.fixturenames:
            names = self.settings.backends or impls.backend_names()
            timed, self.left_out = contenders(names, self.settings.preset)
            s = self.settings
            cases = build_matrix(s.preset, timed, s.sizes, s.scaling)
            metafunc.parametrize("case", cases, ids=[c.id for c in cases])
        if "blas_case" in metafunc.fixturenames:
            preset = self.settings.preset
            blas: list[Any] = [BlasCase(conv) for conv in preset.limit_convs()]
            ids = [c.id for c in blas]
            if not blas:
                reason = f"the {preset.name} preset times no BLAS limit (a CPU product)"
                blas, ids = [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ["none"]
            metafunc.parametrize("blas_case", blas, ids=ids)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.settings.rerun is None:
            return
        flagged = {case_key(name) for name in self.settings.flagged}
        keep = [item for item in items if case_key(item.nodeid) in flagged]
        dropped = [item for item in items if case_key(item.nodeid) not in flagged]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    @property
    def timing_on(self) -> bool:
        """Whether this run times benchmarks (not only collects them, or runs them once)."""
        config = self.config
        return not (
            config.option.collectonly
            or config.getoption("benchmark_skip", False)
            or config.getoption("benchmark_disable", False)
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.timing_on and any(_case_of(item) for item in session.items):
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
        if self.first_case_at is None:
            before = CpuSample.now()
            time.sleep(QUIET_CHECK_S)
            self.before_start = CpuUse.between(before, CpuSample.now())
            self.first_case_at = time.perf_counter()
            if self.before_start.contended(self.settings.threads):
                self.write_line(
                    f"im2col-bench: other processes are using {self.before_start.others_cores:.1f}"
                    f" of {self.before_start.cores} cores: timings will be contended"
                )

    def skip(self, case: Case | BlasCase, reason: str) -> None:
        self.skipped.append(self.row(case, status="skipped", reason=reason))
        pytest.skip(f"{skip_prefix(case, reason)}: {reason}")

    def row(self, case: Case | BlasCase, status: str = "ok", reason: str = "") -> dict[str, Any]:
        return result_row(case, threads=self.settings.threads, status=status, reason=reason)

    def time_case(self, benchmark: Any, case: Case) -> None:
        """Time one backend on one pass of one configuration, or skip it with the reason."""
        backend = impls.get_backend(case.backend)
        reason = self.skip_reason(case, backend)
        if reason:
            self.skip(case, reason)
        self.prepare(benchmark, case, f"{case.pass_} {case.conv.id}")
        threads = self.use_threads(case.threads or self.settings.threads)
        blocks = timing.time_case(benchmark, backend, case, self.estimates_at(threads))
        if blocks is not None:
            self.record(benchmark, blocks, threads)
            self.conv_timed += 1
            if case.pass_ in PASSES and self.settings.preset.accuracy:
                started = time.perf_counter()
                benchmark.extra_info.update(self.accuracy.measure(backend, case.conv))
                self.accuracy_s += time.perf_counter() - started
            memory = self.settings.preset.memory and not case.threads
            if case.pass_ == "step" and backend.device == "cpu" and memory:
                median = float(benchmark.stats.stats.median)
                cases = self.memory_cases.setdefault(case.backend, [])
                cases.append((case.conv, benchmark.extra_info, median))

    def time_blas(self, benchmark: Any, case: BlasCase) -> None:
        """Time the plain BLAS product of a configuration's im2col size: the machine's limit."""
        # no budget here: a second or two, and a goal and every % of the limit need it
        reason = self.memory_reason(timing.blas_memory_needed(case))
        if reason:
            self.skip(case, reason)
        self.prepare(benchmark, case, "blas limit")
        threads = self.use_threads(self.settings.threads)
        blocks = timing.time_blas(benchmark, case, self.estimates_at(threads))
        if blocks is not None:
            self.record(benchmark, blocks, threads)

    def estimates_at(self, threads: int) -> timing.Estimates:
        """The fastest rounds so far at ``threads``, to size and estimate the next cases."""
        return self.scaling_estimates.get(threads, self.estimates)

    def use_threads(self, threads: int) -> int:
        """Set BLAS, numba and torch to ``threads`` where they are set to another count."""
        if threads != self.threads_now and self.limiter is not None:
            self.limiter.restore_original_limits()
            self.limiter = apply_threads(threads)
            self.threads_now = threads
        return threads

    def record(
        self, benchmark: Any, blocks: timing.Blocks | timing.GpuRounds, threads: int
    ) -> None:
        """Keep a timed benchmark, with its protocol and the CPU use over its rounds."""
        use = blocks.cpu_use()
        info = benchmark.extra_info
        self.compile_s += max(info.get("warmup_s", 0.0) - info.get("second_call_s", 0.0), 0.0)
        benchmark.extra_info.update(blocks.info())
        benchmark.extra_info.update(use.info(threads))
        self.benchmarks.append(benchmark.stats)

    def prepare(self, benchmark: Any, case: Case | BlasCase, group: str) -> None:
        benchmark.group = group
        # pytest-benchmark copies params into its JSON: plain text there, not our objects
        benchmark.params = {"case": case.id}
        benchmark.extra_info.update(self.row(case))

    def skip_reason(self, case: Case, backend: impls.Backend) -> str | None:
        """Why this case is not timed, or None to time it."""
        untimed = backend.untimed_reason()
        if untimed:
            return untimed
        conv = case.conv
        declined = backend.supports(conv.geometry(), np.dtype(conv.dtype))
        if declined:
            return f"declined: {declined}"
        needed = timing.memory_needed(backend, conv)
        if backend.device == "gpu":
            from . import gpu_memory

            free = gpu_memory.free_bytes()
            reason = None if free is None else self.memory_reason(needed, free, " of GPU memory")
        else:
            reason = self.memory_reason(needed)
        reason = reason or self.budget_reason()
        if reason:
            return reason
        estimate = self.estimates_at(case.threads or self.settings.threads).estimate(case)
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

    def budget_reason(self) -> str | None:
        preset = self.settings.preset
        started = self.first_case_at or time.perf_counter()
        spent = time.perf_counter() - started - self.compile_s - self.accuracy_s
        # each thread count of --threads gets the preset's budget
        budget = preset.session_budget_s * (1 + len(self.settings.scaling))
        if spent <= budget:
            return None
        return (
            f"over budget: the {preset.name} preset's {budget:.0f} s session budget is "
            "spent (JIT compilation and accuracy checks not counted)"
        )

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
        case = _case_of(item)
        if case is not None and report.failed:
            # its failure has its own line: no warning that the fixture went unused
            benchmark = getattr(item, "funcargs", {}).get("benchmark")
            if benchmark is not None:
                benchmark.skipped = True
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash else str(report.longrepr).strip().splitlines()[-1]
            self.failed.append(self.row(case, status="failed", reason=f"{report.when}: {message}"))
        return report

    # saving

    def pytest_sessionstart(self) -> None:
        if self.collects_benchmarks:
            self.ctrl_c.install()

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def pytest_benchmark_update_machine_info(self, machine_info: dict[str, Any]) -> None:
        machine_info.update(self.machine or machine_extras(self.settings.threads))

    def pytest_benchmark_update_json(self, output_json: dict[str, Any]) -> None:
        for bench in output_json["benchmarks"]:
            # named from the repository, whatever pytest took for the rootdir, so that runs
            # compare and rerun by name
            bench["fullname"] = f"{BENCHMARKS_MODULE}::{case_key(bench['fullname'])}"
        output_json["im2col_bench"] = self.run_extra()
        if self.settings.rerun is not None:
            self.carry_over(output_json, self.settings.rerun)

    def carry_over(self, output_json: dict[str, Any], rerun: Path) -> None:
        """Add the rows of the run given to ``--rerun-flagged`` that this run did not time."""
        from reports import read_run

        previous = read_run(rerun)
        timed = {case_key(b["fullname"]) for b in output_json["benchmarks"]}
        source = str(rerun)
        output_json["benchmarks"] += [
            {**b, "extra_info": {**(b.get("extra_info") or {}), "carried_from": source}}
            for b in previous["benchmarks"]
            if case_key(str(b.get("fullname"))) not in timed
        ]
        extra, old = output_json["im2col_bench"], previous.get("im2col_bench") or {}
        for key in ("skipped", "failed"):
            extra[key] = old.get(key, []) + extra[key]
        extra["left_out"] = old.get("left_out", extra["left_out"])
        extra["rerun_of"] = source

    def run_extra(self) -> dict[str, Any]:
        """What the run's JSON keeps under ``im2col_bench``."""
        from reports.data import JSON_FORMAT

        return {
            "dx_check": self.dx_check(),
            "format": JSON_FORMAT,
            "preset": self.settings.preset.name,
            "preset_chosen": self.settings.preset_chosen,
            "threads": self.settings.threads,
            "thread_scaling": list(self.settings.scaling),
            "memory_share": self.settings.memory_share,
            "backends": self.settings.backends or impls.backend_names(),
            "left_out": [{"backend": k, "reason": v} for k, v in self.left_out.items()],
            "skipped": self.skipped,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "wall_s": time.perf_counter() - self.started,
            "protocol": timing.protocol(),
            "accuracy": {"metric": METRIC, "oracle": "reference in float64", "s": self.accuracy_s},
            "before_start": self.before_start.info(self.settings.threads)
            if self.before_start
            else None,
        }

    def dx_check(self) -> dict[str, Any] | None:
        """The article's flipped-kernel dx and each timed backend's, against the reference."""
        if self.interrupted:
            return None
        from .dx_shortcut import dx_check

        names = self.settings.backends or impls.backend_names()
        try:
            return dx_check(contenders(names, self.settings.preset)[0])
        except Exception as exc:  # a check that breaks must not cost the run's JSON
            return {"failed": f"{type(exc).__name__}: {exc}"}

    def run_json(self) -> dict[str, Any]:
        """pytest-benchmark's JSON of this run, made through its own hooks."""
        hook, config = self.config.hook, self.config
        machine_info = hook.pytest_benchmark_generate_machine_info(config=config)
        hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
        commit_info = hook.pytest_benchmark_generate_commit_info(config=config)
        hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
        output: dict[str, Any] = hook.pytest_benchmark_generate_json(
            config=config,
            benchmarks=self.benchmarks,
            include_data=True,
            machine_info=machine_info,
            commit_info=commit_info,
        )
        hook.pytest_benchmark_update_json(
            config=config, benchmarks=self.benchmarks, output_json=output
        )
        return output

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, exitstatus: int) -> Iterator[None]:
        # first of all the session-finish hooks, to leave a second Ctrl-C the least time
        self.save(exitstatus)
        return (yield)

    def measure_memory(self) -> None:
        """Each timed CPU step's true peak extra memory, in a child process per backend.

        After the timing, so no child runs beside a benchmark. A Ctrl-C stops it, and the run
        is saved with what was measured (interrupted). Whatever else goes wrong costs only the
        memory: each step not measured keeps why in ``memory_error``, shown in the report.
        """
        from . import memory

        if not self.memory_cases:
            return
        self.write_line(
            f"im2col-bench: measuring the memory of {len(self.memory_cases)} backends, "
            "a child process each"
        )
        for name, cases in self.memory_cases.items():
            convs = [conv for conv, _, _ in cases]
            # each configuration runs twice (batch 1, then whole) after the child's imports
            timeout = MEMORY_CHILD_S + 10 * sum(median for _, _, median in cases)
            try:
                results = memory.measure(
                    impls.get_backend(name), convs, self.settings.threads, timeout
                )
            except KeyboardInterrupt:
                self.interrupted = True
                return
            except Exception as exc:  # a bug here must not cost the run
                results = {c.id: {"memory_error": f"{type(exc).__name__}: {exc}"} for c in convs}
            why = {results[c.id]["memory_error"] for c in convs if "memory_error" in results[c.id]}
            for conv, info, _ in cases:
                info.update(results[conv.id])
            for reason in sorted(why):
                self.write_line(f"im2col-bench: memory of {name} not measured: {reason}")

    def save(self, exitstatus: int) -> None:
        """Save the run's JSON, then its report and the index; the JSON survives a Ctrl-C."""
        if not self.conv_timed:
            self.ctrl_c.uninstall()
            if self.benchmarks or self.failed:
                self.outcome = "no backend was timed, so no run was saved"
            return
        self.interrupted |= self.ctrl_c.presses > 0 or exitstatus == pytest.ExitCode.INTERRUPTED
        if not self.interrupted:
            self.measure_memory()
        report_dir = self.settings.report_dir
        node = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:40]
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{node}_{self.settings.preset.name}"
        run_json: Path | None = None
        self.outcome = "the run could not be saved"
        try:
            with self.ctrl_c.hold():
                from reports import build_report, update_index
                from reports.data import flag
                from reports.stats import is_noisy, median_interval
                from reports.storage import RUNS, write_new

                text = json.dumps(self.run_json(), indent=1, default=str)
                run_json = write_new(report_dir / RUNS, stem, ".json", text)
                self.saved = run_json
            html = run_json.with_suffix(".html")
            self.outcome = f"the run is in {run_json}; the report failed"
            (self.verdicts,) = build_report([run_json], html).values()
            self.flags = [
                flag(b.extra_info.get("contended") is True, is_noisy(median_interval(b.stats.data)))
                for b in self.benchmarks
            ]
            update_index(report_dir)
            self.outcome = str(html)
        except KeyboardInterrupt:
            self.outcome = (
                "interrupted before the run was saved"
                if run_json is None
                else f"report interrupted; rebuild it: python -m reports build {run_json} -o "
                f"{run_json.with_suffix('.html')}"
            )
        except Exception as exc:  # a report bug must not hide the run's JSON
            self.outcome = f"{self.outcome} ({type(exc).__name__}: {exc})"

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Iterator[None]:
        # outside pytest's own summary, so these lines come after its skip and failure lines
        result = yield
        if self.saved is not None and self.verdicts:
            from reports import load

            from .summary import summary_lines

            terminalreporter.write_sep("-", "im2col-bench")
            for line in summary_lines(load([self.saved]), self.verdicts, self.interrupted):
                terminalreporter.write_line(line)
        for line in self.trust_lines():
            for part in textwrap.wrap(line, 100, subsequent_indent="  "):
                terminalreporter.write_line(part)
        return result

    def trust_lines(self) -> list[str]:
        """How many timed rows are contended or noisy, and what to do about it; [] if none."""
        contended, noisy = self.flags.count("contended"), self.flags.count("noisy")
        if not (contended or noisy):
            return []
        from reports.stats import NOISY_HALF_WIDTH

        return [
            f"{contended} of {len(self.flags)} timed rows are contended (other processes took "
            f"cores their threads needed) and {noisy} are noisy (the 95% interval of the "
            f"median is wider than +-{100 * NOISY_HALF_WIDTH:g}%); goals resting on them are "
            "inconclusive.",
            "For numbers you can trust: run on a quieter machine, or with --threads 1, or "
            "rerun just those rows: pytest --benchmark-only --rerun-flagged "
            f"{self.saved or 'RUN.json'}",
        ]

    def write_line(self, line: str) -> None:
        """One line on the terminal, through pytest's reporter where there is one, even while
        a test's output is being captured."""
        plugins = self.config.pluginmanager
        reporter = plugins.get_plugin("terminalreporter")
        capture = plugins.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line)

    def pytest_unconfigure(self) -> None:
        self.ctrl_c.uninstall()
        if self.limiter is not None:
            self.limiter.restore_original_limits()
        if self.outcome:
            self.write_line(self.outcome)


def case_key(name: str) -> str:
    """A benchmark's test and case from its full name, the same whatever pytest took for the
    rootdir (a ``--report-dir DIR`` with a space can move it: then the file part differs)."""
    return name.rsplit("::", 1)[-1]


def skip_prefix(case: Case | BlasCase, reason: str) -> str:
    """Who and where a skip line is about: the backend, and the pass and size unless the
    reason holds for the whole backend (then pytest folds its lines into one)."""
    if not isinstance(case, Case):
        return f"BLAS limit {case.conv.id}"
    if reason.startswith(BACKEND_WIDE):
        return case.backend
    return f"{case.backend} {case.pass_} {case.conv.id}"


def _case_of(item: pytest.Item) -> Case | BlasCase | None:
    """The benchmark case an item times, or None for any other test."""
    params = getattr(item, "callspec", None)
    case = params.params.get("case", params.params.get("blas_case")) if params else None
    return case if isinstance(case, (Case, BlasCase)) else None

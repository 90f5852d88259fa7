"""Which benchmarks a run collects, and in which order it visits them: pytest's collection hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import impls

from . import duet, trials
from .matrix import BlasCase, Case, build_matrix, contenders
from .options import Settings
from .runjson import case_key

#: the folder of this package: the benchmark modules that plain ``pytest`` leaves alone
BENCHMARKS_DIR = Path(__file__).parent


class Schedule:
    """The run's collection: its matrix, parametrized with the trials, ordered by them."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        #: the backends left out of the run, with why
        self.left_out: dict[str, str] = {}

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
            only_new = f"; only in this one: {', '.join(duet_missing())}" if duet_missing() else ""
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
        visits = [(item, visit_of(item)) for item in items]
        others = [item for item, visit in visits if visit is None]
        ours = [(item, visit) for item, visit in visits if visit is not None]
        order = trials.visit_order([v for _, v in ours], self.settings.trials, self.settings.seed)
        items[:] = others + [ours[i][0] for i in order]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.timing_on and any(visit_of(item) for item in session.items):
            try:
                from reports.storage import check_writable

                check_writable(self.settings.report_dir)
            except OSError as exc:
                raise pytest.UsageError(
                    f"--report-dir {self.settings.report_dir}: cannot write there "
                    f"({exc.strerror or exc})"
                ) from None


def duet_missing() -> tuple[str, ...]:
    """The backends the run's duet has no old version of."""
    return duet.missing()


def visit_of(item: pytest.Item) -> tuple[Case | BlasCase, int] | None:
    """The benchmark case an item visits and its trial, or None for any other test."""
    params = getattr(item, "callspec", None)
    if params is None:
        return None
    case = params.params.get("case", params.params.get("blas_case"))
    if not isinstance(case, (Case, BlasCase)):
        return None
    return case, int(params.params.get("trial", trials.SIZING))

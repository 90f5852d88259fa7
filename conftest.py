"""Benchmark harness options and hooks: builds the matrix once and writes the report at the end.

``pytest --benchmark-only`` runs the ``default`` preset; a run without ``--benchmark-only``
and without ``--preset`` runs ``smoke``, so a plain ``pytest`` stays quick.
"""

from __future__ import annotations

import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import impls
from benchmarks.harness import (
    PRESETS,
    Case,
    Conv,
    Harness,
    apply_threads,
    build_matrix,
    contenders,
    default_threads,
    machine_extras,
)

ROOT = Path(__file__).parent
STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("im2col-bench", "im2col-bench benchmark matrix")
    group.addoption("--backends", help="comma-separated backends to time (default: all)")
    group.addoption("--sizes", help="comma-separated image sizes of the default sweep")
    group.addoption(
        "--threads", type=int, help="threads for BLAS, numba and torch (default: all cores)"
    )
    group.addoption(
        "--preset",
        choices=sorted(PRESETS),
        help="smoke (<1 min), default (<10 min, what --benchmark-only runs) or full",
    )
    group.addoption(
        "--report-dir", help="where runs, reports and index.html are saved (default: reports/)"
    )


def _int_list(text: str | None, option: str) -> list[int] | None:
    if not text:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise pytest.UsageError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise pytest.UsageError(f"{option} takes positive integers, got {text!r}")
    return values


def pytest_configure(config: pytest.Config) -> None:
    preset = config.getoption("preset") or (
        "default" if config.getoption("benchmark_only", False) else "smoke"
    )
    threads = config.getoption("threads")
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise pytest.UsageError(f"--threads must be >= 1, got {threads}")
    sizes = _int_list(config.getoption("sizes"), "--sizes")
    report_dir = Path(config.getoption("report_dir") or ROOT / "reports")
    config.stash[STATE] = {
        "harness": Harness(PRESETS[preset], threads),
        "sizes": sizes,
        "report_dir": report_dir,
        "limiter": apply_threads(threads),
        "items": {},
        "skipped": [],
        "failed": [],
        "left_out": {},
        "interrupted": False,
        "report": None,
    }


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # tests/ holds no benchmarks; leaving it out keeps a broken test module from stopping the run
    if config.getoption("benchmark_only", False) and collection_path.is_relative_to(ROOT / "tests"):
        return True
    return None


def _selected_backends(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if "backends" not in state:
        names = impls.backend_names()
        wanted = config.getoption("backends")
        if wanted:
            names = [n.strip() for n in wanted.split(",") if n.strip()]
            for name in names:
                try:
                    impls.get_backend(name)
                except ValueError as exc:
                    raise pytest.UsageError(f"--backends: {exc}") from None
        state["backends"], state["left_out"] = contenders(names)
    return list(state["backends"])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    state = config.stash[STATE]
    harness: Harness = state["harness"]
    # parametrize by id, so pytest-benchmark's JSON params stay plain strings
    if "case" in metafunc.fixturenames:
        cases = build_matrix(harness.preset, _selected_backends(config), state["sizes"])
        state["cases"] = {c.id: c for c in cases}
        metafunc.parametrize("case", list(state["cases"]), indirect=True)
    if "limit_conv" in metafunc.fixturenames:
        state["limit_convs"] = {c.id: c for c in harness.preset.limit_convs()}
        metafunc.parametrize("limit_conv", list(state["limit_convs"]), indirect=True)


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Case:
    """One cell of the matrix: backend x configuration x pass."""
    return request.config.stash[STATE]["cases"][request.param]


@pytest.fixture
def limit_conv(request: pytest.FixtureRequest) -> Conv:
    """A configuration whose plain GEMM is the machine's limit."""
    return request.config.stash[STATE]["limit_convs"][request.param]


@pytest.fixture(scope="session")
def harness(pytestconfig: pytest.Config) -> Harness:
    """The session's harness; threads are set again now that the backends imported numba/torch."""
    state = pytestconfig.stash[STATE]
    apply_threads(state["harness"].threads)
    return state["harness"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    lookup = {**state.get("cases", {}), **state.get("limit_convs", {})}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        key = callspec.params.get("case") or callspec.params.get("limit_conv")
        if key in lookup:
            state["items"][item.nodeid] = lookup[key]


def _record(case: Case | Conv) -> dict[str, Any]:
    if isinstance(case, Case):
        backend = impls.get_backend(case.backend)
        return {**case.params(), "role": backend.role, "device": backend.device}
    return {"kind": "blas_limit", "config": case.label, "h": case.size}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _STATE_BY_RUN.get("state")
    if state is None or report.nodeid not in state["items"]:
        return
    case = state["items"][report.nodeid]
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if isinstance(case, Case):
            reason = reason.removeprefix(f"{case.backend}: ")
        state["skipped"].append({**_record(case), "reason": reason})
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash else str(report.longrepr).strip().splitlines()[-1]
        state["failed"].append({**_record(case), "reason": f"{report.when}: {message}"})


#: logreport gets no config; the session's state is reachable from here while it runs
_STATE_BY_RUN: dict[str, dict[str, Any]] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _STATE_BY_RUN["state"] = session.config.stash[STATE]


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info.update(machine_extras(config.stash[STATE]["harness"].threads))


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list, output_json: dict
) -> None:
    state = config.stash[STATE]
    harness: Harness = state["harness"]
    output_json["im2col_bench"] = {
        "format": 1,
        "preset": harness.preset.name,
        "threads": harness.threads,
        "backends": state.get("backends", []),
        "left_out": [{"backend": k, "reason": v} for k, v in state["left_out"].items()],
        "skipped": state["skipped"],
        "failed": state["failed"],
        "interrupted": state["interrupted"],
        "wall_s": time.perf_counter() - harness.started,
    }


def _run_path(config: pytest.Config) -> Path:
    state = config.stash[STATE]
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:40]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return state["report_dir"] / "runs" / f"{stamp}_{node}_{state['harness'].preset.name}.json"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Any:
    config = session.config
    state = config.stash[STATE]
    bench_session = getattr(config, "_benchmarksession", None)
    ours = (
        bench_session is not None
        and not (bench_session.disabled or bench_session.skip or config.option.collectonly)
        and state["items"]
    )
    run_json = _run_path(config) if ours else None
    user_json = bench_session.json if bench_session is not None else None
    if run_json is not None:
        state["interrupted"] = exitstatus == pytest.ExitCode.INTERRUPTED
        run_json.parent.mkdir(parents=True, exist_ok=True)
        if user_json is None and bench_session is not None:
            bench_session.json = run_json
    yield
    if run_json is None:
        return
    if user_json is not None and Path(user_json).exists():
        shutil.copyfile(user_json, run_json)
    if not run_json.exists():
        state["report"] = "no benchmark finished, so no report was written"
        return
    from reports import ReportInputError, build_report, update_index

    html = run_json.with_suffix(".html")
    try:
        _print_targets(config, build_report([run_json], html))
        update_index(state["report_dir"])
        state["report"] = str(html)
    except KeyboardInterrupt:
        state["report"] = (
            f"report interrupted; rebuild it: python -m reports build {run_json} -o {html}"
        )
    except ReportInputError:
        state["report"] = f"no benchmark finished, so no report; the run is in {run_json}"
    except Exception as exc:  # a report bug must not hide the run's JSON
        state["report"] = f"report failed ({type(exc).__name__}: {exc}); the run is in {run_json}"


def _print_targets(config: pytest.Config, lines: list[str]) -> None:
    """The issue-4 targets, after pytest's summary and just before the report's path."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    measured = [line for line in lines if ": not measured" not in line]
    reporter.write_sep("-", "im2col-bench targets")
    for line in measured or ["none measured: they need the reference shape (--preset default)"]:
        reporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    state["limiter"].restore_original_limits()
    _STATE_BY_RUN.pop("state", None)
    if state["report"]:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(state["report"])
        else:
            print(state["report"])

"""What a benchmark run prints: a summary within 100 columns, true of the run that was made.

The harness runs use the fake backends of ``fixtures/fake_backends.py``, as in
``test_harness.py``; no test looks at a timing.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import reports
from benchmarks.summary import WIDTH, summary_lines
from tests.test_harness import USAGE_ERROR, output, run_harness, saved_runs

SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}
SECTION = "- im2col-bench -"


def renamed(run: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    run = copy.deepcopy(run)
    for bench in run["benchmarks"]:
        if bench["extra_info"].get("backend") == old:
            bench["extra_info"]["backend"] = new
    return run


def test_the_summary_fits_100_columns_even_with_long_names(tmp_path: Path) -> None:
    long = "a_backend_with_a_very_long_descriptive_name"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(renamed(SMOKE_RUN, "winograd", long)))
    df = reports.load([path])
    lines = summary_lines(df, reports.judge(df), interrupted=True)
    assert lines[0] == "the run was interrupted: these lines cover what finished"
    assert max(len(line) for line in lines) <= WIDTH
    assert any(line.startswith("32px") and long[:10] in line for line in lines)


def test_goals_a_run_cannot_measure_say_what_it_lacked() -> None:
    """Issue: "none measured: they need the reference shape" was printed on runs that had it."""
    df = reports.load([SMOKE])
    text = "\n".join(summary_lines(df, reports.judge(df), interrupted=False))
    assert "not measured (this run has no resnet configuration; --preset default has it)" in text
    assert "met:" not in text


def test_a_goal_whose_backend_was_left_out_names_it(tmp_path: Path) -> None:
    run = copy.deepcopy(SMOKE_RUN)
    for bench in run["benchmarks"]:
        if bench["extra_info"].get("config") == "default":
            bench["extra_info"]["config"] = "resnet"  # as if the run had timed the resnet layer
    run["benchmarks"] = [
        b for b in run["benchmarks"] if b["extra_info"].get("backend") != "winograd"
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    df = reports.load([path])
    text = "\n".join(summary_lines(df, reports.judge(df), interrupted=False))
    assert "not measured (winograd was not in this run): winograd forward" in text


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A run with a size too big for memory, so some cases are skipped."""
    report_dir = tmp_path_factory.mktemp("reports")
    proc = run_harness(report_dir, "--backends", "fake_ok,naive_loop", "--sizes", "8,100000",
                       "-rs")  # fmt: skip
    return proc, report_dir


def test_the_run_prints_its_summary_not_pytest_benchmarks_table(terminal: tuple[Any, Path]) -> None:
    """Issue: pytest-benchmark's table was 457 lines, 261 columns wide."""
    proc, _ = terminal
    assert proc.returncode == 0, output(proc)
    assert "Name (time in" not in proc.stdout
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if SECTION in line)
    section = lines[start + 1 : -2]  # then pytest's closing line, then the report's path
    assert section[0].startswith("fastest of the seeds and ours")
    assert any(line.startswith("8px ") and "fake_ok" in line for line in section)
    assert max(len(line) for line in section) <= WIDTH
    assert " passed" in lines[-2]  # pytest's closing line
    assert Path(lines[-1]).suffix == ".html"


def test_skip_lines_name_the_backend_pass_and_size(terminal: tuple[Any, Path]) -> None:
    proc, _ = terminal
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    for backend in ("fake_ok", "naive_loop"):
        for pass_ in ("forward", "backward", "step"):
            assert any(f": {backend} {pass_} default-100000px: too big" in s for s in skips)


def test_only_the_oracle_is_a_usage_error_and_saves_nothing(tmp_path: Path) -> None:
    """Issue: --backends reference gave "got empty parameter set" and still wrote a report."""
    proc = run_harness(tmp_path, "--backends", "reference")
    assert proc.returncode == USAGE_ERROR, output(proc)
    (error,) = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert error.startswith("ERROR: --backends: reference is the oracle, never timed")
    assert len(error) <= WIDTH
    assert not saved_runs(tmp_path)


def test_ctrl_c_warns_of_no_unused_benchmark_fixture(tmp_path: Path) -> None:
    """Issue: Ctrl-C printed "Benchmark fixture was not used at all" for the interrupted test."""
    proc = run_harness(tmp_path, "--backends", "fake_ok,fake_interrupt", "--sizes", "8,12",
                       env={"FAKE_INTERRUPT": "1"})  # fmt: skip
    assert proc.returncode == 2, output(proc)
    assert "not used at all" not in proc.stdout + proc.stderr
    assert "the run was interrupted" in proc.stdout
    assert Path(proc.stdout.strip().splitlines()[-1]).suffix == ".html"

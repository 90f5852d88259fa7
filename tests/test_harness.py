"""The benchmark harness, run as a user runs it: ``pytest --benchmark-only`` in a subprocess.

Fake backends (tests/fixtures/fake_backends.py, loaded as a plugin) keep these runs short
and independent of the real ones. No test looks at a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def run_harness(report_dir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """``pytest --benchmark-only --preset smoke`` on the fake backends at two tiny sizes."""
    command = [
        sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "--preset", "smoke",
        "--sizes", "8,12", "--report-dir", str(report_dir), "-p", "fake_backends",
        "-p", "no:cacheprovider", "-q", *args,
    ]  # fmt: skip
    paths = os.pathsep.join([str(FIXTURES), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": paths, **(env or {})},
    )  # fmt: skip


def saved_run(report_dir: Path) -> dict[str, Any]:
    (path,) = (report_dir / "runs").glob("*.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    report_dir = tmp_path_factory.mktemp("reports")
    proc = run_harness(report_dir, "--backends", "fake_ok,fake_broken,reference")
    return proc, report_dir


def test_a_raising_backend_fails_only_its_own_benchmarks(broken_run: tuple[Any, Path]) -> None:
    proc, report_dir = broken_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = saved_run(report_dir)
    timed = {b["extra_info"]["backend"] for b in run["benchmarks"] if "backend" in b["extra_info"]}
    assert timed == {"fake_ok"}
    failed = run["im2col_bench"]["failed"]
    assert {f["backend"] for f in failed} == {"fake_broken"}
    assert len(failed) == 2 * 3  # two sizes, three passes
    assert all("planted failure" in f["reason"] for f in failed)


def test_every_pass_and_the_blas_limit_are_in_the_json(broken_run: tuple[Any, Path]) -> None:
    run = saved_run(broken_run[1])
    infos = [b["extra_info"] for b in run["benchmarks"]]
    ok = [i for i in infos if i.get("backend") == "fake_ok"]
    assert {(i["pass"], i["h"]) for i in ok} == {
        (p, s) for p in ("forward", "backward", "step") for s in (8, 12)
    }
    assert all(i["flops"] > 0 and i["cols_bytes"] > 0 for i in ok)
    assert all("peak_extra_bytes" in i for i in ok if i["pass"] == "step")
    assert any(i.get("kind") == "blas_limit" for i in infos)
    machine = run["machine_info"]
    assert {"blas", "numba_version", "numba_cuda_version", "gpu", "threads"} <= set(machine)


def test_the_oracle_is_left_out_with_its_reason(broken_run: tuple[Any, Path]) -> None:
    left_out = saved_run(broken_run[1])["im2col_bench"]["left_out"]
    assert left_out == [{"backend": "reference", "reason": "oracle, not a contender"}]


def test_the_last_line_is_the_report_and_the_index_lists_it(broken_run: tuple[Any, Path]) -> None:
    proc, report_dir = broken_run
    report = Path(proc.stdout.strip().splitlines()[-1])
    assert report.parent == report_dir / "runs"
    assert report.suffix == ".html"
    html = report.read_text()
    assert "fake_broken" in html
    assert "planted failure" in html
    assert report.name in (report_dir / "index.html").read_text()


def test_ctrl_c_still_leaves_the_json_and_a_report(tmp_path: Path) -> None:
    proc = run_harness(
        tmp_path, "--backends", "fake_ok,fake_interrupt", env={"FAKE_INTERRUPT": "1"}
    )
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = saved_run(tmp_path)
    assert run["im2col_bench"]["interrupted"] is True
    assert any(b["extra_info"].get("backend") == "fake_interrupt" for b in run["benchmarks"])
    report = Path(proc.stdout.strip().splitlines()[-1])
    assert "Interrupted" in report.read_text()


def test_an_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_harness(tmp_path, "--backends", "no_such_backend", "--collect-only")
    assert proc.returncode != 0
    assert "Unknown backend 'no_such_backend'" in proc.stdout + proc.stderr

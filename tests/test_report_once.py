"""A run is read once per report and once per benchmark run: the report takes runs already
read, and the index reads only the runs its cache does not know."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import reports
from reports import index

SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
pytestmark = pytest.mark.skipif(not SMOKE.exists(), reason="fixtures/smoke_run.json missing")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every run file the index reads from now on."""
    seen: list[Path] = []
    real = index.read_run

    def counting(path: str | Path) -> dict[str, Any]:
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(index, "read_run", counting)
    return seen


def _report_dir(tmp_path: Path, names: list[str]) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in names:
        shutil.copy(SMOKE, runs / f"{name}.json")
        (runs / f"{name}.html").write_text("<p>report</p>")
    return tmp_path


def test_a_run_already_read_loads_as_its_file_does() -> None:
    run = reports.read_run(SMOKE)
    from_file, given = reports.load_report([SMOKE]), reports.load_report([run])
    assert given.paths == (None,)
    assert from_file.paths == (SMOKE,)
    pd.testing.assert_frame_equal(given.frame, from_file.frame)
    assert given.verdicts == from_file.verdicts
    assert given.title == from_file.title


def test_build_report_of_a_run_already_read_writes_the_same_page(tmp_path: Path) -> None:
    by_path = reports.build_report([SMOKE], tmp_path / "a.html")
    by_run = reports.build_report([reports.read_run(SMOKE)], tmp_path / "b.html")
    assert by_run == by_path
    assert (tmp_path / "a.html").stat().st_size == (tmp_path / "b.html").stat().st_size


def test_the_index_reads_only_the_runs_its_cache_does_not_know(
    tmp_path: Path, reads: list[Path]
) -> None:
    report_dir = _report_dir(tmp_path, ["a", "b"])
    first = reports.update_index(report_dir).read_text()
    assert sorted(p.name for p in reads) == ["a.json", "b.json"]
    reads.clear()
    assert reports.update_index(report_dir).read_text() == first
    assert reads == []
    changed = report_dir / "runs" / "b.json"
    changed.write_text(changed.read_text() + "\n")
    assert reports.update_index(report_dir).read_text() == first
    assert [p.name for p in reads] == ["b.json"]


def test_a_run_just_reported_is_not_read_again_for_the_index(
    tmp_path: Path, reads: list[Path]
) -> None:
    report_dir = _report_dir(tmp_path, ["a", "new"])
    reports.update_index(report_dir)
    fresh = report_dir / "runs" / "new.json"
    fresh.write_text(fresh.read_text() + "\n")  # a new run of the same name
    reads.clear()
    report = reports.load_report([fresh])
    page = reports.update_index(report_dir, report).read_text()
    assert reads == []
    assert "runs/new.html" in page
    # the entry taken from the report is the one reading the file gives
    os.unlink(report_dir / index.CACHE)
    assert reports.update_index(report_dir).read_text() == page


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path, reads: list[Path]) -> None:
    report_dir = _report_dir(tmp_path, ["a"])
    first = reports.update_index(report_dir).read_text()
    (report_dir / index.CACHE).write_text("{not json")
    reads.clear()
    assert reports.update_index(report_dir).read_text() == first
    assert [p.name for p in reads] == ["a.json"]

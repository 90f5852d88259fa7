"""The report builder and ``python -m reports`` on JSON the harness wrote in smoke mode.

``fixtures/smoke_run.json`` is a real ``pytest --benchmark-only --preset smoke`` run; the
synthetic runs below only plant the numbers a target or a regression check needs.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from html import escape
from pathlib import Path
from typing import Any

import pytest

import reports
from reports.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
# a missing fixture must not break collection: `pytest --benchmark-only` collects tests/ too
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}
PLOT_IDS = [f"plot-{name}" for name in reports.PLOTS]


def run_backends(run: dict[str, Any]) -> set[str]:
    """Every backend a run mentions: timed, skipped, failed or left out."""
    if not run:
        return set()
    extra = run["im2col_bench"]
    records = [b["extra_info"] for b in run["benchmarks"]] + extra["skipped"] + extra["failed"]
    return {r["backend"] for r in records if "backend" in r} | {
        r["backend"] for r in extra["left_out"]
    }


def write(path: Path, run: dict[str, Any]) -> Path:
    path.write_text(json.dumps(run))
    return path


@pytest.fixture(scope="module")
def smoke_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    reports.build_report([SMOKE], out)
    return out.read_text()


@pytest.mark.parametrize("backend", sorted(run_backends(SMOKE_RUN)))
def test_the_report_names_every_backend_of_the_run(smoke_html: str, backend: str) -> None:
    assert backend in smoke_html


@pytest.mark.parametrize("plot_id", PLOT_IDS)
def test_the_report_holds_every_plot_as_inline_svg(smoke_html: str, plot_id: str) -> None:
    start = smoke_html.index(f"id='{plot_id}'")
    assert smoke_html[start:].split("</figure>")[0].count("<svg") == 1


def test_the_report_holds_the_table_with_the_fastest_cells_marked(smoke_html: str) -> None:
    assert "<table id='results'>" in smoke_html
    assert "class='fastest'" in smoke_html


def test_the_report_loads_nothing_from_the_network(smoke_html: str) -> None:
    for needle in ("<script", "<link", "src=", "@import", "url(http", "href='http", 'href="http'):
        assert needle not in smoke_html


def test_the_report_shows_machine_info_and_headline(smoke_html: str) -> None:
    assert SMOKE_RUN["machine_info"]["blas"][0]["internal_api"] in smoke_html
    assert "faster than naive_loop" in smoke_html


def test_text_from_the_json_is_escaped(tmp_path: Path) -> None:
    run = copy.deepcopy(SMOKE_RUN)
    evil = "<script>alert('x')</script>"
    run["machine_info"]["node"] = evil
    run["benchmarks"][0]["extra_info"]["backend"] = "<b>bold</b>"
    reports.build_report([write(tmp_path / "run.json", run)], tmp_path / "out.html")
    html = (tmp_path / "out.html").read_text()
    assert "<script" not in html
    assert "<b>bold</b>" not in html
    assert escape(evil) in html


def test_runs_from_two_machines_merge_and_stay_apart(tmp_path: Path) -> None:
    other = copy.deepcopy(SMOKE_RUN)
    other["machine_info"]["node"] = "gpu-box"
    paths = [SMOKE, write(tmp_path / "other.json", other)]
    df = reports.load(paths)
    assert set(df["run"]) == {SMOKE_RUN["machine_info"]["node"], "gpu-box"}
    reports.build_report(paths, tmp_path / "merged.html")
    assert "@ gpu-box" in (tmp_path / "merged.html").read_text()


def test_speedups_against_an_extrapolated_baseline_are_marked() -> None:
    df = reports.load([SMOKE])
    naive = df[(df["backend"] == "naive_loop") & (df["kind"] == "conv")]
    measured = naive[naive["status"] == "ok"]
    assert (measured["speedup"].round(9) == 1).all()
    assert not measured["speedup_extrapolated"].any()
    extrapolated = df[df["speedup_extrapolated"]]
    assert extrapolated.empty or extrapolated["speedup"].notna().all()


def bench(backend: str, role: str, pass_: str, config: str, median: float, **info: Any) -> dict:
    """One pytest-benchmark entry with the harness's extra_info, at the reference shape."""
    shape = (
        {"n": 16, "h": 56, "c_in": 64, "c_out": 64, "kh": 3}
        if config == "reference"
        else {"n": 8, "h": 128, "c_in": 32, "c_out": 32, "kh": 3}
    )
    return {
        "name": f"{backend}-{pass_}-{config}",
        "fullname": f"test[{backend}-{pass_}-{config}]",
        "extra_info": {"backend": backend, "role": role, "pass": pass_, "config": config,
                       "stride": 1, "dtype": "float32", "flops": 10**9, "cols_bytes": 8000,
                       **shape, **info},
        "stats": {"median": median, "iqr": 0.0, "rounds": 3},
    }  # fmt: skip


def synthetic_run() -> dict[str, Any]:
    """Planted times: every target has a known ratio."""
    run = copy.deepcopy(SMOKE_RUN)
    run["benchmarks"] = [
        bench("torch_conv2d", "peer", "step", "reference", 1.0),
        bench("torch_conv2d", "peer", "forward", "reference", 0.5),
        bench("numba_direct", "ours", "step", "reference", 1.2),
        bench("winograd", "ours", "forward", "reference", 1.0),
        bench("tiled_im2col", "ours", "forward", "reference", 0.3),
        bench("tiled_im2col", "ours", "step", "reference", 0.9, peak_extra_bytes=500),
        bench("numba_direct", "ours", "forward", "default", 0.01),
        bench("naive_loop", "seed", "forward", "default", 2.0),
        {**bench("", "", "", "reference", 0.25), "extra_info": {
            "kind": "blas_limit", "config": "reference", "h": 56, "flops": 10**9}},
    ]  # fmt: skip
    run["im2col_bench"].update(skipped=[], failed=[], left_out=[])
    return run


def test_the_targets_report_their_measured_ratios(tmp_path: Path) -> None:
    path = write(tmp_path / "run.json", synthetic_run())
    found = {t.name.split()[0]: t for t in reports.targets(reports.load([path]))}
    assert (found["T1"].met, found["T1"].ratio) == (True, pytest.approx(0.9))
    assert (found["T2"].met, found["T2"].ratio) == (False, pytest.approx(2.0))
    assert (found["T3"].met, found["T3"].ratio) == (True, pytest.approx(1.2))
    assert (found["T4"].met, found["T4"].ratio) == (True, pytest.approx(200))
    reports.build_report([path], tmp_path / "out.html")
    html = (tmp_path / "out.html").read_text()
    assert "not met</span> (measured 2x)" in html
    assert "plot-yardstick" in html


def test_targets_without_their_backends_say_not_measured() -> None:
    found = reports.targets(reports.load([SMOKE]))
    assert len(found) == 4
    assert all(t.met is None for t in found if "reference" in t.name)


def test_compare_passes_an_identical_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SMOKE), str(SMOKE), "--threshold", "10%"]) == 0
    assert "0 of" in capsys.readouterr().out


def test_compare_catches_a_planted_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slower = copy.deepcopy(SMOKE_RUN)
    victim = slower["benchmarks"][0]
    victim["stats"]["median"] *= 1.5
    new = write(tmp_path / "new.json", slower)
    assert main(["compare", str(SMOKE), str(new), "--threshold", "10%"]) == 1
    out = capsys.readouterr().out
    assert victim["fullname"] in out
    assert "1 of" in out


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    empty = copy.deepcopy(SMOKE_RUN)
    empty["benchmarks"] = []
    (tmp_path / "notes.txt").write_text("not json at all")
    return {
        "no such file": tmp_path / "missing.json",
        "not JSON": tmp_path / "notes.txt",
        "not a pytest-benchmark JSON file": write(tmp_path / "other.json", {"hello": 1}),
        "the run has no results": write(tmp_path / "empty.json", empty),
    }


@pytest.mark.parametrize(
    "problem", ["no such file", "not JSON", "not a pytest-benchmark JSON file",
                "the run has no results"]
)  # fmt: skip
@pytest.mark.parametrize("command", ["build", "compare"])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str, command: str
) -> None:
    bad = str(_bad_inputs(tmp_path)[problem])
    argv = ["build", bad, "-o", str(tmp_path / "o.html")] if command == "build" else [
        "compare", str(SMOKE), bad
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert problem in err


def test_a_bad_threshold_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SMOKE), str(SMOKE), "--threshold", "lots"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("argv", [[], ["build"], ["compare", "only-one.json"], ["frobnicate"]])
def test_the_command_line_rejects_bad_usage_without_a_traceback(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reports", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr

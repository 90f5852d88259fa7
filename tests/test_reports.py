"""The report builder and ``python -m reports`` on JSON the harness wrote in smoke mode.

``fixtures/smoke_run.json`` is a real ``pytest --benchmark-only --preset smoke`` run; the
synthetic runs below only plant the numbers a goal or a regression check needs.
"""

from __future__ import annotations

import copy
import json
import math
import re
import resource
import signal
import subprocess
import sys
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reports
from reports.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
# a missing fixture must not break collection: `pytest --benchmark-only` collects tests/ too
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}
PLOT_IDS = [f"plot-{plot.name}" for plot in reports.PLOTS]


def run_backends(run: dict[str, Any]) -> set[str]:
    """Every backend a run mentions: timed, skipped, failed or left out."""
    if not run:
        return set()
    extra = run["im2col_bench"]
    records = [b["extra_info"] for b in run["benchmarks"]] + extra["skipped"] + extra["failed"]
    return {r["backend"] for r in records if "backend" in r} | {
        r["backend"] for r in extra["left_out"]
    }


def write(path: Path, run: Any) -> Path:
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
    html = (tmp_path / "merged.html").read_text()
    assert "forward | gpu-box" in html  # a row of panels of its own in each figure
    assert "<td>gpu-box</td>" in html  # rows of its own in the results table


def test_speedups_against_an_extrapolated_baseline_are_marked() -> None:
    df = reports.load([SMOKE])
    naive = df[(df["backend"] == "naive_loop") & (df["kind"] == "conv")]
    measured = naive[naive["status"] == "ok"]
    assert (measured["speedup"].round(9) == 1).all()
    assert not measured["speedup_extrapolated"].any()
    extrapolated = df[df["speedup_extrapolated"]]
    assert extrapolated.empty or extrapolated["speedup"].notna().all()


def planted_rounds(median: float, spread: float = 0.01, rounds: int = 7) -> list[float]:
    """``rounds`` times spread evenly over median * (1 +- spread), so their median is ``median``."""
    return [float(median * (1 + f)) for f in np.linspace(-spread, spread, rounds)]


def bench(
    backend: str,
    role: str,
    pass_: str,
    config: str,
    median: float,
    spread: float = 0.01,
    rounds: int = 7,
    **info: Any,
) -> dict:
    """One pytest-benchmark entry with the harness's extra_info, at the resnet configuration
    unless ``h`` says otherwise, and rounds spread over median * (1 +- spread)."""
    shape = (
        {"n": 16, "h": 56, "c_in": 64, "c_out": 64, "kh": 3}
        if config == "resnet"
        else {"n": 8, "h": 128, "c_in": 32, "c_out": 32, "kh": 3}
    )
    shape.update({k: v for k, v in info.items() if k in shape})
    return {
        "name": f"{backend}-{pass_}-{config}",
        "fullname": f"test[{backend}-{pass_}-{config}-{shape['h']}px]",
        "extra_info": {"backend": backend, "role": role, "pass": pass_, "config": config,
                       "stride": 1, "dtype": "float32", "flops": 10**9, "cols_bytes": 8000,
                       **info, **shape},
        "stats": {"median": median, "iqr": 0.0, "rounds": rounds,
                  "data": planted_rounds(median, spread, rounds)},
    }  # fmt: skip


def synthetic_run() -> dict[str, Any]:
    """Planted times: every goal has a known ratio."""
    run = copy.deepcopy(SMOKE_RUN)
    run["benchmarks"] = [
        bench("torch_conv2d", "peer", "step", "resnet", 1.0),
        bench("torch_conv2d", "peer", "forward", "resnet", 0.5),
        bench("numba_direct", "ours", "step", "resnet", 1.2),
        bench("winograd", "ours", "forward", "resnet", 1.0),
        bench("tiled_im2col", "ours", "forward", "resnet", 0.3),
        bench("tiled_im2col", "ours", "step", "resnet", 0.9, peak_extra_bytes=2000),
        bench("numba_direct", "ours", "forward", "default", 0.01),
        bench("naive_loop", "seed", "forward", "default", 2.0),
        {**bench("", "", "", "resnet", 0.25), "extra_info": {
            "kind": "blas_limit", "config": "resnet", "h": 56, "flops": 10**9}},
    ]  # fmt: skip
    run["im2col_bench"].update(format=2, skipped=[], failed=[], left_out=[])
    return run


def test_the_goals_report_their_measured_ratios(tmp_path: Path) -> None:
    path = write(tmp_path / "run.json", synthetic_run())
    found = {v.goal.name: v for v in reports.judge(reports.load([path]))}
    assert [(v.met, v.ratio) for v in found.values()] == [
        (True, pytest.approx(0.9)),  # tiled_im2col's step against torch_conv2d's
        (False, pytest.approx(2.0)),  # winograd forward against torch_conv2d's
        (True, pytest.approx(1.2)),  # tiled_im2col forward against the BLAS product
        (False, pytest.approx(0.25)),  # 2000 bytes of peak memory against 8000 of buffer
        (None, None),  # no GPU backend in this run
        (None, None),  # nor the gpu preset's ResNet-50 layers
        (None, None),
    ]
    fastest = found["fastest of ours, forward + backward"]
    assert "tiled_im2col against torch_conv2d" in fastest.line()
    reports.build_report([path], tmp_path / "out.html")
    html = (tmp_path / "out.html").read_text()
    assert "winograd forward: <span class='notmet'>not met</span> at 2x" in html
    assert "plot-yardstick" in html


def test_the_terminal_and_the_report_print_the_same_verdicts(tmp_path: Path) -> None:
    path = write(tmp_path / "run.json", synthetic_run())
    (verdicts,) = reports.build_report([path], tmp_path / "out.html").values()
    html = (tmp_path / "out.html").read_text()
    for verdict in verdicts:
        assert f"{verdict.goal.name}: " in verdict.line()
        assert f"{escape(verdict.goal.name)}: <span class='" in html
        assert escape(verdict.goal.bound) in html


def _goal_run(tmp_path: Path, winograd: dict[str, Any], torch: dict[str, Any]) -> Path:
    run = synthetic_run()
    run["benchmarks"] = [
        bench("winograd", "ours", "forward", "resnet", **winograd),
        bench("torch_conv2d", "peer", "forward", "resnet", **torch),
    ]
    return write(tmp_path / "run.json", run)


@pytest.mark.parametrize(
    ("winograd", "torch", "state"),
    [
        ({"median": 0.45}, {"median": 0.5}, "met"),
        ({"median": 0.55}, {"median": 0.5}, "not met"),
        # 0.98x, but either side's rounds spread +-9%: the interval straddles the bound
        ({"median": 0.49, "spread": 0.09}, {"median": 0.5, "spread": 0.09}, "inconclusive"),
        # clearly within the bound, but the rows are not to be trusted
        ({"median": 0.3, "contended": True}, {"median": 0.5}, "inconclusive (contended)"),
        ({"median": 0.3}, {"median": 0.5, "contended": True}, "inconclusive (contended)"),
        ({"median": 0.3, "spread": 0.3}, {"median": 0.5}, "inconclusive (noisy)"),
    ],
)
def test_a_goal_is_judged_by_its_interval_and_its_rows_flags(
    tmp_path: Path, winograd: dict[str, Any], torch: dict[str, Any], state: str
) -> None:
    path = _goal_run(tmp_path, winograd, torch)
    verdict = next(
        v for v in reports.judge(reports.load([path])) if v.goal.name == "winograd forward"
    )
    assert verdict.state == state
    assert verdict.ci_low <= verdict.ratio <= verdict.ci_high
    assert f"{verdict.state} at {verdict.ratio:.3g}x [{verdict.ci_low:.3g}, " in verdict.line()
    reports.build_report([path], tmp_path / "out.html")
    cls = {"met": "met", "not met": "notmet", "inconclusive": ""}.get(state, "flag")
    html = (tmp_path / "out.html").read_text()
    assert f"winograd forward: <span class='{cls}'>{escape(state)}</span>" in html


def sweep_run(tmp_path: Path, medians: dict[str, dict[str, dict[int, float]]]) -> Path:
    """A run of the default sweep: medians[backend][pass][size] in seconds, tight rounds."""
    run = synthetic_run()
    run["benchmarks"] = [
        bench(backend, "seed" if backend == "naive_loop" else "ours", pass_, "default", median,
              h=size)
        for backend, passes in medians.items()
        for pass_, sizes in passes.items()
        for size, median in sizes.items()
    ]  # fmt: skip
    return write(tmp_path / "sweep.json", run)


def test_the_headline_is_at_the_largest_size_every_contender_reached_in_every_pass(
    tmp_path: Path,
) -> None:
    path = sweep_run(
        tmp_path,
        {
            "naive_loop": {"forward": {16: 1.0, 32: 4.0, 64: 16.0}, "step": {16: 3.0, 32: 12.0}},
            "fast": {"forward": {16: 0.1, 32: 0.2, 64: 0.4}, "step": {16: 0.3, 32: 0.6, 64: 1.2}},
            "slow": {"forward": {16: 0.5, 32: 1.0}, "step": {16: 1.5, 32: 3.0, 64: 6.0}},
        },
    )
    rows = reports.headline(reports.load([path])).set_index("pass")
    assert rows["size"].to_dict() == {"forward": 32, "step": 32}
    assert rows["same_size"].all()
    assert rows["backend"].tolist() == ["fast", "fast"]
    assert rows.loc["forward", "speedup"] == pytest.approx(20.0)
    assert rows.loc["forward", "speedup_low"] < 20.0 < rows.loc["forward", "speedup_high"]
    reports.build_report([path], tmp_path / "out.html")
    html = (tmp_path / "out.html").read_text()
    assert re.search(r"<b>fast</b> is fastest at 32x32 \(200 ms \[[\d.]+ ms, [\d.]+ ms\]\), "
                     r"<b>20x \[[\d.]+, [\d.]+\]</b> faster than naive_loop", html)  # fmt: skip


def test_contenders_within_the_intervals_of_the_fastest_are_named_tied(tmp_path: Path) -> None:
    path = sweep_run(
        tmp_path,
        {
            "naive_loop": {"forward": {32: 4.0}},
            "fast": {"forward": {32: 0.2}},
            "close": {"forward": {32: 0.201}},
            "slow": {"forward": {32: 0.3}},
        },
    )
    (row,) = reports.headline(reports.load([path])).to_dict("records")
    assert (row["backend"], row["tied"]) == ("fast", "close")
    reports.build_report([path], tmp_path / "out.html")
    assert "; tied within the intervals with close" in (tmp_path / "out.html").read_text()


def test_where_the_passes_share_no_size_each_pass_takes_its_own(tmp_path: Path) -> None:
    path = sweep_run(
        tmp_path,
        {
            "naive_loop": {"forward": {16: 1.0}, "step": {32: 12.0}},
            "fast": {"forward": {16: 0.1}, "step": {32: 0.6}},
        },
    )
    rows = reports.headline(reports.load([path])).set_index("pass")
    assert rows["size"].to_dict() == {"forward": 16, "step": 32}
    assert not rows["same_size"].any()


def test_where_the_baseline_is_fastest_the_headline_says_so(tmp_path: Path) -> None:
    """Issue: a two-backend run said "my_im2col is fastest ..., 0.822x faster than naive_loop"."""
    path = sweep_run(
        tmp_path,
        {
            "naive_loop": {"forward": {64: 0.56, 128: 0.565}},
            "my_im2col": {"forward": {64: 0.6, 128: 0.687}},
        },
    )
    (row,) = reports.headline(reports.load([path])).to_dict("records")
    assert (row["backend"], row["size"], row["baseline_fastest"]) == ("naive_loop", 128, True)
    assert row["speedup"] == 1.0
    reports.build_report([path], tmp_path / "out.html")
    html = (tmp_path / "out.html").read_text()
    assert "<b>naive_loop</b> is fastest at 128x128" in html
    assert "no contender beats naive_loop here" in html
    headline = html.split("<h2>Headline</h2>")[1].split("<h2>")[0]
    assert "faster than" not in headline


def test_a_headline_speedup_whose_interval_reaches_one_is_not_called_faster(
    tmp_path: Path,
) -> None:
    path = sweep_run(
        tmp_path, {"naive_loop": {"forward": {64: 1.0}}, "close": {"forward": {64: 0.98}}}
    )
    run = json.loads(path.read_text())
    for entry in run["benchmarks"]:
        entry["stats"]["data"] = planted_rounds(entry["stats"]["median"], spread=0.2)
    write(path, run)
    reports.build_report([path], tmp_path / "out.html")
    headline = (tmp_path / "out.html").read_text().split("<h2>Headline</h2>")[1].split("<h2>")[0]
    assert "the speed of naive_loop: not clearly faster" in headline
    assert "faster than" not in headline


def test_no_goal_names_an_issue_or_the_retired_naive_loop_target() -> None:
    for goal in reports.GOALS:
        assert "issue" not in goal.name.lower()
        assert not goal.name.startswith("T")
        assert goal.against != "naive_loop"


def test_goals_without_their_backends_say_not_measured() -> None:
    found = reports.judge(reports.load([SMOKE]))
    assert len(found) == len(reports.GOALS)
    assert all(v.met is None and "in this run" in v.detail for v in found)


def test_a_run_of_the_first_format_reads_its_reference_config_as_resnet(tmp_path: Path) -> None:
    old = synthetic_run()
    old["im2col_bench"]["format"] = 1
    for entry in old["benchmarks"]:
        if entry["extra_info"].get("config") == "resnet":
            entry["extra_info"]["config"] = "reference"
    df = reports.load([write(tmp_path / "old.json", old)])
    assert "reference" not in set(df["config"])
    assert [v.ratio for v in reports.judge(df)][:4] == pytest.approx([0.9, 2.0, 1.2, 0.25])


def test_compare_passes_an_identical_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SMOKE), str(SMOKE), "--threshold", "10%"]) == 0
    assert "0 of" in capsys.readouterr().out


def test_compare_catches_a_planted_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slower = copy.deepcopy(SMOKE_RUN)
    victim = next(b for b in slower["benchmarks"] if len(b["stats"]["data"]) >= 5)
    victim["stats"]["median"] *= 1.5
    victim["stats"]["data"] = [1.5 * t for t in victim["stats"]["data"]]
    new = write(tmp_path / "new.json", slower)
    assert main(["compare", str(SMOKE), str(new), "--threshold", "10%"]) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if victim["fullname"] in line]
    assert re.search(r"\+50\.0% \[\+[\d.]+%, \+[\d.]+%\]", line)
    assert line.rstrip().endswith("SLOWER")
    assert "1 of" in out


def _runs_of(tmp_path: Path, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    run = synthetic_run()
    paths = []
    for name, entry in (("old", old), ("new", new)):
        paths.append(str(write(tmp_path / f"{name}.json", {**run, "benchmarks": [entry]})))
    return paths


@pytest.mark.parametrize(
    ("old", "new", "slower"),
    [
        # +50%, every new round above every old one: significant and over the threshold
        ({"median": 1.0, "spread": 0.01}, {"median": 1.5, "spread": 0.01}, True),
        # +15% on the medians, but the rounds overlap: not significant, so not slower
        ({"median": 1.0, "spread": 0.4}, {"median": 1.15, "spread": 0.4}, False),
        # +5%, every new round above every old one: significant, but under the threshold
        ({"median": 1.0, "spread": 0.005}, {"median": 1.05, "spread": 0.005}, False),
        # +50% on three rounds a side: the smallest p-value three rounds allow is 0.05
        (
            {"median": 1.0, "spread": 0.01, "rounds": 3},
            {"median": 1.5, "spread": 0.01, "rounds": 3},
            False,
        ),
    ],
)
def test_compare_calls_a_benchmark_slower_only_when_significant_and_over_the_threshold(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: dict[str, Any],
    new: dict[str, Any],
    slower: bool,
) -> None:
    before = bench("winograd", "ours", "forward", "resnet", **old)
    after = bench("winograd", "ours", "forward", "resnet", **new)
    old_path, new_path = _runs_of(tmp_path, before, after)
    table = reports.compare(old_path, new_path, 0.10)
    assert table["regressed"].tolist() == [slower]
    assert main(["compare", old_path, new_path, "--threshold", "10%"]) == int(slower)
    out = capsys.readouterr().out
    assert f"{int(slower)} of 1 benchmarks slowed" in out
    assert "different machines" not in out


def test_compare_names_what_differs_between_the_machines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_path, new_path = _runs_of(
        tmp_path, *[bench("winograd", "ours", "forward", "resnet", 1.0)] * 2
    )
    other = json.loads(Path(new_path).read_text())
    other["machine_info"]["cpu"].update(brand_raw="Other CPU", count=64)
    other["machine_info"]["threads"] = 64
    other["machine_info"]["blas"][0]["architecture"] = "Haswell"
    write(Path(new_path), other)
    assert main(["compare", old_path, new_path]) == 0
    (line,) = [
        line for line in capsys.readouterr().out.splitlines() if "different machines" in line
    ]
    assert "CPU " in line
    assert "vs Other CPU" in line
    assert "cores 2 vs 64" in line
    assert "threads 2 vs 64" in line


def test_compare_matches_a_first_format_run_to_the_renamed_resnet_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = synthetic_run()
    old = copy.deepcopy(new)
    old["im2col_bench"]["format"] = 1
    for entry in old["benchmarks"]:
        entry["fullname"] = entry["fullname"].replace("-resnet-56px]", "-reference-56px]")
    old_path, new_path = write(tmp_path / "old.json", old), write(tmp_path / "new.json", new)
    assert main(["compare", str(old_path), str(new_path)]) == 0
    assert f"0 of {len(new['benchmarks'])} benchmarks slowed" in capsys.readouterr().out


def _odd(edit: Any) -> dict[str, Any]:
    run = copy.deepcopy(SMOKE_RUN)
    edit(run)
    return run


def _set_all_medians(run: dict[str, Any], value: float) -> None:
    for entry in run["benchmarks"]:
        entry["stats"]["median"] = value


#: loadable but unusable runs, each with what its one error line must say
ODD_RUNS: dict[str, tuple[Any, str]] = {
    "all medians NaN": (
        _odd(lambda r: _set_all_medians(r, math.nan)),
        "median nan is not a positive, finite number",
    ),
    "a median of 0": (
        _odd(lambda r: r["benchmarks"][0]["stats"].update(median=0.0)),
        "median 0.0 is not a positive, finite number",
    ),
    "a negative median": (
        _odd(lambda r: r["benchmarks"][1]["stats"].update(median=-1e-3)),
        "median -0.001 is not a positive, finite number",
    ),
    "a benchmark that is a string": (
        _odd(lambda r: r["benchmarks"].insert(0, "fast")),
        "benchmark 1: not an object but str",
    ),
    "extra_info that is a list": (
        _odd(lambda r: r["benchmarks"][0].update(extra_info=["backend", "x"])),
        "extra_info is not an object",
    ),
    "stats that is a list": (
        _odd(lambda r: r["benchmarks"][0].update(stats=[1.0, 2.0])),
        "stats is not an object",
    ),
    "skipped rows that are text": (
        _odd(lambda r: r["im2col_bench"].update(skipped="none")),
        "'im2col_bench' must hold lists of objects",
    ),
    # issue 24: each of these was a traceback (exit 1, which compare means as "slower")
    "a median of 1e308": (
        _odd(lambda r: r["benchmarks"][0]["stats"].update(median=1e308)),
        "median 1e+308 is not a positive, finite number in [1e-09, 1e+06] s",
    ),
    "a subnormal median": (
        _odd(lambda r: r["benchmarks"][0]["stats"].update(median=5e-324)),
        "median 5e-324 is not a positive, finite number in",
    ),
    "a median that is a 400-digit integer": (
        _odd(lambda r: r["benchmarks"][2]["stats"].update(median=10**400)),
        "benchmark 3: benchmarks/test_conv.py::",
    ),
    "an image size that is a list": (
        _odd(lambda r: r["benchmarks"][0]["extra_info"].update(h=[16, 16])),
        "h [16, 16] is not an integer in [1, 2147483648]",
    ),
    "an image size of 10**30": (
        _odd(lambda r: r["benchmarks"][0]["extra_info"].update(h=10**30)),
        "h 1e+30 is not an integer in [1, 2147483648]",
    ),
    "a FLOP count that is text": (
        _odd(lambda r: r["benchmarks"][4]["extra_info"].update(flops="many")),
        "benchmark 5: benchmarks/test_conv.py::",
    ),
    "a skipped row whose size is text": (
        _odd(lambda r: r["im2col_bench"]["skipped"][0].update(h="sixteen")),
        "skipped row 1: h 'sixteen' is not an integer",
    ),
    "negative rounds": (
        _odd(lambda r: r["benchmarks"][0]["stats"].update(rounds=-5)),
        "rounds -5 is not a count",
    ),
    "rounds data that is an object": (
        _odd(lambda r: r["benchmarks"][0]["stats"].update(data={"0": 1e-3})),
        "data is not a list of rounds",
    ),
    "a benchmark listed twice": (
        _odd(lambda r: r["benchmarks"].append(copy.deepcopy(r["benchmarks"][3]))),
        "is listed more than once",
    ),
    "a format from the future": (
        _odd(lambda r: r["im2col_bench"].update(format=3)),
        "format 3 is not one this version reads (1 to 2); update im2col-bench to read it",
    ),
}


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = copy.deepcopy(SMOKE_RUN)
    empty["benchmarks"] = []
    (tmp_path / "notes.txt").write_text("not json at all")
    plain = {
        "no such file": tmp_path / "missing.json",
        "not JSON": tmp_path / "notes.txt",
        "not a pytest-benchmark JSON file": write(tmp_path / "other.json", {"hello": 1}),
        "the run has no results": write(tmp_path / "empty.json", empty),
    }
    odd = {
        problem: (write(tmp_path / f"odd{i}.json", run), message)
        for i, (problem, (run, message)) in enumerate(ODD_RUNS.items())
    }
    return {problem: (path, problem) for problem, path in plain.items()} | odd


@pytest.mark.parametrize(
    "problem", ["no such file", "not JSON", "not a pytest-benchmark JSON file",
                "the run has no results", *ODD_RUNS]
)  # fmt: skip
@pytest.mark.parametrize("command", ["build", "compare"])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str, command: str
) -> None:
    """Issue rows 5 and 11: NaN, zero or odd entries gave tracebacks, a star, or a passing gate."""
    bad, message = _bad_inputs(tmp_path)[problem]
    argv = ["build", str(bad), "-o", str(tmp_path / "o.html")] if command == "build" else [
        "compare", str(SMOKE), str(bad)
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "o.html").exists()


def test_names_that_look_like_math_render_as_text(tmp_path: Path) -> None:
    """Issue row 11: a backend named $\\foo$ stopped matplotlib's math parser with a traceback."""
    run = copy.deepcopy(SMOKE_RUN)
    for entry in run["benchmarks"]:
        if entry["extra_info"].get("backend") == "naive_loop":
            entry["extra_info"]["backend"] = "$\\foo$"
    path = write(tmp_path / "run.json", run)
    assert main(["build", str(path), "-o", str(tmp_path / "out.html")]) == 0
    html = (tmp_path / "out.html").read_text()
    assert "$\\foo$" in html.split("<table id='results'>")[0]  # in a plot's legend, as text


def test_build_refuses_to_overwrite_one_of_its_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue row 4: `build A.json -o A.json` replaced the run with its report."""
    run = write(tmp_path / "run.json", SMOKE_RUN)
    before = run.read_bytes()
    assert main(["build", str(SMOKE), str(run), "-o", f"{tmp_path}/./run.json"]) == 2
    assert "is one of the runs to read" in capsys.readouterr().err
    assert run.read_bytes() == before


def _limit_file_size(limit: int) -> Any:
    def apply() -> None:
        # a file write past `limit` bytes fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_leaves_the_previous_report_whole(tmp_path: Path) -> None:
    """Issue row 7: the report was truncated and a half-written file stayed."""
    out = tmp_path / "report.html"
    out.write_text("<p>the previous report</p>")
    proc = subprocess.run(
        [sys.executable, "-m", "reports", "build", str(SMOKE), "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, preexec_fn=_limit_file_size(64 * 1024),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert out.read_text() == "<p>the previous report</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_full_disk_leaves_the_previous_index_whole(tmp_path: Path) -> None:
    """Issue row 7: the index was written the same truncating way."""
    runs = tmp_path / "runs"
    runs.mkdir()
    write(runs / "run.json", SMOKE_RUN)
    (runs / "run.html").write_text("<p>report</p>")
    index = reports.update_index(tmp_path)
    before = index.read_text()
    (runs / "run.html").rename(runs / "moved.html")
    proc = subprocess.run(
        [sys.executable, "-c", "import reports, sys; reports.update_index(sys.argv[1])",
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, preexec_fn=_limit_file_size(512),
    )  # fmt: skip
    assert proc.returncode != 0
    assert "File too large" in proc.stderr
    assert index.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index.html", "runs"]


def test_compare_names_the_benchmarks_new_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue row 5: 54 of 55 benchmarks missing from NEW were dropped silently, exit 0."""
    fewer = copy.deepcopy(SMOKE_RUN)
    dropped = [b["fullname"] for b in fewer["benchmarks"][1:4]]
    del fewer["benchmarks"][1:4]
    assert main(["compare", str(SMOKE), str(write(tmp_path / "new.json", fewer))]) == 1
    out = capsys.readouterr().out
    assert "3 benchmarks of OLD are missing from NEW:" in out
    assert all(f"  {name}\n" in out for name in dropped)


@pytest.mark.parametrize("threshold", ["nan", "inf", "-inf", "-5%", "0", "0%", "lots"])
def test_compare_refuses_a_threshold_that_cannot_fail(
    capsys: pytest.CaptureFixture[str], threshold: str
) -> None:
    """Issue row 5: --threshold nan or inf was accepted, so nothing could ever fail."""
    assert main(["compare", str(SMOKE), str(SMOKE), f"--threshold={threshold}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "use a finite percentage above 0" in err


@pytest.mark.parametrize("argv", [[], ["build"], ["compare", "only-one.json"], ["frobnicate"]])
def test_the_command_line_rejects_bad_usage_without_a_traceback(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reports", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr

"""``--threads 1,2,...``: the matrix again at each count, and the speedups the report draws."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import reports
from benchmarks.harness import Harness
from benchmarks.machine import apply_threads
from benchmarks.matrix import PASSES, PRESETS, build_matrix, result_row
from benchmarks.options import Settings
from reports.threads import scaling_table, thread_scaling
from tests.test_harness import ROOT, harness_command, harness_env, output, saved_run

SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}


def test_each_other_count_times_every_cpu_backends_passes_again() -> None:
    preset = PRESETS["smoke"]
    plain = build_matrix(preset, ["tiled_im2col", "torch_cudnn"], None)
    cases = build_matrix(preset, ["tiled_im2col", "torch_cudnn"], None, scaling=(1,))
    assert cases[: len(plain)] == plain
    extra = cases[len(plain) :]
    assert {(c.backend, c.pass_, c.conv, c.threads) for c in extra} == {
        ("tiled_im2col", p, conv, 1) for p in PASSES for conv in preset.convs()
    }
    row = result_row(extra[0], threads=2)
    assert (row["kind"], row["threads"]) == ("threads", 1)
    assert extra[0].id.endswith("-1t")
    assert result_row(plain[0], threads=2)["threads"] == 2


def test_the_harness_sets_each_count_and_back() -> None:
    settings = Settings(PRESETS["smoke"], None, None, 2, Path("unused"), 0.5, scaling=(1,))
    harness = Harness(config=None, settings=settings)  # type: ignore[arg-type]
    harness.limiter = apply_threads(2)
    try:
        torch = pytest.importorskip("torch")
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        harness.use_threads(1)
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        assert harness.decisions.estimates_at(1) is not harness.decisions.estimates_at(2)
        harness.use_threads(2)
        assert torch.get_num_threads() == 2
        assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == [
            p["num_threads"] for p in blas
        ]
    finally:
        harness.limiter.restore_original_limits()


def test_a_run_with_two_counts_saves_both_and_reports_the_speedup(tmp_path: Path) -> None:
    command = harness_command(tmp_path, "--backends", "fake_ok", "--sizes", "8", "--threads", "1,2")
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=harness_env()
    )
    assert proc.returncode == 0, output(proc)
    run = saved_run(tmp_path)
    infos = [b["extra_info"] for b in run["benchmarks"] if b["extra_info"].get("backend")]
    assert {(i["kind"], i["threads"]) for i in infos} == {("conv", 2), ("threads", 1)}
    assert run["machine_info"]["threads"] == 2
    assert run["im2col_bench"]["thread_scaling"] == [1]
    html = next((tmp_path / "runs").glob("*.html")).read_text()
    assert "id='table-threads'" in html
    assert "thread scaling, step at 2 threads over 1: fake_ok" in proc.stdout


def planted(speedups: dict[str, float]) -> dict[str, Any]:
    """The smoke run, with every timed pass again at 1 thread, ``speedups[backend]`` times
    slower (the run itself is at 2 threads)."""
    run = copy.deepcopy(SMOKE_RUN)
    extra = []
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        info["threads"] = 2
        factor = speedups.get(info.get("backend", ""))
        if factor is None or info.get("pass") not in PASSES:
            continue
        again = copy.deepcopy(bench)
        again["extra_info"].update(kind="threads", threads=1)
        again["stats"]["median"] *= factor
        again["stats"]["data"] = [t * factor for t in again["stats"]["data"]]
        again["fullname"] += "-1t"
        extra.append(again)
    run["benchmarks"] += extra
    return run


def test_the_speedup_is_the_time_at_the_fewest_threads_over_the_time_at_each(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(planted({"tiled_im2col": 1.8, "winograd": 1.25})))
    df = reports.load([path])
    found = thread_scaling(df).set_index(["backend", "pass", "threads"])
    for backend, factor in (("tiled_im2col", 1.8), ("winograd", 1.25)):
        for pass_ in PASSES:
            assert found.loc[(backend, pass_, 1), "speedup"] == pytest.approx(1.0)
            assert found.loc[(backend, pass_, 2), "speedup"] == pytest.approx(factor)
    assert set(found.index.get_level_values("backend")) == {"tiled_im2col", "winograd"}
    table = scaling_table(df)
    assert table.loc["tiled_im2col", "step"].startswith("1.80x [")
    assert table.loc["tiled_im2col", "step"].endswith("at 2 over 1")
    # the conv rows' own frames never see the rows at other counts
    assert not (reports.load([path]).query("kind == 'conv'")["threads"] == 1).any()
    assert np.isfinite(found["speedup_low"]).all()


def test_a_run_of_one_count_has_no_scaling() -> None:
    assert thread_scaling(reports.load([SMOKE])).empty

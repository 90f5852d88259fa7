"""The run file's one owner (benchmarks/runfile.py): the names the harness writes are the names
the reports read, a new pass cannot vanish from the report, old formats migrate."""

from __future__ import annotations

import subprocess
import sys

import impls
from benchmarks import runfile
from benchmarks.matrix import PRESETS, BlasCase, build_matrix, result_row, sweep_conv
from reports import data


def test_every_pass_the_harness_can_time_is_in_the_reports_order() -> None:
    cases = build_matrix(PRESETS["default"], impls.backend_names(), [16], scaling=[1])
    conv_passes = {c.pass_ for c in cases if c.describe()["kind"] != "phase"}
    phases = {c.pass_ for c in cases if c.describe()["kind"] == "phase"}
    assert "transfer" in conv_passes  # the GPU backends' pass is in the matrix
    assert conv_passes <= set(runfile.PASS_ORDER)
    assert phases <= set(runfile.PHASES)
    # the report takes its order from the owner, not from a copy
    assert data.PASS_ORDER is runfile.PASS_ORDER


def test_the_passes_impls_models_traffic_for_are_the_timed_ones() -> None:
    # impls/ keeps its own tuple (it imports nothing of benchmarks/): it must not drift
    assert impls.TRAFFIC_PASSES == runfile.PASSES


def test_a_pass_the_order_lacks_comes_last_instead_of_vanishing() -> None:
    assert runfile.ordered_passes(["warp", "step", "forward", "step"]) == [
        "forward",
        "step",
        "warp",
    ]
    assert runfile.pass_rank("warp") == len(runfile.PASS_ORDER) > runfile.pass_rank("transfer")


def test_every_field_of_a_result_row_is_in_the_schema() -> None:
    cases = build_matrix(PRESETS["smoke"], impls.backend_names(), [16], scaling=[1])
    rows = [result_row(c, threads=2) for c in cases]
    rows.append(result_row(BlasCase(sweep_conv(16)), threads=2, status="skipped", reason="x"))
    fields = {key for row in rows for key in row}
    assert fields == set(runfile.ROW_FIELDS)


def test_the_first_format_migrates_its_names() -> None:
    old = "benchmarks/test_conv.py::test_conv[naive_loop-step-reference-56px]"
    assert runfile.migrated_name(old, 1).endswith("[naive_loop-step-resnet-56px]")
    assert runfile.migrated_name(old, runfile.FORMAT) == old
    assert runfile.migrated_config("reference", 1) == runfile.RESNET
    assert runfile.migrated_config("reference", runfile.FORMAT) == "reference"
    assert runfile.format_of({"im2col_bench": {}}) == runfile.OLDEST_FORMAT


def test_the_owner_imports_neither_pandas_nor_matplotlib() -> None:
    code = (
        "import sys, benchmarks.runfile; "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"

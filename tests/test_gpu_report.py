"""Reports of a GPU-preset run: its goals, its layer table, its batch figure, its memory.

The run is crafted here, shaped as the harness writes one (its rows come from the benchmark
matrix itself; the machine is the H200 sample's), with times chosen so each verdict is known.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.matrix import PRESETS, Case, result_row
from reports import build_report, judge, load
from reports.data import GPU_YARDSTICK
from reports.plots import layers_table, plot_batch, plot_memory

SAMPLE = Path(__file__).parent.parent / "reports" / "runs" / "sample_default_nvidia-h200.json"
#: the GPU's peak in the crafted run, GFLOP/s
PEAK = 60_000.0
ROUNDS = 20


def _bench(case: Case, median: float, **extra: Any) -> dict[str, Any]:
    """A benchmark entry as pytest-benchmark saves one, rounds within +-0.5% of ``median``."""
    times = list(median * (1 + np.linspace(-0.005, 0.005, ROUNDS)))
    return {
        "name": f"test_backend_pass_on_config[{case.id}]",
        "fullname": f"benchmarks/test_conv.py::test_backend_pass_on_config[{case.id}]",
        "stats": {"median": float(np.median(times)), "iqr": 0.0, "rounds": ROUNDS, "data": times},
        "extra_info": {**result_row(case, threads=16), **extra},
    }


def gpu_run(step_ratio: float, forward_share: float) -> dict[str, Any]:
    """A gpu-preset run: numba_cuda's step takes ``step_ratio`` times cuDNN's on every layer,
    its forward reaches ``forward_share`` of the peak; at batch 1-4 both are launch-bound."""
    run = json.loads(SAMPLE.read_text())
    run["machine_info"]["gpu_peaks"] = {
        "float32": {
            "matmul_gflops": PEAK * 0.9,
            "fma_gflops": PEAK,
            "peak_gflops": PEAK,
            "peak_source": "fma",
        },
        "tf32": False,
    }
    benchmarks = []
    for conv in PRESETS["gpu"].convs():
        for pass_ in ("forward", "backward", "step"):
            flops = Case("numba_cuda", pass_, conv).flops()
            ours = flops / (forward_share * PEAK * 1e9)
            if pass_ == "step":
                forward = Case("numba_cuda", "forward", conv).flops()
                ours = forward / (forward_share * PEAK * 1e9) * 3
            theirs = ours / step_ratio
            small = conv.n <= 4
            for name, median in (("numba_cuda", ours), (GPU_YARDSTICK, theirs)):
                device = median * (0.5 if small else 0.99)
                host = median * (0.8 if small else 0.05)
                extra = {"host_s": host, "device_s": device, "launch_bound": small}
                if pass_ == "step":
                    extra["peak_extra_bytes"] = conv.geometry().cols_bytes(4) * 2
                benchmarks.append(_bench(Case(name, pass_, conv), median, **extra))
    run["benchmarks"] = benchmarks
    extra = run["im2col_bench"]
    extra.update(preset="gpu", backends=["numba_cuda", GPU_YARDSTICK], skipped=[], failed=[])
    extra["preset_chosen"] = "chosen because numba_cuda runs on a GPU (--preset names another)"
    return run


def _save(tmp_path: Path, run: dict[str, Any], name: str = "gpu.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(run))
    return path


@pytest.fixture(scope="module")
def met(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(tmp_path_factory.mktemp("gpu"), gpu_run(step_ratio=1.2, forward_share=0.5))


def _verdict(path: Path, config: str, pass_: str) -> Any:
    (found,) = [v for v in judge(load([path])) if v.goal.config == config and v.goal.pass_ == pass_]
    return found


def test_the_gpu_goals_are_met_when_the_whole_interval_is(met: Path) -> None:
    step = _verdict(met, "resnet50", "step")
    assert step.ratio == pytest.approx(1.2, rel=1e-6)
    assert step.state == "met"
    assert step.goal.bound == f"at most 1.5x {GPU_YARDSTICK}"
    assert "summed over 22 layers" in step.detail
    forward = _verdict(met, "resnet50", "forward")
    assert forward.ratio == pytest.approx(2.0, rel=1e-6)  # half the peak: twice its time
    assert forward.state == "met"
    assert forward.goal.bound == "at least 40% of the measured float32 peak"
    assert forward.measured == "50% [50%, 50%] of the peak"
    assert "at 50% [50%, 50%] of the peak" in forward.line()


def test_the_gpu_goals_are_not_met_beyond_their_bounds(tmp_path: Path) -> None:
    path = _save(tmp_path, gpu_run(step_ratio=2.0, forward_share=0.3))
    step, forward = _verdict(path, "resnet50", "step"), _verdict(path, "resnet50", "forward")
    assert (step.state, forward.state) == ("not met", "not met")
    assert step.ci_low > 1.5
    assert forward.ci_low > 2.5


def test_a_gpu_goal_whose_interval_straddles_its_bound_is_inconclusive(tmp_path: Path) -> None:
    run = gpu_run(step_ratio=1.5, forward_share=0.5)
    for bench in run["benchmarks"]:  # cuDNN's rounds spread wide: 1.5 is inside the interval
        info = bench["extra_info"]
        if info["backend"] == GPU_YARDSTICK and info["pass"] == "step":
            median = bench["stats"]["median"]
            bench["stats"]["data"] = list(median * (1 + np.linspace(-0.05, 0.05, ROUNDS)))
    step = _verdict(_save(tmp_path, run), "resnet50", "step")
    assert step.ci_low < 1.5 < step.ci_high
    assert step.state == "inconclusive"


def test_a_gpu_goal_without_a_measured_peak_says_so(tmp_path: Path) -> None:
    run = gpu_run(step_ratio=1.2, forward_share=0.5)
    del run["machine_info"]["gpu_peaks"]
    forward = _verdict(_save(tmp_path, run), "resnet50", "forward")
    assert forward.state == "not measured"
    assert "no measured peak" in forward.detail


def test_gpu_rows_are_compared_with_cudnn_and_cpu_rows_never_are(met: Path) -> None:
    df = load([met])
    ours = df[(df["backend"] == "numba_cuda") & (df["config"] == "resnet50")]
    assert np.allclose(ours["vs_yardstick"], 1.2)
    assert df.loc[df["backend"] == GPU_YARDSTICK, "vs_yardstick"].eq(1).all()
    forward = ours[ours["pass"] == "forward"]
    assert np.allclose(forward["pct_peak"], 50)  # of the GPU's peak, not the CPU's


def test_the_layer_table_has_a_row_per_layer_with_ratios_and_launch_marks(met: Path) -> None:
    table = layers_table(load([met]))
    assert len(table) == 22
    assert table.index[0] == "3x3 64->64 s1 56px"
    step = table[f"step: numba_cuda / {GPU_YARDSTICK}"]
    assert all(re.fullmatch(r"1\.2x \[1\.2\d*, 1\.2\d*\]", cell) for cell in step)
    assert set(table["forward: numba_cuda, % of peak"]) == {"50%"}


def test_the_batch_figure_marks_the_launch_bound_points(met: Path) -> None:
    fig = plot_batch(load([met]))
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    hollow = [line for line in lines if str(line.get_gid()).endswith(":launch-bound")]
    assert hollow
    # batch 1, 2 and 4 only: the rows the run marked launch-bound
    assert all(np.sort(np.asarray(line.get_xdata())).tolist() == [1, 2, 4] for line in hollow)


def test_the_memory_figure_draws_the_gpu_memory_against_the_batch(met: Path) -> None:
    fig = plot_memory(load([met]))
    series = [
        line
        for ax in fig.axes
        for line in ax.get_lines()
        if str(line.get_gid()).startswith("series:numba_cuda")
    ]
    assert len(series) == 1
    assert np.asarray(series[0].get_xdata()).tolist() == [1, 2, 4, 8, 16, 32, 64, 128]


def test_the_report_of_a_gpu_run_shows_its_figures_tables_and_tf32(
    met: Path, tmp_path: Path
) -> None:
    html_path = tmp_path / "gpu.html"
    build_report([met], html_path)
    html = html_path.read_text()
    for part in ("plot-batch", "plot-layers", "table-layers", "plot-memory"):
        assert f"id='{part}'" in html
    assert "TF32 off" in html
    assert "float32 60000 GFLOP/s (fma; matmul 54000, FMA loop 60000), TF32 off" in html
    assert "gpu (chosen because numba_cuda runs on a GPU" in html
    assert "resnet50 1x1 256-&gt;64 s1 56px" in html  # every layer its own row
    assert "<small class='launch'>L</small>" in html
    assert "host / device per call (GPU)" in html
    assert " (launch-bound)</td>" in html


def test_two_layers_of_equal_cost_get_a_row_each_in_the_results_table(met: Path) -> None:
    from reports.html import render_table

    html = render_table(load([met]))
    # 1x1 64->256 and 1x1 256->64 at 56 px cost the same: two rows, not one
    assert html.count("resnet50 1x1 64-&gt;256 s1 56px") == 3  # one per pass
    assert html.count("resnet50 1x1 256-&gt;64 s1 56px") == 3


def test_the_h200_sample_compares_numba_cuda_with_cudnn_at_every_shape() -> None:
    df = load([SAMPLE])
    timed = df[(df["status"] == "ok") & (df["kind"] == "conv")]
    key = ["pass", "config", "h"]
    ours = timed[timed["backend"] == "numba_cuda"].set_index(key)
    theirs = timed[timed["backend"] == GPU_YARDSTICK].set_index(key)
    expected = ours["median"] / theirs["median"].reindex(ours.index)
    assert len(ours) > 0
    np.testing.assert_allclose(ours["vs_yardstick"], expected)
    # naive_loop runs on the CPU, where the run has no torch_conv2d to compare with
    assert timed.loc[timed["backend"] == "naive_loop", "vs_yardstick"].isna().all()


def test_the_terminal_says_how_many_gpu_rows_the_launches_bound(met: Path) -> None:
    from benchmarks.summary import launch_bound_line

    lines = launch_bound_line(load([met]))
    assert all(len(line) <= 100 for line in lines)
    # batch 1, 2 and 4 of the sweep, in each of its three passes
    assert " ".join(line.strip() for line in lines) == (
        "bound by the host's launches (GPU rows): numba_cuda 9 of 90, batch sweep up to N=4; "
        f"{GPU_YARDSTICK} 9 of 90, batch sweep up to N=4"
    )

"""How a report reads: one colour per backend, readable axes, clear legends, a short table.

Built from ``fixtures/smoke_run.json`` (a real smoke run) and changed copies of it that stand
for other machines; nothing here depends on a timing.
"""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import impls
import reports
from reports.html import render_table
from reports.plots import PALETTE, PLOTS, STYLE, style

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}
#: a time in one of the units the table uses, with an optional interval and flag
ONE_NUMBER = re.compile(r"^(★ )?[\d.]+ (s|ms|µs|ns)( ±\d+%)?( ⚠)?$")
#: a cell of a case that was not timed (an en dash)
NOT_TIMED = "\u2013"
PLAIN_TICK = re.compile(r"^[\d.]+( (s|ms|µs|ns))?$")


def avx2_machine(run: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A copy of ``run`` as if made on an AVX2-only machine whose BLAS kernel was not recorded."""
    other = copy.deepcopy(run)
    info = other["machine_info"]
    info["cpu"]["flags"] = ["avx", "avx2", "fma", "sse4_2"]
    info["blas"] = [
        {"internal_api": "openblas", "version": "0.3.31.188.0", "num_threads": 2, "filepath": "x"}
    ]
    other["im2col_bench"].update(extra)
    return other


def other_machine(run: dict[str, Any], node: str, **extra: Any) -> dict[str, Any]:
    """A copy of ``run`` as if made on an AVX-512 machine with another BLAS kernel."""
    other = avx2_machine(run, **extra)
    info = other["machine_info"]
    info["node"] = node
    info["cpu"]["flags"] = [*info["cpu"]["flags"], "avx512f", "avx512_vnni"]
    for pool in info["blas"]:
        pool["architecture"] = "SkylakeX"
    return other


def with_resnet(run: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``run`` whose 32-pixel rows are also filed under the resnet configuration."""
    run = copy.deepcopy(run)
    resnet = {"config": "resnet", "n": 16, "h": 56, "w": 56, "c_in": 64, "c_out": 64}
    for bench in list(run["benchmarks"]):
        info = bench["extra_info"]
        if info.get("config") == "default" and info.get("h") == 32:
            copy_ = copy.deepcopy(bench)
            copy_["extra_info"].update(resnet)
            copy_["fullname"] += "-resnet"
            run["benchmarks"].append(copy_)
    return run


def with_gpu(run: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``run`` with GPU rows as the gpu preset makes them: numba_cuda and cuDNN on
    three batch sizes of the batch sweep (batch 1 launch-bound) and two ResNet-50 layers,
    their times the 32-pixel forward's scaled, and the GPU's peak."""
    run = copy.deepcopy(run)
    template = next(
        b for b in run["benchmarks"]
        if b["extra_info"].get("config") == "default" and b["extra_info"].get("pass") == "forward"
    )  # fmt: skip
    shapes = [
        *({"config": "batch", "n": n, "h": 56, "c_in": 64, "c_out": 64, "kh": 3, "stride": 1}
          for n in (1, 8, 64)),
        {"config": "resnet50", "n": 128, "h": 56, "c_in": 64, "c_out": 64, "kh": 3, "stride": 1},
        {"config": "resnet50", "n": 128, "h": 28, "c_in": 512, "c_out": 128, "kh": 1,
         "stride": 1},
    ]  # fmt: skip
    for shape in shapes:
        for backend, role, scale in (("numba_cuda", "seed", 2.0), ("torch_cudnn", "peer", 1.0)):
            for pass_ in ("forward", "step"):
                bench = copy.deepcopy(template)
                factor = scale * (1 + shape["n"] / 8) * (3 if pass_ == "step" else 1)
                bench["stats"]["data"] = [t * factor for t in bench["stats"]["data"]]
                bench["stats"]["median"] *= factor
                bench["fullname"] += (
                    f"-{backend}-{pass_}-{shape['config']}-{shape['n']}-{shape['h']}"
                )
                median = bench["stats"]["median"]
                bench["extra_info"].update(
                    shape, backend=backend, role=role, device="gpu", pass_=pass_, kw=shape["kh"],
                    w=shape["h"], host_s=median * (0.95 if shape["n"] == 1 else 0.1),
                    device_s=median, launch_bound=shape["n"] == 1,
                )  # fmt: skip
                bench["extra_info"]["pass"] = pass_
                del bench["extra_info"]["pass_"]
                if pass_ == "step":
                    bench["extra_info"]["peak_extra_bytes"] = 2**20 * shape["n"] * scale
                run["benchmarks"].append(bench)
    run["machine_info"]["gpu_peaks"] = {
        "float32": {"matmul_gflops": 50_000.0, "fma_gflops": 60_000.0, "peak_gflops": 60_000.0,
                    "peak_source": "fma"},
        "tf32": False,
    }  # fmt: skip
    return run


#: what the harness measures of the machine at the start of a run (benchmarks/peaks.py)
PEAKS = {
    "threads": 2,
    "float32": {"matmul_gflops": 205.0, "fma_gflops": 230.0, "peak_gflops": 230.0,
                "peak_source": "fma"},
    "float64": {"matmul_gflops": 101.0, "fma_gflops": 115.0, "peak_gflops": 115.0,
                "peak_source": "fma"},
    "bandwidth_gbs": 20.0,
}  # fmt: skip


def with_limits(run: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``run`` as the harness now saves it: the machine's peaks, and each row's
    traffic and memory estimate from its backend."""
    run = copy.deepcopy(run)
    run["machine_info"]["peaks"] = PEAKS
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        if info.get("kind", "conv") != "conv" or info.get("pass") not in impls.TRAFFIC_PASSES:
            continue
        backend = impls.get_backend(info["backend"])
        geom = impls.resolve_geometry(
            (info["n"], info["h"], info["w"], info["c_in"]),
            (info["kh"], info["kw"], info["c_in"], info["c_out"]),
            stride=info["stride"], padding=info["padding"], dilation=info["dilation"],
        )  # fmt: skip
        info["traffic_bytes"] = backend.traffic_bytes(geom, info["pass"], info["dtype"])
        info["memory_estimate_bytes"] = backend.memory_estimate(geom, info["dtype"])
    return run


def with_errors(run: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``run`` whose timed passes carry errors against float64, as the harness now
    saves them: a different one per backend."""
    run = copy.deepcopy(run)
    names = sorted(PALETTE)
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        if info.get("pass") in ("forward", "backward", "step"):
            error = 1e-7 * 1.7 ** names.index(info["backend"])
            info.update(error_y=error, error_dx=2 * error, error_dw=3 * error)
    return run


def with_network_and_threads(run: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``run`` whose 32-pixel rows are also a layer of a real network (counted
    twice), and whose timed passes were also timed at 1 thread, 1.6x slower."""
    run = copy.deepcopy(run)
    for bench in list(run["benchmarks"]):
        info = bench["extra_info"]
        if info.get("pass") not in ("forward", "backward", "step"):
            continue
        info["threads"] = 2
        again = copy.deepcopy(bench)
        again["extra_info"].update(kind="threads", threads=1)
        again["stats"]["median"] *= 1.6
        again["stats"]["data"] = [t * 1.6 for t in again["stats"]["data"]]
        again["fullname"] += "-1t"
        run["benchmarks"].append(again)
        if info.get("config") == "default" and info.get("h") == 32:
            layer = copy.deepcopy(bench)
            layer["extra_info"].update(config="toy.a", network="toy", weight=2, padding=1)
            layer["fullname"] += "-toy"
            run["benchmarks"].append(layer)
    return run


def write(path: Path, run: dict[str, Any]) -> Path:
    path.write_text(json.dumps(run))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The smoke run, and a copy of it from another machine that was interrupted."""
    folder = tmp_path_factory.mktemp("runs")
    mine = avx2_machine(SMOKE_RUN, wall_s=14.2)
    other = other_machine(SMOKE_RUN, "avx512-box", interrupted=True, wall_s=305.9)
    return [write(folder / "mine.json", mine), write(folder / "other.json", other)]


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """One run and two, each with a resnet configuration and GPU rows so that every figure
    has data."""
    folder = tmp_path_factory.mktemp("resnet")
    run = with_gpu(with_network_and_threads(with_errors(with_limits(with_resnet(SMOKE_RUN)))))
    mine = write(folder / "mine.json", run)
    other = other_machine(run, "avx512-box")
    other["machine_info"]["peaks"] = {**PEAKS, "bandwidth_gbs": 40.0}
    other = write(folder / "other.json", other)
    return {"one run": reports.load([mine]), "two runs": reports.load([mine, other])}


def series_colours(html: str) -> dict[str, set[str]]:
    """Every colour each backend's lines and markers are drawn in, across a report's figures."""
    colours: dict[str, set[str]] = {}
    for match in re.finditer(r'<g id="series:(\w+):', html):
        group = html[match.end() : html.index("</g>", match.end())]
        colours.setdefault(match[1], set()).update(re.findall(r"stroke: (#[0-9a-f]{6})", group))
    return colours


def test_every_known_backend_has_a_colour_and_marker_of_its_own() -> None:
    looks = [(style(name)["color"], style(name)["marker"]) for name in PALETTE]
    assert len({colour for colour, _ in looks}) == len(PALETTE)
    assert len({marker for _, marker in looks}) == len(PALETTE)


def test_a_new_backend_gets_the_same_look_in_every_process() -> None:
    """Not Python's salted hash(): a new backend's colour survives a restart."""
    code = "from reports.plots import style; print(style('my_im2col'))"
    looks = set()
    for seed in ("1", "2"):
        env = {"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        looks.add(proc.stdout)
    assert len(looks) == 1


def test_a_backend_has_the_same_colour_in_two_different_reports(
    tmp_path: Path, two_runs: list[Path]
) -> None:
    """Issue: grey was winograd in one plot and torch_unfold in others, and merged runs ran
    out of colours; now the colour is the backend's, whatever else the report holds."""
    few = copy.deepcopy(SMOKE_RUN)
    few["benchmarks"] = [
        b for b in few["benchmarks"]
        if b["extra_info"].get("backend") in ("naive_loop", "torch_unfold", "winograd")
    ]  # fmt: skip
    reports.build_report([write(tmp_path / "few.json", few)], tmp_path / "few.html")
    reports.build_report(two_runs, tmp_path / "merged.html")
    few_colours = series_colours((tmp_path / "few.html").read_text())
    merged_colours = series_colours((tmp_path / "merged.html").read_text())
    assert set(few_colours) == {"naive_loop", "torch_unfold", "winograd"}
    assert len(merged_colours) >= 8
    for colours in (few_colours, merged_colours):
        for backend, found in colours.items():
            assert found == {PALETTE[backend][0]}, backend


def drawn(plot_draw: Any, df: pd.DataFrame) -> Figure:
    with matplotlib.rc_context(STYLE):
        fig = plot_draw(df)
        FigureCanvasAgg(fig).draw()
    return fig


@pytest.mark.parametrize("plot", PLOTS, ids=[p.name for p in PLOTS])
@pytest.mark.parametrize("runs", ["one run", "two runs"])
def test_the_legend_overlaps_no_panel_and_stays_in_the_figure(
    frames: dict[str, pd.DataFrame], plot: Any, runs: str
) -> None:
    fig = drawn(plot.draw, frames[runs])
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    if not any(_data_of(ax, "x") for ax in fig.axes):
        assert not fig.legends  # a figure that says why it is empty
        return
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert fig.bbox.x0 <= box.x0
    assert box.x1 <= fig.bbox.x1
    assert fig.bbox.y0 <= box.y0
    assert box.y1 <= fig.bbox.y1
    for ax in fig.axes:
        if ax.get_visible() and ax.axison:
            assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()


def _data_of(ax: Any, axis: str) -> list[float]:
    values = []
    for line in ax.get_lines():
        if str(line.get_gid() or "").startswith("series:"):
            data = line.get_xdata() if axis == "x" else line.get_ydata()
            values += [float(v) for v in data]
    return values


@pytest.mark.parametrize("plot", PLOTS, ids=[p.name for p in PLOTS])
@pytest.mark.parametrize("runs", ["one run", "two runs"])
def test_every_panel_has_plain_labelled_ticks_above_and_below_its_data(
    frames: dict[str, pd.DataFrame], plot: Any, runs: str
) -> None:
    """Issue: ticks read 3x10^0, and some panels had no labelled tick above 1."""
    fig = drawn(plot.draw, frames[runs])
    axis = "x" if plot.name in ("yardstick", "layers", "network") else "y"
    panels = 0
    for ax in fig.axes:
        data = _data_of(ax, axis)
        if not data:
            continue
        panels += 1
        which = ax.xaxis if axis == "x" else ax.yaxis
        low, high = sorted(which.get_view_interval())
        # panels in a row share the axis: its labels show on the first, and hold for all
        shown = [(t.get_loc(), t.label1.get_text()) for t in which.get_major_ticks()
                 if low <= t.get_loc() <= high and t.label1.get_text()]  # fmt: skip
        assert all(PLAIN_TICK.match(text) for _, text in shown), shown
        assert min(t for t, _ in shown) <= min(data)
        assert max(t for t, _ in shown) >= max(data)
        assert not [t for t in which.get_minor_ticks() if t.label1.get_text()]
    assert panels


def test_memory_shows_what_tracemalloc_cannot_see_instead_of_a_floor(
    frames: dict[str, pd.DataFrame],
) -> None:
    """Issue: torch_conv2d sat on a 1e-6 MiB floor, and one line hid three others."""
    df = frames["one run"]
    fig = drawn(reports.plot_memory, df)
    unseen = set(df.loc[(df["pass"] == "step") & (df["peak_bytes"] == 0), "backend"])
    assert unseen  # torch_conv2d allocates outside numpy
    for ax in fig.axes:
        backend = ax.get_title()
        if backend in unseen:
            assert not _data_of(ax, "y")
            assert any("no growth seen" in t.get_text() for t in ax.texts)
        elif _data_of(ax, "y"):
            assert min(_data_of(ax, "y")) > 0
            # one backend per panel: no line can hide another
            assert {str(line.get_gid()).split(":")[1] for line in ax.get_lines()
                    if line.get_gid()} == {backend}  # fmt: skip


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    reports.build_report([SMOKE], out)
    return out.read_text()


def results_rows(html: str) -> list[list[str]]:
    """The results table's rows, each a list of its cells' visible text."""
    table = html[html.index("<table id='results'>") :]
    table = table[: table.index("</table>")]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
        rows.append([unescape(re.sub(r"<[^>]+>", "", c)).strip()
                     for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)])  # fmt: skip
    return rows


def test_the_results_table_holds_one_number_per_cell(smoke_report: str) -> None:
    """Issue: every cell held five lines, and skipped cells nine lines of reason."""
    cells = [cell for row in results_rows(smoke_report) if len(row) > 1 for cell in row[1:]]
    assert cells
    assert all(ONE_NUMBER.match(c) or c in ("", NOT_TIMED, "failed") for c in cells), cells


def test_the_results_table_has_no_empty_row_and_no_column_of_skips(smoke_report: str) -> None:
    """Issue: the numba_cuda column repeated its skip text, transfer rows were empty."""
    rows = results_rows(smoke_report)
    data = [row for row in rows if len(row) > 1]
    passes = [row[0] for row in rows if len(row) == 1]
    assert passes == ["forward", "backward", "step"]
    assert all(any(ONE_NUMBER.match(c) for c in row[1:]) for row in data)
    header = smoke_report[smoke_report.index("<table id='results'>") :].split("</tr>")[0]
    assert "numba_cuda" not in header  # never timed: listed under "Not timed" instead
    # a screen: 3 passes x the smoke preset's 2 sizes, plus the pass headers
    assert len(rows) == 3 * 2 + 3


def test_each_skip_reason_is_shown_once(smoke_report: str) -> None:
    df = reports.load([SMOKE])
    visible = unescape(re.sub(r"title='[^']*'", "", smoke_report))
    for reason in set(df.loc[df["status"] == "skipped", "reason"]):
        assert visible.count(reason) == 1, reason


def test_every_number_is_one_hover_or_one_click_away(smoke_report: str) -> None:
    """IQR, rounds, GFLOP/s and share of one big im2col + GEMM: in each cell's tooltip and in
    a collapsed table, with no script."""
    assert "<script" not in smoke_report
    first = re.search(r"<td class='(?:t|fastest)' title='([^']*)'", smoke_report)
    assert first
    tooltip = unescape(first[1])
    for number in ("IQR", "rounds", "GFLOP/s", "of one big im2col + GEMM", "as fast as naive_loop"):
        assert number in tooltip
    assert "<details id='all-numbers'>" in smoke_report


def runs_table(html: str) -> str:
    return html[html.index("<table id='runs'>") :].split("</table>")[0]


def test_the_report_tells_the_runs_apart(tmp_path: Path, two_runs: list[Path]) -> None:
    """Issue: two machines both read "AMD EPYC", one AVX2 only, one AVX-512."""
    reports.build_report(two_runs, tmp_path / "merged.html")
    table = unescape(runs_table((tmp_path / "merged.html").read_text()))
    for fact in ("AMD EPYC (family", "AVX2, FMA", "AVX-512 (VNNI), AVX2, FMA",
                 "OpenBLAS 0.3.31.188.0, kernel not recorded", "SkylakeX kernel",
                 "2 cores, 2 threads", "smoke", "14 s", "5 min 6 s", "interrupted",
                 "complete"):  # fmt: skip
        assert fact in table, fact
    assert "wall_s" not in table


def test_the_index_names_each_runs_machine_and_headline(
    tmp_path: Path, two_runs: list[Path]
) -> None:
    """Issue: the index listed every run as machine "vm", with nothing else."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, path in zip(("a", "b"), two_runs, strict=True):
        (runs / f"{name}.json").write_text(path.read_text())
        (runs / f"{name}.html").write_text("<p>report</p>")
    index = reports.update_index(tmp_path).read_text()
    rows = re.findall(r"<tr>(<td.*?)</tr>", index[index.index("<table id='index'>") :], re.S)
    assert len(rows) == 2
    other = unescape(next(r for r in rows if "avx512-box" in r))
    mine = unescape(next(r for r in rows if "avx512-box" not in r))
    for fact in ("AVX-512 (VNNI)", "SkylakeX kernel", "5 min 6 s", "interrupted", "smoke"):
        assert fact in other, fact
    for fact in ("AVX2, FMA", "kernel not recorded", "14 s", "complete", "2 cores, 2 threads"):
        assert fact in mine, fact
    df = reports.load([SMOKE])
    headline = reports.headline(df)
    for row in (mine, other):
        assert "href='runs/" in row
        assert f"{headline['backend'].iloc[0]} " in row  # the headline: who was fastest
        named = df[df["backend"] != ""]
        timed = named.loc[named["status"] == "ok", "backend"].nunique()
        assert f"{timed} of {named['backend'].nunique()}" in row  # names in the tooltip


def test_the_table_shows_an_interval_and_a_flag_where_the_run_has_them() -> None:
    """Runs whose rows carry a 95% interval and a flag show them; older runs do without."""
    df = reports.load([SMOKE])
    older = df.assign(median_low=math.nan, median_high=math.nan, flag="")
    plain = results_rows(render_table(older))
    assert not [c for row in plain for c in row[1:] if "±" in c or "⚠" in c]
    ok = df["status"] == "ok"
    df = df.assign(
        median_low=df["median"].where(ok) * 0.96,
        median_high=df["median"].where(ok) * 1.02,
        flag=["noisy" if i % 2 else "" for i in range(len(df))],
    )
    cells = [c for row in results_rows(render_table(df)) for c in row[1:] if "ms" in c]
    assert all(ONE_NUMBER.match(c) for c in cells)
    assert all(" ±4%" in c for c in cells)
    assert any(c.endswith("⚠") for c in cells)


def test_the_share_of_the_peak_and_the_intensity_come_from_the_run_alone(
    frames: dict[str, pd.DataFrame],
) -> None:
    df = frames["two runs"]
    timed = df[(df["kind"] == "conv") & (df["status"] == "ok") & (df["pass"] != "transfer")]
    gpu = timed[timed["device"] == "gpu"]
    assert len(gpu) > 0  # a GPU row's share is of the GPU's peak; it has no roofline
    assert gpu["pct_peak"].to_numpy() == pytest.approx((100 * gpu["gflops"] / 60_000).to_numpy())
    assert gpu["roof_gflops"].isna().all()
    rows = timed[timed["device"] != "gpu"]
    peak = rows["dtype"].map({d: PEAKS[d]["peak_gflops"] for d in ("float32", "float64")})
    assert rows["pct_peak"].to_numpy() == pytest.approx((100 * rows["gflops"] / peak).to_numpy())
    assert rows["intensity"].to_numpy() == pytest.approx(
        (rows["flops"] / rows["traffic_bytes"]).to_numpy()
    )
    bandwidth = rows["run"].map({"avx512-box": 40.0}).fillna(20.0)
    roof = (bandwidth * rows["intensity"]).clip(upper=peak)
    assert rows["roof_gflops"].to_numpy() == pytest.approx(roof.to_numpy())


def test_a_run_without_measured_limits_has_no_share_of_the_peak_and_no_roofline() -> None:
    df = reports.load([SMOKE])
    assert df["pct_peak"].isna().all()
    fig = drawn(reports.plot_roofline, df)
    assert "no run here measured" in fig.axes[0].texts[0].get_text()


@pytest.mark.parametrize("runs", ["one run", "two runs"])
def test_the_roofline_puts_each_backend_at_its_intensity_under_its_runs_roof(
    frames: dict[str, pd.DataFrame], runs: str
) -> None:
    df = frames[runs]
    fig = drawn(reports.plot_roofline, df)
    resnet = df[(df["config"] == "resnet") & (df["status"] == "ok") & (df["kind"] == "conv")]
    drawn_points = 0
    for ax in fig.axes:
        for line in ax.get_lines():
            gid = str(line.get_gid() or "")
            if gid.startswith("series:"):
                _, backend, _, run, pass_ = gid.split(":")
                row = resnet[(resnet["backend"] == backend) & (resnet["pass"] == pass_)
                             & (resnet["run"] == run)].iloc[0]  # fmt: skip
                assert line.get_xdata()[0] == pytest.approx(row["intensity"])
                assert line.get_ydata()[0] == pytest.approx(row["gflops"])
                drawn_points += 1
            elif line.get_linestyle() == "-":  # the roof
                x, y = line.get_xdata(), line.get_ydata()
                bandwidth = 40.0 if "avx512-box" in ax.get_title() else 20.0
                assert max(y) == pytest.approx(PEAKS["float32"]["peak_gflops"])
                assert y[0] == pytest.approx(bandwidth * x[0])
    assert drawn_points == len(resnet[resnet["pass"].isin(impls.TRAFFIC_PASSES)])


def test_the_report_gives_the_share_of_the_peak_and_the_measured_limits(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    reports.build_report([write(tmp_path / "run.json", with_limits(SMOKE_RUN))], out)
    html = unescape(out.read_text())
    assert "% of the machine's peak" in html
    assert "float32 230 GFLOP/s (fma; matmul 205, FMA loop 230)" in html
    assert "STREAM triad 20.0 GB/s" in html
    assert "plot-roofline" in html
    assert "BLAS limit" not in html.replace("(BLAS limit)", "")

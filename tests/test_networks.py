"""Real networks' layers in the matrix, and the whole-network figures the report makes of them."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reports
from benchmarks.matrix import PRESETS
from benchmarks.networks import network_convs
from reports.network import layer_table, network_totals, winners
from reports.stats import weighted_sum_interval

SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}


def resnet50_shapes() -> Counter[tuple[int, int, int, int, int, int]]:
    """Every convolution of ResNet-50 v1.5 as (input size, c_in, c_out, k, stride, padding),
    built from the architecture's definition: bottleneck blocks [3, 4, 6, 3], the stride on
    each later stage's first 3x3, a strided 1x1 projection where the shape changes."""
    shapes: Counter[tuple[int, int, int, int, int, int]] = Counter({(224, 3, 64, 7, 2, 3): 1})
    size, c_in = 56, 64  # after the stem and its 3x3 stride-2 max pool
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            shapes[size, c_in, width, 1, 1, 0] += 1
            shapes[size, width, width, 3, stride, 1] += 1
            out = size // stride
            shapes[out, width, 4 * width, 1, 1, 0] += 1
            if block == 0:
                shapes[size, c_in, 4 * width, 1, stride, 0] += 1
            size, c_in = out, 4 * width
    return shapes


def vgg16_shapes() -> Counter[tuple[int, int, int, int, int, int]]:
    """VGG-16's convolutions from its configuration "D": 3x3, padding 1, M a 2x2 max pool."""
    shapes: Counter[tuple[int, int, int, int, int, int]] = Counter()
    size, c_in = 224, 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512,
                 512, "M"):  # fmt: skip
        if item == "M":
            size //= 2
            continue
        shapes[size, c_in, int(item), 3, 1, 1] += 1
        c_in = int(item)
    return shapes


@pytest.mark.parametrize(
    ("network", "expected", "layers"),
    [("resnet50", resnet50_shapes, 53), ("vgg16", vgg16_shapes, 13)],
)
def test_each_distinct_layer_is_in_the_table_once_with_its_count(
    network: str, expected: Any, layers: int
) -> None:
    convs = network_convs(network)
    table = Counter({(c.size, c.c_in, c.c_out, c.k, c.stride, c.padding): c.weight for c in convs})
    assert len(table) == len(convs)
    assert table == expected()
    assert sum(table.values()) == layers


def test_small_layers_have_a_batch_of_at_least_8_and_padding_gives_torchs_sizes() -> None:
    for conv in network_convs("resnet50"):
        geom = conv.geometry()
        assert geom.out_h == conv.size // conv.stride, conv.id
        assert 2 <= conv.n <= 8
        if geom.out_h <= 14:
            assert conv.n >= 8, conv.id


def test_the_presets_hold_the_networks_and_the_old_ones_stay_as_they_were() -> None:
    resnet = PRESETS["resnet50"].convs()
    assert {c.network for c in resnet} == {"resnet50"}
    assert len(resnet) == 23
    full = PRESETS["full"].convs()
    assert {c.network for c in full} == {"", "resnet50", "vgg16"}
    for name in ("smoke", "default"):
        assert {c.network for c in PRESETS[name].convs()} == {""}
        assert all(c.padding == "SAME" and c.weight == 1 for c in PRESETS[name].convs())


def test_an_unknown_network_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Unknown network 'resnet18'; known networks: resnet50"):
        network_convs("resnet18")


# the report

#: (layer, kernel, stride, count) of a two-layer network
LAYERS = [("a", 3, 1, 3), ("b", 1, 2, 2)]
#: each backend's median per layer (None: declined)
MEDIANS = {
    "torch_conv2d": {"a": 1.0, "b": 0.5},
    "tiled_im2col": {"a": 1.5, "b": 0.6},
    "numba_direct": {"a": 1.2, "b": 0.8},
    "winograd": {"a": 0.9, "b": None},
}
ROLES = {"torch_conv2d": "peer"}


def network_run() -> dict[str, Any]:
    run = copy.deepcopy(SMOKE_RUN)
    run["benchmarks"], skipped = [], []
    for backend, medians in MEDIANS.items():
        for layer, k, stride, count in LAYERS:
            for pass_ in ("forward", "backward", "step"):
                info = {
                    "kind": "conv", "backend": backend, "role": ROLES.get(backend, "ours"),
                    "pass": pass_, "config": f"toy.{layer}", "network": "toy", "weight": count,
                    "n": 8, "h": 14, "w": 14, "c_in": 4, "c_out": 4, "kh": k, "kw": k,
                    "stride": stride, "padding": k // 2, "dtype": "float32", "flops": 10**6,
                }  # fmt: skip
                median = medians[layer]
                if median is None:
                    skipped.append({**info, "status": "skipped", "reason": "declined: no"})
                    continue
                rounds = list(median * (1 + np.linspace(-0.02, 0.02, 7)))
                run["benchmarks"].append(
                    {"name": f"{backend}-{pass_}-{layer}", "fullname": f"t[{backend}-{pass_}-"
                     f"{layer}]", "extra_info": info,
                     "stats": {"median": median, "iqr": 0.0, "rounds": 7, "data": rounds}}
                )  # fmt: skip
    run["im2col_bench"].update(format=2, skipped=skipped, failed=[], left_out=[])
    return run


@pytest.fixture(scope="module")
def network_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("network") / "run.json"
    path.write_text(json.dumps(network_run()))
    return path


def test_the_whole_network_is_the_count_weighted_sum_with_an_interval(network_path: Path) -> None:
    totals = network_totals(reports.load([network_path]))
    step = totals[totals["pass"] == "step"].set_index("backend")
    assert step.loc["tiled_im2col", "total"] == pytest.approx(3 * 1.5 + 2 * 0.6)
    assert step.loc["torch_conv2d", "total"] == pytest.approx(3 * 1.0 + 2 * 0.5)
    row = step.loc["tiled_im2col"]
    assert row["low"] < row["total"] < row["high"]
    assert row["vs_yardstick"] == pytest.approx(5.7 / 4.0)
    assert row["vs_low"] < row["vs_yardstick"] < row["vs_high"]


def test_a_declined_layer_takes_the_fastest_of_ours_and_says_so(network_path: Path) -> None:
    df = reports.load([network_path])
    step = network_totals(df)
    winograd = step[(step["pass"] == "step") & (step["backend"] == "winograd")].iloc[0]
    # layer b: tiled_im2col (0.6) beats numba_direct (0.8); torch is a peer, never a stand-in
    assert winograd["total"] == pytest.approx(3 * 0.9 + 2 * 0.6)
    assert winograd["label"] == "winograd + tiled_im2col"
    assert (winograd["own"], winograd["missing"]) == (1, 0)
    best = winners(df)
    # composed, it beats torch_conv2d: 3.9 s against 4 s
    assert set(best["backend"]) == {"winograd"}
    html_path = network_path.with_suffix(".html")
    reports.build_report([network_path], html_path)
    html = html_path.read_text()
    assert "winograd + tiled_im2col" in html
    assert "id='layers-toy'" in html
    assert "id='plot-network'" in html


def test_the_layer_table_flags_a_reduction_bound_dw(network_path: Path) -> None:
    table = layer_table(reports.load([network_path]), "toy")
    assert list(table.index) == ["a", "b"]
    # a: 8 x 14 x 14 = 1568; b at stride 2: 8 x 7 x 7 = 392, both at least 256
    assert table["N*OH*OW"].tolist() == ["1568", "392"]
    assert table.loc["a", "winograd"].startswith("★ ")
    assert table.loc["b", "winograd"] == "-"
    run = network_run()
    for record in [b["extra_info"] for b in run["benchmarks"]] + run["im2col_bench"]["skipped"]:
        record["n"] = 2  # b: 2 x 7 x 7 = 98
    path = network_path.parent / "small.json"
    path.write_text(json.dumps(run))
    small = layer_table(reports.load([path]), "toy")
    assert small["N*OH*OW"].tolist() == ["392", "98 (dw reduction-bound)"]


def test_the_weighted_sum_interval_covers_a_known_sum() -> None:
    rng = np.random.default_rng(3)
    parts = [
        (list(1 + 0.01 * rng.standard_normal(15)), 3),
        (list(2 + 0.01 * rng.standard_normal(15)), 2),
    ]
    interval = weighted_sum_interval(parts)
    assert interval.low < 7.0 < interval.high
    assert interval.high - interval.low < 0.1
    assert np.isnan(weighted_sum_interval([([1.0], 1)]).low)


def test_a_layers_estimate_follows_its_flops_not_its_pixels() -> None:
    """Scaled by pixels, a 56-pixel 3x3 layer looked 16x slower than a 7-pixel one with the
    same FLOPs, and every later step of winograd and torch_unfold was skipped as too slow."""
    from benchmarks.matrix import Case
    from benchmarks.timing import Estimates

    preset = PRESETS["resnet50"]
    estimates = Estimates(preset)
    layers = {c.label.removeprefix("resnet50."): c for c in network_convs("resnet50")}
    small, big = layers["layer4.1.conv2"], layers["layer1.0.conv2"]
    assert big.pixels == 16 * small.pixels
    estimates.add(Case("winograd", "step", small), 0.4)
    estimate = estimates.estimate(Case("winograd", "step", big))
    assert estimate is not None
    ratio = Case("winograd", "step", big).flops() / Case("winograd", "step", small).flops()
    assert estimate.seconds == pytest.approx(0.4 * ratio)
    assert estimate.seconds < preset.max_call_s
    assert estimates.estimate(Case("winograd", "forward", big)) is None  # nothing timed yet


def test_the_terminal_names_each_passs_whole_network_winner_and_its_ratio(
    network_path: Path,
) -> None:
    from benchmarks.summary import WIDTH, network_lines

    lines = network_lines(reports.load([network_path]))
    text = " ".join(line.strip() for line in lines)
    assert text.startswith("toy whole network, fastest: forward winograd + tiled_im2col, 0.975x [")
    assert "step winograd + tiled_im2col, 0.975x [" in text
    assert all(len(line) <= WIDTH for line in lines)


def test_a_networks_error_is_the_worst_of_its_layers_stand_ins_included(tmp_path: Path) -> None:
    from reports.accuracy import accuracy_rows, network_accuracy

    run = network_run()
    planted = {"winograd": 6.6e-6, "tiled_im2col": 5e-7, "numba_direct": 4e-7, "torch_conv2d": 3e-7}
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        # each backend's error is ten times larger on layer b than on layer a
        error = planted[info["backend"]] * (10 if info["config"] == "toy.b" else 1)
        info.update(error_y=error, error_dx=error, error_dw=error)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    df = reports.load([path])
    found = network_accuracy(df).set_index(["backend", "pass"])
    # winograd declines b, where tiled_im2col stands in: the worse of 6.6e-6 and 5e-6
    assert found.loc[("winograd", "forward"), "error"] == pytest.approx(6.6e-6)
    assert found.loc[("tiled_im2col", "step"), "error"] == pytest.approx(5e-6)
    assert found.loc[("winograd", "step"), "median"] == pytest.approx(3 * 0.9 + 2 * 0.6)
    assert set(accuracy_rows(df)["where"]) == {"toy, whole network"}

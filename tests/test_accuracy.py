"""Each backend's error against the float64 reference: measured right, once, outside the timing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import impls
import reports
from benchmarks.accuracy import Accuracy, outputs
from benchmarks.matrix import Conv
from impls.reference import Reference
from reports.accuracy import errors, frontier
from reports.article import check_article
from reports.plots import plot_accuracy
from tests.support import usable_backend

SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}

#: a 3x3 layer every CPU backend takes, big enough for Winograd's tiles to repeat
CONV = Conv("accuracy", n=2, size=12, c_in=8, c_out=8, k=3)
#: the relative amounts the perturbed backend scales y, dx and dw by
PERTURB = {"y": 1e-3, "dx": 3e-5, "dw": 2e-2}


class Perturbed(Reference):
    """The reference, with y, dx and dw scaled by 1 + a known amount each."""

    name: ClassVar[str] = "perturbed"
    role: ClassVar[str] = "ours"
    calls: ClassVar[list[str]] = []

    def _forward(self, x: Any, w: Any, b: Any, geom: impls.ConvGeometry) -> tuple[Any, Any]:
        self.calls.append("forward")
        y, saved = super()._forward(x, w, b, geom)
        return y * (1 + PERTURB["y"]), saved

    def _backward(self, dy: Any, saved: Any, geom: impls.ConvGeometry) -> tuple[Any, Any, Any]:
        dx, dw, db = super()._backward(dy, saved, geom)
        return dx * (1 + PERTURB["dx"]), dw * (1 + PERTURB["dw"]), db


def test_the_reference_in_float32_has_the_error_of_rounding_to_float32() -> None:
    """Not 0: the float32 reference is compared with the float64 one, not with itself."""
    errors = Accuracy().measure(impls.get_backend("reference"), CONV)
    for name in ("y", "dx", "dw"):
        # rounding a float64 result to float32 moves it by at most half an ulp, 2**-24 relative
        assert 0 < errors[f"error_{name}"] <= 2.0**-24, errors


def test_a_backend_off_by_a_known_amount_reports_that_amount() -> None:
    conv = Conv("accuracy", n=2, size=12, c_in=8, c_out=8, k=3, dtype="float64")
    errors = Accuracy().measure(Perturbed(), conv)
    for name, amount in PERTURB.items():
        assert errors[f"error_{name}"] == pytest.approx(amount, rel=1e-6), (name, errors)


def test_each_backend_and_configuration_is_measured_once() -> None:
    accuracy, backend = Accuracy(), Perturbed()
    Perturbed.calls.clear()
    first = accuracy.measure(backend, CONV)
    assert accuracy.measure(backend, CONV) == first
    assert Perturbed.calls == ["forward"]
    accuracy.measure(backend, Conv("other", n=1, size=6, c_in=2, c_out=3, k=3))
    assert Perturbed.calls == ["forward", "forward"]


def test_a_failing_backend_gets_its_reason_and_no_error() -> None:
    class Failing(Reference):
        name: ClassVar[str] = "failing"

        def _forward(self, x: Any, w: Any, b: Any, geom: impls.ConvGeometry) -> tuple[Any, Any]:
            raise RuntimeError("planted")

    errors = Accuracy().measure(Failing(), CONV)
    assert errors["error_y"] is None
    assert "planted" in errors["error_reason"]


def test_winograd_in_float32_is_less_accurate_than_the_direct_method() -> None:
    winograd, direct = usable_backend("winograd"), usable_backend("numba_direct")
    accuracy = Accuracy()
    errors = {b.name: accuracy.measure(b, CONV) for b in (winograd, direct)}
    for name in ("y", "dx"):
        assert errors["winograd"][f"error_{name}"] > 2 * errors["numba_direct"][f"error_{name}"]


def test_the_outputs_are_those_of_the_timed_inputs() -> None:
    """The same draws as the timed calls: the reference's y on them, computed here directly."""
    from benchmarks.inputs import case_inputs

    x, w, b, _ = case_inputs(CONV)
    y, _, _ = outputs(impls.get_backend("reference"), CONV, np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0))), (3, 3), axis=(1, 2)
    )
    expected = np.einsum("nhwcij,ijco->nhwo", windows, w.astype(np.float64)) + b
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


# the report


def planted_errors(run: dict[str, Any], by_backend: dict[str, float]) -> dict[str, Any]:
    """A copy of ``run`` whose timed passes carry errors: y at the backend's value, dx at twice
    it and dw at three times it (backends not named get none)."""
    run = copy.deepcopy(run)
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        error = by_backend.get(info.get("backend", ""))
        if error is not None and info.get("pass") in ("forward", "backward", "step"):
            info.update(error_y=error, error_dx=2 * error, error_dw=3 * error)
    return run


PLANTED = {"numba_direct": 4e-7, "tiled_im2col": 5e-7, "winograd": 6.6e-6, "torch_conv2d": 3e-7}


@pytest.fixture(scope="module")
def planted_frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("errors") / "run.json"
    path.write_text(json.dumps(planted_errors(SMOKE_RUN, PLANTED)))
    return reports.load([path])


def test_each_pass_reports_the_error_of_the_outputs_it_computes(
    planted_frame: pd.DataFrame,
) -> None:
    rows = errors(planted_frame)
    rows = rows[(rows["backend"] == "winograd") & (rows["status"] == "ok")]
    expected = {"forward": 6.6e-6, "backward": 3 * 6.6e-6, "step": 3 * 6.6e-6}
    for pass_, error in expected.items():
        assert rows.loc[rows["pass"] == pass_, "error"].tolist() == pytest.approx([error] * 2)


def test_the_frontier_keeps_the_fastest_at_each_accuracy() -> None:
    points = pd.DataFrame(
        {"error": [1e-7, 2e-7, 3e-7, 1e-6, 1e-5, 2e-5], "median": [5.0, 6.0, 3.0, 3.0, 1.0, 2.0]},
        index=["a", "b", "c", "d", "e", "f"],
    )
    # b is slower than the more accurate a; d only ties c; f is slower than e
    assert list(frontier(points).index) == ["a", "c", "e"]


def test_the_report_shows_each_error_in_a_table_a_column_and_the_article_claims(
    planted_frame: pd.DataFrame, tmp_path: Path
) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps(planted_errors(SMOKE_RUN, PLANTED)))
    reports.build_report([run], tmp_path / "run.html")
    html = (tmp_path / "run.html").read_text()
    table = html[html.index("<table id='errors'>") :].split("</table>")[0]
    # the worst of y, dx and dw is dw's: three times the planted value
    for backend, error in PLANTED.items():
        assert f">{3 * error:.1e}</td>" in table, backend
    details = html[html.index("<details id='all-numbers'>") :].split("</details>")[0]
    assert "<th>error vs float64</th>" in details
    assert f"<td>{6.6e-6:.1e}</td>" in details  # winograd's forward: its y
    assert "id='plot-accuracy'" in html
    (claim,) = [c for c in check_article(planted_frame, None) if "same convolution" in c.said]
    assert claim.verdict == "partly"  # winograd is 16x as far off as numba_direct
    assert "winograd 2.0e-05" in claim.found
    assert "numba_direct 1.2e-06" in claim.found
    assert set(claim.table.columns) == {"numba_direct", "tiled_im2col", "winograd"}


def test_a_run_without_errors_says_so() -> None:
    (claim,) = [
        c for c in check_article(reports.load([SMOKE]), None) if "same convolution" in c.said
    ]
    assert claim.verdict == "not measured"
    (ax,) = plot_accuracy(reports.load([SMOKE])).axes
    assert [t.get_text() for t in ax.texts] == [
        "no errors against the float64 reference in this run"
    ]


def test_errors_from_rounding_to_a_wrong_gradient_get_ticks_on_both_sides() -> None:
    """A backend with a wrong dx (error 1) beside float32 rounding (3e-8) broke the axis."""
    from reports.plots import _nice_ticks

    ticks = _nice_ticks(3e-8, 1.0)
    assert ticks[0] < 3e-8
    assert ticks[-1] > 1.0


def test_the_terminal_names_the_largest_and_smallest_error_of_ours(
    planted_frame: pd.DataFrame,
) -> None:
    from benchmarks.summary import accuracy_lines

    text = " ".join(line.strip() for line in accuracy_lines(planted_frame))
    assert "largest of ours winograd 2.0e-05; smallest numba_direct 1.2e-06" in text

"""The article's claims: the harness's im2col phase and dx check, and the verdicts built on them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import impls
import reports
from benchmarks.dx_shortcut import backend_error, dx_check, shortcut_errors
from benchmarks.matrix import PHASES, PRESETS, Case, Conv, build_matrix
from benchmarks.timing import make_target
from reports.article import check_article, flipped_kernel_dx

SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}
#: the seeds that build a column matrix and expose that step
IM2COL_SEEDS = {"naive_loop", "batched_im2col", "numba_loop"}
SMALL = Conv("default", n=2, size=7, c_in=3, c_out=4, k=3, stride=2)


def test_the_matrix_times_im2col_alone_for_the_backends_that_expose_it() -> None:
    cases = build_matrix(PRESETS["smoke"], impls.backend_names(), None)
    assert {c.backend for c in cases if c.pass_ in PHASES} == IM2COL_SEEDS
    described = next(c for c in cases if c.pass_ == "im2col").describe()
    assert described["kind"] == "phase"  # never mixed with the passes in plots and goals


@pytest.mark.parametrize("name", sorted(IM2COL_SEEDS))
def test_the_timed_im2col_is_the_first_step_of_forward(name: str) -> None:
    """The phase the harness times is the code forward runs: cols @ w + b is y."""
    backend = impls.get_backend(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SMALL.x_shape).astype(np.float32)
    w = rng.standard_normal(SMALL.w_shape).astype(np.float32)
    b = rng.standard_normal(SMALL.c_out).astype(np.float32)
    y, _ = backend.forward(x, w, b, stride=SMALL.stride, padding=SMALL.padding)
    cols = backend.im2col(x, SMALL.geometry())  # type: ignore[attr-defined]
    assert cols.shape == SMALL.geometry().cols_shape
    product = (cols @ w.reshape(-1, SMALL.c_out) + b).reshape(y.shape)
    np.testing.assert_allclose(product, y, rtol=1e-5, atol=1e-5)
    target, setup = make_target(backend, Case(name, "im2col", SMALL))
    assert setup is None
    target()


def test_the_shortcut_is_right_at_stride_1_and_wrong_at_stride_2() -> None:
    found = shortcut_errors()
    assert found["stride1_error"] < 1e-12
    assert found["dilated_error"] < 1e-12  # dilating dy by the stride makes it right
    assert found["padded_error"] > 0.5
    assert found["article_shape"] != found["dx_shape"]


def test_a_backend_with_a_wrong_dx_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    class ZeroDx(impls.Backend):
        def _forward(self, x: Any, w: Any, b: Any, geom: impls.ConvGeometry) -> Any:
            return impls.get_backend("naive_loop")._forward(x, w, b, geom)

        def _backward(self, dy: Any, saved: Any, geom: impls.ConvGeometry) -> Any:
            dx, dw, db = impls.get_backend("naive_loop")._backward(dy, saved, geom)
            return np.zeros_like(dx), dw, db

    real = impls.get_backend
    monkeypatch.setattr(impls, "get_backend", lambda n: ZeroDx() if n == "zero_dx" else real(n))
    check = dx_check(["naive_loop", "zero_dx", "winograd"])
    errors = {row["backend"]: row for row in check["backends"]}
    assert errors["naive_loop"]["error"] < check["tolerance"]
    assert errors["zero_dx"]["error"] == pytest.approx(1.0)
    assert errors["winograd"]["reason"].startswith("declined:")
    claim = flipped_kernel_dx(check)
    assert "Off by more than the tests' 1.0e-04 at stride 2: zero_dx." in claim.found
    assert "winograd (declined)" in claim.found


def test_each_backend_checked_agrees_with_the_reference() -> None:
    assert backend_error("batched_im2col")["error"] < 1e-4


def bench(backend: str, pass_: str, h: int, median: float, kind: str = "conv") -> dict:
    info = {"backend": backend, "role": "seed", "pass": pass_, "config": "default", "n": 8,
            "h": h, "c_in": 32, "c_out": 32, "kh": 3, "stride": 1, "dtype": "float32",
            "flops": 10**9, "cols_bytes": 8000, "kind": kind}  # fmt: skip
    name = f"test[{backend}-{pass_}-default-{h}px]"
    return {"name": name, "fullname": name, "extra_info": info,
            "stats": {"median": median, "iqr": 0.0, "rounds": 3}}  # fmt: skip


def planted(tmp_path: Path) -> Path:
    """Planted times: im2col is 90% of naive_loop's forward and 30% of batched_im2col's;
    batching saves 50%; strided_tensordot is 120x naive_loop at 64 px, 50x at 32."""
    run = copy.deepcopy(SMOKE_RUN)
    run["benchmarks"] = [
        bench(backend, pass_, h, median, kind)
        for h, scale in ((32, 0.25), (64, 1.0))
        for backend, pass_, median, kind in (
            ("naive_loop", "forward", 1.0 * scale, "conv"),
            ("naive_loop", "im2col", 0.9 * scale, "phase"),
            ("batched_im2col", "forward", 0.5 * scale, "conv"),
            ("batched_im2col", "im2col", 0.15 * scale, "phase"),
            ("strided_tensordot", "forward", scale / (50 if h == 32 else 120), "conv"),
        )
    ]
    run["im2col_bench"].update(format=2, skipped=[], failed=[], left_out=[])
    path = tmp_path / "planted.json"
    path.write_text(json.dumps(run))
    return path


def test_the_claims_are_judged_on_the_runs_numbers(tmp_path: Path) -> None:
    claims = check_article(reports.load([planted(tmp_path)]), None)
    share, batching, strided, dx, winograd, cuda, same = claims
    assert share.verdict == "partly"
    assert "90% of naive_loop's" in share.found
    assert "30% of batched_im2col's" in share.found
    assert "it holds for naive_loop; not for batched_im2col" in share.found
    assert share.table.loc["naive_loop"].tolist() == ["90%", "90%"]
    assert batching.verdict == "does not hold"
    assert "50% less forward time" in batching.found
    assert strided.verdict == "holds"
    assert "at most 120x (forward, 64px)" in strided.found
    assert strided.table.loc["forward"].tolist() == ["50x", "120x"]
    assert [dx.verdict, winograd.verdict, cuda.verdict, same.verdict] == ["not measured"] * 4


def test_the_report_states_the_claims(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    reports.build_report([planted(tmp_path)], out)
    html = out.read_text()
    article = html[html.index("<table id='article'>") :].split("</table></td></tr></table>")[0]
    assert "Almost all of a convolution layer&#x27;s time goes into im2col" in article
    assert "<td class='v-partly'>partly</td>" in article
    assert "<td class='v-holds'>holds</td>" in article

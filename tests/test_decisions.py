"""The harness's decisions, by function call: budget, memory guard, estimates, skip reasons, matrix.

The subprocess runs of tests/test_harness.py finish far inside every limit, so a budget that
never skips or an estimate scaled the wrong way would pass there; here each decision is put
on either side of its limit, with the answer known.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import impls
from benchmarks import decisions as decisions_module
from benchmarks import timing
from benchmarks.decisions import Decisions
from benchmarks.matrix import (
    PASSES,
    PRESETS,
    RESNET_CONV,
    Case,
    Conv,
    build_matrix,
    contenders,
    sweep_conv,
)
from benchmarks.networks import network_convs
from benchmarks.options import Settings

GIB = 1 << 30
SMOKE = PRESETS["smoke"]


def make_harness(share: float = 0.5, preset: Any = SMOKE, trials: int = 1) -> Decisions:
    settings = Settings(
        preset=preset,
        backends=None,
        sizes=None,
        threads=1,
        report_dir=Path("unused"),
        memory_share=share,
        trials=trials,
    )
    return Decisions(settings)


@pytest.fixture
def four_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with 4 GiB available, whatever this one has."""
    monkeypatch.setattr(decisions_module, "available_memory", lambda: 4 * GIB)


def test_the_session_budget_skips_once_spent_and_not_before() -> None:
    harness = make_harness()
    harness.first_case_at = time.perf_counter() - 0.5 * SMOKE.session_budget_s
    assert harness.budget_reason() is None
    harness.first_case_at = time.perf_counter() - SMOKE.session_budget_s - 1
    reason = harness.budget_reason()
    assert reason is not None
    assert f"{SMOKE.session_budget_s:.0f} s session budget is spent" in reason


def test_jit_compilation_is_not_counted_in_the_session_budget() -> None:
    """A first run after an install compiled for longer than the smoke preset's whole budget
    and skipped a third of its cases "over budget"; a warm run timed them all."""
    harness = make_harness()
    harness.first_case_at = time.perf_counter() - SMOKE.session_budget_s - 1
    harness.compile_s = 2.0
    assert harness.budget_reason() is None
    harness.compile_s = 0.5
    assert harness.budget_reason() is not None


def test_the_trials_of_every_sized_case_are_planned_into_the_session_budget() -> None:
    """The trials come after the sizing pass: a case is skipped once the trials already
    planned, with its own, would run past the budget, though little time has passed yet."""
    harness = make_harness(trials=3)
    harness.first_case_at = time.perf_counter()
    # 0.5 s a call: smoke's 3 rounds at least, one a trial, plus a warm-up call each
    forecast = harness.forecast(0.5)
    assert forecast == pytest.approx(3 * (2 * 0.5 + decisions_module.VISIT_OVERHEAD_S))
    while harness.budget_reason(forecast) is None:
        harness.plan(0.5)
    assert harness.planned_s > SMOKE.session_budget_s - forecast
    reason = harness.budget_reason(forecast)
    assert reason is not None
    assert "spent or planned" in reason
    assert harness.budget_reason(0.0) is None  # a case with no estimate yet still fits


def test_rounds_are_shared_by_the_trials_one_at_least() -> None:
    estimates = timing.Estimates(SMOKE)
    total = estimates.rounds(SMOKE.round_budget_s / 4)
    assert estimates.rounds(SMOKE.round_budget_s / 4, trials=2) == math.ceil(total / 2)
    assert estimates.rounds(10.0, trials=5) == 1


@pytest.mark.usefixtures("four_gib")
def test_the_memory_guard_allows_up_to_the_share_of_available_memory() -> None:
    harness = make_harness(share=0.5)
    assert harness.memory_reason(2 * GIB) is None
    reason = harness.memory_reason(2 * GIB + 1)
    assert reason is not None
    assert "over 50% of the 4 GiB available" in reason
    assert make_harness(share=1.0).memory_reason(2 * GIB + 1) is None


@pytest.mark.usefixtures("four_gib")
def test_a_case_too_big_for_memory_is_skipped_with_the_memory_reason() -> None:
    harness = make_harness(share=0.5)
    big = Conv("big", n=64, size=512, c_in=64, c_out=64, k=3)
    needed = timing.memory_needed(impls.get_backend("batched_im2col"), big)
    assert needed > 2 * GIB
    reason = harness.skip_reason(
        Case("batched_im2col", "forward", big), impls.get_backend("batched_im2col")
    )
    assert reason is not None
    assert reason.startswith(f"too big: needs an estimated {needed / GIB:.3g} GiB")


def test_memory_needed_counts_inputs_outputs_and_the_backends_own() -> None:
    conv = sweep_conv(16)
    geom = conv.geometry()
    backend = impls.get_backend("batched_im2col")
    arrays = 2 * (math.prod(geom.x_shape) + math.prod(geom.w_shape) + geom.c_out)
    arrays += 2 * math.prod(geom.y_shape)
    expected = arrays * 4 + backend.memory_estimate(geom)
    assert timing.memory_needed(backend, conv) == expected


def test_an_estimate_over_the_call_limit_skips_and_under_it_times() -> None:
    harness = make_harness()
    harness.first_case_at = time.perf_counter()
    backend = impls.get_backend("batched_im2col")
    small, big = sweep_conv(16), sweep_conv(32)
    # 4x the pixels at the same configuration: at least 4x the seconds
    harness.estimates_at(1).add(Case("batched_im2col", "forward", small), SMOKE.max_call_s / 3)
    estimate = harness.estimates_at(1).estimate(Case("batched_im2col", "forward", big))
    assert estimate is not None
    assert estimate.seconds == pytest.approx(4 * SMOKE.max_call_s / 3)
    reason = harness.skip_reason(Case("batched_im2col", "forward", big), backend)
    assert reason is not None
    assert reason.startswith("too slow: estimated 0.667 s per call")
    assert "over the smoke preset's 0.5 s limit" in reason
    assert harness.skip_reason(Case("batched_im2col", "forward", small), backend) is None
    # another pass has no estimate yet: it is timed
    assert harness.skip_reason(Case("batched_im2col", "backward", big), backend) is None


def test_an_estimate_scales_by_the_fitted_exponent_and_across_configurations() -> None:
    estimates = timing.Estimates(SMOKE)
    # time grew as pixels^1.5 from 16 to 32 px: 64 px is 4^1.5 = 8x 32 px
    estimates.add(Case("b", "forward", sweep_conv(16)), 1.0)
    estimates.add(Case("b", "forward", sweep_conv(32)), 8.0)
    estimate = estimates.estimate(Case("b", "forward", sweep_conv(64)))
    assert estimate is not None
    assert estimate.seconds == pytest.approx(64.0)
    assert estimate.source == sweep_conv(32)
    # nothing smaller has been timed: no estimate
    assert estimates.estimate(Case("b", "forward", sweep_conv(8))) is None
    # resnet from the sweep: scaled by whichever grew more, pixels or FLOPs
    grown = max(
        RESNET_CONV.pixels / sweep_conv(32).pixels,
        Case("b", "forward", RESNET_CONV).flops() / Case("b", "forward", sweep_conv(32)).flops(),
    )
    resnet = estimates.estimate(Case("b", "forward", RESNET_CONV))
    assert resnet is not None
    assert resnet.seconds == pytest.approx(8.0 * grown)


def test_rounds_follow_the_round_budget_within_the_presets_bounds() -> None:
    estimates = timing.Estimates(SMOKE)
    assert estimates.rounds(10.0) == SMOKE.min_rounds
    assert estimates.rounds(1e-9) == SMOKE.max_rounds
    call = SMOKE.round_budget_s / 4
    assert estimates.rounds(call) == max(SMOKE.min_rounds, 4)


def test_a_declined_configuration_is_skipped_with_the_backends_reason() -> None:
    harness = make_harness()
    conv = Conv("k1", n=1, size=8, c_in=2, c_out=2, k=1)
    reason = harness.skip_reason(Case("winograd", "forward", conv), impls.get_backend("winograd"))
    assert reason == "declined: Winograd F(4x4, 3x3) needs a 3x3 kernel, got 1x1"


def test_an_unavailable_backend_is_skipped_with_why() -> None:
    harness = make_harness()
    broken = impls.UnavailableBackend("broken", "import failed: no module")
    reason = harness.skip_reason(Case("broken", "forward", sweep_conv(16)), broken)
    assert reason == "unavailable: import failed: no module"


@pytest.mark.parametrize("preset", PRESETS.values(), ids=PRESETS.keys())
def test_the_matrix_is_every_configuration_backend_and_pass_smallest_first(preset: Any) -> None:
    names = ["batched_im2col", "naive_loop"]
    cases = build_matrix(preset, names, None)
    convs = preset.convs()
    assert {c.conv for c in cases} == set(convs)
    layers = sum(len(network_convs(name)) for name in preset.networks)
    variants = 4 * bool(preset.variant_size)
    extra = len(preset.extra)
    assert len(convs) == len(preset.sizes) + variants + preset.resnet + extra + layers
    # both also time their im2col phase alone
    assert len(cases) == len(convs) * 2 * (len(PASSES) + 1)
    pixels = [c.conv.pixels for c in cases]
    assert pixels == sorted(pixels)
    assert {c.backend for c in cases} == set(names)


def test_the_sizes_option_replaces_the_sweep_only() -> None:
    cases = build_matrix(PRESETS["default"], ["naive_loop"], [20])
    sweep = {c.conv.size for c in cases if c.conv.label == "default"}
    assert sweep == {20}
    assert any(c.conv == RESNET_CONV for c in cases)


def test_the_oracle_is_never_a_contender() -> None:
    timed, left_out = contenders(["naive_loop", "reference", "winograd"])
    assert timed == ["naive_loop", "winograd"]
    assert left_out == {"reference": "oracle, not a contender"}


class _Plain(impls.Backend):
    """A backend that keeps the base class's memory estimate."""


def test_the_default_memory_estimate_is_two_column_matrices_and_two_padded_inputs() -> None:
    geom = impls.resolve_geometry((2, 7, 6, 3), (3, 2, 3, 4), stride=(2, 1), padding=1)
    # out 4 x 7; columns (2 * 4 * 7, 3 * 2 * 3); padded input 2 x 9 x 8 x 3
    expected = 2 * (2 * 4 * 7 * 3 * 2 * 3 + 2 * 9 * 8 * 3) * 8
    assert _Plain().memory_estimate(geom, np.float64) == expected
    assert _Plain().memory_estimate(geom) == expected // 2

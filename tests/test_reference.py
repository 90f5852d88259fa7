"""The oracle itself: its gradients agree with central finite differences of its own forward."""

from __future__ import annotations

import numpy as np
import pytest

import impls
from tests.support import CASES, Case, make_inputs

REFERENCE = impls.get_backend("reference")
EPS = 1e-6


def loss(x: np.ndarray, w: np.ndarray, b: np.ndarray, dy: np.ndarray, case: Case) -> float:
    y, _ = REFERENCE.forward(x, w, b, **case.kwargs)
    return float(np.sum(y * dy))


@pytest.mark.parametrize("grid_case", CASES, ids=[c.id for c in CASES])
def test_gradients_match_finite_differences(grid_case: Case) -> None:
    x, w, b = make_inputs(grid_case, np.float64)
    y, ctx = REFERENCE.forward(x, w, b, **grid_case.kwargs)
    rng = np.random.default_rng(7)
    dy = rng.standard_normal(y.shape)
    grads = REFERENCE.backward(dy, ctx)
    params = [x, w, b]
    for index, grad in enumerate(grads):
        # directional derivative along a random direction, for each of x, w and b
        direction = rng.standard_normal(params[index].shape)
        plus = [p.copy() for p in params]
        minus = [p.copy() for p in params]
        plus[index] += EPS * direction
        minus[index] -= EPS * direction
        numeric = (loss(*plus, dy, grid_case) - loss(*minus, dy, grid_case)) / (2 * EPS)
        assert np.sum(grad * direction) == pytest.approx(numeric, rel=1e-6, abs=1e-7)


def test_every_single_input_gradient_on_a_strided_case() -> None:
    case = Case("tiny-s2-d2", (1, 6, 5, 2), (2, 2, 2, 2), stride=2, dilation=2, padding=1)
    x, w, b = make_inputs(case, np.float64)
    y, ctx = REFERENCE.forward(x, w, b, **case.kwargs)
    dy = np.random.default_rng(8).standard_normal(y.shape)
    dx, _, _ = REFERENCE.backward(dy, ctx)
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        bump = np.zeros_like(x)
        bump[idx] = EPS
        numeric[idx] = (loss(x + bump, w, b, dy, case) - loss(x - bump, w, b, dy, case)) / (2 * EPS)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)
    # stride 2 with dilation 2 leaves some input pixels unread: their gradient is exactly 0
    assert np.any(dx == 0)


def test_reference_returns_the_input_dtype() -> None:
    x, w, b = make_inputs(CASES[1], np.float32)
    y, ctx = REFERENCE.forward(x, w, b, **CASES[1].kwargs)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in REFERENCE.backward(y, ctx))

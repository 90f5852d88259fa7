"""Every backend computes what the reference computes: y, dx, dw and db, on the whole grid."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import impls
from tests.support import (
    Case,
    assert_close,
    declines,
    make_inputs,
    run_backend,
    usable_backend,
)

REFERENCE = impls.get_backend("reference")


def test_matches_reference(backend_name: str, grid_case: Case, dtype: Any) -> None:
    backend = usable_backend(backend_name)
    if reason := declines(backend, grid_case, dtype):
        pytest.skip(f"{backend_name} declines {grid_case.id}: {reason}")
    x, w, b = make_inputs(grid_case, dtype)
    expected = run_backend(REFERENCE, x, w, b, dy_seed=1, **grid_case.kwargs)
    actual = run_backend(backend, x, w, b, dy_seed=1, **grid_case.kwargs)
    for name, got, want in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
        assert_close(got, want, dtype, f"{backend_name} {name} on {grid_case.id}")


def test_inputs_are_not_modified(backend_name: str) -> None:
    backend = usable_backend(backend_name)
    grid_case = Case("pad-s2", (2, 6, 5, 3), (3, 3, 3, 2), stride=2, padding="SAME")
    if reason := declines(backend, grid_case, np.float32):
        grid_case = Case("s1-same", (2, 6, 5, 3), (3, 3, 3, 2), padding="SAME")
        assert declines(backend, grid_case, np.float32) is None, reason
    x, w, b = make_inputs(grid_case, np.float32)
    dy = (
        np.random.default_rng(3)
        .standard_normal(impls.resolve_geometry(x.shape, w.shape, **grid_case.kwargs).y_shape)
        .astype(np.float32)
    )
    originals = [a.copy() for a in (x, w, b, dy)]
    _y, ctx = backend.forward(x, w, b, **grid_case.kwargs)
    backend.backward(dy, ctx)
    for name, before, after in zip(("x", "w", "b", "dy"), originals, (x, w, b, dy), strict=True):
        np.testing.assert_array_equal(after, before, err_msg=f"{backend_name} modified {name}")


def test_ctx_can_be_reused(backend_name: str) -> None:
    """backward may run many times on one ctx (the benchmarks time it that way)."""
    backend = usable_backend(backend_name)
    grid_case = Case("same", (1, 6, 6, 2), (3, 3, 2, 2), padding="SAME")
    x, w, b = make_inputs(grid_case, np.float64)
    y, ctx = backend.forward(
        backend.to_device(x), backend.to_device(w), backend.to_device(b), **grid_case.kwargs
    )
    dy = backend.to_device(np.ones(backend.to_numpy(y).shape))
    first = [backend.to_numpy(g).copy() for g in backend.backward(dy, ctx)]
    second = [backend.to_numpy(g) for g in backend.backward(dy, ctx)]
    for a, b_ in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b_)


def test_backend_metadata(backend_name: str) -> None:
    backend = impls.get_backend(backend_name)
    assert backend.name == backend_name
    ok, reason = backend.available()
    assert ok or reason, "an unavailable backend must say why"
    if isinstance(backend, impls.UnavailableBackend):
        return
    assert backend.description
    assert "\n" not in backend.description
    assert backend.device in {"cpu", "gpu"}
    assert backend.role in {"seed", "ours", "peer"}

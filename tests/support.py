"""Shared test data: the conformance grid, tolerances, inputs and comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import impls

#: tolerance per dtype, relative to each array's largest magnitude
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


@dataclass(frozen=True)
class Case:
    """One convolution configuration of the conformance grid."""

    id: str
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: Any = 1
    padding: Any = "VALID"
    dilation: Any = 1

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}

    def geometry(self) -> impls.ConvGeometry:
        return impls.resolve_geometry(self.x_shape, self.w_shape, **self.kwargs)


CASES = [
    Case("batch1-cin1-3x3", (1, 5, 5, 1), (3, 3, 1, 2)),
    Case("odd-nonsquare-s2-same", (2, 7, 5, 3), (3, 3, 3, 4), stride=2, padding="SAME"),
    Case("odd-nonsquare-3x3-same", (2, 9, 6, 3), (3, 3, 3, 4), padding="SAME"),
    Case("3x3-explicit-pad", (1, 7, 10, 2), (3, 3, 2, 3), padding=((0, 2), (1, 0))),
    Case("k1-s2", (2, 6, 7, 2), (1, 1, 2, 3), stride=2),
    Case("k2-s2-same", (2, 8, 7, 3), (2, 2, 3, 2), stride=2, padding="SAME"),
    Case("k5-pad2", (1, 9, 8, 2), (5, 5, 2, 3), padding=2),
    Case("k3x1-explicit-pad", (2, 7, 6, 2), (3, 1, 2, 3), stride=(2, 1), padding=((1, 2), (0, 3))),
    Case("s3-d2-same", (2, 11, 10, 2), (3, 3, 2, 2), stride=3, dilation=2, padding="SAME"),
    Case("k2x3-s1x3-d2x1", (1, 8, 10, 3), (2, 3, 3, 2), stride=(1, 3), dilation=(2, 1), padding=1),
    Case("s3-valid-leftover", (1, 10, 9, 3), (3, 3, 3, 2), stride=3),
]

DTYPES = [np.float32, np.float64]


def usable_backend(name: str) -> impls.Backend:
    """The backend, or a pytest skip with the reason it cannot run here."""
    backend = impls.get_backend(name)
    ok, reason = backend.available()
    if not ok:
        pytest.skip(f"{name} unavailable: {reason}")
    return backend


def declines(backend: impls.Backend, case: Case, dtype: Any) -> str | None:
    return backend.supports(case.geometry(), np.dtype(dtype))


def make_inputs(case: Case, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = rng.standard_normal(case.w_shape).astype(dtype)
    b = rng.standard_normal(case.w_shape[3]).astype(dtype)
    return x, w, b


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: Any, what: str) -> None:
    """Equal within the dtype's tolerance, scaled to the expected array's magnitude."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}, expected {dtype}"
    tol = TOLERANCE[np.dtype(dtype)]
    scale = max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


def run_backend(
    backend: impls.Backend,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    dy_seed: int,
    **kwargs: Any,
) -> tuple[np.ndarray, ...]:
    """y, dx, dw, db on the host, with dy drawn from dy_seed."""
    y, ctx = backend.forward(
        backend.to_device(x), backend.to_device(w), backend.to_device(b), **kwargs
    )
    y = backend.to_numpy(y)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(x.dtype)
    grads = backend.backward(backend.to_device(dy), ctx)
    return (y, *(backend.to_numpy(g) for g in grads))


def overwrite(a: Any, values: np.ndarray) -> None:
    """Change ``a`` in place to ``values``, wherever it lives: numpy, numba.cuda or torch."""
    if isinstance(a, np.ndarray):
        a[...] = values
    elif hasattr(a, "copy_to_device"):
        a.copy_to_device(np.ascontiguousarray(values, dtype=a.dtype))
    elif hasattr(a, "copy_"):
        import torch

        a.copy_(torch.from_numpy(np.ascontiguousarray(values)))
    else:
        raise TypeError(f"cannot write into a {type(a).__name__}")

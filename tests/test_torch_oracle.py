"""Every backend agrees with torch.nn.functional.conv2d and its autograd (the `peers` extra)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.support import (
    CASES,
    Case,
    assert_close,
    declines,
    make_inputs,
    run_backend,
    usable_backend,
)

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e .[peers])")
F = torch.nn.functional

TORCH_CASES = [CASES[1], CASES[5], CASES[6], CASES[7]]


def torch_conv(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, case: Case, dy_seed: int
) -> tuple[np.ndarray, ...]:
    """y, dx, dw, db from torch in float64, converted to NHWC / (kh, kw, C_in, C_out)."""
    import impls

    geom = impls.resolve_geometry(x.shape, w.shape, **case.kwargs)
    xt = torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2).requires_grad_()
    wt = torch.tensor(w, dtype=torch.float64).permute(3, 2, 0, 1).requires_grad_()
    bt = torch.tensor(b, dtype=torch.float64).requires_grad_()
    (top, bottom), (left, right) = geom.pad
    yt = F.conv2d(
        F.pad(xt, (left, right, top, bottom)), wt, bt, stride=geom.stride, dilation=geom.dilation
    )
    y = yt.detach().permute(0, 2, 3, 1).numpy()
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(x.dtype)
    yt.backward(torch.tensor(dy, dtype=torch.float64).permute(0, 3, 1, 2))
    dx = xt.grad.permute(0, 2, 3, 1).numpy()
    dw = wt.grad.permute(2, 3, 1, 0).numpy()
    return tuple(a.astype(x.dtype) for a in (y, dx, dw, bt.grad.numpy()))


@pytest.mark.parametrize("grid_case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_matches_torch(backend_name: str, grid_case: Case, dtype: Any) -> None:
    backend = usable_backend(backend_name)
    if reason := declines(backend, grid_case, dtype):
        pytest.skip(f"{backend_name} declines {grid_case.id}: {reason}")
    x, w, b = make_inputs(grid_case, dtype, seed=11)
    expected = torch_conv(x, w, b, grid_case, dy_seed=12)
    actual = run_backend(backend, x, w, b, dy_seed=12, **grid_case.kwargs)
    for name, got, want in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
        assert_close(got, want, dtype, f"{backend_name} {name} vs torch on {grid_case.id}")


def test_reference_matches_torch() -> None:
    import impls

    for case in CASES:
        x, w, b = make_inputs(case, np.float64, seed=13)
        expected = torch_conv(x, w, b, case, dy_seed=14)
        actual = run_backend(impls.get_backend("reference"), x, w, b, dy_seed=14, **case.kwargs)
        for name, got, want in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
            assert_close(got, want, np.float64, f"reference {name} vs torch on {case.id}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_torch_tensors_are_taken_as_inputs(dtype: Any) -> None:
    """The GPU peer's arrays are tensors: the shared checks must read torch dtypes too."""
    from impls._torch import as_tensor

    backend = usable_backend("torch_conv2d")
    grid_case = TORCH_CASES[0]
    x, w, b = make_inputs(grid_case, dtype, seed=11)
    expected = torch_conv(x, w, b, grid_case, dy_seed=12)
    y, ctx = backend.forward(as_tensor(x), as_tensor(w), as_tensor(b), **grid_case.kwargs)
    dy = np.random.default_rng(12).standard_normal(tuple(y.shape)).astype(dtype)
    grads = backend.backward(as_tensor(dy), ctx)
    for name, got, want in zip(("y", "dx", "dw", "db"), (y, *grads), expected, strict=True):
        assert_close(backend.to_numpy(got), want, dtype, f"torch_conv2d {name} from tensors")

"""Every backend against an oracle that shares nothing with impls: shapes, padding and values.

``tests/oracle.py`` works the geometry out from the raw call arguments, so these tests catch a
bug in ``impls._geometry`` that the reference (which takes its geometry from there too) would
agree with: a stride or dilation pair read backwards, a SAME split on the wrong side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import impls
from tests import oracle
from tests.support import Case, assert_close, declines, make_inputs, run_backend, usable_backend

#: (case, expected (OH, OW), expected ((top, bottom), (left, right))), worked out by hand
GEOMETRIES = [
    (Case("s1x2-8x8", (1, 8, 8, 1), (1, 1, 1, 1), stride=(1, 2)), (8, 4), ((0, 0), (0, 0))),
    (Case("s2x1-8x8", (1, 8, 8, 1), (1, 1, 1, 1), stride=(2, 1)), (4, 8), ((0, 0), (0, 0))),
    (Case("d2x1-9x9", (1, 9, 9, 1), (3, 3, 1, 1), dilation=(2, 1)), (5, 7), ((0, 0), (0, 0))),
    (Case("d1x3-10x12", (1, 10, 12, 1), (3, 3, 1, 1), dilation=(1, 3)), (8, 6), ((0, 0), (0, 0))),
    # SAME with an odd total: the extra pixel goes to the bottom and the right
    (Case("same-odd-total", (1, 6, 7, 1), (2, 4, 1, 1), padding="SAME"), (6, 7), ((0, 1), (1, 2))),
    (
        Case("same-s2-8x7", (1, 8, 7, 1), (3, 3, 1, 1), stride=2, padding="SAME"),
        (4, 4),
        ((0, 1), (1, 1)),
    ),
    (
        Case(
            "same-s1x3-d2x1",
            (1, 7, 10, 1),
            (3, 3, 1, 1),
            stride=(1, 3),
            dilation=(2, 1),
            padding="same",
        ),
        (7, 4),
        ((2, 2), (1, 1)),
    ),
    # explicit padding on every side, none of it zero
    (
        Case("explicit-all-sides", (1, 5, 6, 1), (3, 3, 1, 1), padding=((1, 2), (2, 1))),
        (6, 7),
        ((1, 2), (2, 1)),
    ),
    # a width leftover under the stride: the last pixel is never read
    (Case("s3-leftover", (1, 10, 10, 1), (3, 3, 1, 1), stride=3), (3, 3), ((0, 0), (0, 0))),
    (
        Case("explicit-s2x3", (1, 7, 8, 1), (3, 2, 1, 1), stride=(2, 3), padding=((2, 0), (1, 3))),
        (4, 4),
        ((2, 0), (1, 3)),
    ),
]


@pytest.mark.parametrize(("shape", "out_hw", "pad"), GEOMETRIES, ids=[g[0].id for g in GEOMETRIES])
def test_geometry_gives_the_output_size_and_padding_by_hand(
    shape: Case, out_hw: tuple[int, int], pad: Any
) -> None:
    geom = impls.resolve_geometry(shape.x_shape, shape.w_shape, **shape.kwargs)
    assert (geom.out_h, geom.out_w) == out_hw
    assert geom.pad == pad
    assert oracle.output_hw(shape.x_shape, shape.w_shape, **shape.kwargs) == out_hw
    assert (
        oracle.padding_split(
            shape.padding, shape.x_shape[1:3], shape.w_shape[:2], shape.stride, shape.dilation
        )
        == pad
    )


@pytest.mark.parametrize(("shape", "out_hw", "pad"), GEOMETRIES, ids=[g[0].id for g in GEOMETRIES])
def test_what_the_geometry_derives_matches_first_principles(
    shape: Case, out_hw: tuple[int, int], pad: Any
) -> None:
    n, h, w, c_in = (2, *shape.x_shape[1:3], 3)
    kh, kw, c_out = (*shape.w_shape[:2], 5)
    geom = impls.resolve_geometry((n, h, w, c_in), (kh, kw, c_in, c_out), **shape.kwargs)
    (out_h, out_w), ((top, bottom), (left, right)) = out_hw, pad
    (sh, sw), (dh, dw) = oracle.pair(shape.stride), oracle.pair(shape.dilation)
    assert geom.x_shape == (n, h, w, c_in)
    assert geom.w_shape == (kh, kw, c_in, c_out)
    assert geom.y_shape == (n, out_h, out_w, c_out)
    assert geom.padded_hw == (h + top + bottom, w + left + right)
    assert geom.cols_shape == (n * out_h * out_w, kh * kw * c_in)
    assert geom.cols_bytes(8) == n * out_h * out_w * kh * kw * c_in * 8
    assert geom.flops_forward == 2 * n * out_h * out_w * c_out * kh * kw * c_in
    assert geom.flops_backward == 2 * geom.flops_forward
    assert geom.index_params == (sh, sw, dh, dw, top, left)
    padded = np.arange((h + top + bottom) * (w + left + right)).reshape(h + top + bottom, -1)
    for ki, kj in [(0, 0), (kh - 1, kw - 1)]:
        rows, cols = geom.window_starts(ki, kj)
        expected = padded[np.ix_(np.arange(out_h) * sh + ki * dh, np.arange(out_w) * sw + kj * dw)]
        np.testing.assert_array_equal(padded[rows, cols], expected)
    rows, cols = geom.interior()
    assert (rows, cols) == (slice(top, top + h), slice(left, left + w))


#: uneven stride and dilation pairs, odd and non-square shapes, lopsided padding
CASES = [
    Case("s1x2", (1, 8, 8, 2), (1, 1, 2, 3), stride=(1, 2)),
    Case("s2x1-k3-same", (2, 7, 9, 3), (3, 3, 3, 2), stride=(2, 1), padding="SAME"),
    Case("s3x2-d1x2", (1, 11, 13, 2), (2, 3, 2, 3), stride=(3, 2), dilation=(1, 2)),
    Case("d2x3-same", (2, 9, 10, 2), (3, 2, 2, 3), dilation=(2, 3), padding="SAME"),
    Case("s2x3-leftover", (1, 9, 11, 3), (3, 3, 3, 2), stride=(2, 3)),
    Case("k2x4-same-odd-total", (1, 6, 7, 2), (2, 4, 2, 3), padding="SAME"),
    Case("s1x3-explicit", (2, 7, 8, 2), (3, 2, 2, 2), stride=(1, 3), padding=((2, 0), (1, 3))),
    # what Winograd takes: 3x3 at stride 1, here with lopsided padding
    Case("3x3-lopsided", (2, 6, 9, 2), (3, 3, 2, 3), padding=((0, 1), (2, 0))),
]


@pytest.mark.parametrize("grid_case", CASES, ids=[c.id for c in CASES])
def test_matches_the_independent_oracle(backend_name: str, grid_case: Case, dtype: Any) -> None:
    backend = usable_backend(backend_name)
    if reason := declines(backend, grid_case, dtype):
        pytest.skip(f"{backend_name} declines {grid_case.id}: {reason}")
    x, w, b = make_inputs(grid_case, dtype, seed=21)
    y, dx, dw, db = run_backend(backend, x, w, b, dy_seed=22, **grid_case.kwargs)
    out_h, out_w = oracle.output_hw(x.shape, w.shape, **grid_case.kwargs)
    assert y.shape == (x.shape[0], out_h, out_w, w.shape[3])
    dy = np.random.default_rng(22).standard_normal(y.shape).astype(dtype)
    expected = (
        oracle.conv2d(x, w, b, **grid_case.kwargs),
        *oracle.conv2d_grads(x, w, dy, **grid_case.kwargs),
    )
    for name, got, want in zip(("y", "dx", "dw", "db"), (y, dx, dw, db), expected, strict=True):
        assert_close(got, want.astype(dtype), dtype, f"{backend_name} {name} vs oracle")


def test_the_oracle_is_right_on_a_case_worked_by_hand() -> None:
    # 1x4 input, 1x2 kernel of ones, stride 2 with SAME: out = ceil(4 / 2) = 2, total pad 0
    x = np.arange(1.0, 5.0).reshape(1, 1, 4, 1)
    w = np.ones((1, 2, 1, 1))
    y = oracle.conv2d(x, w, None, stride=2, padding="SAME")
    np.testing.assert_array_equal(y.reshape(-1), [1 + 2, 3 + 4])
    # width 5: out 3, total pad (3 - 1) * 2 + 2 - 5 = 1, after: windows (1, 2), (3, 4), (5, 0)
    x = np.arange(1.0, 6.0).reshape(1, 1, 5, 1)
    y = oracle.conv2d(x, w, None, stride=2, padding="SAME")
    np.testing.assert_array_equal(y.reshape(-1), [3, 7, 5])
    dx, dw, db = oracle.conv2d_grads(x, w, np.ones((1, 1, 3, 1)), stride=2, padding="SAME")
    np.testing.assert_array_equal(dx.reshape(-1), [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(dw.reshape(-1), [1 + 3 + 5, 2 + 4])
    np.testing.assert_array_equal(db, [3])


def _torch_conv(x: np.ndarray, w: np.ndarray, dy_seed: int, case: Case) -> tuple[np.ndarray, ...]:
    """y, dy, dx, dw from torch, given the raw arguments in torch's own terms (its arithmetic)."""
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e .[peers])")
    F = torch.nn.functional
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    wt = torch.tensor(w).permute(3, 2, 0, 1).requires_grad_()
    padding: Any = case.padding
    source = xt
    if isinstance(padding, str):
        # torch's "same" needs stride 1; it puts the odd pixel after, as the oracle does
        padding = padding.lower()
    elif not isinstance(padding, int):
        (top, bottom), (left, right) = padding
        source, padding = F.pad(xt, (left, right, top, bottom)), 0
    yt = F.conv2d(source, wt, stride=case.stride, padding=padding, dilation=case.dilation)
    y = yt.detach().permute(0, 2, 3, 1).numpy()
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape)
    yt.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    return y, dy, xt.grad.permute(0, 2, 3, 1).numpy(), wt.grad.permute(2, 3, 1, 0).numpy()


TORCH_CASES = [
    c
    for c in CASES + [g[0] for g in GEOMETRIES]
    if not (str(c.padding).upper() == "SAME" and oracle.pair(c.stride) != (1, 1))
]


# torch says that its "same" with an even kernel may copy the input: true, and no concern here
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("grid_case", TORCH_CASES, ids=[c.id for c in TORCH_CASES])
def test_the_oracle_agrees_with_torch_given_the_raw_arguments(grid_case: Case) -> None:
    x, w, _ = make_inputs(grid_case, np.float64, seed=23)
    expected_y, dy, expected_dx, expected_dw = _torch_conv(x, w, 24, grid_case)
    y = oracle.conv2d(x, w, None, **grid_case.kwargs)
    dx, dw, _ = oracle.conv2d_grads(x, w, dy, **grid_case.kwargs)
    for name, got, want in (("y", y, expected_y), ("dx", dx, expected_dx), ("dw", dw, expected_dw)):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


def test_large_channel_counts_are_compared_by_value() -> None:
    # past CPython's cache of small ints, equal counts are distinct objects
    geom = impls.resolve_geometry((1, 3, 3, int("300")), (1, 1, int("300"), int("257")))
    assert geom.w_shape == (1, 1, 300, 257)


def test_the_defaults_are_stride_1_valid_and_dilation_1() -> None:
    case = Case("defaults", (1, 6, 5, 2), (3, 2, 2, 3))
    x, w, b = make_inputs(case, np.float64, seed=25)
    backend = impls.get_backend("batched_im2col")
    y, _ = backend.forward(x, w, b)
    np.testing.assert_allclose(y, oracle.conv2d(x, w, b), rtol=1e-12, atol=1e-12)
    geom = backend.check(x, w, b)
    assert (geom.stride, geom.dilation, geom.pad) == ((1, 1), (1, 1), ((0, 0), (0, 0)))
    # winograd takes 3x3 at stride 1 and dilation 1 only: the defaults must be those
    default = impls.resolve_geometry((1, 8, 8, 2), (3, 3, 2, 2))
    assert impls.get_backend("winograd").supports(default, np.float32) is None

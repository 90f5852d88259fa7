"""Bad input gets a ValueError that names the problem, from every backend."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import numpy as np
import pytest

import impls
from tests.support import assert_close, run_backend, usable_backend

X = np.zeros((2, 6, 5, 3), np.float32)
W = np.zeros((3, 3, 3, 4), np.float32)
B = np.zeros(4, np.float32)

BAD_FORWARD = {
    "x-3d": ((X[0], W, B), {}, "x must be 4-D"),
    "w-5d": ((X, W[None], B), {}, "w must be 4-D"),
    "c_in-mismatch": ((X, W[:, :, :2], B), {}, "C_in differs"),
    "b-shape": ((X, W, B[:3]), {}, r"b must have shape \(C_out,\)"),
    "b-2d": ((X, W, B[None]), {}, r"b must have shape \(C_out,\)"),
    "kernel-too-big": ((X, np.zeros((7, 3, 3, 4), np.float32), B), {}, "output would be empty"),
    "dilated-too-big": ((X, W, B), {"dilation": 3}, "output would be empty"),
    "stride-0": ((X, W, B), {"stride": 0}, "stride must be >= 1"),
    "stride-pair-neg": ((X, W, B), {"stride": (1, -1)}, "stride must be >= 1"),
    "stride-float": ((X, W, B), {"stride": 1.5}, "stride must be an int"),
    "dilation-0": ((X, W, B), {"dilation": 0}, "dilation must be >= 1"),
    "padding-neg": ((X, W, B), {"padding": -1}, "padding must be >= 0"),
    "padding-pair-neg": ((X, W, B), {"padding": ((0, 1), (-1, 0))}, "padding must be >= 0"),
    "padding-unknown": ((X, W, B), {"padding": "FULL"}, "Unknown padding 'FULL'"),
    "padding-malformed": ((X, W, B), {"padding": (1, 2, 3)}, "padding must be"),
    "int-dtype": (
        (X.astype(np.int32), W.astype(np.int32), B.astype(np.int32)),
        {},
        "only float32 and float64",
    ),
    "complex-dtype": ((X.astype(np.complex64), W, B), {}, "only float32 and float64"),
    "mixed-dtype": ((X, W.astype(np.float64), B), {}, "mixed dtypes"),
    "empty-batch": ((X[:0], W, B), {}, "empty axis"),
    "x-ragged-list": (([[[[0.0]]], [[[0.0, 1.0]]]], W, B), {}, "x is not an array numpy can read"),
    "x-none": ((None, W, B), {}, "x must be an array, got None"),
    "w-none": ((X, None, B), {}, "w must be an array, got None"),
    "b-strings": ((X, W, ["a", "b", "c", "d"]), {}, "b has dtype <U1"),
    "x-int-list": ((X.astype(int).tolist(), W, B), {}, "x has dtype int64"),
    # issue 24: OverflowError in strided_tensordot, mec and tiled_im2col, not a ValueError
    "stride-2**62": ((X, W, B), {"stride": 2**62}, r"stride must be at most 2\*\*31 - 1"),
    "stride-2**63": ((X, W, B), {"stride": (1, 2**63)}, r"stride must be at most 2\*\*31 - 1"),
    "dilation-2**62-one-tap": (
        (X, W[:1, :1], B),
        {"dilation": 2**62},
        r"dilation must be at most 2\*\*31 - 1",
    ),
    "padding-2**62": ((X, W, B), {"padding": 2**62}, "padding 4611686018427387904 makes"),
    "padding-2**40-pairs": (
        (X, W, B),
        {"padding": ((2**40, 0), (0, 2**40))},
        "makes the padded input",
    ),
}


@pytest.mark.parametrize("bad", BAD_FORWARD.values(), ids=BAD_FORWARD.keys())
def test_bad_forward_input_is_a_value_error(backend_name: str, bad: Any) -> None:
    backend = impls.get_backend(backend_name)
    (x, w, b), kwargs, message = bad
    with pytest.raises(ValueError, match=message):
        backend.forward(x, w, b, **kwargs)


def test_dy_of_the_wrong_shape_or_dtype(backend_name: str) -> None:
    backend = impls.get_backend(backend_name)
    if not backend.available()[0]:
        pytest.skip(backend.available()[1])
    _, ctx = backend.forward(*(backend.to_device(a) for a in (X, W, B)), padding="SAME")
    with pytest.raises(ValueError, match="dy has shape"):
        backend.backward(backend.to_device(np.zeros((2, 6, 5, 3), np.float32)), ctx)
    with pytest.raises(ValueError, match="dy has dtype"):
        backend.backward(backend.to_device(np.zeros((2, 6, 5, 4), np.float64)), ctx)
    # and the other way round: a float32 dy for a float64 forward
    x64, w64, b64 = (backend.to_device(a.astype(np.float64)) for a in (X, W, B))
    _, ctx = backend.forward(x64, w64, b64, padding="SAME")
    with pytest.raises(ValueError, match="dy has dtype"):
        backend.backward(backend.to_device(np.zeros((2, 6, 5, 4), np.float32)), ctx)


def test_dy_that_is_none_or_unreadable(backend_name: str) -> None:
    backend = usable_backend(backend_name)
    _, ctx = backend.forward(*(backend.to_device(a) for a in (X, W, B)), padding="SAME")
    with pytest.raises(ValueError, match="dy must be an array, got None"):
        backend.backward(None, ctx)
    with pytest.raises(ValueError, match="dy is not an array numpy can read"):
        backend.backward([[[[0.0]]], [[[0.0, 1.0]]]], ctx)


def test_ctx_from_another_backend_is_refused(backend_name: str) -> None:
    _, ctx = impls.get_backend("reference").forward(X, W, B)
    with pytest.raises(ValueError, match="ctx must come from"):
        impls.get_backend(backend_name).backward(np.zeros((2, 4, 3, 4), np.float32), ctx)


def forward_ctx(backend: impls.Backend, x: Any, w: Any, b: Any) -> impls.Context:
    return backend.forward(*(backend.to_device(a) for a in (x, w, b)), padding="SAME")[1]


#: ways a ctx can stop matching its saved state: ctx, a wider call's ctx, a float64 call's ctx
TAMPERED = {
    "saved-of-a-wider-call": lambda ctx, wide, f64: replace(ctx, saved=wide.saved),
    "geometry-of-a-wider-call": lambda ctx, wide, f64: replace(ctx, geom=wide.geom),
    "saved-of-a-float64-call": lambda ctx, wide, f64: replace(ctx, saved=f64.saved),
    "dtype-changed": lambda ctx, wide, f64: replace(ctx, dtype=f64.dtype),
    "guards-dropped": lambda ctx, wide, f64: replace(ctx, guards=()),
    "built-by-hand": lambda ctx, wide, f64: impls.Context(
        ctx.backend, ctx.geom, ctx.dtype, ctx.saved, ctx.guards
    ),
}


@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_ctx_that_does_not_match_its_saved_state_is_refused(backend_name: str, tamper: Any) -> None:
    """Before a backend reads a saved array, so that no ctx makes it read outside one."""
    backend = usable_backend(backend_name)
    ctx = forward_ctx(backend, X, W, B)
    wide = forward_ctx(backend, np.zeros((2, 6, 9, 3), np.float32), W, B)
    f64 = forward_ctx(backend, *(a.astype(np.float64) for a in (X, W, B)))
    bad = tamper(ctx, wide, f64)
    if all(getattr(bad, f.name) is getattr(ctx, f.name) for f in fields(ctx)):
        pytest.skip(f"{backend_name} keeps no input by reference: no guards to drop")
    # a dy that matches what the bad ctx claims, as its caller would make it
    dy = backend.to_device(np.zeros(bad.geom.y_shape, bad.dtype))
    with pytest.raises(ValueError, match="ctx does not match its saved state"):
        backend.backward(dy, bad)


def test_array_likes_are_read_as_numpy_reads_them(backend_name: str) -> None:
    backend = usable_backend(backend_name)
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(a.shape) for a in (X, W, B))
    dy = rng.standard_normal((2, 6, 5, 4))
    y, ctx = backend.forward(*(backend.to_device(a) for a in (x, w, b)), padding="SAME")
    expected = [y, *backend.backward(backend.to_device(dy), ctx)]
    # nested lists of Python floats are float64 arrays to numpy
    y, ctx = backend.forward(x.tolist(), w.tolist(), tuple(b), padding="SAME")
    got = [y, *backend.backward(dy.tolist(), ctx)]
    for name, a, e in zip(("y", "dx", "dw", "db"), got, expected, strict=True):
        assert_close(backend.to_numpy(a), backend.to_numpy(e), np.float64, f"{name} from lists")


def test_b_none_means_no_bias(backend_name: str) -> None:
    backend = usable_backend(backend_name)
    x, w = (np.random.default_rng(6).standard_normal(a.shape) for a in (X, W))
    dy = np.random.default_rng(7).standard_normal((2, 6, 5, 4))
    y_none, ctx = backend.forward(backend.to_device(x), backend.to_device(w), None, padding="SAME")
    y_zero, _ = backend.forward(
        *(backend.to_device(a) for a in (x, w, np.zeros(4))), padding="SAME"
    )
    assert_close(backend.to_numpy(y_none), backend.to_numpy(y_zero), np.float64, "y")
    db = backend.to_numpy(backend.backward(backend.to_device(dy), ctx)[2])
    assert_close(db, dy.sum(axis=(0, 1, 2)), np.float64, "db, the gradient a bias would get")


@pytest.mark.parametrize(
    ("h", "k", "stride", "dilation", "expected"),
    [
        (7, 3, 2, 1, ((1, 1), 4)),  # ceil(7/2) = 4 outputs, 2 padding split evenly
        (6, 3, 2, 1, ((0, 1), 3)),  # odd leftover goes on the bottom
        (5, 2, 1, 1, ((0, 1), 5)),  # even kernel
        (10, 3, 3, 2, ((2, 2), 4)),  # dilated: span 5, 9 + 5 - 10 = 4 to pad
        (4, 1, 3, 1, ((0, 0), 2)),  # nothing to pad
    ],
)
def test_same_padding_follows_tensorflow(
    h: int, k: int, stride: int, dilation: int, expected: Any
) -> None:
    geom = impls.resolve_geometry(
        (1, h, h, 1), (k, k, 1, 1), stride=stride, padding="SAME", dilation=dilation
    )
    assert (geom.pad[0], geom.out_h) == expected
    assert geom.out_h == -(-h // stride)


def test_flop_count_and_cols_bytes() -> None:
    geom = impls.resolve_geometry((8, 32, 32, 16), (3, 3, 16, 32), padding="SAME")
    assert geom.flops_forward == 2 * 8 * 32 * 32 * 32 * 3 * 3 * 16
    assert geom.flops_backward == 2 * geom.flops_forward
    assert geom.cols_bytes(4) == 8 * 32 * 32 * 3 * 3 * 16 * 4


def test_a_cpu_backend_reads_torch_tensors_as_numpy_does(backend_name: str) -> None:
    """Anything numpy reads is an input, tensors too: they have a shape and a dtype, but only
    a GPU backend takes them as they are."""
    torch = pytest.importorskip("torch", reason="torch not installed (pip install -e .[peers])")
    backend = usable_backend(backend_name)
    if backend.device != "cpu":
        pytest.skip(f"{backend_name} keeps its arrays on a {backend.device}")
    x, w, b = (a.astype(np.float64) for a in (X + 0.5, W + 0.25, B + 1.0))
    y, ctx = backend.forward(*(torch.from_numpy(a) for a in (x, w, b)), padding="SAME")
    expected, _ = impls.get_backend("reference").forward(x, w, b, padding="SAME")
    assert_close(backend.to_numpy(y), expected, np.float64, f"{backend_name} y from tensors")
    grads = backend.backward(torch.ones(tuple(y.shape), dtype=torch.float64), ctx)
    assert all(isinstance(backend.to_numpy(g), np.ndarray) for g in grads)


#: the largest stride and dilation impls takes, past what any shape can use: one output
#: pixel, one kernel tap (issue 24: torch's backward died of SIGFPE at a stride of 65536)
HUGE_STEPS = {
    "stride-2**31-1": ({"stride": 2**31 - 1}, 3),
    "stride-65536-same": ({"stride": 65536, "padding": "SAME"}, 3),
    "stride-2**24-pair": ({"stride": (2**24, 1), "padding": 1}, 3),
    "dilation-2**31-1-one-tap": ({"dilation": 2**31 - 1}, 1),
    "both-2**31-1-padded": ({"stride": 2**31 - 1, "dilation": 2**31 - 1, "padding": 2}, 1),
}


@pytest.mark.parametrize(("kwargs", "k"), HUGE_STEPS.values(), ids=HUGE_STEPS.keys())
def test_a_step_past_what_the_shape_can_use_is_computed_exactly(
    backend_name: str, kwargs: dict[str, Any], k: int
) -> None:
    backend = usable_backend(backend_name)
    rng = np.random.default_rng(11)
    x, w, b = (
        rng.standard_normal(X.shape),
        rng.standard_normal((k, k, 3, 4)),
        rng.standard_normal(4),
    )
    if backend.supports(impls.resolve_geometry(x.shape, w.shape, **kwargs), np.float64):
        pytest.skip(f"{backend_name} declines it")
    reference = impls.get_backend("reference")
    expected = run_backend(reference, x, w, b, dy_seed=12, **kwargs)
    got = run_backend(backend, x, w, b, dy_seed=12, **kwargs)
    for name, a, e in zip(("y", "dx", "dw", "db"), got, expected, strict=True):
        assert_close(a, e, np.float64, f"{backend_name} {name}")


def test_big_endian_floats_are_read_as_their_values(backend_name: str) -> None:
    """Issue 24: a '>f8' array (read from a file written elsewhere) was called unsupported."""
    backend = usable_backend(backend_name)
    rng = np.random.default_rng(13)
    x, w, b = rng.standard_normal(X.shape), rng.standard_normal(W.shape), rng.standard_normal(4)
    swapped = [a.astype(">f8") for a in (x, w, b)]
    before = [a.copy() for a in swapped]
    expected = run_backend(backend, x, w, b, dy_seed=14, padding="SAME")
    got = run_backend(backend, *swapped, dy_seed=14, padding="SAME")
    for name, a, e in zip(("y", "dx", "dw", "db"), got, expected, strict=True):
        assert_close(a, e, np.float64, f"{backend_name} {name} from big-endian inputs")
    for a, original in zip(swapped, before, strict=True):
        assert a.dtype == np.dtype(">f8")
        assert np.array_equal(a, original)


class _WrongShapes(impls.Backend):
    """The reference, but y loses a column, or dw an output channel: a careless backend."""

    name = "wrong_shapes"

    def __init__(self, broken: str) -> None:
        self.broken = broken

    def _forward(self, x: Any, w: Any, b: Any, geom: impls.ConvGeometry) -> tuple[Any, Any]:
        y, saved = impls.get_backend("reference")._forward(x, w, b, geom)
        return (y[:, :, :-1] if self.broken == "y" else y), saved

    def _backward(self, dy: Any, saved: Any, geom: impls.ConvGeometry) -> tuple[Any, Any, Any]:
        dx, dw, db = impls.get_backend("reference")._backward(dy, saved, geom)
        return dx, (dw[..., :-1] if self.broken == "dw" else dw), db


def test_a_result_of_the_wrong_shape_is_an_error_not_a_number() -> None:
    """A backend that returned a y one column short was timed and called the fastest."""
    with pytest.raises(RuntimeError, match=r"wrong_shapes returned y of shape \(2, 6, 4, 4\)"):
        _WrongShapes("y").forward(X, W, B, padding="SAME")
    backend = _WrongShapes("dw")
    y, ctx = backend.forward(X, W, B, padding="SAME")
    with pytest.raises(
        RuntimeError, match=r"returned dw of shape \(3, 3, 3, 3\), not \(3, 3, 3, 4\)"
    ):
        backend.backward(np.ones_like(y), ctx)

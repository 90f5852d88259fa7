"""Non-finite values spread as the README's contract says, and large finite inputs stay finite."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pytest

import impls
from tests.support import DTYPES, Case, assert_close, declines, make_inputs, usable_backend

REFERENCE = impls.get_backend("reference")
OUTPUTS = ("y", "dx", "dw", "db")
CASES = {
    case.id: case
    for case in [
        Case("3x3-same", (2, 9, 10, 3), (3, 3, 3, 4), padding="SAME"),
        Case("s2-same-lopsided", (2, 8, 10, 3), (3, 3, 3, 4), stride=2, padding="SAME"),
        Case("s2-pad1", (2, 9, 10, 3), (3, 3, 3, 4), stride=2, padding=1),
        Case("d2-pad2", (1, 11, 10, 2), (3, 3, 2, 3), dilation=2, padding=2),
    ]
}
#: one non-finite value: (array, index, value), next to the padded border or inside
PLACES = {
    "x-nan-inside": ("x", (0, 4, 5, 1), np.nan),
    "x-inf-corner": ("x", (0, 0, 0, 0), np.inf),
    "x-neg-inf-edge": ("x", (0, -1, 3, 1), -np.inf),
    "w-nan-corner-tap": ("w", (0, 0, 1, 2), np.nan),
    "w-inf-centre-tap": ("w", (1, 1, 0, 1), np.inf),
    "dy-nan-corner": ("dy", (0, 0, 0, 1), np.nan),
    "dy-inf-edge": ("dy", (0, -1, 2, 0), np.inf),
}


def reference_run(x: Any, w: Any, b: Any, dy: Any, case: Case) -> dict[str, np.ndarray]:
    y, ctx = REFERENCE.forward(x, w, b, **case.kwargs)
    return dict(zip(OUTPUTS, (y, *REFERENCE.backward(dy, ctx)), strict=True))


def backend_run(
    backend: impls.Backend, x: Any, w: Any, b: Any, dy: Any, case: Case
) -> dict[str, np.ndarray]:
    y, ctx = backend.forward(*(backend.to_device(a) for a in (x, w, b)), **case.kwargs)
    outputs = (y, *backend.backward(backend.to_device(dy), ctx))
    return {name: backend.to_numpy(a) for name, a in zip(OUTPUTS, outputs, strict=True)}


def inputs_with(place: str, case: Case) -> dict[str, np.ndarray]:
    """float32 x, w, b and dy, with the non-finite value of PLACES[place]."""
    x, w, b = make_inputs(case, np.float32)
    geom = impls.resolve_geometry(x.shape, w.shape, **case.kwargs)
    dy = np.random.default_rng(2).standard_normal(geom.y_shape).astype(np.float32)
    arrays = {"x": x, "w": w, "b": b, "dy": dy}
    name, index, value = PLACES[place]
    arrays[name][index] = value
    return arrays


@cache
def nonfinite_rules(place: str, case_id: str) -> dict[str, dict[str, np.ndarray]]:
    """For each output, where it is non-finite: "exact" (the reference), and for a non-finite
    weight (y, dx) or dy value (dw) the "data" and "channel" spreads too.

    "data": only where the bad value's sum multiplies real pixels (for dx: the pixels its tap
    reads); "channel": its whole channel, as when zeros (padding, or the gaps of a strided dy)
    multiply it too.
    """
    case, arrays = CASES[case_id], inputs_with(place, CASES[case_id])
    x, w, b, dy = (arrays[name] for name in ("x", "w", "b", "dy"))
    rules = {
        name: {"exact": ~np.isfinite(a)} for name, a in reference_run(x, w, b, dy, case).items()
    }
    bad_w, bad_dy = ~np.isfinite(w), ~np.isfinite(dy)
    # counts of the products of real pixels (padding counts for nothing) with bad values
    ones_x, zeros_b = np.ones_like(x), np.zeros_like(b)
    if bad_w.any():
        reach = reference_run(ones_x, bad_w.astype(w.dtype), zeros_b, np.ones_like(dy), case)
        rules["y"]["data"] = reach["y"] > 0
        rules["y"]["channel"] = np.broadcast_to(bad_w.any(axis=(0, 1, 2)), reach["y"].shape)
        rules["dx"]["data"] = reach["dx"] > 0
        rules["dx"]["channel"] = np.broadcast_to(bad_w.any(axis=(0, 1, 3)), x.shape)
    if bad_dy.any():
        reach = reference_run(ones_x, np.zeros_like(w), zeros_b, bad_dy.astype(dy.dtype), case)
        rules["dw"]["data"] = reach["dw"] > 0
        rules["dw"]["channel"] = np.broadcast_to(bad_dy.any(axis=(0, 1, 2)), w.shape)
    return rules


def nonfinite_bounds(
    place: str, case_id: str, spread: Mapping[str, str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(at least, at most): where each output is non-finite for a backend with this spread.

    A non-finite x or dy spoils exactly what the reference's sums carry it into; a weight or
    dy value that spreads by convention spoils its "data" or "channel" outputs, or anything
    between the two for "either".
    """
    bounds = {}
    for name, rule in nonfinite_rules(place, case_id).items():
        if "data" not in rule:
            bounds[name] = (rule["exact"], rule["exact"])
        elif spread[name] == "either":
            bounds[name] = (rule["data"], rule["channel"])
        else:
            bounds[name] = (rule[spread[name]], rule[spread[name]])
    return bounds


#: numpy's warnings for arithmetic on NaN and infinity, which these tests do on purpose
ARITHMETIC_ON_NONFINITE = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)


@ARITHMETIC_ON_NONFINITE
@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("place", PLACES)
def test_nonfinite_values_spread_as_declared(backend_name: str, place: str, case_id: str) -> None:
    backend = usable_backend(backend_name)
    if reason := declines(backend, CASES[case_id], np.float32):
        pytest.skip(f"{backend_name} declines {case_id}: {reason}")
    arrays = inputs_with(place, CASES[case_id])
    got = backend_run(backend, *(arrays[n] for n in ("x", "w", "b", "dy")), CASES[case_id])
    for name, (at_least, at_most) in nonfinite_bounds(
        place, case_id, backend.nonfinite_spread
    ).items():
        nonfinite = ~np.isfinite(got[name])
        assert not (at_least & ~nonfinite).any(), (
            f"{backend_name} {name} finite at {np.argwhere(at_least & ~nonfinite)[0].tolist()}"
        )
        assert not (nonfinite & ~at_most).any(), (
            f"{backend_name} {name} not finite at {np.argwhere(nonfinite & ~at_most)[0].tolist()}"
        )


@ARITHMETIC_ON_NONFINITE
@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("place", PLACES)
def test_the_spread_rules_describe_the_reference(place: str, case_id: str) -> None:
    rules = nonfinite_rules(place, case_id)
    for name, (at_least, at_most) in nonfinite_bounds(
        place, case_id, REFERENCE.nonfinite_spread
    ).items():
        np.testing.assert_array_equal(at_least, at_most)
        np.testing.assert_array_equal(at_least, rules[name]["exact"], err_msg=name)


#: factors for x, w and dy: the large one is a fraction of the dtype's largest value, and the
#: others keep every true sum and partial sum well inside it
LARGE = {
    "x": {"x": 1 / 30, "w": 0.1, "dy": 0.01},
    "w": {"x": 0.1, "w": 1 / 30, "dy": 0.01},
    "dy": {"x": 0.01, "w": 0.1, "dy": 1 / 300},
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("which", LARGE)
def test_large_finite_inputs_give_finite_right_results(
    backend_name: str, which: str, dtype: Any
) -> None:
    backend = usable_backend(backend_name)
    case = Case("3x3-same-cin2", (2, 9, 10, 2), (3, 3, 2, 3), padding="SAME")
    if reason := declines(backend, case, dtype):
        pytest.skip(f"{backend_name} declines {case.id}: {reason}")
    x, w, b = make_inputs(case, dtype)
    dy = np.random.default_rng(2).standard_normal((2, 9, 10, 3)).astype(dtype)
    factors = {
        name: f * float(np.finfo(dtype).max) if name == which else f
        for name, f in LARGE[which].items()
    }
    x, w, dy = ((a * factors[name]).astype(dtype) for name, a in (("x", x), ("w", w), ("dy", dy)))
    expected = reference_run(x, w, b, dy, case)
    assert all(np.isfinite(a).all() for a in expected.values()), "the test's sums must fit"
    # nothing overflows on the way to a result that fits, so numpy has nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = backend_run(backend, x, w, b, dy, case)
    for name in OUTPUTS:
        assert_close(got[name], expected[name], dtype, f"{backend_name} {name}, large {which}")

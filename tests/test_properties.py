"""Property-based conformance: random shapes and arguments, every backend against the reference.

Draws are derandomized unless HYPOTHESIS_PROFILE=explore (see tests/conftest.py), so a failure
seen once is seen on every run; the explicit examples pin the edge classes down whatever is
drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import impls
from tests import oracle
from tests.support import (
    DTYPES,
    Case,
    assert_close,
    declines,
    make_inputs,
    run_backend,
    usable_backend,
)

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis not installed (pip install -e .[dev])"
)
st = hypothesis.strategies

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))
paddings = st.one_of(
    st.sampled_from(["VALID", "SAME", "same"]),
    st.integers(0, 2),
    st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),
)


def _random_case(draw: Any) -> Case:
    """A random convolution, its output possibly empty: what both strategies below filter."""
    c_in = draw(st.integers(1, 4))
    case = Case(
        "random",
        x_shape=(draw(st.integers(1, 3)), draw(st.integers(1, 11)), draw(st.integers(1, 11)), c_in),
        w_shape=(draw(st.integers(1, 5)), draw(st.integers(1, 5)), c_in, draw(st.integers(1, 4))),
        stride=draw(st.one_of(st.integers(1, 3), pairs)),
        padding=draw(paddings),
        dilation=draw(st.one_of(st.integers(1, 2), pairs)),
    )
    return case


@st.composite
def cases(draw: Any) -> Case:
    """A random convolution with a non-empty output."""
    case = _random_case(draw)
    try:
        impls.resolve_geometry(case.x_shape, case.w_shape, **case.kwargs)
    except ValueError:
        hypothesis.assume(False)
    return case


@st.composite
def common_cases(draw: Any) -> Case:
    """A random 3x3, stride-1 convolution: the most common layer, and all Winograd handles."""
    c_in = draw(st.integers(1, 4))
    return Case(
        "random-3x3-s1",
        x_shape=(draw(st.integers(1, 3)), draw(st.integers(3, 11)), draw(st.integers(3, 11)), c_in),
        w_shape=(3, 3, c_in, draw(st.integers(1, 4))),
        padding=draw(paddings),
    )


#: the edge classes every run tries, whatever hypothesis draws
EDGE_CASES = [
    # SAME with an odd total in both axes: the extra pixel after (bottom, right)
    Case("same-odd-total", (1, 6, 7, 2), (2, 4, 2, 3), padding="SAME"),
    # a width leftover under the stride: the last input column is never read
    Case("width-leftover", (2, 5, 10, 2), (3, 3, 2, 2), stride=3),
    # a stride pair with sh != sw, a dilation pair too, and SAME on top
    Case("sh-ne-sw", (1, 8, 8, 2), (3, 2, 2, 3), stride=(1, 2), dilation=(2, 1), padding="SAME"),
    # 3x3 at stride 1 with lopsided padding: Winograd takes it
    Case("3x3-lopsided", (1, 7, 6, 2), (3, 3, 2, 2), padding=((0, 1), (2, 0))),
]


def with_edge_cases(test: Any, **fixed: Any) -> Any:
    """``test`` with each of EDGE_CASES as an explicit hypothesis example."""
    for case in EDGE_CASES:
        test = hypothesis.example(case=case, **fixed)(test)
    return test


def test_random_configurations_match_reference(backend_name: str) -> None:
    backend = usable_backend(backend_name)
    simulated = getattr(backend, "simulated", lambda: False)()
    reference = impls.get_backend("reference")

    @hypothesis.settings(
        max_examples=6 if simulated else 40,
        deadline=None,
        suppress_health_check=[hypothesis.HealthCheck.filter_too_much],
    )
    @hypothesis.given(
        case=st.one_of(cases(), common_cases()),
        dtype=st.sampled_from(DTYPES),
        seed=st.integers(0, 2**16),
    )
    def check(case: Case, dtype: Any, seed: int) -> None:
        hypothesis.assume(declines(backend, case, dtype) is None)
        x, w, b = make_inputs(case, dtype, seed=seed)
        expected = run_backend(reference, x, w, b, dy_seed=seed + 1, **case.kwargs)
        actual = run_backend(backend, x, w, b, dy_seed=seed + 1, **case.kwargs)
        for name, got, want in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
            assert_close(got, want, dtype, f"{backend_name} {name} on {case}")

    with_edge_cases(check, dtype=np.float32, seed=0)()


@st.composite
def raw_cases(draw: Any) -> Case:
    """A random convolution whose output the oracle, not impls, finds non-empty."""
    case = _random_case(draw)
    hypothesis.assume(min(oracle.output_hw(case.x_shape, case.w_shape, **case.kwargs)) >= 1)
    return case


def test_geometry_matches_the_independent_oracle() -> None:
    """Output size and padding split from impls, and from first principles in tests/oracle.py;
    impls must accept every convolution the oracle finds non-empty."""

    @hypothesis.settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[hypothesis.HealthCheck.filter_too_much],
    )
    @hypothesis.given(case=raw_cases())
    def check(case: Case) -> None:
        geom = impls.resolve_geometry(case.x_shape, case.w_shape, **case.kwargs)
        hw, k = case.x_shape[1:3], case.w_shape[:2]
        assert (geom.out_h, geom.out_w) == oracle.output_hw(
            case.x_shape, case.w_shape, **case.kwargs
        )
        assert geom.pad == oracle.padding_split(case.padding, hw, k, case.stride, case.dilation)
        assert (geom.stride, geom.dilation) == (
            oracle.pair(case.stride),
            oracle.pair(case.dilation),
        )
        assert geom.y_shape == (case.x_shape[0], geom.out_h, geom.out_w, case.w_shape[3])

    with_edge_cases(check)()

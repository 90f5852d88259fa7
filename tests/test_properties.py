"""Property-based conformance: random shapes and arguments, every backend against the reference."""

from __future__ import annotations

from typing import Any

import pytest

import impls
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


@st.composite
def cases(draw: Any) -> Case:
    """A random convolution with a non-empty output."""
    c_in = draw(st.integers(1, 4))
    case = Case(
        "random",
        x_shape=(draw(st.integers(1, 3)), draw(st.integers(1, 11)), draw(st.integers(1, 11)), c_in),
        w_shape=(draw(st.integers(1, 5)), draw(st.integers(1, 5)), c_in, draw(st.integers(1, 4))),
        stride=draw(st.one_of(st.integers(1, 3), pairs)),
        padding=draw(paddings),
        dilation=draw(st.one_of(st.integers(1, 2), pairs)),
    )
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


def test_random_configurations_match_reference(backend_name: str) -> None:
    backend = usable_backend(backend_name)
    simulated = getattr(backend, "simulated", lambda: False)()
    reference = impls.get_backend("reference")

    @hypothesis.settings(
        max_examples=6 if simulated else 40,
        deadline=None,
        database=None,
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

    check()


def test_output_shape_matches_the_geometry() -> None:
    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(case=cases())
    def check(case: Case) -> None:
        geom = impls.resolve_geometry(case.x_shape, case.w_shape, **case.kwargs)
        (top, bottom), (left, right) = geom.pad
        span_h = (geom.kh - 1) * geom.dilation[0] + 1
        assert geom.out_h == (geom.h + top + bottom - span_h) // geom.stride[0] + 1
        assert geom.out_h >= 1
        assert geom.out_w >= 1
        if str(case.padding).upper() == "SAME":
            assert geom.out_h == -(-geom.h // geom.stride[0])
            assert geom.out_w == -(-geom.w // geom.stride[1])
            assert 0 <= bottom - top <= 1
            assert 0 <= right - left <= 1

    check()

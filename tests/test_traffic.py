"""The traffic model behind arithmetic intensity: its default from the geometry, and overrides."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import impls
from impls import TRAFFIC_PASSES

#: N=2, 5x6 input, 3 -> 4 channels, 3x3 SAME, stride 1: y is (2, 5, 6, 4)
GEOM = impls.resolve_geometry((2, 5, 6, 3), (3, 3, 3, 4), padding="SAME")
X_ITEMS, W_ITEMS, Y_ITEMS, B_ITEMS = 2 * 5 * 6 * 3, 3 * 3 * 3 * 4, 2 * 5 * 6 * 4, 4
#: the im2col matrix: (N * OH * OW, kh * kw * C_in)
COLS_ITEMS = (2 * 5 * 6) * (3 * 3 * 3)


class NoColumns(impls.Backend):
    name = "no_columns"


class Columns(impls.Backend):
    name = "columns"
    column_buffer: ClassVar[bool] = True


class Stated(impls.Backend):
    name = "stated"

    def traffic_bytes(
        self, geom: impls.ConvGeometry, pass_: str, dtype: object = np.float32
    ) -> int:
        return 1234


@pytest.mark.parametrize(("dtype", "itemsize"), [(np.float32, 4), (np.float64, 8)])
def test_the_default_reads_each_input_and_writes_each_output_once(
    dtype: type, itemsize: int
) -> None:
    backend = NoColumns()
    forward = (X_ITEMS + W_ITEMS + B_ITEMS + Y_ITEMS) * itemsize  # x, w, b in; y out
    backward = (X_ITEMS + W_ITEMS + Y_ITEMS + X_ITEMS + W_ITEMS + B_ITEMS) * itemsize  # x, w, dy
    assert backend.traffic_bytes(GEOM, "forward", dtype) == forward
    assert backend.traffic_bytes(GEOM, "backward", dtype) == backward
    assert backend.traffic_bytes(GEOM, "step", dtype) == forward + backward


def test_a_column_buffer_adds_the_im2col_matrix_twice_forward_three_times_backward() -> None:
    plain, columns = NoColumns(), Columns()
    cols = COLS_ITEMS * 4
    for pass_, trips in (("forward", 2), ("backward", 3), ("step", 5)):
        assert columns.traffic_bytes(GEOM, pass_) == plain.traffic_bytes(GEOM, pass_) + trips * cols


def test_a_backend_states_its_own_traffic_by_overriding() -> None:
    assert Stated().traffic_bytes(GEOM, "forward") == 1234


def test_an_unknown_pass_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"Unknown pass 'transfer'"):
        NoColumns().traffic_bytes(GEOM, "transfer")


def test_the_seeds_that_build_the_full_column_matrix_declare_it() -> None:
    declared = {n for n in impls.backend_names() if impls.get_backend(n).column_buffer}
    assert {"naive_loop", "batched_im2col", "numba_loop", "torch_unfold"} <= declared
    assert not declared & {"tiled_im2col", "indirect_im2col", "numba_direct", "winograd", "mec"}


def test_every_backend_moves_at_least_its_arrays_once(backend_name: str) -> None:
    backend = impls.get_backend(backend_name)
    for pass_ in TRAFFIC_PASSES:
        assert backend.traffic_bytes(GEOM, pass_) >= NoColumns().traffic_bytes(GEOM, pass_)

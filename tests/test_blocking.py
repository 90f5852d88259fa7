"""Our blocked backends are right across their size thresholds: tiles, chunks, blocks, workers.

The conformance grid's shapes are small, so a register tile or a chunk there is always the
first and last one. Each backend declares its thresholds (``Backend.size_thresholds``): the
cases here run every backend that declares any, with the constants Python reads at each call
shrunk to the declared values, as they are and with every call split over three workers, and
a test fails when no case crosses a declared threshold with a remainder. The shapes derive
from the constants numba compiles in (tile rows, lanes, chunks), so they follow a change.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import impls
from impls import _parallel
from impls._tiles import OUTER_ROWS, tile_lanes
from impls.winograd import CHANNEL_BLOCK
from tests.support import DTYPES, Case, assert_close, declines, make_inputs, run_backend

REFERENCE = impls.get_backend("reference")
#: more channels than the widest float64 or float32 tile row, with a leftover
LANES = max(tile_lanes(np.float32), tile_lanes(np.float64)) + 5
CASES = [
    # 2 x 17 x 19 outputs: tiles of ROWS and dw items of DW_PIXELS with leftovers; 2 x 5 x 5
    # Winograd tiles, more than a chunk
    Case(
        "tiles-and-chunks",
        (2, 17, 19, 2 * OUTER_ROWS + 3),
        (3, 3, 2 * OUTER_ROWS + 3, LANES),
        padding="SAME",
    ),
    # more input channels than a Winograd transform block
    Case(
        "channel-blocks", (2, 13, 14, CHANNEL_BLOCK + 6), (3, 3, CHANNEL_BLOCK + 6, 20), padding=1
    ),
    # dx in stride phases, dilated, lopsided padding
    Case(
        "strided-dilated",
        (2, 17, 19, 9),
        (3, 2, 9, LANES),
        stride=(2, 3),
        dilation=(2, 1),
        padding=((1, 2), (0, 1)),
    ),
    # a 1x1 kernel: the column matrix is x itself, then subsampled by the stride
    Case("1x1", (2, 9, 10, OUTER_ROWS + 1), (1, 1, OUTER_ROWS + 1, LANES)),
    Case("1x1-stride2", (2, 9, 10, 8), (1, 1, 8, LANES), stride=2),
    # more images than workers, and 70 output channels: whole tile rows and a partial last
    # one at every vector width
    Case("images-70-channels", (5, 7, 9, 6), (3, 3, 6, 70), stride=(1, 2), padding="SAME"),
]
MODES = ["as-is", "every-call-split"]


def declaring() -> list[str]:
    """The backends that declare size thresholds."""
    return [n for n in impls.backend_names() if impls.get_backend(n).size_thresholds]


@contextmanager
def sizes(backend: impls.Backend, mode: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The backend's declared constants shrunk; in "every-call-split", three workers that
    take work however small, whatever the machine."""
    with monkeypatch.context() as patch:
        for threshold in backend.size_thresholds:
            if threshold.constant is not None:
                module, _, name = threshold.constant.partition(":")
                patch.setattr(importlib.import_module(module), name, threshold.shrunk)
        if mode == "every-call-split":
            patch.setattr(_parallel, "MIN_MACS_PER_WORKER", 1)
            # every module's worker_count() asks this object
            patch.setattr(_parallel._SERIAL_BLAS, "threads", lambda: 3)
        yield


@pytest.mark.parametrize("backend_name", declaring())
def test_every_declared_threshold_is_crossed(
    backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = impls.get_backend(backend_name)
    crossed = set()
    for mode in MODES:
        with sizes(backend, mode, monkeypatch):
            for case in CASES:
                geom = impls.resolve_geometry(case.x_shape, case.w_shape, **case.kwargs)
                for dtype in map(np.dtype, DTYPES):
                    if declines(backend, case, dtype) is None:
                        thresholds = backend.size_thresholds
                        crossed |= {t.what for t in thresholds if t.crossed(geom, dtype)}
    missing = [t.what for t in backend.size_thresholds if t.what not in crossed]
    assert not missing, f"no case crosses {backend_name}'s {missing}: add one to CASES"


def test_a_declared_constant_exists_and_is_shrunk() -> None:
    for name in declaring():
        for threshold in impls.get_backend(name).size_thresholds:
            if threshold.constant is None:
                continue
            module, _, attr = threshold.constant.partition(":")
            value = getattr(importlib.import_module(module), attr)
            assert threshold.shrunk is not None, threshold
            assert 0 < threshold.shrunk < value, threshold


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("backend_name", declaring())
def test_blocked_backends_match_the_reference(
    backend_name: str, shape: Case, dtype: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = impls.get_backend(backend_name)
    if reason := declines(backend, shape, dtype):
        pytest.skip(f"{backend_name} declines {shape.id}: {reason}")
    x, w, b = make_inputs(shape, dtype)
    expected = run_backend(REFERENCE, x, w, b, dy_seed=1, **shape.kwargs)
    with sizes(backend, mode, monkeypatch):
        actual = run_backend(backend, x, w, b, dy_seed=1, **shape.kwargs)
    for name, got, want in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
        assert_close(got, want, dtype, f"{backend_name} {name} on {shape.id}")


@pytest.mark.parametrize(
    ("count", "block", "crossed"),
    [(10, 4, True), (5, 4, True), (8, 4, False), (4, 4, False), (3, 4, False), (1, 1, False)],
)
def test_partial_means_more_than_one_block_and_the_last_one_cut(
    count: int, block: int, crossed: bool
) -> None:
    assert impls.SizeThreshold.partial(count, block) is crossed

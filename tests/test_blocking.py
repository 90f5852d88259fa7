"""Our blocked backends are right across their size thresholds: tiles, chunks, blocks, workers.

The conformance grid's shapes are small, so a register tile or a chunk there is always the
first and last one. These cases cross every threshold of the blocked backends (derived from
their constants, so they follow a change of them): more channels than a register tile's
lanes and a transform's channel block, more pixels than a tile's rows and a dw work item,
more Winograd tiles than a chunk, leftovers past each of them, and every call split over
workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import impls
from impls import _parallel
from impls._tiles import OUTER_ROWS, ROWS, tile_lanes
from impls.indirect_im2col import DW_PIXELS
from impls.winograd import CHANNEL_BLOCK, CHUNK_TILES
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
]


def test_the_cases_cross_the_thresholds() -> None:
    geom = impls.resolve_geometry(CASES[0].x_shape, CASES[0].w_shape, **CASES[0].kwargs)
    assert geom.out_h * geom.out_w > DW_PIXELS
    assert (geom.out_h * geom.out_w) % ROWS
    assert geom.n * -(-geom.out_h // 4) * -(-geom.out_w // 4) > CHUNK_TILES
    assert CASES[1].x_shape[3] > CHANNEL_BLOCK


def ours() -> list[str]:
    """Our backends: the ones with tiles, chunks and workers."""
    return [n for n in impls.backend_names() if impls.get_backend(n).role == "ours"]


@pytest.mark.parametrize("split", [False, True], ids=["as-is", "every-call-split"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("backend_name", ours())
def test_blocked_backends_match_the_reference(
    backend_name: str, shape: Case, dtype: Any, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = impls.get_backend(backend_name)
    if reason := declines(backend, shape, dtype):
        pytest.skip(f"{backend_name} declines {shape.id}: {reason}")
    if split:
        # three workers whatever the machine, each taking work however small
        monkeypatch.setattr(_parallel, "MIN_MACS_PER_WORKER", 1)
        monkeypatch.setattr(_parallel, "worker_count", lambda: 3)
    x, w, b = make_inputs(shape, dtype)
    expected = run_backend(REFERENCE, x, w, b, dy_seed=1, **shape.kwargs)
    actual = run_backend(backend, x, w, b, dy_seed=1, **shape.kwargs)
    for name, got, want in zip(("y", "dx", "dw", "db"), actual, expected, strict=True):
        assert_close(got, want, dtype, f"{backend_name} {name} on {shape.id}")

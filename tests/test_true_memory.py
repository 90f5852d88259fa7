"""True memory: the resident high-water mark of a forward + backward, whoever allocates."""

from __future__ import annotations

import mmap
from dataclasses import replace
from typing import Any

import pytest

import impls
from benchmarks import memory
from benchmarks.matrix import Conv

pytestmark = pytest.mark.skipif(not memory.supported()[0], reason=memory.supported()[1])

MIB = 2**20
SMALL = Conv("default", n=2, size=32, c_in=16, c_out=16, k=3)


class OutsideNumpy(impls.Backend):
    """The reference, plus a 24 MiB scratch from an anonymous mapping once the gradients exist:
    no numpy, no malloc, so tracemalloc never sees it (nor numba's or torch's allocators)."""

    name = "outside_numpy"

    def _forward(self, x: Any, w: Any, b: Any, geom: impls.ConvGeometry) -> tuple[Any, Any]:
        return impls.get_backend("reference")._forward(x, w, b, geom)

    def _backward(self, dy: Any, saved: Any, geom: impls.ConvGeometry) -> tuple[Any, Any, Any]:
        grads = impls.get_backend("reference")._backward(dy, saved, geom)
        scratch = mmap.mmap(-1, 24 * MIB)
        for page in range(0, 24 * MIB, mmap.PAGESIZE):
            scratch[page] = 1  # touch every page
        scratch.close()
        return grads


def test_memory_outside_numpy_is_seen_and_inputs_are_not_counted() -> None:
    (row,) = memory.measure_in_process(OutsideNumpy(), [SMALL], threads=1)
    assert row["conv"] == SMALL.id
    # the scratch, and at most 2 MiB of the reference's own buffers
    assert 24 * MIB <= row["peak_extra_bytes"] <= 26 * MIB
    assert row["outputs_bytes"] == memory.output_bytes(SMALL)


def test_a_child_process_measures_a_real_backend_at_each_size() -> None:
    bigger = Conv("default", n=2, size=48, c_in=16, c_out=16, k=3)
    results = memory.measure(impls.get_backend("batched_im2col"), [bigger, SMALL], threads=1)
    for conv in (SMALL, bigger):
        row = results[conv.id]
        # batched_im2col builds the whole column matrix
        assert row["peak_extra_bytes"] >= conv.geometry().cols_bytes(4)
        assert row["memory_method"] == memory.METHOD
    assert results[bigger.id]["peak_extra_bytes"] > results[SMALL.id]["peak_extra_bytes"]


def test_a_child_that_fails_says_why_for_every_size() -> None:
    # the child imports this module, but the backend is in no registry there
    results = memory.measure(OutsideNumpy(), [SMALL, replace(SMALL, size=40)], threads=1)
    assert len(results) == 2
    for row in results.values():
        assert "Unknown backend 'outside_numpy'" in row["memory_error"]

"""Inputs changed in place between forward and backward: forward-time gradients, or a ValueError."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import impls
from impls._fingerprint import fingerprint
from tests.support import Case, assert_close, declines, make_inputs, overwrite, usable_backend

CASE = Case("inplace", (2, 7, 6, 3), (3, 3, 3, 4), padding="SAME")
REFERENCE = impls.get_backend("reference")
CHANGES = {
    "x": lambda x, w: (x + 1, w),
    "w": lambda x, w: (x, 2 * w),
    "x-and-w": lambda x, w: (-x, w + 1),
    # the same values again: nothing to refuse
    "rewritten-unchanged": lambda x, w: (x, w),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_backward_after_an_in_place_change(backend_name: str, change: Any) -> None:
    """Gradients of the values forward saw, or a ValueError naming the changed input."""
    backend = usable_backend(backend_name)
    if reason := declines(backend, CASE, np.float64):
        pytest.skip(f"{backend_name} declines {CASE.id}: {reason}")
    x, w, b = make_inputs(CASE, np.float64)
    dy = np.random.default_rng(1).standard_normal((2, 7, 6, 4))
    _, ref_ctx = REFERENCE.forward(x, w, b, **CASE.kwargs)
    expected = REFERENCE.backward(dy, ref_ctx)
    x_dev, w_dev, b_dev = (backend.to_device(a.copy()) for a in (x, w, b))
    _, ctx = backend.forward(x_dev, w_dev, b_dev, **CASE.kwargs)
    new_x, new_w = change(x, w)
    overwrite(x_dev, new_x)
    overwrite(w_dev, new_w)
    changed = [name for name, old, new in (("x", x, new_x), ("w", w, new_w)) if new is not old]
    if refused := set(changed) & set(backend.saved_by_reference):
        named = "|".join(refused)
        with pytest.raises(ValueError, match=f"({named}) was changed in place since forward"):
            backend.backward(backend.to_device(dy), ctx)
        return
    grads = backend.backward(backend.to_device(dy), ctx)
    for name, got, want in zip(("dx", "dw", "db"), grads, expected, strict=True):
        assert_close(backend.to_numpy(got), want, np.float64, f"{backend_name} {name}")


@pytest.mark.parametrize(
    "shape_dtype",
    [((2, 7, 6, 3), np.float32), ((3, 3, 3, 4), np.float64), ((5,), np.float32)],
    ids=["x-float32", "w-float64", "odd-length"],
)
def test_fingerprint_notices_any_single_changed_element(shape_dtype: Any) -> None:
    shape, dtype = shape_dtype
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    digest = fingerprint(a)
    for index in (0, flat.size // 2, flat.size - 1):
        for new in (np.nextafter(flat[index], np.inf), -flat[index], np.nan, 0.0):
            old = flat[index]
            flat[index] = new
            assert fingerprint(a) != digest, f"element {index} set to {new}"
            flat[index] = old
    assert fingerprint(a) == digest


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fingerprint_notices_whole_array_updates(dtype: Any) -> None:
    a = np.random.default_rng(0).standard_normal((4, 6, 6, 8)).astype(dtype)
    updates = [-a, a + 1, 2 * a, np.roll(a, 1), a[::-1], np.zeros_like(a)]
    digests = {fingerprint(a), *(fingerprint(np.ascontiguousarray(u)) for u in updates)}
    assert len(digests) == 1 + len(updates)


def test_fingerprint_notices_swapped_elements_and_reads_any_layout() -> None:
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    swapped = a.copy().reshape(-1)
    swapped[[3, 17]] = swapped[[17, 3]]
    assert fingerprint(swapped.reshape(a.shape)) != fingerprint(a)
    assert fingerprint(np.asfortranarray(a)) == fingerprint(a)
    assert fingerprint(a[:, ::2]) == fingerprint(a[:, ::2].copy())


def test_every_single_element_change_is_refused(backend_name: str) -> None:
    """A one-element change of eight different x, each refused: a digest compared by order,
    not equality, would let about half of them through."""
    backend = usable_backend(backend_name)
    if "x" not in backend.saved_by_reference or declines(backend, CASE, np.float64):
        pytest.skip(f"{backend_name} keeps no x by reference here")
    dy = backend.to_device(np.ones((2, 7, 6, 4)))
    for k in range(8):
        x, w, b = make_inputs(CASE, np.float64, seed=k)
        x_dev = backend.to_device(x.copy())
        _, ctx = backend.forward(x_dev, backend.to_device(w), backend.to_device(b), **CASE.kwargs)
        changed = x.copy()
        changed.flat[17 * k] += 0.5 + k
        overwrite(x_dev, changed)
        with pytest.raises(ValueError, match="x was changed in place since forward"):
            backend.backward(dy, ctx)

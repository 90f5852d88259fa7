"""The article's flipped-kernel dx against the reference backend's, next to each backend's dx.

The article computes dx as the convolution of the zero-padded dy with the kernel rotated by
180 degrees (its channels swapped), reusing the forward stride. That is right at stride 1;
at stride 2 dy must first be dilated (stride - 1 zeros between its entries). The numbers
go into the run's JSON, so the report states what this run's code does without running it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

import impls

#: a small layer whose stride-2 windows tile the input exactly, as the article's code requires
X_SHAPE = (2, 9, 9, 3)
W_SHAPE = (3, 3, 3, 4)
STRIDE = 2
#: the backends are checked in the dtype the benchmarks time, within the float32 tolerance
#: of the conformance tests (relative to the largest magnitude, as METRIC)
DTYPE = np.float32
TOLERANCE = 1e-4
METRIC = "max |dx - reference dx| / max |reference dx|"

Array = NDArray[np.floating]


def relative_error(actual: Array, expected: Array) -> float:
    """:data:`METRIC`: the largest error, relative to the largest magnitude."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def flipped_kernel_dx(
    dy: Array, w: Array, height: int, *, dilate: int = 1, stride: int = 1, fit: bool = False
) -> Array:
    """dx as the article computes it: dy, padded, convolved with the rotated kernel.

    Parameters
    ----------
    dy : (N, OH, OW, C_out) array
    w : (k, k, C_in, C_out) array
    height : the input's height (and width) H
    dilate : zeros between dy's entries, plus one (the stride makes it right)
    stride : the stride of the convolution with the rotated kernel (the article reuses the
        forward stride)
    fit : pad dy so the result is H x H (what one would try to make the shapes agree),
        instead of the article's k - 1 on every side

    Returns
    -------
    (N, ?, ?, C_in) array, computed by the reference backend: H x H only where ``fit``, or
    where dilate and stride make it so.
    """
    n, out_h, out_w, c_out = dy.shape
    k = w.shape[0]
    spread = np.zeros((n, (out_h - 1) * dilate + 1, (out_w - 1) * dilate + 1, c_out), dy.dtype)
    spread[:, ::dilate, ::dilate] = dy
    total = height + k - 1 - spread.shape[1] if fit else 2 * (k - 1)
    pad = (total // 2, total - total // 2)
    rotated = w[::-1, ::-1].swapaxes(2, 3)
    dx, _ = impls.get_backend("reference").forward(
        spread, rotated, None, stride=stride, padding=(pad, pad)
    )
    return np.asarray(dx)


def _inputs(stride: int, dtype: Any) -> tuple[Array, Array, Array, Array]:
    """x, w, b and a dy for a VALID layer of X_SHAPE and W_SHAPE at ``stride``."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(X_SHAPE).astype(dtype)
    w = rng.standard_normal(W_SHAPE).astype(dtype)
    b = rng.standard_normal(W_SHAPE[3]).astype(dtype)
    out = (X_SHAPE[1] - W_SHAPE[0]) // stride + 1
    dy = rng.standard_normal((X_SHAPE[0], out, out, W_SHAPE[3])).astype(dtype)
    return x, w, b, dy


def _reference_dx(x: Array, w: Array, b: Array, dy: Array, stride: int) -> Array:
    reference = impls.get_backend("reference")
    _, ctx = reference.forward(x, w, b, stride=stride, padding="VALID")
    return np.asarray(reference.backward(dy, ctx)[0])


def shortcut_errors() -> dict[str, Any]:
    """The flipped-kernel dx against the reference's, at stride 1 and 2, in float64."""
    height = X_SHAPE[1]
    found: dict[str, Any] = {}
    for stride in (1, STRIDE):
        x, w, b, dy = _inputs(stride, np.float64)
        expected = _reference_dx(x, w, b, dy, stride)
        if stride == 1:
            found["stride1_error"] = relative_error(flipped_kernel_dx(dy, w, height), expected)
            continue
        as_written = flipped_kernel_dx(dy, w, height, stride=stride)
        found["article_shape"] = list(as_written.shape)
        found["dx_shape"] = list(expected.shape)
        padded = flipped_kernel_dx(dy, w, height, fit=True)
        found["padded_error"] = relative_error(padded, expected)
        dilated = flipped_kernel_dx(dy, w, height, dilate=stride)
        found["dilated_error"] = relative_error(dilated, expected)
    return found


def backend_error(name: str) -> dict[str, Any]:
    """One backend's dx at stride 2 against the reference's: its error, or why there is none."""
    backend = impls.get_backend(name)
    reason = backend.untimed_reason() or _declined(backend)
    if reason:
        return {"backend": name, "error": None, "reason": reason}
    x, w, b, dy = _inputs(STRIDE, DTYPE)
    try:
        _, ctx = backend.forward(*(backend.to_device(a) for a in (x, w, b)), stride=STRIDE)
        dx = backend.to_numpy(backend.backward(backend.to_device(dy), ctx)[0])
    except Exception as exc:
        return {"backend": name, "error": None, "reason": f"failed: {type(exc).__name__}: {exc}"}
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    expected = _reference_dx(x64, w64, b64, dy64, STRIDE)
    return {"backend": name, "error": relative_error(dx.astype(np.float64), expected), "reason": ""}


def _declined(backend: impls.Backend) -> str | None:
    geom = impls.resolve_geometry(X_SHAPE, W_SHAPE, stride=STRIDE, padding="VALID")
    why = backend.supports(geom, DTYPE)
    return f"declined: {why}" if why else None


def dx_check(backends: Iterable[str]) -> dict[str, Any]:
    """Everything the report's dx paragraph states, for the run's JSON."""
    return {
        "x_shape": list(X_SHAPE),
        "w_shape": list(W_SHAPE),
        "stride": STRIDE,
        "padding": "VALID",
        "metric": METRIC,
        **shortcut_errors(),
        "dtype": np.dtype(DTYPE).name,
        "tolerance": TOLERANCE,
        "backends": [backend_error(name) for name in backends],
    }

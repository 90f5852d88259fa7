"""Each backend's error against the float64 reference, on the inputs its cases are timed on.

Measured once per backend and configuration, outside every timed region: the backend's y,
dx and dw in the case's dtype against the ``reference`` backend's in float64 on the same
inputs (cast up), each as the largest error relative to the largest magnitude.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import impls

from .dx_shortcut import relative_error
from .inputs import Array, case_inputs
from .matrix import Conv

#: the outputs compared, each stored as ``error_<name>`` in a benchmark's extra_info
OUTPUTS = ("y", "dx", "dw")
METRIC = "max |output - float64 reference| / max |float64 reference|"
ORACLE = "reference"


def outputs(backend: impls.Backend, conv: Conv, dtype: Any = None) -> tuple[Array, Array, Array]:
    """The backend's y, dx and dw on ``conv``'s inputs, on the host.

    Parameters
    ----------
    dtype : the dtype to compute in; ``conv.dtype`` when None

    Returns
    -------
    y : (N, OH, OW, C_out) array; dx : (N, H, W, C_in) array; dw : (k, k, C_in, C_out) array
    """
    x, w, b, dy = (a.astype(dtype or conv.dtype) for a in case_inputs(conv))
    y, ctx = backend.forward(
        *(backend.to_device(a) for a in (x, w, b)), stride=conv.stride, padding=conv.padding
    )
    dx, dw, _ = backend.backward(backend.to_device(dy), ctx)
    return tuple(np.asarray(backend.to_numpy(a)) for a in (y, dx, dw))  # type: ignore[return-value]


class Accuracy:
    """The errors measured so far, and the float64 reference outputs of the latest configuration
    (the matrix runs every backend of one configuration before the next)."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, Conv], dict[str, Any]] = {}
        self.expected: tuple[Conv, tuple[Array, Array, Array]] | None = None

    def reference(self, conv: Conv) -> tuple[Array, Array, Array]:
        """The float64 reference's y, dx and dw of ``conv``."""
        if self.expected is None or self.expected[0] != conv:
            self.expected = (conv, outputs(impls.get_backend(ORACLE), conv, np.float64))
        return self.expected[1]

    def measure(self, backend: impls.Backend, conv: Conv) -> dict[str, Any]:
        """``error_y``, ``error_dx`` and ``error_dw`` of ``backend`` on ``conv`` (with
        ``error_reason`` and None errors where the backend failed), measured once."""
        key = (backend.name, conv)
        if key not in self.errors:
            try:
                found = outputs(backend, conv)
                expected = self.reference(conv)
                self.errors[key] = {
                    f"error_{name}": relative_error(actual.astype(np.float64), want)
                    for name, actual, want in zip(OUTPUTS, found, expected, strict=True)
                }
            except Exception as exc:  # a failed check must not cost the timing
                self.errors[key] = {f"error_{name}": None for name in OUTPUTS}
                self.errors[key]["error_reason"] = f"{type(exc).__name__}: {exc}"
        return self.errors[key]

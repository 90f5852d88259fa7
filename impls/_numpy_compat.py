"""Restores the numpy alias that numba-cuda <= 0.30 overloads when it first compiles a kernel.

numpy 2.5 removed ``np.row_stack`` (an alias of ``np.vstack``); numba-cuda 0.30 registers an
overload for it at its first compile, so without it no kernel compiles at all. Import this
module before the first ``cuda.jit`` compile in any module that compiles kernels.
"""

from __future__ import annotations

import numpy as np

if not hasattr(np, "row_stack"):
    np.row_stack = np.vstack  # type: ignore[attr-defined]

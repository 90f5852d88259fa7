"""Conv-layer backends, one module per strategy, found by file name.

>>> import impls
>>> impls.backend_names()  # doctest: +SKIP
['batched_im2col', 'naive_loop', ...]
>>> backend = impls.get_backend("naive_loop")
>>> y, ctx = backend.forward(x, w, b, stride=2, padding="SAME")  # doctest: +SKIP
>>> dx, dw, db = backend.backward(dy, ctx)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from pathlib import Path

from ._base import TRAFFIC_PASSES, Backend, Context, SizeThreshold, UnavailableBackend
from ._geometry import ConvGeometry, check_dtypes, pad_input, resolve_geometry

__all__ = [
    "TRAFFIC_PASSES",
    "Backend",
    "Context",
    "ConvGeometry",
    "SizeThreshold",
    "UnavailableBackend",
    "backend_names",
    "check_dtypes",
    "get_backend",
    "pad_input",
    "resolve_geometry",
]

_HERE = Path(__file__).parent


def backend_names() -> list[str]:
    """Names of every backend module in this folder, sorted; files starting with '_' are not."""
    return sorted(p.stem for p in _HERE.glob("*.py") if not p.stem.startswith("_"))


@cache
def get_backend(name: str) -> Backend:
    """The backend called ``name``; one that fails to import comes back unavailable.

    Raises
    ------
    ValueError
        If no module of that name exists in ``impls/``.
    """
    known = backend_names()
    if name not in known:
        raise ValueError(f"Unknown backend {name!r}; known backends: {', '.join(known)}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except Exception as exc:
        return UnavailableBackend(name, f"import failed: {type(exc).__name__}: {exc}")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Backend) and cls.__module__ == module.__name__
    ]
    if len(classes) != 1:
        found = ", ".join(cls.__name__ for cls in classes) or "none"
        return UnavailableBackend(
            name, f"module must define exactly one Backend subclass, found {found}"
        )
    try:
        return classes[0]()
    except Exception as exc:
        return UnavailableBackend(name, f"constructor failed: {type(exc).__name__}: {exc}")

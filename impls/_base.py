"""The one interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike

from ._geometry import (
    ConvGeometry,
    IntOrPair,
    PaddingSpec,
    as_numpy_dtype,
    check_dtypes,
    resolve_geometry,
)


@dataclass(frozen=True)
class Context:
    """What ``forward`` hands to ``backward``: the geometry plus the backend's own saved state."""

    backend: str
    geom: ConvGeometry
    dtype: np.dtype
    saved: Any


class Backend:
    """A 2-D convolution layer computed one particular way.

    Subclasses implement ``_forward`` and ``_backward``; this class checks every argument
    first, so a backend only ever sees a valid, non-empty convolution. A subclass's
    ``name`` is its module's file stem, set automatically.

    Arrays are NHWC: x is (N, H, W, C_in), w is (kh, kw, C_in, C_out), b is (C_out,) and
    y is (N, OH, OW, C_out). The operation is cross-correlation, as in every deep-learning
    framework.
    """

    #: registry name; set from the module's file stem, never by hand
    name: ClassVar[str] = ""
    #: one line on the strategy, shown in the README and the reports
    description: ClassVar[str] = ""
    #: "cpu" or "gpu": where the arrays live between calls
    device: ClassVar[str] = "cpu"
    #: "oracle" (the reference), "seed" (the textbook strategies), "ours" or "peer" (a library)
    role: ClassVar[str] = "ours"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__module__.rpartition(".")[2]

    def available(self) -> tuple[bool, str]:
        """Whether this backend can run here, and if not, why."""
        return True, ""

    def supports(
        self,
        x_shape: tuple[int, ...],
        w_shape: tuple[int, ...],
        *,
        stride: IntOrPair = 1,
        padding: PaddingSpec = "VALID",
        dilation: IntOrPair = 1,
        dtype: DTypeLike = np.float32,
    ) -> str | None:
        """The reason this backend declines a configuration, or None when it handles it."""
        return None

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """Bytes one forward + backward allocates beyond its inputs and outputs, at most.

        The harness skips a configuration whose estimate does not fit in memory, before
        allocating anything. The default is conservative: the full im2col matrix
        (N * OH * OW, kh * kw * C_in), its gradient of the same size, and zero-padded copies
        of x and dx. A backend that builds no column buffer, or builds it in blocks, may
        return less.
        """
        rows, depth = geom.cols_shape
        padded_h, padded_w = geom.padded_hw
        padded = geom.n * padded_h * padded_w * geom.c_in
        return 2 * (rows * depth + padded) * np.dtype(dtype).itemsize

    def forward(
        self,
        x: Any,
        w: Any,
        b: Any,
        *,
        stride: IntOrPair = 1,
        padding: PaddingSpec = "VALID",
        dilation: IntOrPair = 1,
    ) -> tuple[Any, Context]:
        """Compute y = conv(x, w) + b.

        Parameters
        ----------
        x : array, shape (N, H, W, C_in)
        w : array, shape (kh, kw, C_in, C_out)
        b : array, shape (C_out,)
        stride, dilation : int or (int, int)
        padding : {"VALID", "SAME"}, int or ((top, bottom), (left, right))

        Returns
        -------
        y : array, shape (N, OH, OW, C_out), of x's dtype
        ctx : Context
            Pass it to :meth:`backward`.
        """
        geom = self.check(x, w, b, stride=stride, padding=padding, dilation=dilation)
        y, saved = self._forward(x, w, b, geom)
        return y, Context(self.name, geom, as_numpy_dtype(x.dtype), saved)

    def backward(self, dy: Any, ctx: Context) -> tuple[Any, Any, Any]:
        """Gradients of sum(y * dy), summed over the batch.

        Parameters
        ----------
        dy : array, shape (N, OH, OW, C_out)
        ctx : Context
            From this backend's :meth:`forward`.

        Returns
        -------
        dx : array, shape (N, H, W, C_in)
        dw : array, shape (kh, kw, C_in, C_out)
        db : array, shape (C_out,)
        """
        if not isinstance(ctx, Context) or ctx.backend != self.name:
            raise ValueError(f"ctx must come from {self.name}.forward")
        if tuple(dy.shape) != ctx.geom.y_shape:
            raise ValueError(f"dy has shape {tuple(dy.shape)}, but y has {ctx.geom.y_shape}")
        if as_numpy_dtype(dy.dtype) != ctx.dtype:
            raise ValueError(f"dy has dtype {as_numpy_dtype(dy.dtype)}, but y has {ctx.dtype}")
        return self._backward(dy, ctx.saved, ctx.geom)

    def check(
        self,
        x: Any,
        w: Any,
        b: Any,
        *,
        stride: IntOrPair = 1,
        padding: PaddingSpec = "VALID",
        dilation: IntOrPair = 1,
    ) -> ConvGeometry:
        """Validate the arguments of :meth:`forward` and return their geometry."""
        geom = resolve_geometry(
            tuple(x.shape), tuple(w.shape), stride=stride, padding=padding, dilation=dilation
        )
        if tuple(b.shape) != (geom.c_out,):
            raise ValueError(f"b must have shape (C_out,) = ({geom.c_out},), got {tuple(b.shape)}")
        dtype = check_dtypes(x=x, w=w, b=b)
        reason = self.supports(
            geom.x_shape,
            geom.w_shape,
            stride=stride,
            padding=padding,
            dilation=dilation,
            dtype=dtype,
        )
        if reason is not None:
            raise ValueError(f"{self.name} does not handle this configuration: {reason}")
        return geom

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Any]:
        """Return y and whatever ``_backward`` needs."""
        raise NotImplementedError

    def _backward(self, dy: Any, saved: Any, geom: ConvGeometry) -> tuple[Any, Any, Any]:
        """Return (dx, dw, db) from dy and what ``_forward`` saved."""
        raise NotImplementedError

    def to_device(self, a: np.ndarray) -> Any:
        """Move a host array to where this backend computes (the identity on CPU)."""
        return a

    def to_numpy(self, a: Any) -> np.ndarray:
        """Bring a result back to the host as a numpy array."""
        return np.asarray(a)

    def synchronize(self) -> None:
        """Wait for queued device work to finish (a no-op on CPU)."""

    def __repr__(self) -> str:
        return f"<backend {self.name!r}>"


class UnavailableBackend(Backend):
    """Stands in for a backend module that failed to import."""

    role: ClassVar[str] = "unknown"

    def __init__(self, name: str, reason: str) -> None:
        self._name = name
        self._reason = reason

    @property  # type: ignore[override]
    def name(self) -> str:  # type: ignore[override]
        return self._name

    def available(self) -> tuple[bool, str]:
        return False, self._reason

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Any]:
        raise RuntimeError(f"backend {self._name!r} is unavailable: {self._reason}")

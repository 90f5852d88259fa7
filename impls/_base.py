"""The one interface every backend implements, and the checks every call goes through."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

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

if TYPE_CHECKING:  # numba.cuda is imported only by a GPU backend's timer
    from ._cuda_events import DeviceTimer

#: (input name, the array forward got, its fingerprint then)
Guard = tuple[str, Any, Hashable]

#: the forward inputs a backend may keep by reference in ``saved``
GUARDABLE = ("x", "w")
#: how far a non-finite weight (y, dx) or dy value (dw) spreads; see Backend.nonfinite_spread
SPREADS = ("channel", "data", "either")
#: the passes whose memory traffic Backend.traffic_bytes models
TRAFFIC_PASSES = ("forward", "backward", "step")

# salts every Context's seal, so a ctx edited or built by hand (whose saved arrays may be too
# small for its geometry) cannot pass for one that forward made
_SEAL_SALT = int.from_bytes(os.urandom(8), "little")


@dataclass(frozen=True)
class Context:
    """What ``forward`` hands to ``backward``: the geometry plus the backend's own saved state.

    ``guards`` are the inputs kept by reference with their fingerprints; ``seal`` ties the
    backend, geometry, dtype and the shapes in ``saved`` together. Only forward makes one.
    """

    backend: str
    geom: ConvGeometry
    dtype: np.dtype
    saved: Any
    guards: tuple[Guard, ...] = ()
    seal: int | None = None


@dataclass(frozen=True)
class SizeThreshold:
    """A size past which a backend's code takes another path: a second block, a partial one.

    Declared in ``Backend.size_thresholds``, so that the blocking tests run the backend on
    shapes that cross it with a remainder, and fail when none of their shapes does.
    """

    #: what is cut into pieces, in a few words
    what: str
    #: (geom, dtype) -> whether a call of that shape crosses it with a remainder; it reads
    #: the module's constants and the worker count at each call, so it sees them shrunk
    crossed: Callable[[ConvGeometry, np.dtype], bool]
    #: the module constant behind it, "module:NAME", that the tests set to ``shrunk``; only
    #: for one that Python reads at each call (numba compiles its globals in as constants)
    constant: str | None = None
    #: the value the tests shrink ``constant`` to, so that small shapes cross it
    shrunk: int | None = None

    @staticmethod
    def partial(count: int, block: int) -> bool:
        """Whether ``count`` items make more than one block of ``block``, the last one partial."""
        return count > block and count % block != 0


def _layout(saved: Any) -> Any:
    """The types, shapes and dtypes in ``saved``, nested as saved is; never reads an array."""
    if isinstance(saved, (tuple, list)):
        return tuple(_layout(item) for item in saved)
    if isinstance(saved, dict):
        return tuple((key, _layout(value)) for key, value in saved.items())
    if hasattr(saved, "shape") and hasattr(saved, "dtype"):
        return type(saved), tuple(saved.shape), saved.dtype
    if saved is None or isinstance(saved, (bool, int, float, str)):
        return saved
    return type(saved)


def _seal(
    backend: str, geom: ConvGeometry, dtype: np.dtype, saved: Any, guards: tuple[Guard, ...]
) -> int:
    digests = tuple((name, digest) for name, _, digest in guards)
    return hash((_SEAL_SALT, backend, geom, dtype, _layout(saved), digests))


def _check_shapes(backend: str, results: dict[str, tuple[Any, tuple[int, ...]]]) -> None:
    """RuntimeError naming the first result whose shape is not the geometry's: a backend's
    bug, never timed or reported as a result."""
    for name, (array, expected) in results.items():
        got = tuple(getattr(array, "shape", ()))
        if got != expected:
            raise RuntimeError(f"{backend} returned {name} of shape {got}, not {expected}")


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
    #: the inputs ("x", "w") that ``saved`` may share memory with instead of copying: they are
    #: fingerprinted at forward, and backward refuses them once changed in place
    saved_by_reference: ClassVar[tuple[str, ...]] = GUARDABLE
    #: how far a non-finite weight spreads in y and dx, and a non-finite dy value in dw:
    #: "channel" where zeros (padding, or those between a strided dy's pixels) multiply it like
    #: data, 0 x NaN = NaN, so its whole channel turns non-finite; "data" where only the
    #: outputs whose sum has it times real data do; "either" where it depends on the kernel a
    #: library picks. The reference's is the default.
    nonfinite_spread: ClassVar[Mapping[str, str]] = {"y": "channel", "dx": "data", "dw": "channel"}
    #: the sizes past which the code takes another path (blocks, chunks, channel blocks, work
    #: split over workers): the blocking tests cross each with a remainder
    size_thresholds: ClassVar[tuple[SizeThreshold, ...]] = ()
    #: whether the full im2col matrix goes through memory (written, then read back by the
    #: product), which adds its bytes to the traffic model; False for a backend that builds no
    #: column matrix, or builds it in blocks that stay in cache
    column_buffer: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__module__.rpartition(".")[2]
        if not set(cls.saved_by_reference) <= set(GUARDABLE):
            raise TypeError(f"{cls.__name__}.saved_by_reference may list only {GUARDABLE}")
        if set(cls.nonfinite_spread) != {"y", "dx", "dw"} or not set(
            cls.nonfinite_spread.values()
        ) <= set(SPREADS):
            raise TypeError(
                f"{cls.__name__}.nonfinite_spread maps each of y, dx, dw to one of {SPREADS}"
            )

    def available(self) -> tuple[bool, str]:
        """Whether this backend can run here, and if not, why."""
        return True, ""

    def supports(self, geom: ConvGeometry, dtype: DTypeLike) -> str | None:
        """The reason this backend declines a configuration, or None when it handles it.

        Parameters
        ----------
        geom : ConvGeometry
            The convolution, as :func:`impls.resolve_geometry` resolved it.
        dtype : float32 or float64
        """
        return None

    def untimed_reason(self) -> str | None:
        """Why this backend is not timed here: it is unavailable (and why), or it runs on a
        simulator; None when it can be timed."""
        ok, why = self.available()
        if not ok:
            return f"unavailable: {why}"
        if self.simulated():
            return "runs on numba's CUDA simulator: correct but never timed"
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

    def traffic_bytes(self, geom: ConvGeometry, pass_: str, dtype: DTypeLike = np.float32) -> int:
        """Bytes a pass moves to and from memory, for its arithmetic intensity (FLOPs / bytes).

        The default reads every array the pass takes once and writes every array it makes
        once: forward reads x, w, b and writes y; backward reads x, w, dy and writes dx, dw,
        db; a step is both. With ``column_buffer``, forward also writes the im2col matrix and
        reads it back (twice its bytes), and backward reads it for dw and writes and reads its
        gradient for dx (three times). A backend that moves more, or less, overrides this.

        Raises
        ------
        ValueError
            For a pass other than "forward", "backward" and "step".
        """
        if pass_ not in TRAFFIC_PASSES:
            raise ValueError(f"Unknown pass {pass_!r}; traffic is modelled for {TRAFFIC_PASSES}")
        itemsize = np.dtype(dtype).itemsize
        x, w, y = (math.prod(shape) for shape in (geom.x_shape, geom.w_shape, geom.y_shape))
        arrays = {"forward": x + w + geom.c_out + y, "backward": 2 * x + 2 * w + y + geom.c_out}
        column_trips = {"forward": 2, "backward": 3}
        passes = ("forward", "backward") if pass_ == "step" else (pass_,)
        total = sum(arrays[p] for p in passes) * itemsize
        if self.column_buffer:
            total += sum(column_trips[p] for p in passes) * geom.cols_bytes(itemsize)
        return total

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
        b : array, shape (C_out,), or None for no bias
            Array-likes such as nested lists are converted as numpy converts them.
        stride, dilation : int or (int, int)
        padding : {"VALID", "SAME"}, int or ((top, bottom), (left, right))

        Returns
        -------
        y : array, shape (N, OH, OW, C_out), of x's dtype
        ctx : Context
            Pass it to :meth:`backward`; x and w must not change in place until then.

        Raises
        ------
        ValueError
            On bad arguments.
        RuntimeError
            When the backend returns a y of another shape than the geometry's (its bug).
        """
        x, w = self._take_input(x, "x"), self._take_input(w, "w")
        b = None if b is None else self._take_input(b, "b")
        geom = self.check(x, w, b, stride=stride, padding=padding, dilation=dilation)
        dtype = as_numpy_dtype(x.dtype)
        if b is None:
            b = self.to_device(np.zeros(geom.c_out, dtype))
        y, saved = self._forward(x, w, b, geom)
        _check_shapes(self.name, {"y": (y, geom.y_shape)})
        inputs = {"x": x, "w": w}
        guards = tuple(
            (name, inputs[name], self._fingerprint(inputs[name]))
            for name in self.saved_by_reference
        )
        return y, Context(
            self.name, geom, dtype, saved, guards, _seal(self.name, geom, dtype, saved, guards)
        )

    def backward(self, dy: Any, ctx: Context) -> tuple[Any, Any, Any]:
        """Gradients of sum(y * dy), summed over the batch, at the x and w forward saw.

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

        Raises
        ------
        ValueError
            On a ctx not made by this backend's forward or altered since, on a bad dy, and
            when an input this backend keeps by reference was changed in place since forward.
        RuntimeError
            When the backend returns a gradient of another shape than its input's (its bug).
        """
        if not isinstance(ctx, Context) or ctx.backend != self.name:
            raise ValueError(f"ctx must come from {self.name}.forward")
        if ctx.seal != _seal(ctx.backend, ctx.geom, ctx.dtype, ctx.saved, ctx.guards):
            raise ValueError(
                "ctx does not match its saved state: it was not made by forward, or its "
                "geometry, dtype, saved arrays or guards were replaced since"
            )
        dy = self._take_input(dy, "dy")
        if tuple(dy.shape) != ctx.geom.y_shape:
            raise ValueError(f"dy has shape {tuple(dy.shape)}, but y has {ctx.geom.y_shape}")
        if as_numpy_dtype(dy.dtype) != ctx.dtype:
            raise ValueError(f"dy has dtype {as_numpy_dtype(dy.dtype)}, but y has {ctx.dtype}")
        for name, array, digest in ctx.guards:
            if self._fingerprint(array) != digest:
                raise ValueError(
                    f"{name} was changed in place since forward, and {self.name} keeps it by "
                    f"reference: run forward again, or give forward a copy of {name}"
                )
        dx, dw, db = self._backward(dy, ctx.saved, ctx.geom)
        geom = ctx.geom
        _check_shapes(
            self.name,
            {"dx": (dx, geom.x_shape), "dw": (dw, geom.w_shape), "db": (db, (geom.c_out,))},
        )
        return dx, dw, db

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
        """Validate the arguments of :meth:`forward` (b may be None); return their geometry."""
        geom = resolve_geometry(
            tuple(x.shape), tuple(w.shape), stride=stride, padding=padding, dilation=dilation
        )
        if b is not None and tuple(b.shape) != (geom.c_out,):
            raise ValueError(f"b must have shape (C_out,) = ({geom.c_out},), got {tuple(b.shape)}")
        dtype = check_dtypes(x=x, w=w) if b is None else check_dtypes(x=x, w=w, b=b)
        reason = self.supports(geom, dtype)
        if reason is not None:
            raise ValueError(f"{self.name} does not handle this configuration: {reason}")
        return geom

    def _take_input(self, a: Any, name: str) -> Any:
        """Argument ``name`` ("x", "w", "b" or "dy") as an array this backend computes with.

        Array-likes (nested lists, anything numpy reads) become numpy arrays, as numpy's own
        functions convert them; a numpy array in non-native byte order (``>f8``) becomes a
        native-order copy. A GPU backend gets anything with a shape and a dtype (its
        device arrays) as it is: never copied to the host here. Override to take more.
        """
        if a is None:
            raise ValueError(f"{name} must be an array, got None")
        if isinstance(a, np.ndarray) and not a.dtype.isnative:
            # big-endian data (a file written on another machine): a native-order copy
            a = a.astype(a.dtype.newbyteorder("="))
        if self.device != "cpu" and hasattr(a, "shape") and hasattr(a, "dtype"):
            return a
        try:
            return np.asarray(a)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} is not an array numpy can read: {exc}") from None

    def _fingerprint(self, a: Any) -> Hashable:
        """A digest of ``a``'s contents, taken at forward and compared at backward.

        Only host (numpy) arrays are fingerprinted here; a GPU backend keeps private device
        copies instead (``saved_by_reference = ()``) or overrides this with a device digest.
        """
        if isinstance(a, np.ndarray):
            # imported here: importing numba with impls would fix numba's configuration before
            # the tests can switch on the CUDA simulator
            from ._fingerprint import fingerprint

            return fingerprint(a)
        raise TypeError(
            f"{self.name} keeps a {type(a).__name__} by reference but cannot fingerprint it: "
            "save a private copy and leave it out of saved_by_reference, or override _fingerprint"
        )

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

    def simulated(self) -> bool:
        """Whether this backend's kernels run on numba's CUDA simulator: correct, but never worth
        timing (see :meth:`untimed_reason`)."""
        return False

    def device_timer(self) -> DeviceTimer | None:
        """What times one call on the device and on the host, or None on the CPU (one clock).

        A GPU backend gets CUDA events on the default stream (:mod:`impls._cuda_events`); one
        that launches on a stream of its own, not synchronized with the default stream,
        overrides this.
        """
        if self.device != "gpu":
            return None
        from ._cuda_events import EventTimer

        return EventTimer()

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

"""numba_cuda's step is at most 3 kernel launches, and launches after the first skip numba's
dispatcher.

Launches are counted where every kernel launch goes through, whoever makes it: on numba's
CUDA simulator each ``kernel[grid, block]`` configuration, on a GPU each compiled kernel's
``launch``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from impls import numba_cuda
from tests.support import Case, make_inputs, usable_backend

#: (case, dw's K is split): the split adds the launch that sums dw's splits in a fixed order
CASES = [
    (Case("cin1-split", (1, 5, 5, 1), (3, 3, 1, 2)), True),
    (Case("s2-d2-split", (2, 9, 8, 2), (3, 3, 2, 3), stride=2, dilation=2, padding="SAME"), True),
    (Case("cin8-unsplit", (1, 4, 4, 8), (3, 3, 8, 2), padding=1), False),
]


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each kernel launched while the test runs, in order."""
    made: list[str] = []
    if numba_cuda._SIMULATED:
        from numba.cuda.simulator.kernel import FakeCUDAKernel

        configure = FakeCUDAKernel.__getitem__

        def counted(kernel: Any, config: Any) -> Any:
            made.append(kernel.py_func.__name__)
            return configure(kernel, config)

        monkeypatch.setattr(FakeCUDAKernel, "__getitem__", counted)
    else:
        from numba.cuda.dispatcher import _Kernel

        launch = _Kernel.launch

        def counted_launch(kernel: Any, *args: Any, **kwargs: Any) -> Any:
            made.append(kernel.py_func.__name__)
            return launch(kernel, *args, **kwargs)

        monkeypatch.setattr(_Kernel, "launch", counted_launch)
    return made


@pytest.mark.parametrize(("step_case", "split"), CASES, ids=[case.id for case, _ in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_step_is_at_most_three_launches(
    launches: list[str], step_case: Case, split: bool, dtype: Any
) -> None:
    case = step_case
    backend = usable_backend("numba_cuda")
    x, w, b = (backend.to_device(a) for a in make_inputs(case, dtype))
    geom = backend.check(x, w, b, **case.kwargs)
    assert (numba_cuda._backward_plan(geom, np.dtype(dtype).itemsize).splits > 1) == split
    _, ctx = backend.forward(x, w, b, **case.kwargs)
    assert launches == ["forward"]
    backend.backward(backend.to_device(np.ones(geom.y_shape, dtype)), ctx)
    assert launches == ["forward", "backward", *(["sum_splits_kernel"] if split else [])]


class _Compiled:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def launch(
        self, args: tuple[Any, ...], grid: Any, block: Any, stream: Any, shared: Any
    ) -> None:
        self.calls.append((*args, stream))


class _Kernel:
    """A dispatcher stand-in: compiles one version at its first configured launch."""

    def __init__(self) -> None:
        self.overloads: dict[Any, _Compiled] = {}
        self.dispatched = 0

    def __getitem__(self, config: Any) -> Any:
        def call(*args: Any) -> None:
            self.dispatched += 1
            self.overloads.setdefault("signature", _Compiled())

        return call


def test_launches_after_the_first_skip_the_dispatcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numba_cuda, "_COMPILED", {})
    # the stream the dispatcher would hand the compiled kernel
    monkeypatch.setattr(numba_cuda, "_default_stream", lambda: "default stream")
    kernel = _Kernel()
    for value in range(3):
        numba_cuda._launch(kernel, (1, 1, 1), (1, 1, 1), value)
    assert kernel.dispatched == 1
    assert kernel.overloads["signature"].calls == [(1, "default stream"), (2, "default stream")]


def test_the_direct_launch_takes_the_dispatchers_stream() -> None:
    """A compiled kernel launches on the cuda.core stream numba-cuda's dispatcher gives it."""
    if numba_cuda._SIMULATED:
        pytest.skip("the simulator has no compiled kernels to launch directly")
    from numba.cuda.cudadrv.driver import _to_core_stream

    assert type(numba_cuda._default_stream()) is type(_to_core_stream(0))

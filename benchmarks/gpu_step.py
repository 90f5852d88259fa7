"""A quick look at the GPU backends' times at the resnet configuration: a sanity check only.

``python3 -m benchmarks.gpu_step`` times forward, backward and forward + backward of every
available GPU backend at the resnet configuration (a ResNet stage-2 layer, float32), each
call synchronized, after an untimed warm-up (JIT compilation, cuDNN's algorithm search). The
backends take turns in blocks of ``--reps`` calls, twice over, so a drift in the GPU's
clocks shows as a difference between the two rounds. The benchmark proper is
``pytest --benchmark-only``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import impls
from impls import Backend

#: the ResNet stage-2 layer the benchmarks call the resnet configuration
X_SHAPE, W_SHAPE = (16, 56, 56, 64), (3, 3, 64, 64)
PASSES = ("forward", "backward", "step")


def calls(backend: Backend) -> dict[str, tuple[Callable[..., None], Callable[[], tuple]]]:
    """Per pass: the call to time and the untimed setup giving its arguments."""
    rng = np.random.default_rng(0)
    x, w, b = (
        backend.to_device(rng.standard_normal(shape, dtype=np.float32))
        for shape in (X_SHAPE, W_SHAPE, (W_SHAPE[3],))
    )
    y, _ = backend.forward(x, w, b, padding="SAME")
    dy = backend.to_device(rng.standard_normal(tuple(y.shape), dtype=np.float32))

    def forward() -> None:
        backend.forward(x, w, b, padding="SAME")
        backend.synchronize()

    def fresh_context() -> tuple:
        _, ctx = backend.forward(x, w, b, padding="SAME")
        backend.synchronize()
        return (ctx,)

    def backward(ctx: Any) -> None:
        backend.backward(dy, ctx)
        backend.synchronize()

    def step() -> None:
        _, ctx = backend.forward(x, w, b, padding="SAME")
        backend.backward(dy, ctx)
        backend.synchronize()

    return {
        "forward": (forward, tuple),
        "backward": (backward, fresh_context),
        "step": (step, tuple),
    }


def time_calls(target: Callable[..., None], setup: Callable[[], tuple], reps: int) -> list[float]:
    """Seconds per call, each timed alone, its setup outside the timed region."""
    seconds = []
    for _ in range(reps):
        args = setup()
        started = time.perf_counter()
        target(*args)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.gpu_step", description=__doc__)
    parser.add_argument("--reps", type=int, default=20, help="timed calls per block (default 20)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps must be >= 1, got {args.reps}")
    backends, targets = [], {}
    for name in impls.backend_names():
        backend = impls.get_backend(name)
        if backend.device != "gpu":
            continue
        ok, reason = backend.available()
        if not ok or getattr(backend, "simulated", lambda: False)():
            print(f"{name}: not timed ({reason or 'runs on the CUDA simulator'})")
            continue
        started = time.perf_counter()
        targets[name] = calls(backend)
        for target, setup in targets[name].values():
            time_calls(target, setup, 3)  # warm-up: JIT, algorithm search, allocator caches
        print(f"{name}: warm-up {time.perf_counter() - started:.1f} s")
        backends.append(name)
    if not backends:
        print("no GPU backend can run here")
        return 1
    times: dict[tuple[str, str], list[list[float]]] = {}
    for _ in range(2):
        for name in backends:
            for pass_ in PASSES:
                target, setup = targets[name][pass_]
                times.setdefault((name, pass_), []).append(time_calls(target, setup, args.reps))
    shape = f"x {X_SHAPE}, w {W_SHAPE}, SAME, float32"
    print(f"\nmedian ms (IQR) per call, rounds 1 / 2, {args.reps} calls each; {shape}")
    for name in backends:
        cells = []
        for pass_ in PASSES:
            rounds = []
            for seconds in times[(name, pass_)]:
                q1, median, q3 = np.percentile(np.array(seconds) * 1e3, [25, 50, 75])
                rounds.append(f"{median:.3f} ({q3 - q1:.3f})")
            cells.append(f"{pass_} {' / '.join(rounds)}")
        print(f"{name:>12}: " + "; ".join(cells))
    peers = [name for name in backends if impls.get_backend(name).role == "peer"]
    for peer in peers:
        for name in (n for n in backends if n not in peers):
            for pass_ in PASSES:
                ours = statistics.median(t for r in times[(name, pass_)] for t in r)
                theirs = statistics.median(t for r in times[(peer, pass_)] for t in r)
                print(f"{name} / {peer}, {pass_}: {ours / theirs:.2f}x (medians of both rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""On a real GPU: numba_cuda's kernels against cuDNN on ResNet-50 layers, right and how fast.

``python -m tests.gpu_kernel_check`` (about 2 minutes on an H200, JIT included) runs, for each
layer below at batch 128 and for every GPU backend whose name starts with ``numba_cuda``:

1. forward, dx, dw and db in float64 and float32 against ``torch_cudnn``'s in float64 (torch
   F.conv2d and autograd, channels-last), within the conformance tests' tolerances;
2. float32 times of forward, backward and forward + backward: the median over ``--reps``
   back-to-back calls after ``--warmup`` untimed ones, each call between two CUDA events on the
   default stream (device time, gaps between the call's launches included), beside the host
   time a call takes to return (launch-bound when host >= device); achieved TFLOP/s, and the
   ratio to ``torch_cudnn``'s time.

Exit status 1 when a result is wrong, 2 on a machine where the check cannot run. A quick look,
not the benchmark: ``pytest --benchmark-only`` measures with intervals.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import impls
from tests.support import TOLERANCE


@dataclass(frozen=True)
class Layer:
    """One ResNet-50 convolution (torchvision v1.5: the stride on the 3x3)."""

    id: str
    x_shape: tuple[int, int, int, int]
    w_shape: tuple[int, int, int, int]
    stride: int
    padding: int


BATCH = 128
LAYERS = [
    Layer("conv2 3x3 64->64 56px", (BATCH, 56, 56, 64), (3, 3, 64, 64), 1, 1),
    Layer("conv3 3x3 s2 128->128 56px", (BATCH, 56, 56, 128), (3, 3, 128, 128), 2, 1),
    Layer("conv4 3x3 256->256 14px", (BATCH, 14, 14, 256), (3, 3, 256, 256), 1, 1),
    Layer("conv2 1x1 64->256 56px", (BATCH, 56, 56, 64), (1, 1, 64, 256), 1, 0),
    Layer("conv3 1x1 512->128 28px", (BATCH, 28, 28, 512), (1, 1, 512, 128), 1, 0),
]
PASSES = ("forward", "backward", "step")
PEER = "torch_cudnn"


def inputs(backend: impls.Backend, layer: Layer, dtype: Any, seed: int = 0) -> tuple[Any, ...]:
    """x, w, b and dy on the backend's device; w scaled so that y stays near unit size."""
    rng = np.random.default_rng(seed)
    fan_in = layer.w_shape[0] * layer.w_shape[1] * layer.w_shape[2]
    x = rng.standard_normal(layer.x_shape).astype(dtype)
    w = (rng.standard_normal(layer.w_shape) / np.sqrt(fan_in)).astype(dtype)
    b = rng.standard_normal(layer.w_shape[3]).astype(dtype)
    geom = impls.resolve_geometry(
        layer.x_shape, layer.w_shape, stride=layer.stride, padding=layer.padding
    )
    dy = rng.standard_normal(geom.y_shape).astype(dtype)
    return tuple(backend.to_device(a) for a in (x, w, b, dy))


def results(backend: impls.Backend, layer: Layer, dtype: Any) -> dict[str, np.ndarray]:
    """y, dx, dw and db on the host."""
    x, w, b, dy = inputs(backend, layer, dtype)
    y, ctx = backend.forward(x, w, b, stride=layer.stride, padding=layer.padding)
    grads = backend.backward(dy, ctx)
    names = ("y", "dx", "dw", "db")
    return {name: backend.to_numpy(a) for name, a in zip(names, (y, *grads), strict=True)}


def worst_error(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, float]:
    """Each output's largest difference, relative to the expected array's largest magnitude."""
    return {
        name: float(np.abs(got[name] - expected[name]).max())
        / max(float(np.abs(expected[name]).max()), 1.0)
        for name in expected
    }


def pass_calls(backend: impls.Backend, layer: Layer) -> dict[str, Callable[[], Any]]:
    """Per pass, a float32 call with its arguments made once, outside any timing."""
    x, w, b, dy = inputs(backend, layer, np.float32)
    kwargs = {"stride": layer.stride, "padding": layer.padding}
    _, ctx = backend.forward(x, w, b, **kwargs)

    def forward() -> Any:
        return backend.forward(x, w, b, **kwargs)

    def backward() -> Any:
        return backend.backward(dy, ctx)

    def step() -> Any:
        _, step_ctx = backend.forward(x, w, b, **kwargs)
        return backend.backward(dy, step_ctx)

    return {"forward": forward, "backward": backward, "step": step}


def time_call(
    call: Callable[[], Any], backend: impls.Backend, warmup: int, reps: int
) -> tuple[float, float]:
    """(device seconds, host seconds) per call: medians over ``reps`` back-to-back calls."""
    from numba import cuda

    for _ in range(warmup):
        call()
    backend.synchronize()
    start, end = cuda.event(), cuda.event()
    device, host = [], []
    for _ in range(reps):
        start.record()
        began = time.perf_counter()
        call()
        host.append(time.perf_counter() - began)
        end.record()
        end.synchronize()
        device.append(start.elapsed_time(end) / 1e3)
    return statistics.median(device), statistics.median(host)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.gpu_kernel_check", description=__doc__)
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls a pass (3)")
    parser.add_argument("--reps", type=int, default=20, help="timed calls a pass (20)")
    parser.add_argument("--layers", type=int, default=len(LAYERS), help="first N layers only")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.reps < 1 or args.layers < 1:
        parser.error("--warmup, --reps and --layers must be >= 1")
    ours = [impls.get_backend(n) for n in impls.backend_names() if n.startswith("numba_cuda")]
    peer = impls.get_backend(PEER)
    for backend in [*ours, peer]:
        reason = backend.untimed_reason()
        if reason:
            parser.exit(2, f"{parser.prog}: error: {backend.name} cannot run here: {reason}\n")
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, TF32 off")
    failed = False
    for layer in LAYERS[: args.layers]:
        geom = impls.resolve_geometry(
            layer.x_shape, layer.w_shape, stride=layer.stride, padding=layer.padding
        )
        print(f"\n== {layer.id}: x {layer.x_shape}, w {layer.w_shape}, stride {layer.stride}")
        # both dtypes against cuDNN's float64 results, on the same draws
        expected = results(peer, layer, np.float64)
        for dtype in (np.float64, np.float32):
            for backend in ours:
                errors = worst_error(results(backend, layer, dtype), expected)
                wrong = [n for n, e in errors.items() if e > TOLERANCE[np.dtype(dtype)]]
                failed |= bool(wrong)
                listed = ", ".join(f"{n} {e:.1e}" for n, e in errors.items())
                verdict = f"WRONG: {', '.join(wrong)}" if wrong else "ok"
                print(f"  {backend.name} {np.dtype(dtype).name}: {verdict} ({listed})")
        flops = {
            "forward": geom.flops_forward,
            "backward": geom.flops_backward,
            "step": geom.flops_forward + geom.flops_backward,
        }
        times = {
            b.name: {
                p: time_call(c, b, args.warmup, args.reps) for p, c in pass_calls(b, layer).items()
            }
            for b in [*ours, peer]
        }
        print(
            f"  {'float32':<10} {'backend':<18} {'device ms':>10} {'host ms':>9} "
            f"{'TFLOP/s':>8} {'/ cuDNN':>8}"
        )
        for pass_ in PASSES:
            for name, by_pass in times.items():
                device, host = by_pass[pass_]
                ratio = device / times[PEER][pass_][0]
                print(
                    f"  {pass_:<10} {name:<18} {device * 1e3:>10.3f} {host * 1e3:>9.3f} "
                    f"{flops[pass_] / device / 1e12:>8.1f} {ratio:>7.2f}x"
                )
        del times
    print("\nresult:", "WRONG results above" if failed else "all results within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

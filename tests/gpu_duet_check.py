"""On a real GPU: the GPU backends of an old version, loaded beside this one's, compute the same.

``python -m tests.gpu_duet_check [OLD]`` (OLD: a commit or a checkout directory, default HEAD)
loads OLD's impls/ as :mod:`benchmarks.duet` does for ``--duet``, then for every GPU backend
(not the oracle) runs forward and backward of one ResNet-50 3x3 layer at batch 8 in float32 with
``NAME@old`` and with ``NAME``, and compares y, dx, dw and db within the conformance tests'
tolerance: both copies compile and launch their own kernels in one process. Exit status 1 when a
result differs, 2 on a machine without a real GPU.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import impls
from benchmarks import duet
from tests.support import assert_close

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    spec = argv[0] if argv else "HEAD"
    names = [
        n
        for n in impls.backend_names()
        if impls.get_backend(n).device == "gpu" and impls.get_backend(n).role != "oracle"
    ]
    runnable = [n for n in names if impls.get_backend(n).available()[0]]
    if not runnable or any(impls.get_backend(n).simulated() for n in runnable):
        print(f"no real GPU for {', '.join(names)}: nothing to check", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        registry = duet.Registry.load(duet.resolve(spec, ROOT, Path(cache)), runnable)
        print(f"old version {registry.old_root}; only in this one: {registry.missing or 'none'}")
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 56, 56, 64)).astype(np.float32)
        w = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
        b = rng.standard_normal(64).astype(np.float32)
        failed = 0
        for twin in registry.twins:
            results = []
            for backend in (registry.get_backend(twin), registry.get_backend(duet.base_name(twin))):
                y, ctx = backend.forward(*map(backend.to_device, (x, w, b)), padding="SAME")
                dy = backend.to_device(np.ones(backend.to_numpy(y).shape, np.float32))
                grads = backend.backward(dy, ctx)
                results.append([backend.to_numpy(a) for a in (y, *grads)])
            try:
                for old, new, what in zip(*results, ["y", "dx", "dw", "db"], strict=True):
                    assert_close(old, new, np.float32, f"{twin} {what}")
            except AssertionError as exc:
                failed += 1
                print(f"{twin}: differs from {duet.base_name(twin)}: {exc}")
            else:
                print(f"{twin}: y, dx, dw, db as {duet.base_name(twin)}'s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A digest of an array's contents, cheap enough to take at each forward: it shows in-place changes.

Each 64-bit word of the array (two float32 elements, or one float64), offset by its position,
goes through the splitmix64 finalizer (a bijection whose every output bit depends on every
input bit), and the results are summed modulo 2**64. A change to any single element
therefore always changes the digest, and any wider change (a rewritten buffer, a sign flip,
an optimizer step) leaves it unchanged only with a probability near 2**-64. One vectorized
pass over the array (split over the worker threads for a large one), about 0.4 ms on one core
for the 12.8 MB input of the ResNet reference shape.
Reference: Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (2014).
"""

from __future__ import annotations

import itertools
from functools import partial

import numba
import numpy as np
from numpy.typing import NDArray

#: unsigned integer type with the bit patterns of each item size
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _digest_plain(bits, start, stop):  # type: ignore[no-untyped-def]
    total = np.uint64(0)
    for i in range(start, stop):
        # an unsigned index spares numba's negative-index check, so the loop vectorizes
        z = np.uint64(bits[np.uint64(i)]) + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        total += z ^ (z >> np.uint64(31))
    return total


_digest = numba.njit(nogil=True, cache=True)(_digest_plain)


#: words a digest job takes at least: below, the array is digested on the calling thread (a
#: 1 MB array takes about 30 us, the hand-over to a worker 10-20 us)
MIN_WORDS_PER_JOB = 1 << 17


def fingerprint(a: NDArray[np.generic]) -> tuple[object, ...]:
    """(shape, dtype, digest) of ``a``'s contents, whatever its memory layout.

    The digest is a sum, so a large array is digested in ranges on the worker threads.
    """
    from ._parallel import run_jobs, worker_count

    flat = np.ascontiguousarray(a).reshape(-1)
    # whole 64-bit words where the bytes allow (two float32 per word): half the mixing
    width = 8 if flat.nbytes % 8 == 0 else flat.itemsize
    bits = flat.view(_BITS.get(width, np.uint8))
    jobs = max(1, min(worker_count(), bits.size // MIN_WORDS_PER_JOB))
    bounds = [bits.size * k // jobs for k in range(jobs + 1)]
    parts = run_jobs(
        [partial(_digest, bits, lo, hi) for lo, hi in itertools.pairwise(bounds)], blas=False
    )
    # the modulo-2**64 sum, as the ranges' own sums wrap
    return a.shape, a.dtype.str, sum(int(part) for part in parts) % (1 << 64)

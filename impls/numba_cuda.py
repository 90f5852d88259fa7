"""Implicit-GEMM convolution in numba.cuda: the im2col gather is done while loading GEMM tiles.

Forward is one register-blocked GEMM (``impls._cuda_gemm``) whose A tiles are gathered
straight from the NHWC input (out-of-range taps load zeros), with the bias added in its
epilogue: no column matrix. Backward is one launch whose blocks compute either dx or a
split-K slice of dw: dx gathers, for each input pixel, the dy windows that cover it times the
rotated weights, one stride phase (iy % sh, ix % sw) per block so that only the taps that hit
are multiplied; dw gathers x against dy, and db is the sum of the dy tiles the first row of dw
blocks stages anyway. When dw's K is split, a third launch sums the splits in a fixed order.
A step is thus at most 3 kernel launches (2 when dw is not split), plus device-to-device copies
of x and w kept for backward. No sum depends on which block finishes first: no atomics.
After a kernel's first launch, later launches skip numba's dispatcher (its argument typing
and overload lookup) and go straight to the compiled kernel.
Memory: private copies of x and w, and dw's split-K partial products (one
(kh * kw * C_in + 1) x C_out block per split, db's row included).
Reference: Chetlur et al., "cuDNN: Efficient Primitives for Deep Learning" (2014), section 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np
from numba import cuda, types
from numpy.typing import DTypeLike, NDArray

from ._base import Backend
from ._cuda_gemm import (
    GEMM_SHAPES,
    SHARED_ALIGN,
    SIMULATED,
    TILE_K,
    GemmShape,
    device_options,
    gemm_shape,
    launch_bounds,
    micro_kernel,
    micro_offsets,
    sum_splits_kernel,
    tile_pad,
)
from ._geometry import ConvGeometry

#: whether kernels run on numba's CUDA simulator (the tests patch this name)
_SIMULATED = SIMULATED

#: (x, y) threads per block of the copy kernel: x runs along memory, 32 = one warp; the
#: simulator runs one Python thread per CUDA thread, so it gets small blocks
THREADS_PER_BLOCK = (4, 4) if _SIMULATED else (32, 8)
#: threads per block of the split-K sum
FLAT_BLOCK = 16 if _SIMULATED else 256
#: most blocks a launch gets along x; grid-stride loops in the kernels cover the rest
MAX_GRID = 2 if _SIMULATED else 2**31 - 1
#: aim for about this many dw blocks (2 per SM of an H100 or H200), splitting dw's K (the
#: output pixels) when its output alone gives fewer
TARGET_DW_BLOCKS = 4 if _SIMULATED else 264


def _min_blocks() -> int:
    """Blocks of 256 threads per SM the compiler must fit (0: no bound).

    2 cap a thread at 128 registers, with 16 of an SM's 64 warps resident: the register
    tiles give each warp enough independent multiply-adds to hide the rest. Volta (sm_70)
    has no uniform registers for the values a whole warp shares, so the same code needs more
    registers there and spills at 128: 1.
    """
    if _SIMULATED:
        return 0
    return 2 if cuda.get_current_device().compute_capability >= (7, 5) else 1


@cache
def _toolkit_missing() -> str:
    """Why no kernel can be compiled for this GPU ('' when one can): NVVM and nvrtc must load.

    A driver alone runs kernels but does not compile them: numba-cuda needs the CUDA
    toolkit's NVVM and nvrtc libraries (the ``cuda`` extra brings them as wheels).
    """

    def probe(out):  # type: ignore[no-untyped-def]
        out[0] = 0

    try:
        cc = cuda.get_current_device().compute_capability
        cuda.compile_ptx(probe, (types.float32[::1],), cc=cc)
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [""])[0]
        return (
            f"cannot compile CUDA kernels ({type(exc).__name__}: {detail}); the CUDA toolkit "
            "libraries NVVM and nvrtc are needed: pip install -e '.[cuda]'"
        )
    return ""


@cuda.jit(device=True, **device_options())
def input_pixel(out, tap, stride, dilation, pad):  # type: ignore[no-untyped-def]
    """The input row (column) that output row ``out`` reads through kernel row ``tap``."""
    return out * stride + tap * dilation - pad


def _conv_args(geom: ConvGeometry) -> tuple[int, ...]:
    """The geometry as the flat int tuple the kernels unpack."""
    return (geom.kh, geom.kw, *geom.index_params, geom.out_h, geom.out_w)


@cache
def _forward_kernel(dtype: np.dtype, shape: GemmShape, min_blocks: int):  # type: ignore[no-untyped-def]
    """y (N * OH * OW, C_out) = x gathered through the kernel taps @ w + bias, one launch.

    Block (bx, by) computes rows [bx * tile_m, ...) and columns [by * tile_n, ...) of y; its K
    loop runs over the taps (ki, kj), and over C_in in TILE_K steps within each tap. Each
    step's operands are fetched from global memory into registers while the step before
    multiplies, then stored into the shared tiles.
    """
    scalar = dtype.type
    threads_n, threads = shape.threads_n, shape.threads
    micro_m, micro_n, tile_m, tile_n = shape.micro_m, shape.micro_n, shape.tile_m, shape.tile_n
    a_loads, b_loads = shape.loads(tile_m), shape.loads(tile_n)
    a_shape = (TILE_K, tile_m + tile_pad(dtype))
    b_shape = (TILE_K, tile_n + tile_pad(dtype))
    mma = micro_kernel(shape, dtype)
    row_of, col_of = micro_offsets(shape, dtype)

    @cuda.jit(device=True, **device_options())
    def fetch(x, w, conv, img, oy, ox, ki, kj, c0, a_k0, b_k0, col, a_next, b_next):  # type: ignore[no-untyped-def]
        # A: a_loads channels from c0 + a_k0 of the input pixel that output pixel (img, oy,
        # ox) reads through tap (ki, kj), zeros outside the input; B: w[ki, kj, c0 + kk, col]
        _, _, sh, sw, dil_h, dil_w, top, left, _, _ = conv
        _, h, width, c_in = x.shape
        c_out = w.shape[3]
        iy = input_pixel(oy, ki, sh, dil_h, top)
        ix = input_pixel(ox, kj, sw, dil_w, left)
        pixel_ok = img >= 0 and 0 <= iy < h and 0 <= ix < width
        for r in range(a_loads):
            a_next[r] = 0
            if pixel_ok and c0 + a_k0 + r < c_in:
                a_next[r] = x[img, iy, ix, c0 + a_k0 + r]
        for r in range(b_loads):
            kk = b_k0 + r * (threads // tile_n)
            b_next[r] = 0
            if c0 + kk < c_in and col < c_out:
                b_next[r] = w[ki, kj, c0 + kk, col]

    @cuda.jit(device=True, **device_options())
    def stage(a_tile, b_tile, a_next, b_next, a_mm, a_k0, b_nn, b_k0):  # type: ignore[no-untyped-def]
        # the fetched operands into the shared tiles: A K fastest, B N fastest
        for r in range(a_loads):
            a_tile[a_k0 + r, a_mm] = a_next[r]
        for r in range(b_loads):
            b_tile[b_k0 + r * (threads // tile_n), b_nn] = b_next[r]

    @cuda.jit(**launch_bounds(threads, min_blocks))
    def forward(x, w, bias, y, conv):  # type: ignore[no-untyped-def]
        kh, kw, _, _, _, _, _, _, out_h, out_w = conv
        c_in = x.shape[3]
        rows, c_out = y.shape
        # one declaration a line: the simulator tells shared arrays apart by source line
        # two of each tile, taking turns: a step stores into one while the step before may
        # still be reading the other, so one barrier a step suffices
        a_tile0 = cuda.shared.array(a_shape, scalar, SHARED_ALIGN)
        a_tile1 = cuda.shared.array(a_shape, scalar, SHARED_ALIGN)
        b_tile0 = cuda.shared.array(b_shape, scalar, SHARED_ALIGN)
        b_tile1 = cuda.shared.array(b_shape, scalar, SHARED_ALIGN)
        acc = cuda.local.array((micro_m, micro_n), scalar)
        a_reg = cuda.local.array(micro_m, scalar)
        b_reg = cuda.local.array(micro_n, scalar)
        a_next = cuda.local.array(a_loads, scalar)
        b_next = cuda.local.array(b_loads, scalar)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * threads_n + tx
        m0, n0 = cuda.blockIdx.x * tile_m, cuda.blockIdx.y * tile_n
        # A is staged K fastest (along C_in, contiguous in x), a_loads channels of one row a
        # thread: its output pixel is worked out once
        a_mm = tid // (TILE_K // a_loads)
        a_k0 = tid % (TILE_K // a_loads) * a_loads
        pixel = (m0 + a_mm) % (out_h * out_w)
        img = (m0 + a_mm) // (out_h * out_w) if m0 + a_mm < rows else -1
        oy, ox = pixel // out_w, pixel % out_w
        # B is staged N fastest (along C_out, contiguous in w)
        b_nn = tid % tile_n
        b_k0 = tid // tile_n
        col = n0 + b_nn
        for i in range(micro_m):
            for j in range(micro_n):
                acc[i, j] = 0
        ki, kj, c0 = 0, 0, 0
        fetch(x, w, conv, img, oy, ox, ki, kj, c0, a_k0, b_k0, col, a_next, b_next)
        for step in range(kh * kw * ((c_in + TILE_K - 1) // TILE_K)):
            if step % 2 == 0:
                stage(a_tile0, b_tile0, a_next, b_next, a_mm, a_k0, b_nn, b_k0)
            else:
                stage(a_tile1, b_tile1, a_next, b_next, a_mm, a_k0, b_nn, b_k0)
            cuda.syncthreads()
            # the next step: channels c0 + TILE_K of this tap, else the next tap's first
            c0 += TILE_K
            if c0 >= c_in:
                c0 = 0
                kj += 1
                if kj == kw:
                    kj = 0
                    ki += 1
            if ki < kh:
                fetch(x, w, conv, img, oy, ox, ki, kj, c0, a_k0, b_k0, col, a_next, b_next)
            if step % 2 == 0:
                mma(a_tile0, b_tile0, acc, a_reg, b_reg, tx, ty)
            else:
                mma(a_tile1, b_tile1, acc, a_reg, b_reg, tx, ty)
        for i in range(micro_m):
            row = m0 + row_of(i, ty)
            if row < rows:
                for j in range(micro_n):
                    out_col = n0 + col_of(j, tx)
                    if out_col < c_out:
                        y[row, out_col] = acc[i, j] + bias[out_col]

    return forward


@cache
def _dx_tile(dtype: np.dtype, shape: GemmShape):  # type: ignore[no-untyped-def]
    """A device function computing one tile of dx for the pixels of one stride phase.

    Tile (phase, mt, nt) covers the pixels (iy, ix) with iy % sh, ix % sw = the phase, in
    rows [mt * tile_m, ...) of that phase's pixels, and channels [nt * tile_n, ...). Every
    pixel of a phase reads dy through the same taps, so a block skips the taps that miss.
    """
    scalar = dtype.type
    threads_n = shape.threads_n
    micro_m, micro_n, tile_m, tile_n = shape.micro_m, shape.micro_n, shape.tile_m, shape.tile_n
    a_loads, b_loads = shape.loads(tile_m), shape.loads(tile_n)
    mma = micro_kernel(shape, dtype)
    row_of, col_of = micro_offsets(shape, dtype)

    @cuda.jit(device=True, **device_options())
    def hit(tap, phase, stride, dilation, pad):  # type: ignore[no-untyped-def]
        # output row oy reads input row iy = oy * sh + ki * dh - top: a whole oy for each of the
        # phase's rows (iy = iyp * sh + py) when sh divides py - (ki * dh - top)
        return (phase - input_pixel(0, tap, stride, dilation, pad)) % stride == 0

    @cuda.jit(device=True, **device_options())
    def hits(taps, phase, stride, dilation, pad):  # type: ignore[no-untyped-def]
        # how many of a kernel side's taps hit the phase's rows
        count = 0
        for tap in range(taps):
            if hit(tap, phase, stride, dilation, pad):
                count += 1
        return count

    @cuda.jit(device=True, **device_options())
    def next_tap(conv, py, px, ki, kj):  # type: ignore[no-untyped-def]
        # the first tap from (ki, kj) on, row by row, that hits the phase; (kh, 0) if none
        kh, kw, sh, sw, dil_h, dil_w, top, left, _, _ = conv
        while ki < kh:
            if kj == kw:
                ki, kj = ki + 1, 0
            elif hit(ki, py, sh, dil_h, top) and hit(kj, px, sw, dil_w, left):
                break
            else:
                kj += 1
        return ki, kj

    @cuda.jit(device=True, **device_options())
    def fetch(
        w, dy, conv, img, iyp, ixp, py, px, ki, kj, co0, n0, a_k0, b_nn, b_k0, a_next, b_next
    ):  # type: ignore[no-untyped-def]
        # A: dy channels co0 + a_k0... at the output pixel that phase pixel (img, iyp, ixp)
        # takes through tap (ki, kj), zeros outside dy; B: w[ki, kj, n0 + b_nn, co0 + b_k0...]
        _, _, sh, sw, dil_h, dil_w, top, left, out_h, out_w = conv
        c_in, c_out = w.shape[2], w.shape[3]
        oy = iyp + (py - input_pixel(0, ki, sh, dil_h, top)) // sh
        ox = ixp + (px - input_pixel(0, kj, sw, dil_w, left)) // sw
        pixel_ok = img >= 0 and 0 <= oy < out_h and 0 <= ox < out_w
        for r in range(a_loads):
            a_next[r] = 0
            if pixel_ok and co0 + a_k0 + r < c_out:
                a_next[r] = dy[img, oy, ox, co0 + a_k0 + r]
        for r in range(b_loads):
            b_next[r] = 0
            if n0 + b_nn < c_in and co0 + b_k0 + r < c_out:
                b_next[r] = w[ki, kj, n0 + b_nn, co0 + b_k0 + r]

    @cuda.jit(device=True, **device_options())
    def stage(a_tile, b_tile, a_next, b_next, a_mm, a_k0, b_nn, b_k0):  # type: ignore[no-untyped-def]
        # the fetched operands into the shared tiles, both K fastest
        for r in range(a_loads):
            a_tile[a_k0 + r, a_mm] = a_next[r]
        for r in range(b_loads):
            b_tile[b_k0 + r, b_nn] = b_next[r]

    @cuda.jit(device=True, **device_options())
    def dx_tile(
        w, dy, dx, conv, phase, mt, nt, a_tile0, a_tile1, b_tile0, b_tile1, acc, a_reg, b_reg
    ):  # type: ignore[no-untyped-def]
        kh, kw, sh, sw, dil_h, dil_w, top, left, _, _ = conv
        n, h, width, c_in = dx.shape
        c_out = dy.shape[3]
        py, px = phase // sw, phase % sw
        # pixels of this phase: (iy - py) / sh along H, (ix - px) / sw along W
        phase_h, phase_w = (h - py + sh - 1) // sh, (width - px + sw - 1) // sw
        rows = n * phase_h * phase_w
        # a phase can hold no pixel (W < sw): its rows are all masked, never divided by 0
        per_img, per_row = max(phase_h * phase_w, 1), max(phase_w, 1)
        a_next = cuda.local.array(a_loads, scalar)
        b_next = cuda.local.array(b_loads, scalar)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * threads_n + tx
        m0, n0 = mt * tile_m, nt * tile_n
        if m0 >= rows:
            # past a smaller phase's pixels (the grid is sized for the largest): nothing to do
            return
        # both tiles are staged K fastest (along C_out, contiguous in dy and w), a run of
        # a_loads (b_loads) channels of one row a thread: its pixel is worked out once
        a_mm = tid // (TILE_K // a_loads)
        a_k0 = tid % (TILE_K // a_loads) * a_loads
        b_nn = tid // (TILE_K // b_loads)
        b_k0 = tid % (TILE_K // b_loads) * b_loads
        row = m0 + a_mm
        pixel = row % per_img
        img = row // per_img if row < rows else -1
        iyp, ixp = pixel // per_row, pixel % per_row
        co_steps = (c_out + TILE_K - 1) // TILE_K
        for i in range(micro_m):
            for j in range(micro_n):
                acc[i, j] = 0
        ki, kj = next_tap(conv, py, px, 0, 0)
        co0 = 0
        if ki < kh:
            fetch(
                w,
                dy,
                conv,
                img,
                iyp,
                ixp,
                py,
                px,
                ki,
                kj,
                co0,
                n0,
                a_k0,
                b_nn,
                b_k0,
                a_next,
                b_next,
            )
        for step in range(hits(kh, py, sh, dil_h, top) * hits(kw, px, sw, dil_w, left) * co_steps):
            if step % 2 == 0:
                stage(a_tile0, b_tile0, a_next, b_next, a_mm, a_k0, b_nn, b_k0)
            else:
                stage(a_tile1, b_tile1, a_next, b_next, a_mm, a_k0, b_nn, b_k0)
            cuda.syncthreads()
            # the next step: channels co0 + TILE_K of this tap, else the next tap that hits
            co0 += TILE_K
            if co0 >= c_out:
                co0 = 0
                ki, kj = next_tap(conv, py, px, ki, kj + 1)
            if ki < kh:
                fetch(
                    w,
                    dy,
                    conv,
                    img,
                    iyp,
                    ixp,
                    py,
                    px,
                    ki,
                    kj,
                    co0,
                    n0,
                    a_k0,
                    b_nn,
                    b_k0,
                    a_next,
                    b_next,
                )
            if step % 2 == 0:
                mma(a_tile0, b_tile0, acc, a_reg, b_reg, tx, ty)
            else:
                mma(a_tile1, b_tile1, acc, a_reg, b_reg, tx, ty)
        for i in range(micro_m):
            row = m0 + row_of(i, ty)
            if row < rows:
                pixel = row % per_img
                img = row // per_img
                iy = (pixel // per_row) * sh + py
                ix = (pixel % per_row) * sw + px
                for j in range(micro_n):
                    c = n0 + col_of(j, tx)
                    if c < c_in:
                        dx[img, iy, ix, c] = acc[i, j]

    return dx_tile


@cache
def _dw_tile(dtype: np.dtype, shape: GemmShape):  # type: ignore[no-untyped-def]
    """A device function computing one split-K slice of one tile of dw, and of db.

    Tile (split, mt, nt) covers rows [mt * tile_m, ...) of dw as a (kh * kw * C_in, C_out)
    matrix and columns [nt * tile_n, ...), summed over the output rows (image, oy) in
    [split * rows_per_split, ...) into partials[split]; blocks with mt == 0 also sum their dy
    tiles into db, row kh * kw * C_in of partials[split].
    """
    scalar = dtype.type
    threads_n, threads = shape.threads_n, shape.threads
    micro_m, micro_n, tile_m, tile_n = shape.micro_m, shape.micro_n, shape.tile_m, shape.tile_n
    a_loads, b_loads = shape.loads(tile_m), shape.loads(tile_n)
    mma = micro_kernel(shape, dtype)
    row_of, col_of = micro_offsets(shape, dtype)

    @cuda.jit(device=True, **device_options())
    def fetch(x, dy, conv, img, oy, ox0, tap_row, ki, kj, c, a_kk0, b_kk0, col, a_next, b_next):  # type: ignore[no-untyped-def]
        # A: x at channel c of the pixels that output pixels (img, oy, ox0 + kk) read through
        # tap (ki, kj), zeros outside the input; B: dy[img, oy, ox0 + kk, col]
        kh, kw, sh, sw, dil_h, dil_w, top, left, _, out_w = conv
        _, h, width, c_in = x.shape
        c_out = dy.shape[3]
        iy = input_pixel(oy, ki, sh, dil_h, top)
        row_ok = tap_row < kh * kw * c_in and 0 <= iy < h
        for r in range(a_loads):
            kk = a_kk0 + r * (threads // tile_m)
            ix = input_pixel(ox0 + kk, kj, sw, dil_w, left)
            a_next[r] = 0
            if row_ok and ox0 + kk < out_w and 0 <= ix < width:
                a_next[r] = x[img, iy, ix, c]
        for r in range(b_loads):
            kk = b_kk0 + r * (threads // tile_n)
            b_next[r] = 0
            if ox0 + kk < out_w and col < c_out:
                b_next[r] = dy[img, oy, ox0 + kk, col]

    @cuda.jit(device=True, **device_options())
    def stage(a_tile, b_tile, a_next, b_next, a_mm, a_kk0, b_nn, b_kk0):  # type: ignore[no-untyped-def]
        # the fetched operands into the shared tiles, both M (N) fastest
        for r in range(a_loads):
            a_tile[a_kk0 + r * (threads // tile_m), a_mm] = a_next[r]
        for r in range(b_loads):
            b_tile[b_kk0 + r * (threads // tile_n), b_nn] = b_next[r]

    @cuda.jit(device=True, **device_options())
    def dw_tile(
        x,
        dy,
        partials,
        conv,
        split,
        mt,
        nt,
        rows_per_split,
        a_tile0,
        a_tile1,
        b_tile0,
        b_tile1,
        acc,
        a_reg,
        b_reg,
    ):  # type: ignore[no-untyped-def]
        kh, kw, _, _, _, _, _, _, out_h, out_w = conv
        n, _, _, c_in = x.shape
        c_out = dy.shape[3]
        taps = kh * kw * c_in
        a_next = cuda.local.array(a_loads, scalar)
        b_next = cuda.local.array(b_loads, scalar)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * threads_n + tx
        m0, n0 = mt * tile_m, nt * tile_n
        # A is staged M fastest (along C_in, contiguous in x): this thread's tap and channel
        # are fixed
        a_mm = tid % tile_m
        tap_row = m0 + a_mm
        c = tap_row % c_in
        ki = tap_row // c_in // kw
        kj = tap_row // c_in % kw
        a_kk0 = tid // tile_m
        # B is staged N fastest (along C_out, contiguous in dy)
        b_nn = tid % tile_n
        b_kk0 = tid // tile_n
        col = n0 + b_nn
        sums_db = mt == 0 and tid < tile_n
        db = scalar(0)
        for i in range(micro_m):
            for j in range(micro_n):
                acc[i, j] = 0
        begin = split * rows_per_split
        end = min(n * out_h, begin + rows_per_split)
        img, oy, ox0 = begin // out_h, begin % out_h, 0
        fetch(x, dy, conv, img, oy, ox0, tap_row, ki, kj, c, a_kk0, b_kk0, col, a_next, b_next)
        for step in range((end - begin) * ((out_w + TILE_K - 1) // TILE_K)):
            if step % 2 == 0:
                stage(a_tile0, b_tile0, a_next, b_next, a_mm, a_kk0, b_nn, b_kk0)
            else:
                stage(a_tile1, b_tile1, a_next, b_next, a_mm, a_kk0, b_nn, b_kk0)
            cuda.syncthreads()
            # the next step: pixels ox0 + TILE_K of this output row, else the next row's first
            ox0 += TILE_K
            if ox0 >= out_w:
                ox0 = 0
                oy += 1
                if oy == out_h:
                    oy = 0
                    img += 1
            if img * out_h + oy < end:
                fetch(
                    x, dy, conv, img, oy, ox0, tap_row, ki, kj, c, a_kk0, b_kk0, col, a_next, b_next
                )
            if step % 2 == 0:
                mma(a_tile0, b_tile0, acc, a_reg, b_reg, tx, ty)
                if sums_db:
                    for kk in range(TILE_K):
                        db += b_tile0[kk, b_nn]
            else:
                mma(a_tile1, b_tile1, acc, a_reg, b_reg, tx, ty)
                if sums_db:
                    for kk in range(TILE_K):
                        db += b_tile1[kk, b_nn]
        for i in range(micro_m):
            row = m0 + row_of(i, ty)
            if row < taps:
                for j in range(micro_n):
                    out_col = n0 + col_of(j, tx)
                    if out_col < c_out:
                        partials[split, row, out_col] = acc[i, j]
        if sums_db and col < c_out:
            partials[split, taps, col] = db

    return dw_tile


@cache
def _backward_kernel(dtype: np.dtype, shape: GemmShape, min_blocks: int):  # type: ignore[no-untyped-def]
    """dx, and dw and db's split-K partial products, in one launch of a 1-D grid.

    plan = (dw_blocks, dw_m_tiles, dw_n_tiles, rows_per_split, dx_m_tiles, dx_n_tiles): the
    first dw_blocks blocks (the longest ones, scheduled first) compute dw tiles, split-major;
    the rest compute dx tiles, phase-major.
    """
    scalar = dtype.type
    micro_m, micro_n, tile_m, tile_n = shape.micro_m, shape.micro_n, shape.tile_m, shape.tile_n
    a_shape = (TILE_K, tile_m + tile_pad(dtype))
    b_shape = (TILE_K, tile_n + tile_pad(dtype))
    dx_tile, dw_tile = _dx_tile(dtype, shape), _dw_tile(dtype, shape)

    @cuda.jit(**launch_bounds(shape.threads, min_blocks))
    def backward(x, w, dy, dx, partials, conv, plan):  # type: ignore[no-untyped-def]
        dw_blocks, dw_m_tiles, dw_n_tiles, rows_per_split, dx_m_tiles, dx_n_tiles = plan
        # two of each tile, taking turns, as in forward
        a_tile0 = cuda.shared.array(a_shape, scalar, SHARED_ALIGN)
        a_tile1 = cuda.shared.array(a_shape, scalar, SHARED_ALIGN)
        b_tile0 = cuda.shared.array(b_shape, scalar, SHARED_ALIGN)
        b_tile1 = cuda.shared.array(b_shape, scalar, SHARED_ALIGN)
        acc = cuda.local.array((micro_m, micro_n), scalar)
        a_reg = cuda.local.array(micro_m, scalar)
        b_reg = cuda.local.array(micro_n, scalar)
        block = cuda.blockIdx.x
        if block < dw_blocks:
            tiles = dw_m_tiles * dw_n_tiles
            split, tile = block // tiles, block % tiles
            dw_tile(
                x, dy, partials, conv, split, tile // dw_n_tiles, tile % dw_n_tiles,
                rows_per_split, a_tile0, a_tile1, b_tile0, b_tile1, acc, a_reg, b_reg,
            )  # fmt: skip
        else:
            tiles = dx_m_tiles * dx_n_tiles
            phase, tile = (block - dw_blocks) // tiles, (block - dw_blocks) % tiles
            dx_tile(
                w, dy, dx, conv, phase, tile // dx_n_tiles, tile % dx_n_tiles,
                a_tile0, a_tile1, b_tile0, b_tile1, acc, a_reg, b_reg,
            )  # fmt: skip

    return backward


@cuda.jit
def _copy4d_kernel(src, dst):  # type: ignore[no-untyped-def]
    a, b, c, d = dst.shape
    col0, row0 = cuda.grid(2)
    col_step, row_step = cuda.gridsize(2)
    for row in range(row0, a * b, row_step):
        for col in range(col0, c * d, col_step):
            dst[row // b, row % b, col // d, col % d] = src[row // b, row % b, col // d, col % d]


#: each kernel's compiled code once it has been launched through numba's dispatcher
_COMPILED: dict[Any, Any] = {}


@cache
def _default_stream() -> Any:
    """The default stream as numba-cuda's dispatcher hands it to a compiled kernel's launch (a
    cuda.core stream); None where this numba-cuda keeps it elsewhere (then every launch goes
    through the dispatcher)."""
    try:
        from numba.cuda.cudadrv.driver import _to_core_stream  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _to_core_stream(0)


def _launch(kernel: Any, grid: tuple[int, ...], block: tuple[int, ...], *args: Any) -> None:
    """Launch ``kernel`` on ``grid`` x ``block`` threads with ``args``, on the default stream.

    The first launch goes through numba's dispatcher (which types the arguments, compiles and
    launches, or is recorded by the compile check); later ones call the compiled kernel
    directly, as the dispatcher does after its overload lookup. Every kernel here gets
    arguments of one type each call (C-contiguous arrays of its dtype, Python ints), so it
    has exactly one compiled version.
    """
    compiled = _COMPILED.get(kernel)
    if compiled is not None:
        compiled.launch(args, grid, block, _default_stream(), 0)
        return
    kernel[grid, block](*args)
    overloads = getattr(kernel, "overloads", None)
    if overloads is not None and len(overloads) == 1 and _default_stream() is not None:
        _COMPILED[kernel] = next(iter(overloads.values()))


def _on_device(a: Any) -> Any:
    """A C-contiguous device array holding ``a``: moved there if it is on the host."""
    if hasattr(a, "copy_to_host"):
        device = a
    elif hasattr(a, "__cuda_array_interface__"):
        device = cuda.as_cuda_array(a)
    else:
        # native byte order: a big-endian host array is converted on its way
        return cuda.to_device(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))
    if device.is_c_contiguous():
        return device
    if device.ndim != 4:
        # a strided b (C_out items): through the host, not worth a kernel
        return cuda.to_device(np.ascontiguousarray(device.copy_to_host()))
    packed = cuda.device_array(device.shape, device.dtype)
    a_, b_, c_, d_ = device.shape
    grid = (
        min(math.ceil(c_ * d_ / THREADS_PER_BLOCK[0]), MAX_GRID),
        min(math.ceil(a_ * b_ / THREADS_PER_BLOCK[1]), 65535),
        1,
    )
    _launch(_copy4d_kernel, grid, (*THREADS_PER_BLOCK, 1), device, packed)
    return packed


def _private_copy(a: Any) -> Any:
    """A device copy of the C-contiguous device array ``a`` (device to device, no kernel)."""
    copy = cuda.device_array(a.shape, a.dtype)
    copy.copy_to_device(a)
    return copy


@dataclass(frozen=True)
class _BackwardPlan:
    """How the backward launch covers dx and dw: its grid, and dw's split of K."""

    shape: GemmShape
    #: dw's tiles along its rows (kh * kw * C_in) and columns (C_out)
    dw_m_tiles: int
    dw_n_tiles: int
    #: output rows (image, oy) each dw block sums over, and the number of such splits
    rows_per_split: int
    splits: int
    #: dx's tiles along one stride phase's pixels, and along C_in; phases = sh * sw
    dx_m_tiles: int
    dx_n_tiles: int
    phases: int

    @property
    def dw_blocks(self) -> int:
        return self.splits * self.dw_m_tiles * self.dw_n_tiles

    @property
    def blocks(self) -> int:
        return self.dw_blocks + self.phases * self.dx_m_tiles * self.dx_n_tiles

    @property
    def args(self) -> tuple[int, ...]:
        """The plan tuple the backward kernel unpacks."""
        return (
            self.dw_blocks,
            self.dw_m_tiles,
            self.dw_n_tiles,
            self.rows_per_split,
            self.dx_m_tiles,
            self.dx_n_tiles,
        )


@cache
def _backward_plan(geom: ConvGeometry, itemsize: int) -> _BackwardPlan:
    """The backward launch's layout for one geometry and item size (worked out once)."""
    # the narrow tile whatever the width: 8 x 8 sums a thread leave too few registers for
    # dx's and dw's gather state under the launch bound (ptxas spills)
    shape = GEMM_SHAPES[itemsize][0]
    dw_m_tiles = math.ceil((geom.kh * geom.kw * geom.c_in) / shape.tile_m)
    dw_n_tiles = math.ceil(geom.c_out / shape.tile_n)
    out_rows = geom.n * geom.out_h
    # split dw's K (the output rows) until its blocks alone fill the GPU once, no more: dw's
    # long blocks run in one wave, never one straggling after the rest
    splits = min(out_rows, max(1, TARGET_DW_BLOCKS // (dw_m_tiles * dw_n_tiles)))
    rows_per_split = math.ceil(out_rows / splits)
    (sh, sw) = geom.stride
    # the largest phase (0, 0) sets the tiles per phase; the others mask their extra rows
    phase_pixels = geom.n * math.ceil(geom.h / sh) * math.ceil(geom.w / sw)
    return _BackwardPlan(
        shape=shape,
        dw_m_tiles=dw_m_tiles,
        dw_n_tiles=dw_n_tiles,
        rows_per_split=rows_per_split,
        splits=math.ceil(out_rows / rows_per_split),
        dx_m_tiles=math.ceil(phase_pixels / shape.tile_m),
        dx_n_tiles=math.ceil(geom.c_in / shape.tile_n),
        phases=sh * sw,
    )


class NumbaCuda(Backend):
    #: one line on the strategy
    description: ClassVar[str] = (
        "numba.cuda implicit GEMM: im2col gathered into register-blocked shared-memory tiles, "
        "fused bias; one backward launch for dx (per stride phase), dw and db"
    )
    #: arrays stay on the GPU between calls
    device: ClassVar[str] = "gpu"
    #: a textbook strategy, written for the GPU
    role: ClassVar[str] = "seed"
    #: saved holds device copies of x and w, both private
    saved_by_reference: ClassVar[tuple[str, ...]] = ()
    #: y: a bad weight times the zeros of padded taps; dx: a block of one stride phase
    #: multiplies the weights of the taps that hit it by dy, or by zeros past dy's border, so a
    #: bad weight spoils more than the pixels it reaches, at most its channel; dw: as reference
    nonfinite_spread: ClassVar[dict[str, str]] = {"y": "channel", "dx": "either", "dw": "channel"}

    def available(self) -> tuple[bool, str]:
        if _SIMULATED:
            return True, ""
        if not cuda.is_available():
            return False, "no CUDA GPU found (the tests run this backend on numba's CUDA simulator)"
        missing = _toolkit_missing()
        if missing:
            return False, missing
        return True, ""

    def simulated(self) -> bool:
        """Whether kernels run on numba's CUDA simulator: correct, but never worth timing."""
        return bool(_SIMULATED)

    def memory_estimate(self, geom: ConvGeometry, dtype: DTypeLike = np.float32) -> int:
        """Bytes beyond inputs and outputs: copies of x and w, and dw's split-K partials."""
        itemsize = np.dtype(dtype).itemsize
        plan = _backward_plan(geom, itemsize)
        x_items, w_items = math.prod(geom.x_shape), math.prod(geom.w_shape)
        partial_items = plan.splits * (w_items + geom.c_out) if plan.splits > 1 else 0
        return (x_items + w_items + partial_items) * itemsize

    def _forward(self, x: Any, w: Any, b: Any, geom: ConvGeometry) -> tuple[Any, Any]:
        x, w, b = _on_device(x), _on_device(w), _on_device(b)
        dtype = np.dtype(x.dtype)
        shape = gemm_shape(dtype.itemsize, geom.c_out)
        rows = geom.n * geom.out_h * geom.out_w
        grid = (math.ceil(rows / shape.tile_m), math.ceil(geom.c_out / shape.tile_n), 1)
        if grid[1] > 65535:
            raise ValueError(f"C_out = {geom.c_out} is too wide for one launch")
        y_mat = cuda.device_array((rows, geom.c_out), dtype)
        kernel = _forward_kernel(dtype, shape, _min_blocks())
        _launch(kernel, grid, (*shape.block, 1), x, w, b, y_mat, _conv_args(geom))
        # private copies (device to device): x and w may be changed in place before backward
        return y_mat.reshape(*geom.y_shape), (_private_copy(x), _private_copy(w))

    def _backward(self, dy: Any, saved: Any, geom: ConvGeometry) -> tuple[Any, Any, Any]:
        x, w = saved
        dy = _on_device(dy)
        dtype = np.dtype(x.dtype)
        plan = _backward_plan(geom, dtype.itemsize)
        taps = geom.kh * geom.kw * geom.c_in
        dx = cuda.device_array(geom.x_shape, dtype)
        partials = cuda.device_array((plan.splits, taps + 1, geom.c_out), dtype)
        kernel = _backward_kernel(dtype, plan.shape, _min_blocks())
        _launch(
            kernel,
            (plan.blocks, 1, 1),
            (*plan.shape.block, 1),
            x,
            w,
            dy,
            dx,
            partials,
            _conv_args(geom),
            plan.args,
        )
        if plan.splits == 1:
            sums = partials.reshape((taps + 1) * geom.c_out)
        else:
            sums = cuda.device_array(((taps + 1) * geom.c_out,), dtype)
            grid = (min(math.ceil(sums.size / FLAT_BLOCK), MAX_GRID), 1, 1)
            flat = partials.reshape(plan.splits, sums.size)
            _launch(sum_splits_kernel, grid, (FLAT_BLOCK, 1, 1), flat, sums)
        dw = sums[: taps * geom.c_out].reshape(*geom.w_shape)
        return dx, dw, sums[taps * geom.c_out :]

    def to_device(self, a: NDArray[np.floating]) -> Any:
        # native byte order: a big-endian host array is converted on its way
        return cuda.to_device(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")))

    def to_numpy(self, a: Any) -> NDArray[np.floating]:
        if hasattr(a, "copy_to_host"):
            return a.copy_to_host()
        return np.asarray(a)

    def synchronize(self) -> None:
        cuda.synchronize()

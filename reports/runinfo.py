"""What tells two runs apart, in words: CPU and vector extensions, BLAS kernel, threads, preset.

Everything is read from the run's JSON (pytest-benchmark's ``machine_info``, with py-cpuinfo's
CPU flags, and threadpoolctl's BLAS pools); a field an older run lacks reads "not recorded".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: the BLAS libraries' names as threadpoolctl's ``internal_api`` spells them
BLAS_NAMES = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS", "accelerate": "Accelerate"}
#: AVX-512 subsets worth naming next to it (py-cpuinfo and /proc/cpuinfo spell them with or
#: without the underscore)
AVX512_EXTRAS = {"avx512vnni": "VNNI", "avx512bf16": "BF16", "avx512fp16": "FP16"}
NOT_RECORDED = "not recorded"


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def vector_extensions(flags: Iterable[str] | None) -> str:
    """The SIMD extensions that matter for BLAS kernels: ``AVX-512 (VNNI, BF16), AVX2, FMA``."""
    if not flags:
        return NOT_RECORDED
    have = {str(f).lower().replace("_", "") for f in flags}
    found = []
    if "avx512f" in have:
        extras = [name for flag, name in AVX512_EXTRAS.items() if flag in have]
        found.append("AVX-512" + (f" ({', '.join(extras)})" if extras else ""))
    found += [name for flag, name in (("avx2", "AVX2"), ("fma", "FMA")) if flag in have]
    if not found and "avx" in have:
        found.append("AVX")
    found += [name for flag, name in (("asimd", "NEON"), ("sve", "SVE"), ("sve2", "SVE2"))
              if flag in have]  # fmt: skip
    return ", ".join(found) or "no AVX or NEON"


def cpu_model(machine_info: dict[str, Any]) -> str:
    """The CPU's brand string, with family and model where the brand is vague ("AMD EPYC")."""
    cpu = _object(machine_info.get("cpu"))
    brand = str(cpu.get("brand_raw") or machine_info.get("processor") or "unknown CPU")
    if cpu.get("family") is not None and cpu.get("model") is not None:
        brand += f" (family {cpu['family']}, model {cpu['model']})"
    return brand


def blas_library(machine_info: dict[str, Any]) -> str:
    """Each BLAS pool as ``OpenBLAS 0.3.31, SkylakeX kernel, 2 threads``."""
    pools = machine_info.get("blas")
    texts = []
    for pool in pools if isinstance(pools, list) else []:
        pool = _object(pool)
        api = str(pool.get("internal_api") or "unknown BLAS")
        kernel = pool.get("architecture")
        texts.append(
            f"{BLAS_NAMES.get(api, api)} {pool.get('version') or ''}".strip()
            + (f", {kernel} kernel" if kernel else ", kernel not recorded")
            + (f", {pool['num_threads']} threads" if pool.get("num_threads") else "")
        )
    return "; ".join(texts) or NOT_RECORDED


def duration(seconds: Any) -> str:
    """A run's length, rounded: ``45 s``, ``5 min 6 s``, ``2 h 3 min``."""
    if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return NOT_RECORDED
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    return f"{total // 3600} h {total % 3600 // 60} min"


def measured_limits(machine_info: dict[str, Any]) -> str:
    """The run's measured peaks and bandwidth: ``float32 230 GFLOP/s (fma; matmul 205), ...``."""
    limits = _object(machine_info.get("peaks"))
    parts = []
    for dtype in ("float32", "float64"):
        entry = _object(limits.get(dtype))
        if isinstance(entry.get("peak_gflops"), (int, float)):
            parts.append(
                f"{dtype} {entry['peak_gflops']:.0f} GFLOP/s ({entry.get('peak_source')}; "
                f"matmul {entry.get('matmul_gflops', float('nan')):.0f}, "
                f"FMA loop {entry.get('fma_gflops', float('nan')):.0f})"
            )
    if isinstance(limits.get("bandwidth_gbs"), (int, float)):
        parts.append(f"STREAM triad {limits['bandwidth_gbs']:.1f} GB/s")
    return "; ".join(parts) or NOT_RECORDED


def gpu_limits(machine_info: dict[str, Any]) -> str:
    """The GPU's measured float32 peak: ``float32 51234 GFLOP/s (fma; matmul 49000, FMA loop
    51234), TF32 off``; "" for a run that measured none."""
    limits = _object(machine_info.get("gpu_peaks"))
    entry = _object(limits.get("float32"))
    if not isinstance(entry.get("peak_gflops"), (int, float)):
        return ""
    rates = [
        f"{label} {entry[key]:.0f}"
        for key, label in (("matmul_gflops", "matmul"), ("fma_gflops", "FMA loop"))
        if isinstance(entry.get(key), (int, float))
    ]
    tf32 = ", TF32 off" if limits.get("tf32") is False else ""
    return (
        f"float32 {entry['peak_gflops']:.0f} GFLOP/s ({entry.get('peak_source')}; "
        f"{', '.join(rates)}){tf32}"
    )


def machine(run: dict[str, Any]) -> dict[str, str]:
    """The fields of a run's machine that change timings, to compare two runs by; "" where
    the run did not record one. :func:`describe` is the same machine as display text."""
    info = run["machine_info"]
    cpu = _object(info.get("cpu"))
    blas = info.get("blas")
    pools = [p for p in blas if isinstance(p, dict)] if isinstance(blas, list) else []
    flags = cpu["flags"] if isinstance(cpu.get("flags"), list) else None
    recorded = cpu.get("brand_raw") or info.get("processor")
    return {
        "CPU": cpu_model(info) if recorded else "",
        "vector extensions": vector_extensions(flags) if flags else "",
        # threadpoolctl lists the libraries in the order they were loaded: sort them
        "BLAS": "; ".join(sorted(f"{p.get('internal_api')} {p.get('version')}" for p in pools)),
        "BLAS kernel": "; ".join(
            sorted(str(p["architecture"]) for p in pools if p.get("architecture"))
        ),
        "cores": str(cpu.get("count") or ""),
        "threads": str(info.get("threads") or ""),
    }


def describe(machine_info: dict[str, Any], extra: dict[str, Any]) -> dict[str, str]:
    """The fields that tell a run apart, as display text, in the order a reader scans them."""
    cpu = _object(machine_info.get("cpu"))
    cores = cpu.get("count")
    threads = machine_info.get("threads", extra.get("threads"))
    backends = extra.get("backends")
    return {
        "machine": str(machine_info.get("node") or "unknown"),
        "cpu": cpu_model(machine_info),
        "vector": vector_extensions(cpu.get("flags")),
        "blas": blas_library(machine_info),
        "cores": f"{cores or '?'} cores, {threads or '?'} threads",
        "gpu": "; ".join(
            filter(None, [str(machine_info.get("gpu") or "none"), gpu_limits(machine_info)])
        ),
        "limits": measured_limits(machine_info),
        "preset": str(extra.get("preset") or "unknown")
        + (f" ({extra['preset_chosen']})" if extra.get("preset_chosen") else ""),
        "duration": duration(extra.get("wall_s")),
        "backends": ", ".join(backends) if isinstance(backends, list) else NOT_RECORDED,
        "interrupted": "interrupted" if extra.get("interrupted") else "complete",
    }

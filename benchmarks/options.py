"""The harness's command-line options, read and checked once into :class:`Settings`."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import impls

from . import duet
from .machine import default_threads
from .matrix import PRESETS, SWEEP, Preset
from .trials import DEFAULT_TRIALS


@dataclass(frozen=True)
class Settings:
    """The harness's command-line options, checked."""

    preset: Preset
    #: backends to time; None for every backend in impls/
    backends: list[str] | None
    #: image sizes of the sweep; None for the preset's
    sizes: list[int] | None
    #: the run's thread count: every figure but the thread scaling is at this count
    threads: int
    report_dir: Path
    #: the share of available memory one configuration may need, in (0, 1]
    memory_share: float
    #: a saved run whose contended or noisy rows this run times again, and those rows' names
    rerun: Path | None = None
    flagged: frozenset[str] = frozenset()
    #: why the preset was chosen for the run, where no option named it ("" where one did)
    preset_chosen: str = ""
    #: the other thread counts of ``--threads 1,2,...``, fewest first: the CPU backends'
    #: passes are timed again at each, for the thread scaling
    scaling: tuple[int, ...] = ()
    #: trials: each visits every case once, in its own random order
    trials: int = 1
    #: the seed of the trials' orders
    seed: int = 0
    #: with ``--duet OLD``: the folder that holds the old version's impls/, whose backends are
    #: timed beside this one's as NAME@old (:mod:`benchmarks.duet`); None without a duet
    duet: Path | None = None


def read_settings(config: pytest.Config) -> Settings:
    """The options of ``config``; a pytest.UsageError of one line names a bad one.

    With ``--rerun-flagged RUN.json``, the preset, backends, sizes and threads not given
    default to that run's, so its flagged rows are in the matrix again. Without a preset,
    ``--benchmark-only`` runs the gpu preset where a GPU backend it times has a real GPU,
    else the default preset.
    """
    rerun = config.getoption("rerun_flagged")
    previous = _flagged_run(Path(rerun)) if rerun else {}
    backends = _backends(config.getoption("backends")) or previous.get("backends")
    preset = config.getoption("preset") or previous.get("preset")
    chosen = ""
    if not preset and config.getoption("benchmark_only", False):
        gpu = gpu_backend(backends or impls.backend_names())
        preset = "gpu" if gpu else "default"
        chosen = f"chosen because {gpu} runs on a GPU (--preset names another)" if gpu else ""
    preset = preset or "smoke"
    if preset not in PRESETS:
        raise pytest.UsageError(f"--preset: {preset!r} is not one of {', '.join(PRESETS)}")
    threads = _int_list(config.getoption("threads"), "--threads")
    if threads is not None and len(set(threads)) != len(threads):
        raise pytest.UsageError(f"--threads names a count twice: {config.getoption('threads')}")
    report_dir = Path(config.getoption("report_dir") or config.rootpath / "reports")
    return Settings(
        preset=PRESETS[preset],
        backends=backends or PRESETS[preset].default_backends(),
        sizes=_int_list(config.getoption("sizes"), "--sizes") or previous.get("sizes"),
        threads=max(threads) if threads else previous.get("threads") or default_threads(),
        report_dir=report_dir,
        memory_share=_share(config.getoption("memory_limit")),
        rerun=Path(rerun) if rerun else None,
        flagged=frozenset(previous.get("flagged", ())),
        preset_chosen=chosen,
        scaling=tuple(sorted(threads)[:-1]) if threads else (),
        trials=_positive(config.getoption("trials"), "--trials") or DEFAULT_TRIALS,
        seed=_seed(config.getoption("seed")),
        duet=_duet(config.getoption("duet"), report_dir),
    )


def gpu_backend(names: list[str]) -> str | None:
    """The first of ``names`` that runs on a real GPU here, or None."""
    for name in names:
        backend = impls.get_backend(name)
        gpu = backend.device == "gpu" and backend.role != "oracle"
        if gpu and backend.untimed_reason() is None:
            return name
    return None


def _flagged_run(path: Path) -> dict[str, Any]:
    """What ``--rerun-flagged`` takes from a saved run: its settings and its flagged rows."""
    from reports import ReportInputError, read_run
    from reports.data import flagged_names

    try:
        run = read_run(path)
        flagged = flagged_names(run)
    except ReportInputError as exc:
        raise pytest.UsageError(f"--rerun-flagged: {exc}") from None
    if not flagged:
        raise pytest.UsageError(f"--rerun-flagged: {path} has no contended or noisy row to rerun")
    extra = run.get("im2col_bench") or {}
    sizes = {
        int(row["h"])
        for row in [b.get("extra_info") or {} for b in run["benchmarks"]]
        + extra.get("skipped", [])
        + extra.get("failed", [])
        if row.get("config") == SWEEP and row.get("kind", "conv") == "conv" and row.get("h")
    }
    names = [n for n in extra.get("backends", []) if n in impls.backend_names()]
    threads = run["machine_info"].get("threads")
    return {
        "preset": extra.get("preset"),
        "backends": names or None,
        "sizes": sorted(sizes) or None,
        "threads": threads if isinstance(threads, int) and threads > 0 else None,
        "flagged": flagged,
    }


def _duet(spec: str | None, report_dir: Path) -> Path | None:
    """The old version's folder for ``--duet``; a commit's impls/ is kept in the report dir."""
    if spec is None:
        return None
    try:
        return duet.resolve(spec, Path(impls.__file__).parent, report_dir / duet.CACHE_FOLDER)
    except (ValueError, OSError) as exc:
        raise pytest.UsageError(f"--duet: {exc}") from None


def _int_list(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise pytest.UsageError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise pytest.UsageError(f"{option} takes positive integers, got {text!r}")
    return values


def _backends(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = impls.backend_names()
    if not names:
        raise pytest.UsageError(f"--backends: name at least one of {', '.join(known)}")
    for name in names:
        if name not in known:
            raise pytest.UsageError(
                f"--backends: Unknown backend {name!r}; known backends: {', '.join(known)}"
            )
    if all(impls.get_backend(name).role == "oracle" for name in names):
        raise pytest.UsageError(
            f"--backends: {', '.join(names)} is the oracle, never timed; "
            "name a backend to time, e.g. naive_loop"
        )
    return names


def _positive(text: str | None, option: str) -> int | None:
    values = _int_list(text, option)
    if values is not None and len(values) != 1:
        raise pytest.UsageError(f"{option} takes one positive integer, got {text!r}")
    return values[0] if values else None


def _seed(text: str | None) -> int:
    """--seed as an integer in [0, 2**32); a random one when not given."""
    if text is None:
        return secrets.randbelow(2**32)
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**32:
        raise pytest.UsageError(f"--seed takes an integer in [0, 2**32), got {text!r}")
    return seed


def _share(text: str | None) -> float:
    if text is None:
        return 0.5
    try:
        percent = float(text.strip().removesuffix("%"))
    except ValueError:
        percent = math.nan
    if not (math.isfinite(percent) and 0 < percent <= 100):
        raise pytest.UsageError(f"--memory-limit takes a percentage in (0, 100], got {text!r}")
    return percent / 100

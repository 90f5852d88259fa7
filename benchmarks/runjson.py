"""The run's JSON: pytest-benchmark's, its cases joined, and the harness's record beside them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import impls

from . import runfile, timing, trials
from .accuracy import METRIC
from .matrix import contenders

if TYPE_CHECKING:
    from .harness import Harness

#: the benchmarks' module, as its tests are named from the repository's root
BENCHMARKS_MODULE = "benchmarks/test_conv.py"


def case_key(name: str) -> str:
    """A benchmark's test and case from its full name, without its trial, the same whatever
    pytest took for the rootdir (a ``--report-dir DIR`` with a space can move it)."""
    return trials.without_trial(name.rsplit("::", 1)[-1])


def run_json(harness: Harness) -> dict[str, Any]:
    """pytest-benchmark's JSON of the run, made through its own hooks: one benchmark a case."""
    hook, config = harness.config.hook, harness.config
    benchmarks = [r.benchmark() for r in harness.results.values() if r.timed]
    for bench in benchmarks:
        # named from the repository, whatever pytest took for the rootdir, so that runs
        # compare and rerun by name
        bench.fullname = f"{BENCHMARKS_MODULE}::{case_key(bench.fullname)}"
        bench.name = trials.without_trial(bench.name)
    machine_info = hook.pytest_benchmark_generate_machine_info(config=config)
    hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine_info)
    commit_info = hook.pytest_benchmark_generate_commit_info(config=config)
    hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    output: dict[str, Any] = hook.pytest_benchmark_generate_json(
        config=config,
        benchmarks=benchmarks,
        include_data=True,
        machine_info=machine_info,
        commit_info=commit_info,
    )
    output["im2col_bench"] = record(harness)
    if harness.settings.rerun is not None:
        carry_over(output, harness.settings.rerun)
    hook.pytest_benchmark_update_json(config=config, benchmarks=benchmarks, output_json=output)
    return output


def record(harness: Harness) -> dict[str, Any]:
    """What the run's JSON keeps under ``im2col_bench``."""
    s = harness.settings
    return {
        "dx_check": dx_check(harness),
        "format": runfile.FORMAT,
        "preset": s.preset.name,
        "preset_chosen": s.preset_chosen,
        "threads": s.threads,
        "thread_scaling": list(s.scaling),
        "memory_share": s.memory_share,
        "backends": s.backends or impls.backend_names(),
        "left_out": [{"backend": k, "reason": v} for k, v in harness.schedule.left_out.items()],
        "skipped": harness.skipped,
        "failed": harness.failed,
        "interrupted": harness.interrupted,
        "wall_s": time.perf_counter() - harness.started,
        "protocol": timing.protocol(),
        "trials": trials.describe(s.trials, s.seed, harness.probes),
        "accuracy": {
            "metric": METRIC,
            "oracle": "reference in float64",
            "s": harness.decisions.accuracy_s,
        },
        "before_start": harness.before_start.info(s.threads) if harness.before_start else None,
    }


def carry_over(output_json: dict[str, Any], rerun: Path) -> None:
    """Add the rows of the run given to ``--rerun-flagged`` that this run did not time."""
    from reports import read_run

    previous = read_run(rerun)
    timed = {case_key(b["fullname"]) for b in output_json["benchmarks"]}
    source = str(rerun)
    output_json["benchmarks"] += [
        {**b, "extra_info": {**(b.get("extra_info") or {}), "carried_from": source}}
        for b in previous["benchmarks"]
        if case_key(str(b.get("fullname"))) not in timed
    ]
    extra, old = output_json["im2col_bench"], previous.get("im2col_bench") or {}
    for key in ("skipped", "failed"):
        extra[key] = old.get(key, []) + extra[key]
    extra["left_out"] = old.get("left_out", extra["left_out"])
    extra["rerun_of"] = source


def dx_check(harness: Harness) -> dict[str, Any] | None:
    """The article's flipped-kernel dx and each timed backend's, against the reference."""
    if harness.interrupted:
        return None
    from .dx_shortcut import dx_check as check

    names = harness.settings.backends or impls.backend_names()
    try:
        return check(contenders(names, harness.settings.preset)[0])
    except Exception as exc:  # a check that breaks must not cost the run's JSON
        return {"failed": f"{type(exc).__name__}: {exc}"}

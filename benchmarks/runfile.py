"""The run file's owner: its format version and the migration of older ones, the pass and
configuration names, and the fields of a result row.

A run file is pytest-benchmark's JSON with this project's part under ``im2col_bench``; the
harness (benchmarks/) writes it and the reports (reports/) read it, both through the names
defined here, so a pass, a configuration or a field is named once. This module imports only
the standard library, so the harness loads it without pandas or matplotlib.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: what ``im2col_bench["format"]`` says. 1 named the resnet configuration "reference";
#: 2 is the current one. The harness writes this one; a reader refuses a newer one.
FORMAT = 2
#: the oldest format a reader migrates
OLDEST_FORMAT = 1

#: the passes every backend is timed on
PASSES = ("forward", "backward", "step")
#: the passes a GPU backend is also timed on (its inputs to the device and back), where the
#: preset asks for them
GPU_PASSES = ("transfer",)
#: a part of the forward pass timed alone, for the backends that expose it as a method
#: (``backend.im2col(x, geom)``): what the report weighs against the whole forward. A phase's
#: row has kind "phase", not "conv".
PHASES = ("im2col",)
#: the order the report shows a conv row's passes in: every pass the harness times
PASS_ORDER = (*PASSES, *GPU_PASSES)

#: the configuration of the image-size sweep
SWEEP = "default"
#: the configuration of a ResNet stage-2 layer, where the goals are judged
RESNET = "resnet"
#: the configuration of the distinct ResNet-50 3x3 and 1x1 layers, where the GPU goals are judged
RESNET50 = "resnet50"
#: the configuration of the batch-size sweep at one layer
BATCH = "batch"
#: configurations a format before the current one named otherwise: format -> {old: new}
OLD_CONFIG_NAMES = {1: {"reference": RESNET}}

#: what a row of the run file holds about its case, timed, skipped or failed alike (the
#: harness's ``result_row``); a timed row's ``extra_info`` adds what was measured
ROW_FIELDS = {
    "kind": "conv, phase, threads (a thread-scaling case) or blas_limit (the machine's limit)",
    "backend": "the backend's registered name (none for blas_limit)",
    "role": "ours, seed, peer or oracle",
    "device": "cpu or gpu",
    "pass": f"one of {', '.join(PASS_ORDER + PHASES)}",
    "config": f"the configuration: {SWEEP}, {RESNET}, {RESNET50}, {BATCH}, a one-factor row",
    "n": "batch",
    "h": "image height",
    "w": "image width",
    "c_in": "input channels",
    "c_out": "output channels",
    "kh": "kernel height",
    "kw": "kernel width",
    "stride": "stride along both axes",
    "padding": "SAME, VALID or the zeros added on every side",
    "network": "the real network the layer belongs to, or empty",
    "weight": "how many of the network's layers share the shape",
    "dilation": "dilation along both axes",
    "dtype": "float32 or float64",
    "flops": "floating-point operations of the pass (0 for a transfer or a phase)",
    "cols_bytes": "bytes of the im2col matrix",
    "traffic_bytes": "the backend's modelled memory traffic of the pass, or null",
    "memory_estimate_bytes": "the backend's estimate of its extra memory",
    "m": "rows of the BLAS limit's product",
    "k": "depth of the BLAS limit's product",
    "n_cols": "columns of the BLAS limit's product",
    "threads": "the thread count the case ran with",
    "status": "ok, skipped or failed",
    "reason": "why a case was skipped or failed, or empty",
}
#: a row's shape fields, each an integer in :data:`SHAPE_RANGE` when present
SHAPE_FIELDS = ("n", "h", "w", "c_in", "c_out", "kh", "kw", "stride", "dilation", "threads",
                "cores", "m", "k", "n_cols")  # fmt: skip
SHAPE_RANGE = (1, 2**31)
#: a row's counts (FLOPs, bytes), each an integer in :data:`COUNT_RANGE` when present
COUNT_FIELDS = ("flops", "cols_bytes", "traffic_bytes", "memory_estimate_bytes",
                "peak_extra_bytes", "peak_total_bytes")  # fmt: skip
COUNT_RANGE = (0, 2**62)


def ordered_passes(passes: Iterable[str]) -> list[str]:
    """``passes`` once each, in :data:`PASS_ORDER`; a pass it lacks (a newer harness's)
    comes after them, by name, rather than vanishing from a table or a plot."""
    present = set(passes)
    return [p for p in PASS_ORDER if p in present] + sorted(present - set(PASS_ORDER))


def pass_rank(pass_: str) -> int:
    """Where a pass sorts: its place in :data:`PASS_ORDER`, or after every pass there."""
    return PASS_ORDER.index(pass_) if pass_ in PASS_ORDER else len(PASS_ORDER)


def format_of(run: dict[str, Any]) -> Any:
    """The format a run's JSON says it is in (1 where it says none): not yet checked."""
    return (run.get("im2col_bench") or {}).get("format", OLDEST_FORMAT)


def migrated_config(config: Any, version: int) -> Any:
    """A row's configuration as the current format names it, in a run of ``version``."""
    if not isinstance(config, str):
        return config
    return OLD_CONFIG_NAMES.get(version, {}).get(config, config)


def migrated_name(name: str, version: int) -> str:
    """A benchmark's full name as the current harness names it, in a run of ``version``."""
    if version == 1:
        # the first format's "reference-56px" case id is "resnet-56px" now
        return re.sub(r"(?<=[\[-])reference-(?=\d+px\])", f"{RESNET}-", name)
    return name

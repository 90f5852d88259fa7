"""The source article's claims (``ARTICLE.md``), each set against one run's numbers.

Each claim is judged from the run's own rows: the im2col phase the harness times alone, the
forward and step passes, and the dx check the harness stores in the run's JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmarks.runfile import RESNET, SWEEP

from .accuracy import ERRORS, error_text, worst_errors
from .data import BASELINE, YARDSTICK, timed

#: im2col takes "almost all" of the forward time when it takes at least this share
ALMOST_ALL = 0.8
#: the article's bound on what batching saves, and its "up to" speedup of as_strided
SAVES_AT_MOST = 0.10
UP_TO = 100.0
BATCHED, STRIDED, WINOGRAD = "batched_im2col", "strided_tensordot", "winograd"
GPU_OURS, GPU_PEER = "numba_cuda", "torch_cudnn"
#: a backend of ours is as accurate as the rest when its worst error is within this factor
#: of the most accurate one's (same dtype)
AS_ACCURATE = 10.0


@dataclass(frozen=True)
class Claim:
    """One of the article's claims, judged on one run."""

    #: the article's claim, in our words
    said: str
    #: "holds", "partly", "does not hold" or "not measured"
    verdict: str
    #: what the run's numbers say, in a sentence or two
    found: str
    #: the numbers behind it: a row per series, a column per size ("" where none)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _size(config: str, h: float) -> str:
    return f"{h:.0f}px" if config == SWEEP else str(config)


def _by_size(rows: pd.DataFrame, series: str, value: Callable[[pd.Series], str]) -> pd.DataFrame:
    """A table of ``value(row)``: a row per value of ``series``, a column per size."""
    if rows.empty:
        return pd.DataFrame()
    rows = rows.sort_values(["config", "h"], key=lambda c: c.map(_order))
    cells = rows.assign(
        size=[_size(c, h) for c, h in zip(rows["config"], rows["h"], strict=True)],
        text=[value(r) for _, r in rows.iterrows()],
    )
    sizes = list(dict.fromkeys(cells["size"]))
    table = cells.pivot_table(index=series, columns="size", values="text", aggfunc="first")
    return table.reindex(columns=sizes).fillna("")


def _order(value: Any) -> Any:
    """Sort key: the sweep's sizes first, then the other configurations."""
    return (value != SWEEP) if isinstance(value, str) else value


def _sci(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


def _range(values: pd.Series, fmt: str) -> str:
    lo, hi = values.min(), values.max()
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}} to {hi:{fmt}}"


SHAPE = ["config", "n", "h", "c_in", "c_out", "kh", "stride", "dtype"]


def _paired(left: pd.DataFrame, right: pd.DataFrame, same_backend: bool) -> pd.DataFrame:
    """Rows of ``left`` and ``right`` at the same shape (and backend, if ``same_backend``),
    their medians as median_l and median_r; ``backend`` is left's."""
    on = [*SHAPE, "backend"] if same_backend else SHAPE
    right = right[[*on, "median"]]
    return left[[*SHAPE, "backend", "median"]].merge(right, on=on, suffixes=("_l", "_r"))


def im2col_share(df: pd.DataFrame) -> Claim:
    """Claim 1: im2col's share of the forward time, for the backends that time it alone."""
    said = (
        "Almost all of a convolution layer's time goes into im2col, so other optimisations "
        "matter little."
    )
    phase = df[(df["kind"] == "phase") & (df["pass"] == "im2col") & (df["status"] == "ok")]
    forward = timed(df, None)
    forward = forward[forward["pass"] == "forward"]
    pairs = _paired(phase, forward, same_backend=True)
    pairs = pairs[pairs["config"].isin([SWEEP, RESNET])]
    if pairs.empty:
        return Claim(said, "not measured", "No backend's im2col was timed alone in this run.")
    pairs["share"] = pairs["median_l"] / pairs["median_r"]
    spans = pairs.groupby("backend")["share"].agg(["min", "max"])
    found = "; ".join(
        f"{_range(pairs.loc[pairs['backend'] == b, 'share'] * 100, '.0f')}% of {b}'s"
        for b in spans.index
    )
    holds = spans["min"] >= ALMOST_ALL
    fails = spans["max"] < ALMOST_ALL
    verdict = "holds" if holds.all() else "does not hold" if fails.all() else "partly"
    note = ""
    if verdict == "partly":
        parts = [
            f"{kind} for {', '.join(spans.index[which])}"
            for kind, which in (
                ("it holds", holds),
                ("not", fails),
                ("at some sizes only", ~holds & ~fails),
            )
            if which.any()
        ]
        note = f" So {'; '.join(parts)}: with a faster im2col the matrix product dominates."
    if (pairs["share"] > 1).any():
        note += " Over 100%: im2col and the forward pass are timed apart, and noise shows."
    return Claim(
        said,
        verdict,
        f'im2col alone takes {found} forward time ("almost all": at least {ALMOST_ALL:.0%}).{note}',
        _by_size(pairs, "backend", lambda r: f"{r['share']:.0%}"),
    )


def batching_saves(df: pd.DataFrame) -> Claim:
    """Claim 2: what batching saves: batched_im2col's forward against naive_loop's."""
    said = "Replacing the loop over the batch with one matrix product saves less than 10%."
    forward = timed(df, None)
    forward = forward[(forward["pass"] == "forward") & forward["config"].isin([SWEEP, RESNET])]
    batched = forward[forward["backend"] == BATCHED]
    pairs = _paired(batched, forward[forward["backend"] == BASELINE], same_backend=False)
    if pairs.empty:
        return Claim(said, "not measured", f"No forward time of both {BATCHED} and {BASELINE}.")
    pairs["saving"] = 1 - pairs["median_l"] / pairs["median_r"]
    below = pairs["saving"] < SAVES_AT_MOST
    verdict = "holds" if below.all() else "does not hold" if not below.any() else "partly"
    return Claim(
        said,
        verdict,
        f"{BATCHED} (one strided copy per kernel tap for the whole batch) takes "
        f"{_range(pairs['saving'] * 100, '.0f')}% less forward time than {BASELINE}, which "
        "already makes one matrix product for the whole batch but loops over windows in "
        "Python: batching the copies is what saves time, not the product.",
        _by_size(pairs.assign(series="time saved"), "series", lambda r: f"{r['saving']:.0%}"),
    )


def strided_speedup(df: pd.DataFrame) -> Claim:
    """Claim 3: as_strided + tensordot against the loop, forward and step, per size."""
    said = 'An im2col through as_strided, contracted with tensordot, "can be up to 100x faster".'
    rows = timed(df, None)
    rows = rows[(rows["backend"] == STRIDED) & rows["config"].isin([SWEEP, RESNET])]
    rows = rows[rows["pass"].isin(["forward", "step"])].dropna(subset=["speedup"])
    measured = rows[~rows["speedup_extrapolated"]]
    if measured.empty:
        return Claim(said, "not measured", f"No time of both {STRIDED} and {BASELINE}.")
    best = measured.loc[measured["speedup"].idxmax()]
    verdict = "holds" if best["speedup"] >= UP_TO else "does not hold"
    extrapolated = " (~: against its extrapolated time)" if len(measured) < len(rows) else ""
    return Claim(
        said,
        verdict,
        f"{STRIDED} is {_range(measured['speedup'], '.3g')}x as fast as {BASELINE}; at most "
        f"{best['speedup']:.3g}x ({best['pass']}, {_size(best['config'], best['h'])})"
        f"{extrapolated}.",
        _by_size(
            rows,
            "pass",
            lambda r: ("~" if r["speedup_extrapolated"] else "") + f"{r['speedup']:.3g}x",
        ),
    )


def flipped_kernel_dx(check: Any) -> Claim:
    """What the article teaches for dx: the padded dy convolved with the rotated kernel."""
    said = (
        "dx is the zero-padded dy convolved with the kernel rotated by 180 degrees, with the "
        "forward stride."
    )
    if not isinstance(check, dict) or "padded_error" not in check:
        return Claim(said, "not measured", "This run has no dx check (older runs do not).")
    stride = check["stride"]
    shape = "x".join(str(v) for v in check["article_shape"][1:3])
    dx_shape = "x".join(str(v) for v in check["dx_shape"][1:3])
    rows = [r for r in check.get("backends", []) if isinstance(r, dict)]
    checked = {str(r.get("backend")): r["error"] for r in rows if r.get("error") is not None}
    tolerance = check.get("tolerance", 0.0)
    wrong = [name for name, error in checked.items() if not error <= tolerance]
    agree = ""
    if checked:
        agree = (
            f" Every backend checked agrees with the reference at stride {stride} (largest "
            f"error {_sci(max(checked.values()))}, {check.get('dtype', '')}; the tests allow "
            f"{_sci(tolerance)})."
            if not wrong
            else f" Off by more than the tests' {_sci(tolerance)} at stride {stride}: "
            f"{', '.join(wrong)}."
        )
    unchecked = [
        f"{r.get('backend')} ({str(r.get('reason', '')).split(':')[0]})"
        for r in rows
        if r.get("error") is None
    ]
    if unchecked:
        agree += f" Not checked: {', '.join(unchecked)}."
    table = pd.DataFrame(
        [[_sci(error) for error in checked.values()]],
        index=[f"dx error at stride {stride}"],
        columns=list(checked),
    )
    return Claim(
        said,
        "partly",
        f"Right at stride 1 (error {_sci(check['stride1_error'])}). At stride {stride} it is "
        f"wrong: as the article writes it, it gives {shape} where dx is {dx_shape}; with dy "
        f"padded to fit, its error is {check['padded_error']:.3g} ({check['metric']}); with "
        f"dy dilated by the stride first, {_sci(check['dilated_error'])}.{agree}",
        table,
    )


def winograd_faster(df: pd.DataFrame) -> Claim:
    """Claim 4: Winograd may be faster (than the im2col backends), at the ResNet layer."""
    said = "Winograd may be faster."
    rows = timed(df, RESNET)
    rows = rows[(rows["pass"] == "forward") & rows["role"].isin(["ours", "seed"])]
    mine, others = rows[rows["backend"] == WINOGRAD], rows[rows["backend"] != WINOGRAD]
    if mine.empty or others.empty:
        return Claim(said, "not measured", f"No forward time of {WINOGRAD} and another backend.")
    best = others.loc[others["median"].idxmin()]
    ratio = mine["median"].min() / best["median"]
    peer = timed(df, RESNET)
    peer = peer[(peer["pass"] == "forward") & (peer["backend"] == YARDSTICK)]
    versus_peer = (
        f", and {mine['median'].min() / peer['median'].min():.2f}x {YARDSTICK}'s"
        if not peer.empty
        else ""
    )
    return Claim(
        said,
        "holds" if ratio < 1 else "does not hold",
        f"At the resnet layer, {WINOGRAD}'s forward takes {ratio:.2f}x the time of "
        f"{best['backend']}, the fastest other seed or backend of ours{versus_peer}.",
    )


def cuda_library(df: pd.DataFrame) -> Claim:
    """Claim 5: once CUDA is needed, a library is the better choice."""
    said = "Once CUDA is needed, one may as well use PyTorch or TensorFlow."
    rows = timed(df, RESNET)
    rows = rows[rows["pass"] == "step"]
    ours, peer = rows[rows["backend"] == GPU_OURS], rows[rows["backend"] == GPU_PEER]
    if ours.empty or peer.empty:
        return Claim(
            said, "not measured", f"No GPU time of both {GPU_OURS} and {GPU_PEER} in this run."
        )
    ratio = ours["median"].min() / peer["median"].min()
    return Claim(
        said,
        "holds" if ratio > 1 else "does not hold",
        f"At the resnet layer, {GPU_OURS}'s forward + backward takes {ratio:.2f}x the time "
        f"of {GPU_PEER} (cuDNN).",
    )


def same_result(df: pd.DataFrame) -> Claim:
    """What the article takes for granted: every method computes the same layer. Each of
    ours' worst error against the float64 reference, over every shape it was timed on."""
    said = (
        "The methods compute the same convolution and differ in speed only (the article "
        "compares no accuracy)."
    )
    worst = worst_errors(df)
    worst = worst[worst["role"] == "ours"] if not worst.empty else worst
    if worst.empty:
        return Claim(said, "not measured", "This run has no errors against float64.")
    parts, behind = [], []
    for dtype, rows in worst.groupby("dtype"):
        best = rows["error"].min()
        found = []
        for _, row in rows.sort_values("error").iterrows():
            factor = row["error"] / best
            where = f"at {_size(row['config'], row['h'])}"
            found.append(
                f"{row['backend']} {error_text(row['error'])} {where}"
                + (f" ({factor:.0f}x the most accurate)" if factor > AS_ACCURATE else "")
            )
            if factor > AS_ACCURATE:
                behind.append(str(row["backend"]))
        parts.append(f"in {dtype}, {', '.join(found)}")
    table = worst.set_index("backend")[list(ERRORS)].T.map(error_text)
    table.index = [name.removeprefix("error_") for name in ERRORS]
    note = (
        f" {', '.join(behind)} trade{'s' if len(behind) == 1 else ''} accuracy for speed."
        if behind
        else ""
    )
    return Claim(
        said,
        "partly" if behind else "holds",
        "Worst error of y, dx and dw against the float64 reference (relative to its largest "
        f"magnitude), over every shape timed: {'; '.join(parts)}.{note}",
        table,
    )


def check_article(df: pd.DataFrame, dx_check: Any) -> list[Claim]:
    """Every claim, judged on one run's rows and its dx check."""
    return [
        im2col_share(df),
        batching_saves(df),
        strided_speedup(df),
        flipped_kernel_dx(dx_check),
        winograd_faster(df),
        cuda_library(df),
        same_result(df),
    ]
